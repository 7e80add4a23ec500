//! The store over the wire: real OTLP exporters (gRPC and HTTP) and Zipkin JSON in, every Jaeger
//! query route out.

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use meshtrace_testkit::http::parts;
use meshtrace_testkit::rfc3339;
use opentelemetry::KeyValue as OtelKv;
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt, Tracer, TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Value, json};

fn provider(exporter: opentelemetry_otlp::SpanExporter, service: &str) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_service_name(service.to_string())
                .with_attribute(OtelKv::new(
                    "k8s.pod.name",
                    format!("{service}-7d8f9c6b5-x2kqp"),
                ))
                .build(),
        )
        .build()
}

/// Emits, through two services' providers, a server span of productpage and its client call to
/// reviews (which fails). Returns the trace ID in hex.
fn emit_trace(make: impl Fn(&str) -> SdkTracerProvider) -> String {
    let productpage = make("productpage.bookinfo");
    let reviews = make("reviews.bookinfo");
    let tracer = productpage.tracer("meshtrace-test");
    let mut root = tracer
        .span_builder("GET /productpage")
        .with_kind(SpanKind::Server)
        .with_attributes([
            OtelKv::new("http.status_code", 200i64),
            OtelKv::new("component", "proxy"),
        ])
        .start(&tracer);
    root.add_event("request received", vec![OtelKv::new("bytes", 512i64)]);
    let trace_id = root.span_context().trace_id().to_string();
    let cx = opentelemetry::Context::current_with_span(root);
    let other = reviews.tracer("meshtrace-test");
    let mut child = other
        .span_builder("reviews.bookinfo.svc.cluster.local:9080/*")
        .with_kind(SpanKind::Server)
        .with_attributes([
            OtelKv::new("http.status_code", 503i64),
            OtelKv::new("response_flags", "UH"),
        ])
        .start_with_context(&other, &cx);
    child.set_status(Status::error("no healthy upstream"));
    child.end();
    cx.span().end();
    productpage.shutdown().unwrap();
    reviews.shutdown().unwrap();
    trace_id
}

async fn wait_for_trace(store: &TestStore, trace_id: &str, spans: usize) -> Value {
    for _ in 0..100 {
        let (status, body) = store.get_json(&format!("/api/traces/{trace_id}")).await;
        if status == 200 && body["data"][0]["spans"].as_array().map_or(0, Vec::len) == spans {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("trace {trace_id} did not arrive with {spans} spans");
}

fn micros_ago(secs: u64) -> u64 {
    (SystemTime::now() - Duration::from_secs(secs))
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_grpc_exporter_spans_read_back_through_every_route() {
    let store = TestStore::memory().await;
    let endpoint = store.otlp_grpc();
    let handle = tokio::runtime::Handle::current();
    let trace_id = tokio::task::spawn_blocking(move || {
        let _guard = handle.enter();
        emit_trace(|service| {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()
                .unwrap();
            provider(exporter, service)
        })
    })
    .await
    .unwrap();
    check_every_route(&store, &trace_id).await;
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_http_exporter_spans_read_back() {
    let store = TestStore::memory().await;
    let endpoint = store.otlp_http();
    // The blocking HTTP client must run outside the async runtime.
    let trace_id = std::thread::spawn(move || {
        emit_trace(|service| provider(otlp_http_exporter(&endpoint), service))
    })
    .join()
    .unwrap();
    check_every_route(&store, &trace_id).await;
    store.stop().await;
}

async fn check_every_route(store: &TestStore, trace_id: &str) {
    let trace = wait_for_trace(store, trace_id, 2).await;
    let trace = &trace["data"][0];
    assert_eq!(trace["traceID"], trace_id);

    // The spans, as Jaeger converts OTLP.
    let spans = trace["spans"].as_array().unwrap();
    let by_op = |op: &str| {
        spans
            .iter()
            .find(|s| s["operationName"] == op)
            .unwrap()
            .clone()
    };
    let root = by_op("GET /productpage");
    let child = by_op("reviews.bookinfo.svc.cluster.local:9080/*");
    let tag = |span: &Value, key: &str| {
        span["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == key)
            .cloned()
    };
    assert_eq!(tag(&root, "span.kind").unwrap()["value"], "server");
    assert_eq!(
        tag(&root, "http.status_code").unwrap(),
        json!({"key": "http.status_code", "type": "int64", "value": 200})
    );
    assert_eq!(
        tag(&root, "otel.scope.name").unwrap()["value"],
        "meshtrace-test"
    );
    assert_eq!(
        root["logs"][0]["fields"][0],
        json!({"key": "event", "type": "string", "value": "request received"})
    );
    assert_eq!(
        tag(&child, "error").unwrap(),
        json!({"key": "error", "type": "bool", "value": true})
    );
    assert_eq!(
        tag(&child, "otel.status_description").unwrap()["value"],
        "no healthy upstream"
    );
    assert_eq!(child["references"][0]["refType"], "CHILD_OF");
    assert_eq!(child["references"][0]["spanID"], root["spanID"]);
    let process = &trace["processes"][root["processID"].as_str().unwrap()];
    assert_eq!(process["serviceName"], "productpage.bookinfo");
    let pod = process["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "k8s.pod.name")
        .unwrap();
    assert_eq!(pod["value"], "productpage.bookinfo-7d8f9c6b5-x2kqp");
    assert_eq!(trace["processes"].as_object().unwrap().len(), 2);

    // Services and operations.
    let (_, services) = store.get_json("/api/services").await;
    assert_eq!(
        services["data"],
        json!(["productpage.bookinfo", "reviews.bookinfo"])
    );
    assert_eq!(services["total"], 2);
    let (_, ops) = store
        .get_json("/api/services/reviews.bookinfo/operations")
        .await;
    assert_eq!(
        ops["data"],
        json!(["reviews.bookinfo.svc.cluster.local:9080/*"])
    );
    let (_, ops) = store
        .get_json("/api/operations?service=productpage.bookinfo&spanKind=server")
        .await;
    assert_eq!(
        ops["data"],
        json!([{"name": "GET /productpage", "spanKind": "server"}])
    );

    // Search finds the same trace the ID lookup returns.
    let (status, found) = store
        .get_json("/api/traces?service=reviews.bookinfo&tags=%7B%22response_flags%22%3A%22UH%22%7D&limit=20")
        .await;
    assert_eq!(status, 200);
    assert_eq!(found["data"][0], *trace);
    let (_, none) = store
        .get_json("/api/traces?service=reviews.bookinfo&minDuration=1h")
        .await;
    assert_eq!(none["data"], json!([]));

    // Multi-get reports the missing ID without failing.
    let (status, multi) = store
        .get_json(&format!(
            "/api/traces?traceID={trace_id}&traceID=00000000000000000000000000000bad"
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(multi["data"].as_array().unwrap().len(), 1);
    assert_eq!(
        multi["errors"],
        json!([{"msg": "trace not found", "traceID": "0000000000000bad"}])
    );

    // Dependencies: productpage calls reviews once.
    let (_, deps) = store.get_json("/api/dependencies?lookback=3600000").await;
    assert_eq!(
        deps["data"],
        json!([{"parent": "productpage.bookinfo", "child": "reviews.bookinfo", "callCount": 1}])
    );

    // api_v3.
    let (_, v3) = store.get_json("/api/v3/services").await;
    assert_eq!(
        v3,
        json!({"services": ["productpage.bookinfo", "reviews.bookinfo"]})
    );
    let (_, v3) = store
        .get_json("/api/v3/operations?service=productpage.bookinfo&spanKind=server")
        .await;
    assert_eq!(
        v3,
        json!({"operations": [{"name": "GET /productpage", "spanKind": "server"}]})
    );
    let (status, v3) = store.get_json(&format!("/api/v3/traces/{trace_id}")).await;
    assert_eq!(status, 200);
    let resource_spans = v3["result"]["resourceSpans"].as_array().unwrap();
    assert_eq!(resource_spans.len(), 2);
    let otlp_span = &resource_spans[1]["scopeSpans"][0]["spans"][0];
    assert_eq!(otlp_span["traceId"], trace_id);
    assert_eq!(otlp_span["kind"], 2);
    assert_eq!(otlp_span["status"]["code"], 2);
    let window = format!(
        "query.startTimeMin={}&query.startTimeMax={}",
        rfc3339(micros_ago(3600)),
        rfc3339(micros_ago(0) + 60_000_000)
    );
    let (status, v3) = store
        .get_json(&format!(
            "/api/v3/traces?query.serviceName=reviews.bookinfo&{window}"
        ))
        .await;
    assert_eq!(status, 200, "{v3}");
    assert_eq!(v3["result"]["resourceSpans"].as_array().unwrap().len(), 2);
    let (_, summaries) = store
        .get_json(&format!(
            "/api/v3/trace-summaries?query.service_name=productpage.bookinfo&{}",
            window.replace("startTimeM", "start_time_m")
        ))
        .await;
    let summary = &summaries["summaries"][0];
    assert_eq!(summary["traceId"], trace_id);
    assert_eq!(summary["rootServiceName"], "productpage.bookinfo");
    assert_eq!(summary["rootOperationName"], "GET /productpage");
    assert_eq!(summary["spanCount"], 2);
    assert_eq!(summary["errorSpanCount"], 1);
    assert!(summary["minStartTimeUnixNano"].is_string());
    assert_eq!(summary["services"].as_array().unwrap().len(), 2);

    // The metrics API is served (tests/monitor_api.rs); without a quantile, Jaeger's 400.
    let (status, _, _) = parts(
        store
            .http
            .get(store.query("/api/metrics/latencies?service=x")),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_jaeger_fixture_reads_back_exactly() {
    let store = TestStore::memory().await;
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/jaeger/otlp2jaeger-in.json"
    ))
    .unwrap();
    let body = store.export("application/json", fixture.into_bytes()).await;
    assert_eq!(body, "{}");
    let (_, body) = store
        .get_json("/api/traces/83a9efd15c1c98a977e0711cc93ee28b")
        .await;
    let expected_text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/jaeger/otlp2jaeger-out.json"
    ))
    .unwrap();
    let mut expected: Value = serde_json::from_str(&expected_text).unwrap();
    // The fixture holds the same span twice; the store keeps one copy, as Jaeger's
    // deduplicating adjuster does on read.
    expected["data"][0]["spans"]
        .as_array_mut()
        .unwrap()
        .truncate(1);
    assert_eq!(body, expected);
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zipkin_json_reads_back() {
    let store = TestStore::memory().await;
    let now = micros_ago(1);
    let batch = json!([
        {"traceId": "5af7183fb1d4cf5f", "id": "352bff9a74ca9ad2", "name": "get /productpage", "kind": "SERVER",
         "timestamp": now, "duration": 2000, "localEndpoint": {"serviceName": "productpage.bookinfo", "ipv4": "10.1.0.7"},
         "tags": {"http.status_code": "200", "component": "proxy"}},
        {"traceId": "5af7183fb1d4cf5f", "id": "6b221d5bc9e6496c", "parentId": "352bff9a74ca9ad2", "name": "details.bookinfo.svc.cluster.local:9080/*",
         "kind": "CLIENT", "timestamp": now + 100, "duration": 900, "localEndpoint": {"serviceName": "productpage.bookinfo", "ipv4": "10.1.0.7"},
         "remoteEndpoint": {"ipv4": "10.1.0.9", "port": 9080}, "annotations": [{"timestamp": now + 150, "value": "ws"}],
         "tags": {"http.status_code": "503", "error": "true"}}
    ]);
    let response = store
        .http
        .post(store.zipkin())
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    let (_, body) = store.get_json("/api/traces/5af7183fb1d4cf5f").await;
    let trace = &body["data"][0];
    assert_eq!(trace["traceID"], "5af7183fb1d4cf5f");
    assert_eq!(trace["spans"].as_array().unwrap().len(), 2);
    assert_eq!(
        trace["processes"]["p1"],
        json!({"serviceName": "productpage.bookinfo", "tags": [{"key": "ip", "type": "string", "value": "10.1.0.7"}]})
    );
    let client = &trace["spans"][1];
    assert_eq!(client["references"][0]["spanID"], "352bff9a74ca9ad2");
    assert_eq!(client["logs"][0]["fields"][0]["value"], "ws");
    let (_, found) = store
        .get_json("/api/traces?service=productpage.bookinfo&tags=%7B%22error%22%3A%22true%22%7D")
        .await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    store.stop().await;
}
