//! The trace model every part of meshtrace speaks, and its conversions: the Jaeger UI JSON
//! codec, OTLP ↔ model (as Jaeger converts), and Zipkin v2 JSON → model; and time (parse, format,
//! civil dates, durations). No I/O but the clock read of [`time::now_micros`].

// Every codec here reads bytes from outside (Jaeger JSON, OTLP, Zipkin, times): no unwrap
// or expect, no indexing that can panic and no unchecked arithmetic, crate-wide. clippy.toml
// allows unwrap, expect and indexing in tests; test modules allow arithmetic themselves. Every
// other `#[allow]` says why.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod ids;
pub mod jaeger_json;
pub mod limits;
pub mod otlp;
mod span;
#[cfg(feature = "proptest")]
pub mod strategy;
mod summary;
pub mod time;
pub mod zipkin;

pub use ids::{IdError, SpanId, TraceId};
pub use span::{KeyValue, Log, Process, RefType, Span, SpanRef, Trace, Value};

/// Groups spans by trace ID, keeping the order in which traces first appear.
pub fn group_by_trace(spans: Vec<Span>) -> Vec<Trace> {
    use std::collections::hash_map::Entry;
    let mut traces: Vec<Trace> = Vec::new();
    let mut index: std::collections::HashMap<TraceId, usize> = std::collections::HashMap::new();
    for span in spans {
        match index.entry(span.trace_id) {
            Entry::Occupied(at) => {
                // Every index in the map is that of a trace pushed with it.
                if let Some(trace) = traces.get_mut(*at.get()) {
                    trace.spans.push(span);
                }
            }
            Entry::Vacant(at) => {
                at.insert(traces.len());
                traces.push(Trace {
                    spans: vec![span],
                    ..Trace::default()
                });
            }
        }
    }
    traces
}
