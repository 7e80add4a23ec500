//! `/api/v3` JSON against the real thing: responses captured from Jaeger's api_v3 HTTP gateway
//! (tests/fixtures/jaeger/apiv3), and the protobuf JSON mapping that gateway follows — a set
//! `oneof` member is written whatever its value, a scalar field at its default is left out —
//! for the values the captures do not hold (issue 13, defect 8: falsy values were dropped).

mod common;

use std::path::PathBuf;

use common::*;
use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use prost::Message;
use serde_json::{Value, json};

fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/jaeger/apiv3")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

async fn post_otlp(store: &TestStore, request: Vec<u8>) {
    let body = store.export("application/x-protobuf", request).await;
    let reply =
        opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::decode(body)
            .unwrap();
    assert_eq!(reply.partial_success, None);
}

fn spec(
    trace: u128,
    span: u64,
    parent: u64,
    name: &str,
    start_us: u64,
    duration_us: u64,
) -> SpanSpec<'_> {
    SpanSpec {
        trace,
        span,
        parent,
        name,
        kind: 2,
        start_us,
        duration_us,
        attributes: vec![],
        error: false,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn get_trace_has_the_shape_of_jaegers_capture() {
    let store = TestStore::memory().await;
    // The captured trace: one SERVER span "foobar" with an ERROR status, no attributes.
    let mut span = spec(1, 2, 0, "foobar", 0, 0);
    span.error = true;
    post_otlp(
        &store,
        request(vec![resource_spans("foo", vec![], vec![span.build()])]).encode_to_vec(),
    )
    .await;
    let (status, body) = store
        .get_json("/api/v3/traces/00000000000000000000000000000001")
        .await;
    assert_eq!(status, 200);
    let captured = fixture("GetTrace.json");
    let resource_spans = &body["result"]["resourceSpans"];
    assert_eq!(
        resource_spans[0]["scopeSpans"],
        captured["result"]["resourceSpans"][0]["scopeSpans"]
    );
    // The capture's resource had no attributes; the store's always names its service.
    assert_eq!(
        resource_spans[0]["resource"],
        json!({"attributes": [{"key": "service.name", "value": {"stringValue": "foo"}}]})
    );
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn trace_summaries_have_the_shape_of_jaegers_capture() {
    let store = TestStore::memory().await;
    // The captured summary: a root "HTTP GET /" at 1000 s and a child with an error, ending at
    // 1001 s, both of "frontend".
    let root = spec(1, 1, 0, "HTTP GET /", 1_000_000_000, 500_000);
    let mut child = spec(1, 2, 1, "child", 1_000_100_000, 900_000);
    child.error = true;
    post_otlp(
        &store,
        request(vec![resource_spans(
            "frontend",
            vec![],
            vec![root.build(), child.build()],
        )])
        .encode_to_vec(),
    )
    .await;
    let (status, body) = store
        .get_json("/api/v3/trace-summaries?query.serviceName=frontend&query.startTimeMin=1970-01-01T00:00:00Z&query.startTimeMax=1970-01-02T00:00:00Z")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body, fixture("FindTraceSummaries.json"));
    store.stop().await;
}

/// A trace whose root span has not arrived is summarized under its earliest orphan, the span the
/// Jaeger UI (and the console) names such a trace after; a span with a parent in the trace is
/// never the root, however early it starts.
#[tokio::test(flavor = "multi_thread")]
async fn a_trace_missing_its_root_is_summarized_under_its_earliest_orphan() {
    let store = TestStore::memory().await;
    let late = spec(2, 11, 99, "late orphan", 1_000_200_000, 100_000);
    let early = spec(2, 12, 99, "early orphan", 1_000_100_000, 100_000);
    let child = spec(2, 13, 12, "child", 1_000_050_000, 10_000);
    post_otlp(
        &store,
        request(vec![resource_spans(
            "frontend",
            vec![],
            vec![late.build(), early.build(), child.build()],
        )])
        .encode_to_vec(),
    )
    .await;
    let (status, body) = store
        .get_json("/api/v3/trace-summaries?query.serviceName=frontend&query.startTimeMin=1970-01-01T00:00:00Z&query.startTimeMax=1970-01-02T00:00:00Z")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["summaries"][0],
        json!({
            "traceId": "00000000000000000000000000000002",
            "rootServiceName": "frontend",
            "rootOperationName": "early orphan",
            "minStartTimeUnixNano": "1000050000000",
            "maxEndTimeUnixNano": "1000300000000",
            "spanCount": 3,
            "orphanSpanCount": 2,
            "services": [{"name": "frontend", "spanCount": 3}]
        })
    );
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn falsy_values_are_written_as_protojson_writes_them() {
    let store = TestStore::memory().await;
    let start_us = 1_900_000_000_000_000;
    let mut span = spec(0x5, 0x6, 0, "0", start_us, 0).build();
    span.kind = 0;
    span.attributes = vec![
        kv("bool", V::BoolValue(false)),
        kv("int", V::IntValue(0)),
        kv("double", V::DoubleValue(0.0)),
        kv("empty", V::StringValue(String::new())),
        kv("zero", V::StringValue("0".into())),
    ];
    span.events = vec![Event {
        time_unix_nano: start_us * 1000,
        name: "0".into(),
        attributes: vec![kv("retry", V::BoolValue(false))],
        ..Default::default()
    }];
    post_otlp(
        &store,
        request(vec![resource_spans("0", vec![], vec![span])]).encode_to_vec(),
    )
    .await;

    let (status, body) = store
        .get_json("/api/v3/traces/00000000000000000000000000000005")
        .await;
    assert_eq!(status, 200);
    let nanos = (start_us * 1000).to_string();
    // Proto3 JSON mapping: oneof members that are set are written even at their default;
    // int64 as a decimal string; `kind`, `flags`, `status` and the scope's fields, all at
    // their defaults, left out; the scope message itself, set, written as {}.
    assert_eq!(
        body,
        json!({"result": {"resourceSpans": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "0"}}]},
            "scopeSpans": [{
                "scope": {},
                "spans": [{
                    "traceId": "00000000000000000000000000000005",
                    "spanId": "0000000000000006",
                    "name": "0",
                    "startTimeUnixNano": nanos,
                    "endTimeUnixNano": nanos,
                    "attributes": [
                        {"key": "bool", "value": {"boolValue": false}},
                        {"key": "int", "value": {"intValue": "0"}},
                        {"key": "double", "value": {"doubleValue": 0.0}},
                        {"key": "empty", "value": {"stringValue": ""}},
                        {"key": "zero", "value": {"stringValue": "0"}}
                    ],
                    "events": [{
                        "timeUnixNano": nanos,
                        "name": "0",
                        "attributes": [{"key": "retry", "value": {"boolValue": false}}]
                    }]
                }]
            }]
        }]}})
    );

    let window = "query.startTimeMin=2030-01-01T00:00:00Z&query.startTimeMax=2031-01-01T00:00:00Z";
    let (status, body) = store
        .get_json(&format!(
            "/api/v3/trace-summaries?query.serviceName=0&{window}"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["summaries"][0],
        json!({
            "traceId": "00000000000000000000000000000005",
            "rootServiceName": "0",
            "rootOperationName": "0",
            "minStartTimeUnixNano": nanos,
            "maxEndTimeUnixNano": nanos,
            "spanCount": 1,
            "services": [{"name": "0", "spanCount": 1}]
        })
    );
    let (_, body) = store.get_json("/api/v3/services").await;
    assert_eq!(body, json!({"services": ["0"]}));
    store.stop().await;
}
