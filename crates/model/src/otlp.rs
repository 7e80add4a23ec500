//! OTLP ↔ model, following Jaeger's translator so that what a span looks like does not depend on
//! whether it came through meshtrace or through Jaeger.
//!
//! OTLP → model: `service.name` becomes the process's service and the other resource attributes
//! its tags; tags are, in order, `otel.scope.name`/`otel.scope.version`, the attributes,
//! `span.kind`, `otel.status_code`, `error=true` (for an ERROR status), `otel.status_description`
//! and `w3c.tracestate`; the parent becomes the first CHILD_OF reference and links become
//! FOLLOWS_FROM (or CHILD_OF when the link says `opentracing.ref_type=child_of`); events become
//! logs with the event's name in the field `event`; array and map attributes become JSON strings.
//! Every converted span is held to [`crate::limits`] before it is accepted.

use std::sync::Arc;

use base64::Engine as _;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, InstrumentationScope, KeyValue as OtlpKeyValue, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span as OtlpSpan, Status, span, status,
};

use crate::ids::{SpanId, TraceId};
use crate::span::{KeyValue, Log, Process, RefType, Span, SpanRef, Value};

/// The service name Jaeger gives a resource that has no attributes at all.
pub const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

/// A span of a batch that cannot be stored, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Where it stood: `resourceSpans[0].scopeSpans[1].spans[3]`.
    pub location: String,
    pub reason: String,
}

/// The spans of a batch that can be stored, and those that cannot.
#[derive(Debug, Default)]
pub struct Converted {
    pub spans: Vec<Span>,
    pub rejected: Vec<Rejection>,
}

pub fn spans_from_otlp(resource_spans: &[ResourceSpans]) -> Converted {
    let mut out = Converted::default();
    for (r, rs) in resource_spans.iter().enumerate() {
        let process = Arc::new(process_from_resource(rs.resource.as_ref()));
        for (s, ss) in rs.scope_spans.iter().enumerate() {
            let scope_tags = scope_tags(ss.scope.as_ref());
            for (i, otlp) in ss.spans.iter().enumerate() {
                let attributes = otlp.attributes.iter().map(kv_from_otlp);
                let converted =
                    span_from_otlp(otlp, otlp.name.clone(), attributes, &scope_tags, &process);
                out.push(converted, r, s, i);
            }
        }
    }
    out
}

/// [`spans_from_otlp`] for a batch the caller is done with (ingest): span names and attribute
/// keys and string values are moved into the model instead of copied. They are most of a
/// batch's strings, so this halves what converting it allocates.
pub fn spans_from_otlp_owned(resource_spans: Vec<ResourceSpans>) -> Converted {
    let mut out = Converted::default();
    for (r, rs) in resource_spans.into_iter().enumerate() {
        let process = Arc::new(process_from_resource(rs.resource.as_ref()));
        for (s, ss) in rs.scope_spans.into_iter().enumerate() {
            let scope_tags = scope_tags(ss.scope.as_ref());
            for (i, mut otlp) in ss.spans.into_iter().enumerate() {
                let name = std::mem::take(&mut otlp.name);
                let attributes = std::mem::take(&mut otlp.attributes)
                    .into_iter()
                    .map(kv_from_otlp_owned);
                let converted = span_from_otlp(&otlp, name, attributes, &scope_tags, &process);
                out.push(converted, r, s, i);
            }
        }
    }
    out
}

impl Converted {
    fn push(&mut self, converted: Result<Span, String>, r: usize, s: usize, i: usize) {
        match converted {
            Ok(span) => self.spans.push(span),
            Err(reason) => self.rejected.push(Rejection {
                location: format!("resourceSpans[{r}].scopeSpans[{s}].spans[{i}]"),
                reason,
            }),
        }
    }
}

fn process_from_resource(resource: Option<&Resource>) -> Process {
    let attributes = resource
        .map(|r| r.attributes.as_slice())
        .unwrap_or_default();
    if attributes.is_empty() {
        return Process {
            service_name: NO_SERVICE_NAME.to_string(),
            tags: Vec::new(),
        };
    }
    let mut process = Process::default();
    for attribute in attributes {
        if attribute.key == "service.name" {
            if let Some(any_value::Value::StringValue(name)) = value_of(attribute) {
                process.service_name = name.clone();
                continue;
            }
        }
        process.tags.push(kv_from_otlp(attribute));
    }
    process
}

fn scope_tags(scope: Option<&InstrumentationScope>) -> Vec<KeyValue> {
    let mut tags = Vec::new();
    if let Some(scope) = scope {
        if !scope.name.is_empty() {
            tags.push(KeyValue::string("otel.scope.name", &scope.name));
        }
        if !scope.version.is_empty() {
            tags.push(KeyValue::string("otel.scope.version", &scope.version));
        }
    }
    tags
}

/// The span `otlp` with `name` and `attributes` (taken from it or copied, by the caller).
fn span_from_otlp(
    otlp: &OtlpSpan,
    name: String,
    attributes: impl ExactSizeIterator<Item = KeyValue>,
    scope_tags: &[KeyValue],
    process: &Arc<Process>,
) -> Result<Span, String> {
    let trace_id = match TraceId::from_bytes(&otlp.trace_id) {
        Ok(id) if otlp.trace_id.len() == 16 && !id.is_zero() => id,
        _ if otlp.trace_id.is_empty() => return Err("no trace ID".to_string()),
        _ if otlp.trace_id.iter().all(|b| *b == 0) => {
            return Err("the trace ID is all zeros".to_string());
        }
        _ => {
            return Err(format!(
                "the trace ID has {} bytes; expected 16",
                otlp.trace_id.len()
            ));
        }
    };
    let span_id = match SpanId::from_bytes(&otlp.span_id) {
        Ok(id) if !id.is_zero() => id,
        Ok(_) => return Err("the span ID is all zeros".to_string()),
        Err(_) if otlp.span_id.is_empty() => return Err("no span ID".to_string()),
        Err(_) => {
            return Err(format!(
                "the span ID has {} bytes; expected 8",
                otlp.span_id.len()
            ));
        }
    };
    let parent = match otlp.parent_span_id.len() {
        0 => None,
        n => match SpanId::from_bytes(&otlp.parent_span_id) {
            Ok(parent) => Some(parent).filter(|p| !p.is_zero()),
            Err(_) => return Err(format!("the parent span ID has {n} bytes; expected 8")),
        },
    };
    if otlp.end_time_unix_nano < otlp.start_time_unix_nano {
        return Err(format!(
            "span {span_id} ends before it starts (start {} ns, end {} ns)",
            otlp.start_time_unix_nano, otlp.end_time_unix_nano
        ));
    }

    let mut references = Vec::with_capacity(otlp.links.len().saturating_add(1));
    if let Some(parent) = parent {
        references.push(SpanRef {
            ref_type: RefType::ChildOf,
            trace_id,
            span_id: parent,
        });
    }
    for link in &otlp.links {
        let (Ok(link_trace), Ok(link_span)) = (
            TraceId::from_bytes(&link.trace_id),
            SpanId::from_bytes(&link.span_id),
        ) else {
            continue;
        };
        let child_of = link.attributes.iter().any(|a| {
            a.key == "opentracing.ref_type"
                && matches!(value_of(a), Some(any_value::Value::StringValue(v)) if v == "child_of")
        });
        let ref_type = if child_of {
            RefType::ChildOf
        } else {
            RefType::FollowsFrom
        };
        if parent == Some(link_span) && link_trace == trace_id {
            // The parent is also a link (the first reference): the link decides its type.
            if let Some(first) = references.first_mut() {
                first.ref_type = ref_type;
            }
            continue;
        }
        references.push(SpanRef {
            ref_type,
            trace_id: link_trace,
            span_id: link_span,
        });
    }

    let mut tags = Vec::with_capacity(
        scope_tags
            .len()
            .saturating_add(attributes.len())
            .saturating_add(4),
    );
    tags.extend_from_slice(scope_tags);
    tags.extend(attributes);
    if let Some(kind) = kind_name(otlp.kind) {
        tags.push(KeyValue::string("span.kind", kind));
    }
    let status = otlp.status.as_ref();
    match status.map(|s| s.code) {
        Some(code) if code == status::StatusCode::Ok as i32 => {
            tags.push(KeyValue::string("otel.status_code", "OK"));
        }
        Some(code) if code == status::StatusCode::Error as i32 => {
            tags.push(KeyValue::string("otel.status_code", "ERROR"));
            tags.push(KeyValue::new("error", Value::Bool(true)));
        }
        _ => {}
    }
    if let Some(message) = status.map(|s| &s.message).filter(|m| !m.is_empty()) {
        tags.push(KeyValue::string("otel.status_description", message));
    }
    if !otlp.trace_state.is_empty() {
        tags.push(KeyValue::string("w3c.tracestate", &otlp.trace_state));
    }

    let logs = otlp
        .events
        .iter()
        .map(|event| {
            let mut fields = Vec::with_capacity(event.attributes.len().saturating_add(1));
            if !event.name.is_empty() && !event.attributes.iter().any(|a| a.key == "event") {
                fields.push(KeyValue::string("event", &event.name));
            }
            fields.extend(event.attributes.iter().map(kv_from_otlp));
            Log {
                timestamp: event.time_unix_nano / 1000,
                fields,
            }
        })
        .collect();

    let start_us = otlp.start_time_unix_nano / 1000;
    let span = Span {
        trace_id,
        span_id,
        operation_name: name,
        references,
        flags: otlp.flags,
        start_time: start_us,
        // The end is not before the start (checked above).
        duration: (otlp.end_time_unix_nano / 1000).saturating_sub(start_us),
        tags,
        logs,
        process: process.clone(),
        warnings: Vec::new(),
    };
    crate::limits::check_span(&span)?;
    Ok(span)
}

fn kind_name(kind: i32) -> Option<&'static str> {
    use span::SpanKind;
    match SpanKind::try_from(kind).ok()? {
        SpanKind::Client => Some("client"),
        SpanKind::Server => Some("server"),
        SpanKind::Producer => Some("producer"),
        SpanKind::Consumer => Some("consumer"),
        SpanKind::Internal => Some("internal"),
        SpanKind::Unspecified => None,
    }
}

fn value_of(kv: &OtlpKeyValue) -> Option<&any_value::Value> {
    kv.value.as_ref()?.value.as_ref()
}

fn kv_from_otlp(kv: &OtlpKeyValue) -> KeyValue {
    kv_from_otlp_owned(kv.clone())
}

fn kv_from_otlp_owned(kv: OtlpKeyValue) -> KeyValue {
    KeyValue {
        value: value_from_otlp(kv.value.and_then(|v| v.value)),
        key: kv.key,
    }
}

fn value_from_otlp(value: Option<any_value::Value>) -> Value {
    match value {
        Some(any_value::Value::StringValue(s)) => Value::Str(s),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(b),
        Some(any_value::Value::IntValue(i)) => Value::I64(i),
        Some(any_value::Value::DoubleValue(d)) => Value::F64(d),
        Some(any_value::Value::BytesValue(b)) => Value::Binary(b),
        Some(other @ (any_value::Value::ArrayValue(_) | any_value::Value::KvlistValue(_))) => {
            Value::Str(any_to_json(&other).to_string())
        }
        // An empty value (or an index into a profile's string table, which a span has not):
        // Jaeger writes an empty string.
        _ => Value::Str(String::new()),
    }
}

/// An OTLP value as JSON, the way the collector's `AsString` writes arrays and maps.
fn any_to_json(value: &any_value::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        any_value::Value::StringValue(s) => J::from(s.as_str()),
        any_value::Value::BoolValue(b) => J::from(*b),
        any_value::Value::IntValue(i) => J::from(*i),
        any_value::Value::DoubleValue(d) => J::from(*d),
        any_value::Value::BytesValue(b) => {
            J::from(base64::engine::general_purpose::STANDARD.encode(b))
        }
        any_value::Value::ArrayValue(a) => J::Array(
            a.values
                .iter()
                .map(|v| v.value.as_ref().map_or(J::Null, any_to_json))
                .collect(),
        ),
        any_value::Value::KvlistValue(list) => J::Object(
            list.values
                .iter()
                .map(|kv| (kv.key.clone(), value_of(kv).map_or(J::Null, any_to_json)))
                .collect(),
        ),
        // A reference into a profile's string table: meaningless for traces.
        any_value::Value::StringValueStrindex(_) => J::Null,
    }
}

/// Tempo's JSON (written by gogo's jsonpb: base64 IDs, enum names such as `SPAN_KIND_SERVER`)
/// as spec OTLP JSON (hex IDs, enum numbers), so that it decodes as OTLP. Tempo answers protobuf
/// when asked, which needs none of this; its JSON is what captured responses hold.
pub fn tempo_json_to_otlp_json(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        J::Object(map) => J::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value = match (key.as_str(), value) {
                        ("traceId" | "spanId" | "parentSpanId", J::String(text)) => {
                            match base64::engine::general_purpose::STANDARD.decode(&text) {
                                Ok(bytes) => {
                                    J::String(bytes.iter().map(|b| format!("{b:02x}")).collect())
                                }
                                Err(_) => J::String(text),
                            }
                        }
                        ("kind", J::String(name)) => J::from(match name.as_str() {
                            "SPAN_KIND_INTERNAL" => 1,
                            "SPAN_KIND_SERVER" => 2,
                            "SPAN_KIND_CLIENT" => 3,
                            "SPAN_KIND_PRODUCER" => 4,
                            "SPAN_KIND_CONSUMER" => 5,
                            _ => 0,
                        }),
                        ("code", J::String(name)) => J::from(match name.as_str() {
                            "STATUS_CODE_OK" => 1,
                            "STATUS_CODE_ERROR" => 2,
                            _ => 0,
                        }),
                        (_, value) => tempo_json_to_otlp_json(value),
                    };
                    (key, value)
                })
                .collect(),
        ),
        J::Array(items) => J::Array(items.into_iter().map(tempo_json_to_otlp_json).collect()),
        other => other,
    }
}

mod encode;

pub use encode::spans_to_otlp;

#[cfg(test)]
#[allow(clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};

    fn kv(key: &str, value: any_value::Value) -> OtlpKeyValue {
        OtlpKeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn good_span() -> OtlpSpan {
        OtlpSpan {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: "GET /".into(),
            start_time_unix_nano: 2_000_000,
            end_time_unix_nano: 5_500_000,
            ..Default::default()
        }
    }

    fn batch(spans: Vec<OtlpSpan>) -> Vec<ResourceSpans> {
        vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv(
                        "service.name",
                        any_value::Value::StringValue("reviews.bookinfo".into()),
                    ),
                    kv(
                        "k8s.pod.name",
                        any_value::Value::StringValue("reviews-v2-abc".into()),
                    ),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }]
    }

    #[test]
    fn bad_spans_are_rejected_one_by_one_and_good_ones_kept() {
        let mut no_trace = good_span();
        no_trace.trace_id.clear();
        let mut zero_span = good_span();
        zero_span.span_id = vec![0; 8];
        let mut backwards = good_span();
        backwards.end_time_unix_nano = 1;
        let converted = spans_from_otlp(&batch(vec![no_trace, good_span(), zero_span, backwards]));
        assert_eq!(converted.spans.len(), 1);
        let rejected: Vec<(String, String)> = converted
            .rejected
            .iter()
            .map(|r| (r.location.clone(), r.reason.clone()))
            .collect();
        assert_eq!(
            rejected,
            [
                (
                    "resourceSpans[0].scopeSpans[0].spans[0]".into(),
                    "no trace ID".into()
                ),
                (
                    "resourceSpans[0].scopeSpans[0].spans[2]".into(),
                    "the span ID is all zeros".into()
                ),
                (
                    "resourceSpans[0].scopeSpans[0].spans[3]".into(),
                    "span 0202020202020202 ends before it starts (start 2000000 ns, end 1 ns)"
                        .into()
                ),
            ]
        );
    }

    #[test]
    fn status_kind_events_links_and_arrays_map_like_jaeger() {
        let mut span = good_span();
        span.kind = SpanKind::Client as i32;
        span.trace_state = "vendor=x".into();
        span.status = Some(Status {
            code: status::StatusCode::Error as i32,
            message: "upstream reset".into(),
        });
        span.attributes = vec![kv(
            "http.request.header.accept",
            any_value::Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                values: vec![AnyValue {
                    value: Some(any_value::Value::StringValue("*/*".into())),
                }],
            }),
        )];
        span.events = vec![Event {
            time_unix_nano: 3_000_000,
            name: "retry".into(),
            ..Default::default()
        }];
        span.links = vec![Link {
            trace_id: vec![9; 16],
            span_id: vec![8; 8],
            ..Default::default()
        }];
        let converted = spans_from_otlp(&batch(vec![span]));
        let span = &converted.spans[0];
        let tags: Vec<(&str, String)> = span
            .tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_text().into_owned()))
            .collect();
        assert_eq!(
            tags,
            [
                ("http.request.header.accept", "[\"*/*\"]".to_string()),
                ("span.kind", "client".into()),
                ("otel.status_code", "ERROR".into()),
                ("error", "true".into()),
                ("otel.status_description", "upstream reset".into()),
                ("w3c.tracestate", "vendor=x".into()),
            ]
        );
        assert_eq!(span.process.service_name, "reviews.bookinfo");
        assert_eq!(span.process.tags[0].key, "k8s.pod.name");
        assert_eq!(span.logs[0].timestamp, 3000);
        assert_eq!(span.logs[0].fields[0], KeyValue::string("event", "retry"));
        assert_eq!(span.references[0].ref_type, RefType::FollowsFrom);
        assert_eq!((span.start_time, span.duration), (2000, 3500));
    }

    #[test]
    fn a_resource_without_attributes_gets_jaegers_placeholder_name() {
        let converted = spans_from_otlp(&[ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![good_span()],
                ..Default::default()
            }],
            ..Default::default()
        }]);
        assert_eq!(converted.spans[0].process.service_name, NO_SERVICE_NAME);
    }
}
