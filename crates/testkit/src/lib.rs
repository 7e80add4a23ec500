//! Test support shared by the workspace's test suites, so that each suite does not carry its
//! own copy: the clock ([`now`]), RFC 3339 texts for query parameters ([`rfc3339`]), model spans
//! built field by field ([`SpanBuilder`]), connecting and sending a client's first bytes
//! ([`connect_and_send`]) and reading a socket until the server closes it
//! ([`read_until_closed`]), and a real Prometheus ([`prometheus`]) started over TSDB blocks made
//! with promtool — the reference both the PromQL evaluator and the Prometheus client are tested
//! against; Tempo search answers per mesh ([`tempo`]); a request's body in one call, the error
//! text of a JSON error answer and a stand-in server on a loopback port ([`http`]); the tags of
//! spans and the longest trace in the Jaeger UI's JSON ([`jaeger_json`]).
//! Only ever a dev-dependency; it may panic, as tests do: a test that cannot reach its reference
//! must fail, never skip.

pub mod http;
pub mod jaeger_json;
pub mod prometheus;
pub mod tempo;

use std::sync::Arc;
use std::time::Duration;

use meshtrace_model::time::civil_from_days;
use meshtrace_model::{KeyValue, Process, RefType, Span, SpanId, SpanRef, TraceId};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// µs since the Unix epoch, from the model's one clock.
pub fn now() -> u64 {
    meshtrace_model::time::now_micros()
}

/// An RFC 3339 time (`2026-11-24T07:50:12.000123Z`) for query parameters, from µs since the
/// epoch.
pub fn rfc3339(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64).expect("a date in range");
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        micros % 1_000_000
    )
}

/// Connects to `addr` and writes `bytes`: the open connection, for the tests of what a server
/// does with a client that stops there.
pub async fn connect_and_send(addr: std::net::SocketAddr, bytes: &[u8]) -> tokio::net::TcpStream {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the server accepts connections");
    stream.write_all(bytes).await.expect("the bytes are sent");
    stream
}

/// Everything read from `stream` until the peer closes it or `patience` runs out, and whether it
/// closed in time (the caller asserts, with its own words).
pub async fn read_until_closed<S: AsyncRead + Unpin>(
    stream: &mut S,
    patience: Duration,
) -> (String, bool) {
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(patience, async {
        let mut chunk = [0u8; 1024];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => answer.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        closed.is_ok(),
    )
}

/// A model [`Span`] built field by field: sampled (flags 1), no references, tags, logs or
/// warnings until added.
#[must_use]
pub struct SpanBuilder {
    span: Span,
}

impl SpanBuilder {
    /// Span `span` of trace `trace`, in `process`, named `operation`.
    pub fn new(trace: u128, span: u64, operation: &str, process: &Arc<Process>) -> Self {
        Self {
            span: Span {
                trace_id: TraceId(trace),
                span_id: SpanId(span),
                operation_name: operation.into(),
                references: vec![],
                flags: 1,
                start_time: 0,
                duration: 0,
                tags: vec![],
                logs: vec![],
                process: Arc::clone(process),
                warnings: vec![],
            },
        }
    }

    /// Starts at `start` µs since the epoch and lasts `duration` µs.
    pub fn at(mut self, start: u64, duration: u64) -> Self {
        self.span.start_time = start;
        self.span.duration = duration;
        self
    }

    /// A child of span `parent` of the same trace.
    pub fn child_of(mut self, parent: u64) -> Self {
        self.span.references.push(SpanRef {
            ref_type: RefType::ChildOf,
            trace_id: self.span.trace_id,
            span_id: SpanId(parent),
        });
        self
    }

    /// One more tag.
    pub fn tag(mut self, tag: KeyValue) -> Self {
        self.span.tags.push(tag);
        self
    }

    /// The span.
    pub fn build(self) -> Span {
        self.span
    }
}

/// A process of `service` with `tags`, shared by the spans built with it.
pub fn process(service: &str, tags: Vec<KeyValue>) -> Arc<Process> {
    Arc::new(Process {
        service_name: service.into(),
        tags,
    })
}
