//! What a reader asks the store, the same for every surface (Jaeger HTTP v1 and v3, gRPC).

use serde::Serialize;

/// A trace search. Times are microseconds since the Unix epoch; durations microseconds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceQuery {
    pub service: Option<String>,
    pub operation: Option<String>,
    /// Every tag must be found on one span: in its tags, its process's tags or its logs.
    pub tags: Vec<(String, String)>,
    pub start_min: u64,
    pub start_max: u64,
    pub duration_min: Option<u64>,
    pub duration_max: Option<u64>,
    /// The most traces to return.
    pub limit: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub name: String,
    pub span_kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyLink {
    pub parent: String,
    pub child: String,
    pub call_count: u64,
}

/// A trace in a few numbers, as Jaeger's api_v3 `TraceSummary` has them.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    pub trace_id: meshtrace_model::TraceId,
    pub root_service_name: String,
    pub root_operation_name: String,
    pub min_start_time_unix_nano: u64,
    pub max_end_time_unix_nano: u64,
    pub span_count: usize,
    pub error_span_count: usize,
    /// Spans whose parent is not in the trace.
    pub orphan_span_count: usize,
    /// Per service, by name: (name, spans, spans with an error).
    pub services: Vec<(String, usize, usize)>,
}

/// The root is [`meshtrace_model::Trace::root`] (the Jaeger UI's rule: a trace whose root span
/// has not arrived is named after its earliest orphan); an empty name when there is none.
pub fn summarize(trace: &meshtrace_model::Trace) -> TraceSummary {
    use std::collections::{BTreeMap, HashSet};
    let ids: HashSet<_> = trace.spans.iter().map(|s| s.span_id).collect();
    let root = trace.root();
    let (start, end) = trace.bounds();
    let mut services: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for span in &trace.spans {
        let entry = services.entry(&span.process.service_name).or_default();
        entry.0 = entry.0.saturating_add(1);
        entry.1 = entry.1.saturating_add(usize::from(span.has_error()));
    }
    TraceSummary {
        trace_id: trace.trace_id().unwrap_or_default(),
        root_service_name: root
            .map(|r| r.process.service_name.clone())
            .unwrap_or_default(),
        root_operation_name: root.map(|r| r.operation_name.clone()).unwrap_or_default(),
        min_start_time_unix_nano: start.saturating_mul(1000),
        max_end_time_unix_nano: end.saturating_mul(1000),
        span_count: trace.spans.len(),
        error_span_count: trace.spans.iter().filter(|s| s.has_error()).count(),
        orphan_span_count: trace
            .spans
            .iter()
            .filter(|s| s.parent_span_id().is_some_and(|p| !ids.contains(&p)))
            .count(),
        services: services
            .into_iter()
            .map(|(name, (spans, errors))| (name.to_string(), spans, errors))
            .collect(),
    }
}
