//! Spans for the unit tests.

use std::sync::Arc;

use meshtrace_model::{KeyValue, Process, Span, SpanId, TraceId};

/// A span of `reviews.bookinfo` with the operation and string tags given.
pub fn span(op: &str, tags: &[(&str, &str)]) -> Span {
    Span {
        trace_id: TraceId(1),
        span_id: SpanId(1),
        operation_name: op.into(),
        references: vec![],
        flags: 1,
        start_time: 0,
        duration: 1,
        tags: tags.iter().map(|(k, v)| KeyValue::string(*k, *v)).collect(),
        logs: vec![],
        process: Arc::new(Process {
            service_name: "reviews.bookinfo".into(),
            tags: vec![],
        }),
        warnings: vec![],
    }
}
