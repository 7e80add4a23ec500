//! What a trace amounts to, for charts and details: its root operation, duration, spans, apps
//! and errors; and which other traces look like it (similar shape: span count and the counts
//! of its most frequent operations).

use std::collections::{BTreeSet, HashMap};

use meshtrace_model::{Span, Trace};

use crate::names::tag_str;

#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    pub trace_id: String,
    /// The root span's operation ([`Trace::root`]), or `None` when the trace has no root span.
    pub root_operation: Option<String>,
    /// The root span's service (`productpage.bookinfo`).
    pub root_service: Option<String>,
    /// µs since the epoch: the earliest span start.
    pub start: u64,
    /// µs: from the earliest start to the latest end.
    pub duration: u64,
    pub spans: usize,
    /// Distinct apps: canonical services, or else the process service names.
    pub apps: BTreeSet<String>,
    pub error_spans: usize,
    /// µs: the mean span duration.
    pub average_span: u64,
}

impl TraceSummary {
    pub fn of(trace: &Trace) -> TraceSummary {
        let spans = &trace.spans;
        let root = trace.root();
        let apps = spans
            .iter()
            .map(|s| {
                tag_str(s, "istio.canonical_service").map_or_else(
                    || app_of_service(&s.process.service_name).to_string(),
                    str::to_string,
                )
            })
            .collect();
        let total = spans
            .iter()
            .map(|s| s.duration)
            .fold(0, u64::saturating_add);
        TraceSummary {
            trace_id: trace
                .trace_id()
                .map(meshtrace_model::TraceId::to_hex32)
                .unwrap_or_default(),
            root_operation: root.map(|s| s.operation_name.clone()),
            root_service: root.map(|s| s.process.service_name.clone()),
            start: trace.bounds().0,
            duration: trace.duration(),
            spans: spans.len(),
            apps,
            error_spans: spans.iter().filter(|s| s.has_error()).count(),
            // No spans: 0.
            average_span: total.checked_div(spans.len() as u64).unwrap_or(0),
        }
    }

    pub fn has_error(&self) -> bool {
        self.error_spans > 0
    }

    /// The trace's name as the console shows it: its root operation, or a placeholder.
    pub fn name(&self) -> String {
        self.root_operation
            .clone()
            .unwrap_or_else(|| "(Missing root span)".to_string())
    }

    /// The first seven hex digits of the trace ID, as trace lists show it.
    pub fn short_id(&self) -> &str {
        &self.trace_id[..self.trace_id.len().min(7)]
    }
}

/// `productpage.bookinfo` → `productpage`.
fn app_of_service(service: &str) -> &str {
    service.split('.').next().unwrap_or(service)
}

/// How unlike two traces are, from 0 (same shape) up: the relative difference of their span
/// counts, plus for each of the four most frequent operations of `a` the relative difference of
/// how often it occurs in each, averaged.
pub fn distance(a: &Trace, b: &Trace) -> f64 {
    let (ca, cb) = (operation_counts(&a.spans), operation_counts(&b.spans));
    let relative = |x: usize, y: usize| {
        let max = x.max(y);
        if max == 0 {
            0.0
        } else {
            x.abs_diff(y) as f64 / max as f64
        }
    };
    let mut top: Vec<(&str, usize)> = ca.iter().map(|(k, v)| (*k, *v)).collect();
    top.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(y.0)));
    top.truncate(4);
    let ops: f64 = if top.is_empty() {
        0.0
    } else {
        top.iter()
            .map(|(op, n)| relative(*n, cb.get(op).copied().unwrap_or(0)))
            .sum::<f64>()
            / top.len() as f64
    };
    relative(a.spans.len(), b.spans.len()) + ops
}

fn operation_counts(spans: &[Span]) -> HashMap<&str, usize> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for s in spans {
        let count = counts.entry(s.operation_name.as_str()).or_default();
        *count = count.saturating_add(1);
    }
    counts
}

/// Traces closer than this are "similar" (Kiali's threshold).
pub const SIMILAR_BELOW: f64 = 0.3;

/// Up to `n` traces of `among` most similar to `trace` (itself excluded), closest first.
pub fn similar<'a>(trace: &Trace, among: &'a [Trace], n: usize) -> Vec<&'a Trace> {
    let id = trace.trace_id();
    let mut scored: Vec<(f64, &Trace)> = among
        .iter()
        .filter(|t| t.trace_id() != id)
        .map(|t| (distance(trace, t), t))
        .filter(|(d, _)| *d < SIMILAR_BELOW)
        .collect();
    scored.sort_by(|x, y| x.0.total_cmp(&y.0));
    scored.into_iter().take(n).map(|(_, t)| t).collect()
}

/// The value at percentile `p` (0–100) of `values`, nearest rank; `None` when empty.
pub fn percentile(values: &[u64], p: f64) -> Option<u64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.clamp(1, sorted.len()).saturating_sub(1))
        .copied()
}

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use std::sync::Arc;

    use meshtrace_model::{KeyValue, Process, RefType, SpanId, SpanRef, TraceId, Value};

    use super::*;

    fn trace(id: u128, ops: &[&str], error_at: Option<usize>) -> Trace {
        let process = Arc::new(Process {
            service_name: "productpage.bookinfo".into(),
            tags: vec![],
        });
        let spans = ops
            .iter()
            .enumerate()
            .map(|(i, op)| Span {
                trace_id: TraceId(id),
                span_id: SpanId(i as u64 + 1),
                operation_name: op.to_string(),
                references: if i == 0 {
                    vec![]
                } else {
                    vec![SpanRef {
                        ref_type: RefType::ChildOf,
                        trace_id: TraceId(id),
                        span_id: SpanId(1),
                    }]
                },
                flags: 1,
                start_time: 1000 + i as u64 * 10,
                duration: 100 - i as u64 * 10,
                tags: if error_at == Some(i) {
                    vec![KeyValue::new("error", Value::Bool(true))]
                } else {
                    vec![]
                },
                logs: vec![],
                process: process.clone(),
                warnings: vec![],
            })
            .collect();
        Trace {
            spans,
            warnings: vec![],
        }
    }

    #[test]
    fn a_summary_reads_the_root_and_counts() {
        let t = trace(7, &["GET /productpage", "reviews", "ratings"], Some(2));
        let s = TraceSummary::of(&t);
        assert_eq!(s.root_operation.as_deref(), Some("GET /productpage"));
        assert_eq!(s.start, 1000);
        assert_eq!(s.duration, 100);
        assert_eq!(s.spans, 3);
        assert_eq!(s.error_spans, 1);
        assert_eq!(s.average_span, 90);
        assert_eq!(s.apps, BTreeSet::from(["productpage".to_string()]));
        assert_eq!(s.trace_id, "00000000000000000000000000000007");
    }

    #[test]
    fn similar_traces_share_shape() {
        let a = trace(1, &["root", "x", "x", "y"], None);
        let same = trace(2, &["root", "x", "x", "y"], None);
        let close = trace(3, &["root", "x", "x", "y", "z"], None);
        let far = trace(4, &["other"], None);
        assert_eq!(distance(&a, &same), 0.0);
        let among = vec![a.clone(), far, close, same];
        let found: Vec<u128> = similar(&a, &among, 8)
            .iter()
            .map(|t| t.trace_id().unwrap().0)
            .collect();
        assert_eq!(found, [2, 3]);
    }

    #[test]
    fn percentiles_by_nearest_rank() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 75.0), Some(75));
        assert_eq!(percentile(&values, 99.0), Some(99));
        assert_eq!(percentile(&[5], 90.0), Some(5));
        assert_eq!(percentile(&[], 90.0), None);
    }
}
