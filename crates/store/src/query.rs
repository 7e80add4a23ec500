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
