//! OTLP messages as protojson writes them — what Jaeger's api_v3 HTTP gateway and the OTLP/HTTP
//! JSON encoding send: field by field, each by its type. A scalar field at its default value
//! (`""`, `0`, `false`, an empty list) is left out; a message field that is set is written even
//! when empty (`"resource": {}`); a set member of a `oneof` — AnyValue's value — is always
//! written, default or not (`{"boolValue": false}`, `{"intValue": "0"}`, `{"stringValue": ""}`).
//! 64-bit integers are decimal strings, enums numbers, trace and span IDs hex (OTLP's rule),
//! bytes base64, and non-finite doubles `"NaN"`, `"Infinity"`, `"-Infinity"`.
//!
//! Written by type rather than by pruning a generic JSON value: pruning cannot tell a span named
//! `"0"` or an attribute `false` from a default.

use base64::Engine as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::{Map, Value};

/// A JSON object under construction, with protojson's omission rules per field type.
#[derive(Default)]
pub struct Object(Map<String, Value>);

impl Object {
    pub fn new() -> Self {
        Object::default()
    }

    pub fn string(mut self, key: &str, value: &str) -> Self {
        if !value.is_empty() {
            self.0.insert(key.into(), value.into());
        }
        self
    }

    /// A 32-bit (or smaller) integer, enum or count: a JSON number.
    pub fn int(mut self, key: &str, value: impl Into<i64>) -> Self {
        let value = value.into();
        if value != 0 {
            self.0.insert(key.into(), value.into());
        }
        self
    }

    /// A 64-bit integer: a decimal string.
    pub fn int64(mut self, key: &str, value: impl Into<i128>) -> Self {
        let value = value.into();
        if value != 0 {
            self.0.insert(key.into(), value.to_string().into());
        }
        self
    }

    pub fn hex(mut self, key: &str, bytes: &[u8]) -> Self {
        if !bytes.is_empty() {
            let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            self.0.insert(key.into(), hex.into());
        }
        self
    }

    /// A message field: written when set, even if empty.
    pub fn message(mut self, key: &str, value: Option<Value>) -> Self {
        if let Some(value) = value {
            self.0.insert(key.into(), value);
        }
        self
    }

    pub fn list(mut self, key: &str, items: Vec<Value>) -> Self {
        if !items.is_empty() {
            self.0.insert(key.into(), Value::Array(items));
        }
        self
    }

    pub fn build(self) -> Value {
        Value::Object(self.0)
    }
}

pub fn resource_spans(resource_spans: &[ResourceSpans]) -> Value {
    Value::Array(resource_spans.iter().map(resource_span).collect())
}

fn resource_span(rs: &ResourceSpans) -> Value {
    Object::new()
        .message("resource", rs.resource.as_ref().map(resource))
        .list(
            "scopeSpans",
            rs.scope_spans.iter().map(scope_spans).collect(),
        )
        .string("schemaUrl", &rs.schema_url)
        .build()
}

fn resource(resource: &Resource) -> Value {
    Object::new()
        .list("attributes", key_values(&resource.attributes))
        .int("droppedAttributesCount", resource.dropped_attributes_count)
        .build()
}

fn scope_spans(ss: &ScopeSpans) -> Value {
    Object::new()
        .message("scope", ss.scope.as_ref().map(scope))
        .list("spans", ss.spans.iter().map(span).collect())
        .string("schemaUrl", &ss.schema_url)
        .build()
}

fn scope(scope: &InstrumentationScope) -> Value {
    Object::new()
        .string("name", &scope.name)
        .string("version", &scope.version)
        .list("attributes", key_values(&scope.attributes))
        .int("droppedAttributesCount", scope.dropped_attributes_count)
        .build()
}

fn span(span: &Span) -> Value {
    Object::new()
        .hex("traceId", &span.trace_id)
        .hex("spanId", &span.span_id)
        .string("traceState", &span.trace_state)
        .hex("parentSpanId", &span.parent_span_id)
        .int("flags", span.flags)
        .string("name", &span.name)
        .int("kind", span.kind)
        .int64("startTimeUnixNano", span.start_time_unix_nano)
        .int64("endTimeUnixNano", span.end_time_unix_nano)
        .list("attributes", key_values(&span.attributes))
        .int("droppedAttributesCount", span.dropped_attributes_count)
        .list("events", span.events.iter().map(event).collect())
        .int("droppedEventsCount", span.dropped_events_count)
        .list("links", span.links.iter().map(link).collect())
        .int("droppedLinksCount", span.dropped_links_count)
        .message("status", span.status.as_ref().map(status))
        .build()
}

fn event(event: &Event) -> Value {
    Object::new()
        .int64("timeUnixNano", event.time_unix_nano)
        .string("name", &event.name)
        .list("attributes", key_values(&event.attributes))
        .int("droppedAttributesCount", event.dropped_attributes_count)
        .build()
}

fn link(link: &Link) -> Value {
    Object::new()
        .hex("traceId", &link.trace_id)
        .hex("spanId", &link.span_id)
        .string("traceState", &link.trace_state)
        .list("attributes", key_values(&link.attributes))
        .int("droppedAttributesCount", link.dropped_attributes_count)
        .int("flags", link.flags)
        .build()
}

fn status(status: &Status) -> Value {
    Object::new()
        .string("message", &status.message)
        .int("code", status.code)
        .build()
}

fn key_values(list: &[KeyValue]) -> Vec<Value> {
    list.iter()
        .map(|kv| {
            Object::new()
                .string("key", &kv.key)
                .message("value", kv.value.as_ref().map(any_value))
                .build()
        })
        .collect()
}

/// The oneof is written whenever it is set, whatever its value.
fn any_value(value: &AnyValue) -> Value {
    let mut object = Map::new();
    let Some(value) = &value.value else {
        return Value::Object(object);
    };
    let (key, json) = match value {
        any_value::Value::StringValue(s) => ("stringValue", Value::from(s.as_str())),
        any_value::Value::BoolValue(b) => ("boolValue", Value::from(*b)),
        any_value::Value::IntValue(i) => ("intValue", Value::from(i.to_string())),
        any_value::Value::DoubleValue(d) => ("doubleValue", double(*d)),
        any_value::Value::BytesValue(b) => (
            "bytesValue",
            Value::from(base64::engine::general_purpose::STANDARD.encode(b)),
        ),
        any_value::Value::ArrayValue(a) => (
            "arrayValue",
            Object::new()
                .list("values", a.values.iter().map(any_value).collect())
                .build(),
        ),
        any_value::Value::KvlistValue(list) => (
            "kvlistValue",
            Object::new()
                .list("values", key_values(&list.values))
                .build(),
        ),
        any_value::Value::StringValueStrindex(i) => ("stringValueStrindex", Value::from(*i)),
    };
    object.insert(key.into(), json);
    Value::Object(object)
}

/// A double: a number when finite, else the strings protojson uses.
pub fn double(value: f64) -> Value {
    if value.is_nan() {
        "NaN".into()
    } else if value == f64::INFINITY {
        "Infinity".into()
    } else if value == f64::NEG_INFINITY {
        "-Infinity".into()
    } else {
        value.into()
    }
}

/// An OTLP/HTTP JSON reply: `{}` for full success.
pub fn export_response(response: &ExportTraceServiceResponse) -> Value {
    let partial = response.partial_success.as_ref().map(|p| {
        Object::new()
            .int64("rejectedSpans", p.rejected_spans)
            .string("errorMessage", &p.error_message)
            .build()
    });
    Object::new().message("partialSuccess", partial).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kv(key: &str, value: Option<any_value::Value>) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value }),
            ..Default::default()
        }
    }

    #[test]
    fn set_oneof_members_are_written_even_at_their_defaults() {
        use any_value::Value as V;
        let list = [
            kv("b", Some(V::BoolValue(false))),
            kv("i", Some(V::IntValue(0))),
            kv("d", Some(V::DoubleValue(0.0))),
            kv("s", Some(V::StringValue(String::new()))),
            kv("z", Some(V::StringValue("0".into()))),
            kv("x", Some(V::BytesValue(Vec::new()))),
            kv("a", Some(V::ArrayValue(Default::default()))),
            kv("n", Some(V::DoubleValue(f64::NAN))),
            kv("empty", None),
        ];
        assert_eq!(
            Value::Array(key_values(&list)),
            json!([
                {"key": "b", "value": {"boolValue": false}},
                {"key": "i", "value": {"intValue": "0"}},
                {"key": "d", "value": {"doubleValue": 0.0}},
                {"key": "s", "value": {"stringValue": ""}},
                {"key": "z", "value": {"stringValue": "0"}},
                {"key": "x", "value": {"bytesValue": ""}},
                {"key": "a", "value": {"arrayValue": {}}},
                {"key": "n", "value": {"doubleValue": "NaN"}},
                {"key": "empty", "value": {}},
            ])
        );
    }
}
