//! Measuring with the metrics derivation off and on (`METRICS`, `ROUNDS`): which settings to
//! run, the store options for each, and the cost reported from the best rate of each.

use std::time::Duration;

use meshtrace_store::StoreOptions;

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

/// The throughput the derivation costs, when both settings were measured.
pub fn report_cost(what: &str, rates: &[(&str, bool, f64)], label: &str) {
    if let (Some(off), Some(on)) = (best(rates, label, false), best(rates, label, true)) {
        println!(
            "{what}: the metrics derivation costs {:.1}% of throughput",
            100.0 * (off - on) / off
        );
    }
}
