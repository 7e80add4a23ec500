//! Where Prometheus releases differ, both behaviours, worked out by hand from Prometheus's
//! documented rules (the comparison test checks the installed release against the real one).

use std::time::{Duration, Instant};

use super::bucket_quantile;
use crate::promql::{Compat, EngineOptions, QueryValue, instant_query};
use crate::{Labels, MemorySource};

fn source(points: &[(i64, f64)]) -> MemorySource {
    let labels = Labels::new([("__name__".to_string(), "c".to_string())]);
    let mut builder = MemorySource::builder();
    for &(seconds, value) in points {
        builder.push(&labels, seconds * 1000, value);
    }
    builder.build()
}

/// The single value `query` gives at `seconds`, if any.
fn value(source: &MemorySource, query: &str, seconds: i64, compat: Compat) -> Option<f64> {
    let options = EngineOptions {
        compat,
        ..EngineOptions::default()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    match instant_query(source, query, seconds * 1000, &options, deadline).unwrap() {
        QueryValue::Vector(samples) => samples.first().map(|s| s.value),
        other => panic!("{other:?}"),
    }
}

const V2_42: Compat = Compat {
    left_open_windows: false,
    zero_cap_after_threshold: false,
    bucket_tolerance: false,
    kahan_sum: false,
    direct_mean: false,
    regex_dot_matches_newline: false,
};

#[test]
fn regex_dots_match_newlines_since_prometheus_3() {
    let labels = Labels::new(
        [("__name__", "c"), ("path", "a\nb")].map(|(n, v)| (n.to_string(), v.to_string())),
    );
    let s = MemorySource::builder().sample(&labels, 0, 1.0).build();
    assert_eq!(value(&s, r#"c{path=~"a.b"}"#, 0, Compat::LATEST), Some(1.0));
    assert_eq!(value(&s, r#"c{path=~"a.b"}"#, 0, V2_42), None);
    assert_eq!(value(&s, r#"c{path!~"a.b"}"#, 0, V2_42), Some(1.0));
}

#[test]
fn range_windows_exclude_their_start_since_prometheus_3() {
    let s = source(&[(0, 5.0), (15, 10.0), (30, 40.0), (45, 50.0), (60, 60.0)]);
    // 3.x: (0s, 60s] holds 10..60: increase 50 over 45 s, 15 s to the start (under the
    // threshold of 16.5 s) capped at the zero point 45 × 10/50 = 9 s: 50 × 54/45 = 60 in 60 s.
    assert_eq!(value(&s, "rate(c[60s])", 60, Compat::LATEST), Some(1.0));
    // 2.x: [0s, 60s] holds 5..60: increase 55 over exactly the window.
    assert_eq!(value(&s, "rate(c[60s])", 60, V2_42), Some(55.0 / 60.0));
}

#[test]
fn the_lookback_excludes_its_start_since_prometheus_3() {
    let s = source(&[(0, 7.0)]);
    assert_eq!(value(&s, "c", 300, Compat::LATEST), None);
    assert_eq!(value(&s, "c", 300, V2_42), Some(7.0));
    assert_eq!(value(&s, "c", 299, Compat::LATEST), Some(7.0));
}

#[test]
fn the_zero_point_caps_after_the_threshold_since_2_51() {
    // A counter born mid-window: 30, 70, 110 at 30 s, 45 s, 60 s; rate over 60 s at 60 s.
    let s = source(&[(30, 30.0), (45, 70.0), (60, 110.0)]);
    // 2.51+: 30 s to the start is past the threshold (16.5 s), so 7.5 s (half the spacing);
    // the zero point (30 × 30/80 = 11.25 s) is further: 80 × 37.5/30 = 100 in 60 s (the
    // factor is divided by the range before multiplying, as Prometheus rounds it).
    assert_eq!(
        value(&s, "rate(c[60s])", 60, Compat::LATEST),
        Some(80.0 * (37.5 / 30.0 / 60.0))
    );
    // Before: the zero point first (11.25 s), which is under the threshold, so all of it:
    // 80 × 41.25/30 = 110.
    assert_eq!(
        value(&s, "rate(c[60s])", 60, V2_42),
        Some(80.0 * (41.25 / 30.0 / 60.0))
    );
}

#[test]
fn rates_need_two_samples_and_count_resets() {
    let single = source(&[(30, 1.0)]);
    assert_eq!(value(&single, "rate(c[60s])", 60, Compat::LATEST), None);
    assert_eq!(value(&single, "irate(c[60s])", 60, Compat::LATEST), None);
    // 10, 20, 5 (a reset): increase 20 - 10 + 20 = 15... over 30 s, sampled from the start.
    let reset = source(&[(0, 10.0), (15, 20.0), (30, 5.0)]);
    assert_eq!(value(&reset, "increase(c[30s])", 30, V2_42), Some(15.0));
    // irate after a reset is the new value over the last interval.
    assert_eq!(
        value(&reset, "irate(c[30s])", 30, Compat::LATEST),
        Some(5.0 / 15.0)
    );
    // delta does not treat the drop as a reset.
    assert_eq!(value(&reset, "delta(c[30s])", 30, V2_42), Some(-5.0));
}

#[test]
fn tiny_bucket_differences_are_ignored_since_2_49() {
    let buckets = || vec![(1.0, 10.0), (5.0, 10.000000000001), (f64::INFINITY, 20.0)];
    let q = 0.50000000000002;
    // 2.49+: the 5 bucket counts as equal to the 1 bucket; the rank falls in +Inf, which
    // answers the highest finite bound.
    assert_eq!(bucket_quantile(q, &mut buckets(), Compat::LATEST), 5.0);
    // Before: the rank lands inside the 5 bucket and is interpolated there.
    let before = bucket_quantile(q, &mut buckets(), V2_42);
    assert!(before > 1.0 && before < 5.0, "{before}");
}

#[test]
fn histogram_quantile_edge_cases() {
    let c = Compat::LATEST;
    let mut ok = vec![(f64::INFINITY, 10.0), (1.0, 5.0), (2.0, 10.0)];
    // Sorted first; rank 5 at the top of the 1 bucket: interpolated from 0.
    assert_eq!(bucket_quantile(0.5, &mut ok, c), 1.0);
    assert_eq!(bucket_quantile(0.75, &mut ok.clone(), c), 1.5);
    assert!(bucket_quantile(0.5, &mut vec![(1.0, 5.0), (2.0, 10.0)], c).is_nan());
    assert!(bucket_quantile(0.5, &mut vec![(f64::INFINITY, 0.0), (1.0, 0.0)], c).is_nan());
    assert!(bucket_quantile(0.5, &mut vec![(f64::INFINITY, 4.0)], c).is_nan());
    assert_eq!(bucket_quantile(-1.0, &mut ok.clone(), c), f64::NEG_INFINITY);
    assert_eq!(bucket_quantile(2.0, &mut ok.clone(), c), f64::INFINITY);
    assert!(bucket_quantile(f64::NAN, &mut ok.clone(), c).is_nan());
    // Everything in +Inf: the highest finite bound.
    assert_eq!(
        bucket_quantile(0.9, &mut vec![(1.0, 0.0), (f64::INFINITY, 3.0)], c),
        1.0
    );
    // A first bound at or below zero is answered as is.
    assert_eq!(
        bucket_quantile(0.1, &mut vec![(-1.0, 5.0), (f64::INFINITY, 10.0)], c),
        -1.0
    );
    // A decreasing count is raised to the running maximum (10), so rank 12 sits 2/5 into the
    // 3 bucket (2.727 without the fix).
    let mut dip = vec![(1.0, 10.0), (2.0, 4.0), (3.0, 15.0), (f64::INFINITY, 20.0)];
    assert_eq!(bucket_quantile(0.6, &mut dip, c), 2.4);
}
