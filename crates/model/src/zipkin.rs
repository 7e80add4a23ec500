//! Zipkin v2 JSON (`POST /api/v2/spans`, what Envoy's Zipkin tracer sends) → model.
//!
//! The local endpoint's service name becomes the process (its IP a process tag `ip`); `kind`
//! becomes `span.kind`; the remote endpoint becomes `peer.service`, `peer.ipv4`/`peer.ipv6`
//! and `peer.port`; tags stay string tags except `error`, which becomes `error=true` with
//! `otel.status_code=ERROR` (and its text, when it has one, `otel.status_description`);
//! annotations become logs with the field `event`. A `shared` server span — Zipkin's way of
//! letting client and server report one span ID — gets its own ID, derived from the shared
//! one, and the client span as its parent, so the trace stays a tree. Every converted span is
//! held to [`crate::limits`] before it is accepted.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use crate::ids::{SpanId, TraceId};
use crate::otlp::Rejection;
use crate::span::{KeyValue, Log, Process, RefType, Span, SpanRef, Value};

/// The service name given to a span without a local endpoint name.
pub const UNKNOWN_SERVICE: &str = "unknown-service";

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ZipkinSpan {
    pub trace_id: String,
    pub id: String,
    pub parent_id: Option<String>,
    pub name: Option<String>,
    pub kind: Option<String>,
    pub timestamp: Option<u64>,
    pub duration: Option<u64>,
    pub debug: Option<bool>,
    pub shared: Option<bool>,
    pub local_endpoint: Option<Endpoint>,
    pub remote_endpoint: Option<Endpoint>,
    pub annotations: Vec<Annotation>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct Endpoint {
    pub service_name: Option<String>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default)]
pub struct Annotation {
    pub timestamp: u64,
    pub value: String,
}

/// Converts a decoded Zipkin batch. Spans that cannot be stored are rejected one by one.
pub fn spans_from_zipkin(batch: &[ZipkinSpan]) -> (Vec<Span>, Vec<Rejection>) {
    let mut processes: Vec<Arc<Process>> = Vec::new();
    let mut spans = Vec::with_capacity(batch.len());
    let mut rejected = Vec::new();
    for (i, zipkin) in batch.iter().enumerate() {
        let process = process_for(zipkin.local_endpoint.as_ref());
        let process = match processes.iter().find(|p| ***p == process) {
            Some(shared) => shared.clone(),
            None => {
                let process = Arc::new(process);
                processes.push(process.clone());
                process
            }
        };
        match span_from_zipkin(zipkin, process) {
            Ok(span) => spans.push(span),
            Err(reason) => rejected.push(Rejection {
                location: format!("[{i}]"),
                reason,
            }),
        }
    }
    (spans, rejected)
}

fn process_for(local: Option<&Endpoint>) -> Process {
    let mut process = Process {
        service_name: local
            .and_then(|e| e.service_name.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| UNKNOWN_SERVICE.to_string()),
        tags: Vec::new(),
    };
    if let Some(local) = local {
        if let Some(ip) = local.ipv4.as_ref().or(local.ipv6.as_ref()) {
            process.tags.push(KeyValue::string("ip", ip));
        }
    }
    process
}

fn span_from_zipkin(z: &ZipkinSpan, process: Arc<Process>) -> Result<Span, String> {
    if z.trace_id.is_empty() {
        return Err("no traceId".to_string());
    }
    let trace_id = TraceId::from_hex(&z.trace_id).map_err(|e| e.to_string())?;
    if trace_id.is_zero() {
        return Err("the traceId is all zeros".to_string());
    }
    if z.id.is_empty() {
        return Err("no id".to_string());
    }
    let mut span_id = SpanId::from_hex(&z.id).map_err(|e| e.to_string())?;
    if span_id.is_zero() {
        return Err("the id is all zeros".to_string());
    }
    let mut parent = match z.parent_id.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(SpanId::from_hex(p).map_err(|e| e.to_string())?).filter(|p| !p.is_zero()),
        None => None,
    };
    let kind = z.kind.as_deref().map(str::to_ascii_lowercase);
    if z.shared == Some(true) && kind.as_deref() == Some("server") {
        parent = Some(span_id);
        span_id = shared_server_id(span_id);
    }

    let mut tags = Vec::with_capacity(z.tags.len().saturating_add(5));
    if let Some(kind) = &kind {
        tags.push(KeyValue::string("span.kind", kind));
    }
    for (key, value) in &z.tags {
        if key == "error" {
            tags.push(KeyValue::string("otel.status_code", "ERROR"));
            tags.push(KeyValue::new("error", Value::Bool(true)));
            if !value.is_empty() && value != "true" {
                tags.push(KeyValue::string("otel.status_description", value));
            }
            continue;
        }
        tags.push(KeyValue::string(key, value));
    }
    if let Some(remote) = &z.remote_endpoint {
        if let Some(service) = remote.service_name.as_ref().filter(|s| !s.is_empty()) {
            tags.push(KeyValue::string("peer.service", service));
        }
        if let Some(ip) = &remote.ipv4 {
            tags.push(KeyValue::string("peer.ipv4", ip));
        }
        if let Some(ip) = &remote.ipv6 {
            tags.push(KeyValue::string("peer.ipv6", ip));
        }
        if let Some(port) = remote.port {
            tags.push(KeyValue::new("peer.port", Value::I64(port.into())));
        }
    }
    let references = parent
        .map(|parent| SpanRef {
            ref_type: RefType::ChildOf,
            trace_id,
            span_id: parent,
        })
        .into_iter()
        .collect();
    let logs = z
        .annotations
        .iter()
        .map(|a| Log {
            timestamp: a.timestamp,
            fields: vec![KeyValue::string("event", &a.value)],
        })
        .collect();
    let span = Span {
        trace_id,
        span_id,
        operation_name: z.name.clone().unwrap_or_default(),
        references,
        flags: if z.debug == Some(true) { 2 } else { 1 },
        start_time: z.timestamp.unwrap_or_default(),
        duration: z.duration.unwrap_or_default(),
        tags,
        logs,
        process,
        warnings: Vec::new(),
    };
    crate::limits::check_span(&span)?;
    Ok(span)
}

/// Spans as Zipkin v2 JSON, the way Envoy's Zipkin tracer reports them: kind upper-case,
/// tags as strings, the local endpoint from the process (and the `net.host.ip` tag when present).
pub fn spans_to_zipkin(spans: &[Span]) -> Vec<serde_json::Value> {
    spans
        .iter()
        .map(|span| {
            let mut tags = serde_json::Map::new();
            let mut kind = None;
            for tag in &span.tags {
                match tag.key.as_str() {
                    "span.kind" => kind = Some(tag.value.as_text().to_ascii_uppercase()),
                    key => {
                        tags.insert(key.to_string(), tag.value.as_text().into_owned().into());
                    }
                }
            }
            let mut local = serde_json::Map::new();
            local.insert(
                "serviceName".into(),
                span.process.service_name.clone().into(),
            );
            if let Some(Value::Str(ip)) = span.tag("net.host.ip") {
                local.insert("ipv4".into(), ip.clone().into());
            }
            let mut out = serde_json::Map::new();
            out.insert("traceId".into(), span.trace_id.to_hex32().into());
            out.insert("id".into(), span.span_id.to_string().into());
            out.insert("name".into(), span.operation_name.clone().into());
            out.insert("timestamp".into(), span.start_time.into());
            out.insert("duration".into(), span.duration.into());
            out.insert("localEndpoint".into(), local.into());
            out.insert("tags".into(), tags.into());
            if let Some(parent) = span.parent_span_id() {
                out.insert("parentId".into(), parent.to_string().into());
            }
            if let Some(kind) = kind {
                out.insert("kind".into(), kind.into());
            }
            if !span.logs.is_empty() {
                let annotations = span
                    .logs
                    .iter()
                    .map(|log| {
                        let value = log
                            .fields
                            .iter()
                            .map(|f| f.value.as_text().into_owned())
                            .collect::<Vec<_>>()
                            .join(" ");
                        serde_json::json!({"timestamp": log.timestamp, "value": value})
                    })
                    .collect::<Vec<_>>();
                out.insert("annotations".into(), annotations.into());
            }
            serde_json::Value::Object(out)
        })
        .collect()
}

/// A stable new ID for the server half of a shared span (never zero, never the shared ID).
fn shared_server_id(shared: SpanId) -> SpanId {
    // SplitMix64's finaliser: cheap, and distinct inputs give distinct outputs.
    let mut x = shared.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    SpanId(if x == 0 || x == shared.0 {
        !shared.0
    } else {
        x
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(json: &str) -> Vec<ZipkinSpan> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn envoy_shaped_spans_convert() {
        let batch = decode(
            r#"[{"traceId":"5af7183fb1d4cf5f","id":"6b221d5bc9e6496c","parentId":"352bff9a74ca9ad2",
            "name":"reviews.bookinfo.svc.cluster.local:9080/*","kind":"CLIENT","timestamp":1556604172355737,
            "duration":1431,"localEndpoint":{"serviceName":"productpage.bookinfo","ipv4":"10.1.0.7"},
            "remoteEndpoint":{"ipv4":"10.1.0.9","port":9080},
            "annotations":[{"timestamp":1556604172355800,"value":"cs"}],
            "tags":{"http.status_code":"503","error":"true","component":"proxy"}}]"#,
        );
        let (spans, rejected) = spans_from_zipkin(&batch);
        assert!(rejected.is_empty());
        let span = &spans[0];
        assert_eq!(span.process.service_name, "productpage.bookinfo");
        assert_eq!(span.process.tags, [KeyValue::string("ip", "10.1.0.7")]);
        assert_eq!(span.kind(), "client");
        assert!(span.has_error());
        assert_eq!(
            span.tag("http.status_code"),
            Some(&Value::Str("503".into()))
        );
        assert_eq!(span.tag("peer.port"), Some(&Value::I64(9080)));
        assert_eq!(span.parent_span_id(), Some(SpanId(0x352bff9a74ca9ad2)));
        assert_eq!(span.logs[0].fields[0], KeyValue::string("event", "cs"));
        assert_eq!(span.trace_id.to_string(), "5af7183fb1d4cf5f");
    }

    #[test]
    fn a_shared_server_span_becomes_a_child_of_the_client() {
        let batch = decode(
            r#"[{"traceId":"aa","id":"0000000000000001","kind":"CLIENT","timestamp":1,"duration":9,"localEndpoint":{"serviceName":"a"}},
                {"traceId":"aa","id":"0000000000000001","kind":"SERVER","shared":true,"timestamp":2,"duration":5,"localEndpoint":{"serviceName":"b"}}]"#,
        );
        let (spans, _) = spans_from_zipkin(&batch);
        assert_eq!(spans[1].parent_span_id(), Some(SpanId(1)));
        assert_ne!(spans[1].span_id, SpanId(1));
        assert_eq!(spans[1].process.service_name, "b");
    }

    #[test]
    fn spans_round_trip_through_zipkin_json() {
        let batch = decode(
            r#"[{"traceId":"0000000000000001000000000000000a","id":"0000000000000002","parentId":"0000000000000001","name":"op","kind":"SERVER",
                "timestamp":10,"duration":5,"localEndpoint":{"serviceName":"svc"},"tags":{"http.status_code":"200"}}]"#,
        );
        let (spans, _) = spans_from_zipkin(&batch);
        let json = serde_json::Value::Array(spans_to_zipkin(&spans));
        let again: Vec<ZipkinSpan> = serde_json::from_value(json).unwrap();
        let (round, rejected) = spans_from_zipkin(&again);
        assert!(rejected.is_empty());
        assert_eq!(round, spans);
    }

    #[test]
    fn bad_spans_are_rejected_one_by_one() {
        let batch = decode(
            r#"[{"traceId":"","id":"01"},{"traceId":"zz","id":"01"},{"traceId":"01","id":"0"},{"traceId":"01","id":"02","timestamp":5}]"#,
        );
        let (spans, rejected) = spans_from_zipkin(&batch);
        assert_eq!(spans.len(), 1);
        let reasons: Vec<&str> = rejected.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "no traceId",
                "trace ID `zz` is not 1 to 32 hexadecimal digits",
                "the id is all zeros"
            ]
        );
        assert_eq!(spans[0].process.service_name, UNKNOWN_SERVICE);
    }
}
