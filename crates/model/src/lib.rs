//! The trace model every part of meshtrace speaks, and its conversions: the Jaeger UI JSON
//! codec, OTLP ↔ model (as Jaeger converts), and Zipkin v2 JSON → model; and time (parse, format,
//! civil dates, durations). No I/O but the clock read of [`time::now_micros`].

// No unwrap or expect outside tests (clippy.toml allows them there): every one left says why.
#![warn(clippy::unwrap_used, clippy::expect_used)]

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
    let mut traces: Vec<Trace> = Vec::new();
    let mut index: std::collections::HashMap<TraceId, usize> = std::collections::HashMap::new();
    for span in spans {
        let i = *index.entry(span.trace_id).or_insert_with(|| {
            traces.push(Trace::default());
            traces.len() - 1
        });
        traces[i].spans.push(span);
    }
    traces
}
