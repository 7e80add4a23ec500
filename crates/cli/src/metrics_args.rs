//! The flags of the metrics the store derives from spans, shared by `store` and `demo`.

use std::time::Duration;

use clap::Args;
use meshtrace_store::MetricsOptions;
use meshtrace_store::derive::{DEFAULT_MAX_LABEL_VALUES, DEFAULT_MAX_SERIES};

#[derive(Debug, Clone, Args)]
pub struct MetricsArgs {
    /// The width of the time buckets the store sums derived metrics in (Go duration, 1s to
    /// 1h): the resolution of the metrics API and of the Prometheus series.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_step)]
    pub metrics_step: Duration,
    /// The most distinct values a derived metric label takes; past it, new values are counted
    /// as `__overflow__` (the spans are still stored).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_LABEL_VALUES, value_parser = parse_count)]
    pub metrics_max_label_values: usize,
    /// The most label sets each derived family holds; past it, new ones are counted in the
    /// series whose labels are all `__overflow__`.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_SERIES, value_parser = parse_count)]
    pub metrics_max_series: usize,
    /// How long a sidecar's client span whose server span has not come yet waits for it before
    /// its request is counted with `destination_workload="unknown"` (Go duration, 0 to 1m; 0:
    /// no wait).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_pair_wait)]
    pub metrics_pair_wait: Duration,
    /// Derive no metrics: spans only (the metrics API then answers 501, as Jaeger does without
    /// a metrics backend).
    #[arg(long)]
    pub no_metrics: bool,
}

impl MetricsArgs {
    pub fn options(&self) -> Option<MetricsOptions> {
        (!self.no_metrics).then_some(MetricsOptions {
            step: self.metrics_step,
            max_label_values: self.metrics_max_label_values,
            max_series: self.metrics_max_series,
            pair_wait: self.metrics_pair_wait,
            ..MetricsOptions::default()
        })
    }
}

fn parse_step(text: &str) -> Result<Duration, String> {
    let micros = meshtrace_model::time::parse_go_duration(text)?;
    if !(1_000_000..=3_600_000_000).contains(&micros) || micros % 1000 != 0 {
        return Err(
            "the metrics step must be between 1s and 1h, in whole milliseconds".to_string(),
        );
    }
    Ok(Duration::from_micros(micros))
}

fn parse_pair_wait(text: &str) -> Result<Duration, String> {
    let micros = meshtrace_model::time::parse_go_duration(text)?;
    if micros > 60_000_000 || micros % 1000 != 0 {
        return Err("the pair wait must be between 0s and 1m, in whole milliseconds".to_string());
    }
    Ok(Duration::from_micros(micros))
}

fn parse_count(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=10_000_000).contains(&n) => Ok(n),
        _ => Err(format!("`{text}` is not a number from 1 to 10000000")),
    }
}
