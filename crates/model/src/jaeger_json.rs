//! The Jaeger UI JSON model (what `/api/traces` returns), both ways.
//!
//! Facts kept: trace IDs as 16 or 32 hex digits, span IDs as 16; processes deduplicated and
//! keyed `p1..pN` in order of first appearance; int64 values outside ±(2^53−1) written as
//! decimal strings (JavaScript numbers cannot hold them); binary values as base64; empty
//! `warnings` as `null`; no `parentSpanID` (the parent is the first CHILD_OF reference).

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::ids::{IdError, SpanId, TraceId};
use crate::span::{KeyValue, Log, Process, RefType, Span, SpanRef, Trace, Value};

const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JsonTrace {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    pub spans: Vec<JsonSpan>,
    /// Go's encoder writes map keys sorted, so a BTreeMap gives the same bytes.
    #[serde(default)]
    pub processes: BTreeMap<String, JsonProcess>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JsonSpan {
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
    #[serde(rename = "parentSpanID", default, skip_serializing)]
    pub parent_span_id: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flags: u32,
    pub operation_name: String,
    #[serde(default)]
    pub references: Vec<JsonRef>,
    pub start_time: u64,
    pub duration: u64,
    #[serde(default)]
    pub tags: Vec<JsonKeyValue>,
    #[serde(default)]
    pub logs: Vec<JsonLog>,
    #[serde(rename = "processID", default)]
    pub process_id: String,
    /// Tempo-derived spans carry their process inline; the encoder never writes it.
    #[serde(default, skip_serializing)]
    pub process: Option<JsonProcess>,
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JsonRef {
    pub ref_type: String,
    #[serde(rename = "traceID")]
    pub trace_id: String,
    #[serde(rename = "spanID")]
    pub span_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JsonProcess {
    pub service_name: String,
    #[serde(default)]
    pub tags: Vec<JsonKeyValue>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JsonKeyValue {
    pub key: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    pub value: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JsonLog {
    pub timestamp: u64,
    #[serde(default)]
    pub fields: Vec<JsonKeyValue>,
}

/// A problem in Jaeger JSON read from a backend.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    #[error("span {span}: {source}")]
    Id {
        span: String,
        #[source]
        source: IdError,
    },
    #[error("span {span}: processID `{process}` is not in the trace's processes")]
    MissingProcess { span: String, process: String },
    #[error("tag `{key}`: a {kind} value cannot be {found}")]
    BadValue {
        key: String,
        kind: String,
        found: String,
    },
}

// ---- model -> JSON -----------------------------------------------------------------------

pub fn trace_to_json(trace: &Trace) -> JsonTrace {
    let (processes, of_span) = process_table(trace);
    let spans = trace
        .spans
        .iter()
        .zip(of_span)
        .map(|(span, index)| span_to_json(span, ProcessKey(index).to_string()))
        .collect();
    let processes = processes
        .iter()
        .enumerate()
        .map(|(i, p)| (ProcessKey(i).to_string(), process_to_json(p)))
        .collect();
    JsonTrace {
        trace_id: trace
            .trace_id()
            .map(|id| id.to_string())
            .unwrap_or_default(),
        spans,
        processes,
        warnings: non_empty(&trace.warnings),
    }
}

pub fn span_to_json(span: &Span, process_id: String) -> JsonSpan {
    JsonSpan {
        trace_id: span.trace_id.to_string(),
        span_id: span.span_id.to_string(),
        parent_span_id: None,
        flags: span.flags,
        operation_name: span.operation_name.clone(),
        references: span
            .references
            .iter()
            .map(|r| JsonRef {
                ref_type: r.ref_type.as_str().to_string(),
                trace_id: r.trace_id.to_string(),
                span_id: r.span_id.to_string(),
            })
            .collect(),
        start_time: span.start_time,
        duration: span.duration,
        tags: span.tags.iter().map(kv_to_json).collect(),
        logs: span
            .logs
            .iter()
            .map(|log| JsonLog {
                timestamp: log.timestamp,
                fields: log.fields.iter().map(kv_to_json).collect(),
            })
            .collect(),
        process_id,
        process: None,
        warnings: non_empty(&span.warnings),
    }
}

pub fn process_to_json(process: &Process) -> JsonProcess {
    JsonProcess {
        service_name: process.service_name.clone(),
        tags: process.tags.iter().map(kv_to_json).collect(),
    }
}

pub fn kv_to_json(kv: &KeyValue) -> JsonKeyValue {
    let (kind, value) = match &kv.value {
        Value::Str(s) => ("string", serde_json::Value::from(s.as_str())),
        Value::Bool(b) => ("bool", serde_json::Value::from(*b)),
        Value::I64(i) if (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(i) => {
            ("int64", serde_json::Value::from(*i))
        }
        Value::I64(i) => ("int64", serde_json::Value::from(i.to_string())),
        Value::F64(f) => (
            "float64",
            serde_json::Number::from_f64(*f).map_or_else(
                || serde_json::Value::from(f.to_string()),
                serde_json::Value::Number,
            ),
        ),
        Value::Binary(b) => (
            "binary",
            serde_json::Value::from(base64::engine::general_purpose::STANDARD.encode(b)),
        ),
    };
    JsonKeyValue {
        key: kv.key.clone(),
        kind: kind.to_string(),
        value,
    }
}

fn non_empty(warnings: &[String]) -> Option<Vec<String>> {
    (!warnings.is_empty()).then(|| warnings.to_vec())
}

mod borrowed;

pub use borrowed::{ProcessJson, TraceJson};
use borrowed::{ProcessKey, process_table};

// ---- JSON -> model -----------------------------------------------------------------------

pub fn trace_from_json(json: &JsonTrace) -> Result<Trace, JsonError> {
    trace_from_json_owned(json.clone())
}

/// The same, taking the JSON by value: strings move into the model instead of being copied
/// (the Jaeger HTTP client's path).
pub fn trace_from_json_owned(json: JsonTrace) -> Result<Trace, JsonError> {
    let mut processes: BTreeMap<String, Arc<Process>> = BTreeMap::new();
    for (id, process) in json.processes {
        processes.insert(id, Arc::new(process_from_json(process)?));
    }
    let mut spans = Vec::with_capacity(json.spans.len());
    for mut span in json.spans {
        let process = match (span.process.take(), processes.get(span.process_id.as_str())) {
            (Some(inline), _) => Arc::new(process_from_json(inline)?),
            (None, Some(shared)) => shared.clone(),
            (None, None) => {
                return Err(JsonError::MissingProcess {
                    span: span.span_id,
                    process: span.process_id,
                });
            }
        };
        spans.push(span_from_json(span, process)?);
    }
    Ok(Trace {
        spans,
        warnings: json.warnings.unwrap_or_default(),
    })
}

fn span_from_json(span: JsonSpan, process: Arc<Process>) -> Result<Span, JsonError> {
    let id_error = |source| JsonError::Id {
        span: span.span_id.clone(),
        source,
    };
    let trace_id = TraceId::from_hex(&span.trace_id).map_err(id_error)?;
    let mut references = Vec::with_capacity(span.references.len().saturating_add(1));
    for r in &span.references {
        references.push(SpanRef {
            ref_type: if r.ref_type == "FOLLOWS_FROM" {
                RefType::FollowsFrom
            } else {
                RefType::ChildOf
            },
            trace_id: TraceId::from_hex(&r.trace_id).map_err(id_error)?,
            span_id: SpanId::from_hex(&r.span_id).map_err(id_error)?,
        });
    }
    // Older Jaeger versions wrote the parent as `parentSpanID` only.
    if let Some(parent) = span.parent_span_id.as_deref().filter(|p| !p.is_empty()) {
        let parent = SpanId::from_hex(parent).map_err(id_error)?;
        if !parent.is_zero() && !references.iter().any(|r| r.span_id == parent) {
            references.insert(
                0,
                SpanRef {
                    ref_type: RefType::ChildOf,
                    trace_id,
                    span_id: parent,
                },
            );
        }
    }
    let span_id = SpanId::from_hex(&span.span_id).map_err(id_error)?;
    Ok(Span {
        trace_id,
        span_id,
        operation_name: span.operation_name,
        references,
        flags: span.flags,
        start_time: span.start_time,
        duration: span.duration,
        tags: kvs_from_json(span.tags)?,
        logs: span
            .logs
            .into_iter()
            .map(|log| {
                Ok(Log {
                    timestamp: log.timestamp,
                    fields: kvs_from_json(log.fields)?,
                })
            })
            .collect::<Result<_, JsonError>>()?,
        process,
        warnings: span.warnings.unwrap_or_default(),
    })
}

fn process_from_json(process: JsonProcess) -> Result<Process, JsonError> {
    Ok(Process {
        service_name: process.service_name,
        tags: kvs_from_json(process.tags)?,
    })
}

fn kvs_from_json(kvs: Vec<JsonKeyValue>) -> Result<Vec<KeyValue>, JsonError> {
    kvs.into_iter().map(kv_from_json_owned).collect()
}

pub fn kv_from_json(kv: &JsonKeyValue) -> Result<KeyValue, JsonError> {
    kv_from_json_owned(kv.clone())
}

fn kv_from_json_owned(kv: JsonKeyValue) -> Result<KeyValue, JsonError> {
    use serde_json::Value as J;
    let JsonKeyValue { key, kind, value } = kv;
    let found = match &value {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "an array",
        J::Object(_) => "an object",
    };
    let bad = |key: &str| JsonError::BadValue {
        key: key.to_string(),
        kind: kind.clone(),
        found: found.to_string(),
    };
    let value = match (kind.as_str(), value) {
        ("bool", J::Bool(b)) => Value::Bool(b),
        ("bool", J::String(s)) => Value::Bool(s == "true"),
        ("int64", J::Number(n)) => Value::I64(n.as_i64().ok_or_else(|| bad(&key))?),
        ("int64", J::String(s)) => Value::I64(s.parse().map_err(|_| bad(&key))?),
        ("float64", J::Number(n)) => Value::F64(n.as_f64().ok_or_else(|| bad(&key))?),
        ("float64", J::String(s)) => Value::F64(s.parse().map_err(|_| bad(&key))?),
        ("binary", J::String(s)) => Value::Binary(
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| bad(&key))?,
        ),
        (_, J::String(s)) => Value::Str(s),
        (_, J::Bool(b)) => Value::Bool(b),
        (_, J::Number(n)) if n.is_i64() => Value::I64(n.as_i64().unwrap_or_default()),
        (_, J::Number(n)) => Value::F64(n.as_f64().unwrap_or_default()),
        _ => return Err(bad(&key)),
    };
    Ok(KeyValue { key, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_encoded_as_jaeger_does() {
        let encode = |v: Value| serde_json::to_value(kv_to_json(&KeyValue::new("k", v))).unwrap();
        assert_eq!(encode(Value::I64(42))["value"], 42);
        assert_eq!(encode(Value::I64(1 << 53))["value"], "9007199254740992");
        assert_eq!(encode(Value::I64(-(1 << 53)))["value"], "-9007199254740992");
        assert_eq!(
            encode(Value::I64((1 << 53) - 1))["value"],
            9007199254740991i64
        );
        assert_eq!(
            encode(Value::Binary(vec![0, 0, 0x30, 0x39]))["value"],
            "AAAwOQ=="
        );
        assert_eq!(encode(Value::Bool(true))["type"], "bool");
        assert_eq!(encode(Value::F64(1.5))["value"], 1.5);
    }

    #[test]
    fn values_decode_back() {
        for value in [
            Value::I64(1 << 60),
            Value::I64(-7),
            Value::Binary(vec![1, 2, 3]),
            Value::F64(0.25),
            Value::Bool(false),
            Value::Str("x".into()),
        ] {
            let kv = KeyValue::new("k", value);
            assert_eq!(kv_from_json(&kv_to_json(&kv)).unwrap(), kv);
        }
    }
}
