//! Model → Jaeger UI JSON without copies: `Serialize` views over the model that write the same
//! JSON as the owned `Json*` types, straight from the spans (the console's and the store's
//! answers use them).

use super::*;

/// A trace serialized as Jaeger's UI JSON straight from the model: the same bytes as
/// serializing [`trace_to_json`]'s result, without building the owned JSON structs first (the
/// query routes' hot path).
pub struct TraceJson<'a>(pub &'a Trace);

/// The distinct processes of a trace, in order of first use, and each span's index into them.
pub(super) fn process_table(trace: &Trace) -> (Vec<&Arc<Process>>, Vec<usize>) {
    let mut processes: Vec<&Arc<Process>> = Vec::new();
    let mut of_span = Vec::with_capacity(trace.spans.len());
    for span in &trace.spans {
        let index = match processes
            .iter()
            .position(|p| Arc::ptr_eq(p, &span.process) || **p == span.process)
        {
            Some(index) => index,
            None => {
                processes.push(&span.process);
                processes.len().saturating_sub(1)
            }
        };
        of_span.push(index);
    }
    (processes, of_span)
}

/// `p1`, `p2`, ... as Jaeger names processes, from an index into [`process_table`]'s list.
pub(super) struct ProcessKey(pub(super) usize);

impl std::fmt::Display for ProcessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // An index into a Vec is below usize::MAX: the sum cannot saturate.
        write!(f, "p{}", self.0.saturating_add(1))
    }
}

impl Serialize for ProcessKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for TraceJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let trace = self.0;
        let (processes, of_span) = process_table(trace);
        let mut out = s.serialize_struct("JsonTrace", 4)?;
        match trace.trace_id() {
            Some(id) => out.serialize_field("traceID", &Display(id))?,
            None => out.serialize_field("traceID", "")?,
        }
        out.serialize_field(
            "spans",
            &Seq(trace
                .spans
                .iter()
                .zip(of_span)
                .map(|(span, p)| SpanJson(span, ProcessKey(p)))),
        )?;
        out.serialize_field("processes", &ProcessMap(&processes))?;
        out.serialize_field("warnings", &Warnings(&trace.warnings))?;
        out.end()
    }
}

struct ProcessMap<'a>(&'a [&'a Arc<Process>]);

impl Serialize for ProcessMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // Keys sort as Go writes them: p1, p10, p11, ..., p2 (string order).
        let mut keys: Vec<(String, &Arc<Process>)> = self
            .0
            .iter()
            .enumerate()
            .map(|(i, process)| (ProcessKey(i).to_string(), *process))
            .collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        let mut map = s.serialize_map(Some(keys.len()))?;
        for (key, process) in keys {
            map.serialize_entry(&key, &ProcessJson(process))?;
        }
        map.end()
    }
}

/// A process as Jaeger's UI JSON: `{serviceName, tags}`.
pub struct ProcessJson<'a>(pub &'a Process);

impl Serialize for ProcessJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("JsonProcess", 2)?;
        out.serialize_field("serviceName", &self.0.service_name)?;
        out.serialize_field("tags", &Seq(self.0.tags.iter().map(KvJson)))?;
        out.end()
    }
}

/// A span as Jaeger's UI JSON, with the process ID given (`p1`, ...).
struct SpanJson<'a>(&'a Span, ProcessKey);

impl Serialize for SpanJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let span = self.0;
        let mut out = s.serialize_struct("JsonSpan", 11)?;
        out.serialize_field("traceID", &Display(span.trace_id))?;
        out.serialize_field("spanID", &Display(span.span_id))?;
        if span.flags != 0 {
            out.serialize_field("flags", &span.flags)?;
        }
        out.serialize_field("operationName", &span.operation_name)?;
        out.serialize_field("references", &Seq(span.references.iter().map(RefJson)))?;
        out.serialize_field("startTime", &span.start_time)?;
        out.serialize_field("duration", &span.duration)?;
        out.serialize_field("tags", &Seq(span.tags.iter().map(KvJson)))?;
        out.serialize_field("logs", &Seq(span.logs.iter().map(LogJson)))?;
        out.serialize_field("processID", &self.1)?;
        out.serialize_field("warnings", &Warnings(&span.warnings))?;
        out.end()
    }
}

struct RefJson<'a>(&'a crate::span::SpanRef);

impl Serialize for RefJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("JsonRef", 3)?;
        out.serialize_field("refType", self.0.ref_type.as_str())?;
        out.serialize_field("traceID", &Display(self.0.trace_id))?;
        out.serialize_field("spanID", &Display(self.0.span_id))?;
        out.end()
    }
}

struct LogJson<'a>(&'a Log);

impl Serialize for LogJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("JsonLog", 2)?;
        out.serialize_field("timestamp", &self.0.timestamp)?;
        out.serialize_field("fields", &Seq(self.0.fields.iter().map(KvJson)))?;
        out.end()
    }
}

/// A tag as Jaeger's UI JSON: `{key, type, value}` (see [`kv_to_json`]).
struct KvJson<'a>(&'a KeyValue);

impl Serialize for KvJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = s.serialize_struct("JsonKeyValue", 3)?;
        out.serialize_field("key", &self.0.key)?;
        match &self.0.value {
            Value::Str(v) => {
                out.serialize_field("type", "string")?;
                out.serialize_field("value", v)?;
            }
            Value::Bool(v) => {
                out.serialize_field("type", "bool")?;
                out.serialize_field("value", v)?;
            }
            Value::I64(v) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(v) => {
                out.serialize_field("type", "int64")?;
                out.serialize_field("value", v)?;
            }
            Value::I64(v) => {
                out.serialize_field("type", "int64")?;
                out.serialize_field("value", &Display(v))?;
            }
            Value::F64(v) if v.is_finite() => {
                out.serialize_field("type", "float64")?;
                out.serialize_field("value", v)?;
            }
            Value::F64(v) => {
                out.serialize_field("type", "float64")?;
                out.serialize_field("value", &Display(v))?;
            }
            Value::Binary(v) => {
                out.serialize_field("type", "binary")?;
                out.serialize_field(
                    "value",
                    &base64::engine::general_purpose::STANDARD.encode(v),
                )?;
            }
        }
        out.end()
    }
}

/// `null` when empty, else the list (as Jaeger writes `warnings`).
struct Warnings<'a>(&'a [String]);

impl Serialize for Warnings<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_empty() {
            s.serialize_none()
        } else {
            s.collect_seq(self.0)
        }
    }
}

/// A value written through its `Display`, as a JSON string, without an intermediate `String`.
struct Display<T>(T);

impl<T: std::fmt::Display> Serialize for Display<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A sequence from an iterator that can be walked once per serialization.
struct Seq<I>(I);

impl<I> Serialize for Seq<I>
where
    I: Iterator + Clone,
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.clone())
    }
}
