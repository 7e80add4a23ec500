//! The figures of Jaeger's metrics API from the per-service buckets: at each point `t` of
//! `[endTs − lookback, endTs]` (every `step`), over the buckets that ended in
//! `(t − ratePer, t]`, the calls per second, the share of them that are errors, and a latency
//! quantile (from the merged sketches, within 1 %). Each figure is exact over its buckets —
//! no sampling and no extrapolation, unlike a rate over scraped counters.
//!
//! Which series appear follows Jaeger's Prometheus reader: calls and latencies for every
//! service (or service and operation) with spans in the range; error rates for those with
//! errors, or, when none has any, every one with calls at 0 (Jaeger's fallback); a point
//! without calls has no latency and no error rate (`NaN`).

use std::collections::BTreeMap;

use meshtrace_mesh::telemetry::StatusCode;
use meshtrace_metrics::promql::quantile_out_of_range;

use super::params::MetricsQuery;
use crate::derive::cell::{Cell, ServiceCell};
use crate::derive::read::SeriesData;
use crate::derive::sketch::Sketch;

/// Which figure a route asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    Latencies(f64),
    Calls,
    Errors,
}

/// One series of the answer: its service (and operation), and `(time ms, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub service: String,
    pub operation: Option<String>,
    pub points: Vec<(i64, f64)>,
}

#[derive(Default, Clone)]
struct Bucket {
    calls: u64,
    errors: u64,
    latency: Sketch,
}

/// The points of the range: `start, start + step, …` up to `end`.
pub fn points(query: &MetricsQuery) -> Vec<i64> {
    let start = query.end_ms.saturating_sub(query.lookback_ms);
    let mut at = Vec::new();
    let mut t = start;
    while t <= query.end_ms {
        at.push(t);
        match t.checked_add(query.step_ms) {
            Some(next) => t = next,
            None => break,
        }
    }
    at
}

/// Jaeger's figures from the series read (labels in the per-service order: service, span
/// name, span kind, status).
pub fn compute(query: &MetricsQuery, figure: Figure, series: Vec<SeriesData>) -> Vec<Line> {
    let mut groups: BTreeMap<(String, Option<String>), BTreeMap<u64, Bucket>> = BTreeMap::new();
    for data in series {
        let label = |at: usize| {
            data.labels
                .get(at)
                .map(std::string::ToString::to_string)
                .unwrap_or_default()
        };
        let key = (label(0), query.group_by_operation.then(|| label(1)));
        let error = data.labels.get(3).map(|v| &**v) == Some(StatusCode::Error.otel());
        let buckets = groups.entry(key).or_default();
        for (end, cell) in data.cells {
            let Cell::Service(cell) = cell else { continue };
            let bucket = buckets.entry(end).or_default();
            add(bucket, &cell, error);
        }
    }
    let times = points(query);
    let seconds = query.rate_per_ms as f64 / 1000.0;
    let any_errors = groups
        .values()
        .any(|buckets| buckets.values().any(|b| b.errors > 0));
    let mut lines = Vec::with_capacity(groups.len());
    for ((service, operation), buckets) in groups {
        let has_errors = buckets.values().any(|b| b.errors > 0);
        if figure == Figure::Errors && any_errors && !has_errors {
            continue;
        }
        let windows = windows(&times, query.rate_per_ms, &buckets, figure);
        let points = times
            .iter()
            .zip(windows)
            .map(|(t, w)| {
                let value = match figure {
                    Figure::Calls => w.calls as f64 / seconds,
                    Figure::Errors if !any_errors => 0.0,
                    Figure::Errors if w.calls == 0 => f64::NAN,
                    Figure::Errors => w.errors as f64 / w.calls as f64,
                    Figure::Latencies(q) => latency(&w.latency, q),
                };
                (*t, value)
            })
            .collect();
        lines.push(Line {
            service,
            operation,
            points,
        });
    }
    lines
}

fn add(bucket: &mut Bucket, cell: &ServiceCell, error: bool) {
    bucket.calls = bucket.calls.saturating_add(cell.calls);
    if error {
        bucket.errors = bucket.errors.saturating_add(cell.calls);
    }
    bucket.latency.merge(&cell.latency);
}

/// The sum of the buckets in `(t − rate, t]` for each `t`, slid along the (sorted) times:
/// buckets enter at the front and leave at the back, so each is added and taken out once.
fn windows(
    times: &[i64],
    rate: i64,
    buckets: &BTreeMap<u64, Bucket>,
    figure: Figure,
) -> Vec<Bucket> {
    let with_latency = matches!(figure, Figure::Latencies(_));
    let list: Vec<(i64, &Bucket)> = buckets
        .iter()
        .filter_map(|(end, b)| Some((i64::try_from(*end).ok()?, b)))
        .collect();
    let mut out = Vec::with_capacity(times.len());
    let mut current = Bucket::default();
    let (mut enter, mut leave) = (0usize, 0usize);
    for t in times {
        while let Some((end, b)) = list.get(enter)
            && *end <= *t
        {
            current.calls = current.calls.saturating_add(b.calls);
            current.errors = current.errors.saturating_add(b.errors);
            if with_latency {
                current.latency.merge(&b.latency);
            }
            enter = enter.saturating_add(1);
        }
        let floor = t.saturating_sub(rate);
        while leave < enter
            && let Some((end, b)) = list.get(leave)
            && *end <= floor
        {
            current.calls = current.calls.saturating_sub(b.calls);
            current.errors = current.errors.saturating_sub(b.errors);
            if with_latency {
                current.latency.subtract(&b.latency);
            }
            leave = leave.saturating_add(1);
        }
        out.push(current.clone());
    }
    out
}

/// The latency quantile in ms, as Jaeger asks Prometheus for it: the quantile rounded to two
/// decimals (`%.2f`), `−Inf` below 0, `+Inf` above 1, `NaN` without calls.
fn latency(sketch: &Sketch, q: f64) -> f64 {
    let q = (q * 100.0).round() / 100.0;
    if let Some(value) = quantile_out_of_range(q) {
        return value;
    }
    sketch.quantile(q).map_or(f64::NAN, |us| us / 1000.0)
}
