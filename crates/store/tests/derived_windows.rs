//! The store's reduced windows (`SeriesSource::select_windows`, what an instant query's
//! `rate`, `increase` and `delta` read) against its samples: the same first and last samples,
//! count, counter resets and limits as reducing what `select` returns, and the same PromQL
//! answers as the evaluator gives from the samples.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use meshtrace_metrics::promql::{Compat, EngineOptions, QueryValue, instant_query, range_query};
use meshtrace_metrics::{Matcher, MetricMetadata, SelectLimits, Series, SeriesSource, SourceError};
use meshtrace_sim::spread::bookinfo_last_3h;
use meshtrace_store::Store;

/// The store seen only through `select`: its windows are the trait's default reduction of
/// the samples.
struct SamplesOnly<'a>(&'a Store);

impl SeriesSource for SamplesOnly<'_> {
    fn select(
        &self,
        matchers: &[Matcher],
        start: i64,
        end: i64,
    ) -> Result<Vec<Series>, SourceError> {
        self.0.select(matchers, start, end)
    }

    fn metadata(&self) -> Vec<MetricMetadata> {
        self.0.metadata()
    }
}

/// A store holding 20,000 Bookinfo spans spread over the last 3 hours, and the time (ms) they end.
fn filled() -> (Store, i64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let store = Store::in_memory(Duration::from_secs(4 * 3600));
    bookinfo_last_3h(20_000, now, |batch| store.write(batch).unwrap());
    (store, now as i64 * 1000)
}

fn limits() -> SelectLimits {
    SelectLimits {
        max_series: 100_000,
        max_samples: 10_000_000,
    }
}

#[test]
fn windows_reduce_exactly_what_select_returns() {
    let (store, now_ms) = filled();
    let name = |n: &str| Matcher::equal("__name__", n);
    let selections: Vec<Vec<Matcher>> = vec![
        vec![name("istio_request_duration_milliseconds_bucket")],
        vec![
            name("istio_request_duration_milliseconds_bucket"),
            Matcher::equal("reporter", "destination"),
            Matcher::equal("destination_workload", "reviews-v2"),
        ],
        vec![
            name("istio_request_duration_milliseconds_sum"),
            Matcher::equal("reporter", "source"),
        ],
        vec![name("istio_request_duration_milliseconds_count")],
        vec![name("istio_requests_total")],
        vec![
            Matcher::regex("__name__", "istio_re.*", false).unwrap(),
            Matcher::regex("le", "\\+Inf|1.*", false).unwrap(),
        ],
    ];
    let mut compared = 0;
    let mut with_samples = 0;
    // Ends on a step's end and between two; windows from 1 minute to past the oldest data.
    for end in [now_ms - 60_000, now_ms - 67_500, now_ms - 3_600_000 - 1] {
        for range in [60_000, 600_000, 3_600_000, 10_800_000, 11_100_000] {
            for left_open in [true, false] {
                for matchers in &selections {
                    let start = end - range;
                    let reduced = store
                        .select_windows(matchers, start, end, left_open, limits())
                        .unwrap();
                    let expected = SamplesOnly(&store)
                        .select_windows(matchers, start, end, left_open, limits())
                        .unwrap();
                    assert_eq!(reduced, expected, "{matchers:?} over ({start}, {end}]");
                    compared += reduced.len();
                    with_samples += reduced.iter().filter(|w| w.samples.count() > 1).count();
                }
            }
        }
    }
    assert!(compared > 10_000, "only {compared} windows compared");
    assert!(
        with_samples > 5_000,
        "only {with_samples} windows with samples"
    );
}

#[test]
fn windows_count_every_selected_sample_against_the_limits() {
    let (store, now_ms) = filled();
    let matchers = [Matcher::equal(
        "__name__",
        "istio_request_duration_milliseconds_bucket",
    )];
    let (start, end) = (now_ms - 3_600_000, now_ms - 60_000);
    for tight in [
        SelectLimits {
            max_series: 10,
            max_samples: 10_000_000,
        },
        SelectLimits {
            max_series: 100_000,
            max_samples: 1_000,
        },
    ] {
        let reduced = store.select_windows(&matchers, start, end, true, tight);
        let expected = SamplesOnly(&store).select_windows(&matchers, start, end, true, tight);
        let (Err(SourceError::TooLarge(reduced)), Err(SourceError::TooLarge(expected))) =
            (reduced, expected)
        else {
            panic!("both selections must pass {tight:?}");
        };
        assert_eq!(reduced, expected);
    }
}

/// The trace heatmap's queries (Kiali's stats), answered by an instant query (reduced
/// windows) and by the first step of a range query (the evaluator walking the samples): the
/// same series and the same float bits, under Prometheus 3's and 2's window rules.
#[test]
fn instant_rates_over_windows_equal_rates_over_samples() {
    let (store, now_ms) = filled();
    let at = now_ms - 67_500;
    let mut queries = Vec::new();
    for labels in [
        r#"{reporter="destination",destination_workload="reviews-v2"}"#,
        r#"{reporter="source",source_workload="productpage-v1"}"#,
        "",
    ] {
        for window in ["1m", "10m", "60m", "3h"] {
            let h = "istio_request_duration_milliseconds";
            queries.push(format!(
                "sum (rate({h}_sum{labels}[{window}])) / sum (rate({h}_count{labels}[{window}]))"
            ));
            queries.push(format!(
                "histogram_quantile(0.9, sum by (le) (rate({h}_bucket{labels}[{window}])))"
            ));
            queries.push(format!("increase(istio_requests_total{labels}[{window}])"));
            queries.push(format!("delta({h}_sum{labels}[{window}])"));
        }
    }
    let mut answered = 0;
    for compat in [Compat::LATEST, Compat::prometheus(2, 42)] {
        let options = EngineOptions {
            compat,
            ..EngineOptions::default()
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        for query in &queries {
            let QueryValue::Vector(instant) =
                instant_query(&store, query, at, &options, deadline).unwrap()
            else {
                panic!("{query}: not a vector");
            };
            let QueryValue::Matrix(steps) =
                range_query(&store, query, at, at + 15_000, 15_000, &options, deadline).unwrap()
            else {
                panic!("{query}: not a matrix");
            };
            let from_samples: Vec<_> = steps
                .iter()
                .filter_map(|s| {
                    let first = s.points.first().filter(|p| p.timestamp_ms == at)?;
                    Some((s.labels.clone(), first.value.to_bits()))
                })
                .collect();
            let from_windows: Vec<_> = instant
                .iter()
                .map(|s| (s.labels.clone(), s.value.to_bits()))
                .collect();
            assert_eq!(from_windows, from_samples, "{query} under {compat:?}");
            answered += instant.iter().filter(|s| !s.value.is_nan()).count();
        }
    }
    assert!(answered > 100, "only {answered} values compared");
}

/// The reduced windows a selection reuses (the `_sum`, `_count` and `_bucket` of one label set
/// and window read once) answer what the samples say, again after a write changes them.
#[test]
fn reused_windows_follow_every_write() {
    let (store, now_ms) = filled();
    let name = |n: &str| Matcher::equal("__name__", n);
    let labels = || {
        vec![
            Matcher::equal("reporter", "destination"),
            Matcher::equal("destination_workload", "productpage-v1"),
        ]
    };
    let selection = |metric: &str| {
        let mut m = labels();
        m.push(name(metric));
        m
    };
    let (start, end) = (now_ms - 600_000, now_ms - 30_000);
    let metrics = [
        "istio_request_duration_milliseconds_sum",
        "istio_request_duration_milliseconds_count",
        "istio_request_duration_milliseconds_bucket",
        "istio_request_duration_milliseconds_bucket",
    ];
    let answers = |store: &Store| {
        metrics
            .iter()
            .map(|metric| {
                let matchers = selection(metric);
                let reduced = store
                    .select_windows(&matchers, start, end, true, limits())
                    .unwrap();
                let expected = SamplesOnly(store)
                    .select_windows(&matchers, start, end, true, limits())
                    .unwrap();
                assert_eq!(reduced, expected, "{metric}");
                assert!(!reduced.is_empty(), "{metric}");
                reduced
            })
            .collect::<Vec<_>>()
    };
    let before = answers(&store);
    // One bound only: the columns asked, from the same reduction.
    let mut one_le = selection("istio_request_duration_milliseconds_bucket");
    one_le.push(Matcher::equal("le", "+Inf"));
    let inf = store
        .select_windows(&one_le, start, end, true, limits())
        .unwrap();
    assert_eq!(
        inf,
        SamplesOnly(&store)
            .select_windows(&one_le, start, end, true, limits())
            .unwrap()
    );
    assert_eq!(inf.len(), before[1].len());
    // More requests in the window: every answer follows.
    let now = (now_ms / 1000) as u64;
    bookinfo_last_3h(20_000, now, |batch| store.write(batch).unwrap());
    let after = answers(&store);
    for (before, after) in before.iter().zip(&after) {
        assert_ne!(before, after);
    }
}
