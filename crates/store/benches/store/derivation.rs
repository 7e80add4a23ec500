//! Measuring with the metrics derivation off and on (`METRICS`, `ROUNDS`): which settings to
//! run, the store options for each, the cost reported from the best rate of each, and how fast
//! the derived series are read.

use std::time::{Duration, Instant};

use meshtrace_metrics::{Matcher, SeriesSource};
use meshtrace_store::{Store, StoreOptions};

use crate::measure::percentile;

/// The derivation settings to measure (`METRICS`): off then on by default.
pub fn metrics_modes() -> Vec<bool> {
    match std::env::var("METRICS").as_deref() {
        Ok("on") => vec![true],
        Ok("off") => vec![false],
        _ => vec![false, true],
    }
}

/// How many times each setting is measured (`ROUNDS`, default 3).
pub fn rounds() -> usize {
    std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(3)
        .max(1)
}

pub fn store_options(metrics: bool) -> StoreOptions {
    let mut options = StoreOptions::new(Duration::from_secs(72 * 3600));
    if !metrics {
        options.metrics = None;
    }
    options
}

pub fn on_off(metrics: bool) -> &'static str {
    if metrics { "on" } else { "off" }
}

/// The best rate measured for `label` with the derivation on or off.
pub fn best(rates: &[(&str, bool, f64)], label: &str, metrics: bool) -> Option<f64> {
    rates
        .iter()
        .filter(|(l, m, _)| *l == label && *m == metrics)
        .map(|(_, _, r)| *r)
        .reduce(f64::max)
}

/// The throughput the derivation costs, when both settings were measured: from the best rate
/// of each, and — the figure that stands on a shared machine, whose speed drifts between runs
/// — the median of the costs of each off run and the on run right after it.
pub fn report_cost(what: &str, rates: &[(&str, bool, f64)], label: &str) {
    report_cost_of(what, "throughput", rates, label);
}

/// [`report_cost`] of any higher-is-better figure (`of`: what it is).
pub fn report_cost_of(what: &str, of: &str, rates: &[(&str, bool, f64)], label: &str) {
    if let (Some(off), Some(on)) = (best(rates, label, false), best(rates, label, true)) {
        println!(
            "{what}: the metrics derivation costs {:.1}% of {of} (best of each)",
            100.0 * (off - on) / off
        );
    }
    let runs: Vec<(bool, f64)> = rates
        .iter()
        .filter(|(l, _, _)| *l == label)
        .map(|(_, m, r)| (*m, *r))
        .collect();
    let mut costs: Vec<f64> = runs
        .windows(2)
        .filter_map(|pair| match pair {
            [(false, off), (true, on)] => Some(100.0 * (off - on) / off),
            _ => None,
        })
        .collect();
    if costs.len() > 1 {
        costs.sort_by(f64::total_cmp);
        let half = costs.len() / 2;
        let median = if costs.len() % 2 == 0 {
            (costs[half - 1] + costs[half]) / 2.0
        } else {
            costs[half]
        };
        let listed: Vec<String> = costs.iter().map(|c| format!("{c:.1}")).collect();
        println!(
            "{what}: the metrics derivation costs {median:.1}% of {of} (median of {} off/on pairs: {} %)",
            costs.len(),
            listed.join(", ")
        );
    }
}

/// The derived series as Kiali's namespace graph reads them over the hour written: the
/// selector of its requests query (`reporter="source"`, a namespace: every span of this
/// workload names an `outbound|` upstream, so all are source reports) and of its response time
/// query (the duration buckets), each over one hour and the 10-minute rate window.
pub fn report_series(store: &Store) {
    let now = meshtrace_model::time::now_micros() as i64 / 1000;
    let selectors = [
        ("istio_requests_total", "requests"),
        (
            "istio_request_duration_milliseconds_bucket",
            "duration buckets",
        ),
    ];
    for (name, what) in selectors {
        let matchers = [
            Matcher::equal("__name__", name),
            Matcher::equal("reporter", "source"),
            Matcher::equal("source_workload_namespace", "bookinfo"),
        ];
        let mut times = Vec::new();
        let mut found = (0, 0);
        for _ in 0..20 {
            let started = Instant::now();
            let series = store.select(&matchers, now - 4_200_000, now).unwrap();
            times.push(started.elapsed());
            found = (series.len(), series.iter().map(|s| s.samples.len()).sum());
        }
        times.sort();
        println!(
            "derived series, graph selector ({what}) over 1 h: p50 {:>8.3} ms  p99 {:>8.3} ms ({} series, {} samples)",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            found.0,
            found.1
        );
    }
}
