//! The trace model: Jaeger's, which is what every reader of this store (Kiali's console, the
//! Jaeger UI, Grafana's Jaeger data source) expects.

use std::sync::Arc;

use crate::ids::{SpanId, TraceId};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Bool(bool),
    I64(i64),
    F64(f64),
    Binary(Vec<u8>),
}

impl Value {
    /// The value as the text a tag query compares against (`"true"`, `"200"`, ...).
    pub fn as_text(&self) -> std::borrow::Cow<'_, str> {
        use base64::Engine as _;
        match self {
            Value::Str(s) => s.as_str().into(),
            Value::Bool(b) => b.to_string().into(),
            Value::I64(i) => i.to_string().into(),
            Value::F64(f) => f.to_string().into(),
            Value::Binary(b) => base64::engine::general_purpose::STANDARD.encode(b).into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: Value,
}

impl KeyValue {
    pub fn new(key: impl Into<String>, value: Value) -> Self {
        KeyValue {
            key: key.into(),
            value,
        }
    }

    pub fn string(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self::new(key, Value::Str(value.into()))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Log {
    /// Microseconds since the Unix epoch.
    pub timestamp: u64,
    pub fields: Vec<KeyValue>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefType {
    ChildOf,
    FollowsFrom,
}

impl RefType {
    pub fn as_str(self) -> &'static str {
        match self {
            RefType::ChildOf => "CHILD_OF",
            RefType::FollowsFrom => "FOLLOWS_FROM",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanRef {
    pub ref_type: RefType,
    pub trace_id: TraceId,
    pub span_id: SpanId,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Process {
    pub service_name: String,
    pub tags: Vec<KeyValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub operation_name: String,
    pub references: Vec<SpanRef>,
    pub flags: u32,
    /// Microseconds since the Unix epoch.
    pub start_time: u64,
    /// Microseconds.
    pub duration: u64,
    pub tags: Vec<KeyValue>,
    pub logs: Vec<Log>,
    /// Shared by the spans of one resource (one OTLP `ResourceSpans`, one Zipkin endpoint).
    pub process: Arc<Process>,
    pub warnings: Vec<String>,
}

impl Span {
    /// The parent: the first CHILD_OF reference in the same trace (Jaeger's rule).
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.references
            .iter()
            .find(|r| r.ref_type == RefType::ChildOf && r.trace_id == self.trace_id)
            .map(|r| r.span_id)
    }

    /// A tag's value by key, among the span's own tags.
    pub fn tag(&self, key: &str) -> Option<&Value> {
        self.tags
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| &kv.value)
    }

    /// The OpenTracing `span.kind` tag (`client`, `server`, ...), or "" when absent.
    pub fn kind(&self) -> &str {
        match self.tag("span.kind") {
            Some(Value::Str(kind)) => kind,
            _ => "",
        }
    }

    /// When the span ends, in microseconds since the Unix epoch. Saturates rather than wraps:
    /// spans that enter through OTLP or Zipkin are bounded (see [`crate::limits`]), but a span
    /// can be built by hand.
    pub fn end_time(&self) -> u64 {
        self.start_time.saturating_add(self.duration)
    }

    /// True when the span carries `error=true` (bool, or the string "true").
    pub fn has_error(&self) -> bool {
        match self.tag("error") {
            Some(Value::Bool(b)) => *b,
            Some(Value::Str(s)) => s == "true",
            _ => false,
        }
    }
}

/// The spans of one trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trace {
    pub spans: Vec<Span>,
    pub warnings: Vec<String>,
}

impl Trace {
    pub fn trace_id(&self) -> Option<TraceId> {
        self.spans.first().map(|s| s.trace_id)
    }
}
