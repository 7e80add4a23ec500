//! The Tempo client against a local server that replays real Tempo responses (the shared
//! fixtures captured by Kiali from a Bookinfo mesh): Tempo itself cannot run here.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use meshtrace_backend::{TraceQuery, TracingBackend};
use meshtrace_model::{RefType, TraceId, Value};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../tests/fixtures/tempo/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The fixture trace as Tempo sends it when asked for protobuf, and its ID.
fn trace_protobuf() -> (TraceId, Vec<u8>) {
    let raw: serde_json::Value = serde_json::from_str(&fixture("responseTrace.json")).unwrap();
    let otlp = meshtrace_model::otlp::tempo_json_to_otlp_json(raw);
    let data: TracesData =
        serde_json::from_value(serde_json::json!({"resourceSpans": otlp["batches"]})).unwrap();
    let id = TraceId::from_bytes(&data.resource_spans[0].scope_spans[0].spans[0].trace_id).unwrap();
    (id, data.encode_to_vec())
}

/// A request as the server saw it: path, query string, X-Scope-OrgID.
type Request = (String, String, Option<String>);

#[derive(Clone, Default)]
struct Seen {
    requests: Arc<Mutex<Vec<Request>>>,
}

async fn replay(
    State((seen, trace_id, trace)): State<(Seen, TraceId, Arc<Vec<u8>>)>,
    uri: Uri,
    headers: HeaderMap,
    _body: Bytes,
) -> impl IntoResponse {
    let path = uri.path().to_string();
    let org = headers
        .get("x-scope-orgid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    seen.requests
        .lock()
        .unwrap()
        .push((path.clone(), uri.query().unwrap_or("").to_string(), org));
    let json = |body: String| {
        (
            StatusCode::OK,
            [("content-type", "application/json")],
            body.into_bytes(),
        )
            .into_response()
    };
    if path.ends_with("/api/search") {
        json(fixture("response.json"))
    } else if path.ends_with(&format!("/api/traces/{}", trace_id.to_hex32())) {
        assert_eq!(headers["accept"], "application/protobuf");
        (
            StatusCode::OK,
            [("content-type", "application/protobuf")],
            trace.as_ref().clone(),
        )
            .into_response()
    } else if path.contains("/api/traces/") {
        (StatusCode::NOT_FOUND, "trace not found").into_response()
    } else if path.ends_with("/api/echo") {
        (StatusCode::OK, "echo").into_response()
    } else if path.ends_with("/api/status/buildinfo") {
        json(r#"{"version":"2.6.1","revision":"abc","branch":"HEAD"}"#.to_string())
    } else if path.ends_with("/api/search/tag/service.name/values") {
        json(r#"{"tagValues":["reviews.bookinfo","productpage.bookinfo"]}"#.to_string())
    } else {
        (StatusCode::NOT_FOUND, "404 page not found").into_response()
    }
}

async fn tempo() -> (String, Seen, TraceId) {
    let seen = Seen::default();
    let (trace_id, trace) = trace_protobuf();
    let app =
        axum::Router::new()
            .fallback(replay)
            .with_state((seen.clone(), trace_id, Arc::new(trace)));
    let address = meshtrace_testkit::http::serve(app).await;
    (format!("http://{address}"), seen, trace_id)
}

fn client(internal_url: &str, extra: &str) -> Box<dyn TracingBackend> {
    common::tracing_backend("tempo", false, internal_url, extra)
}

#[tokio::test(flavor = "multi_thread")]
async fn search_results_convert_span_by_span() {
    let (url, seen, _) = tempo().await;
    let tempo = client(&url, "");
    // No tags: the fixture's spans carry none of the attributes a tag would select (searches
    // with tags are in tempo_scope.rs, against the Ambient fixture whose spans carry them).
    let query = TraceQuery {
        service: "reviews.bookinfo".into(),
        tags: BTreeMap::new(),
        start: 1_701_778_000_000_000,
        end: 1_701_778_100_000_001,
        min_duration: Some(2_500),
        limit: 20,
    };
    let found = tempo.find_traces(&query).await.unwrap();
    assert_eq!(found.partial, None);
    assert_eq!(found.traces.len(), 1);
    let trace = &found.traces[0];
    assert_eq!(
        trace.trace_id().unwrap().to_hex32(),
        "100cb753c787ed5657c8d88dafc176ed"
    );
    assert_eq!(trace.spans.len(), 3);
    let first = &trace.spans[0];
    assert_eq!(first.span_id.to_string(), "2e6ca056f5fc6fdc");
    assert_eq!(first.process.service_name, "reviews.bookinfo");
    assert_eq!(
        (first.start_time, first.duration),
        (1_701_778_055_578_250, 556)
    );
    assert!(
        first.references.is_empty(),
        "search spans have no references"
    );
    assert!(
        matches!(first.tag("node_id"), Some(Value::Str(n)) if n.contains("reviews-v1-667b5cc65d-4m24g"))
    );
    assert!(!first.has_error());
    // The operation falls back to the trace's root name when the span has none.
    assert_eq!(
        first.operation_name,
        "productpage.bookinfo.svc.cluster.local:9080/productpage"
    );

    let requests = seen.requests.lock().unwrap().clone();
    let (path, query_string, org) = &requests[0];
    assert_eq!(path, "/api/search");
    assert_eq!(org, &None);
    let params: BTreeMap<String, String> = form_urlencoded::parse(query_string.as_bytes())
        .into_owned()
        .collect();
    assert!(
        params["q"].starts_with("{ resource.service.name = \"reviews.bookinfo\" } | select("),
        "{}",
        params["q"]
    );
    assert_eq!(
        (params["start"].as_str(), params["end"].as_str()),
        ("1701778000", "1701778101")
    );
    assert_eq!(
        (
            params["spss"].as_str(),
            params["limit"].as_str(),
            params["minDuration"].as_str()
        ),
        ("10", "20", "2ms")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn traces_by_id_come_as_protobuf_with_kinds_and_parents() {
    let (url, seen, trace_id) = tempo().await;
    let tempo = client(&url, "");
    let trace = tempo.get_trace(trace_id).await.unwrap().unwrap();
    assert_eq!(trace.spans.len(), 8);
    let root = trace
        .spans
        .iter()
        .find(|s| s.references.is_empty())
        .unwrap();
    assert_eq!(
        root.process.service_name,
        "istio-ingressgateway.istio-system"
    );
    assert_eq!(root.kind(), "client");
    for span in &trace.spans {
        assert!(matches!(span.kind(), "client" | "server"));
        if let Some(parent) = span.parent_span_id() {
            assert!(
                trace.spans.iter().any(|s| s.span_id == parent),
                "every parent is in the trace"
            );
            assert_eq!(span.references[0].ref_type, RefType::ChildOf);
        }
        assert!(!span.has_error());
    }
    // Cached: a second read does not reach Tempo.
    let before = seen.requests.lock().unwrap().len();
    tempo.get_trace(trace_id).await.unwrap().unwrap();
    assert_eq!(seen.requests.lock().unwrap().len(), before);
    assert!(tempo.get_trace(TraceId(42)).await.unwrap().is_none());

    tempo.status().await.unwrap();
    assert_eq!(tempo.version().await.as_deref(), Some("2.6.1"));
    assert_eq!(
        tempo.services().await.unwrap(),
        ["productpage.bookinfo", "reviews.bookinfo"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tenant_adds_the_gateway_path_and_the_org_header() {
    let (url, seen, trace_id) = tempo().await;
    let tempo = client(
        &url,
        "    tempo_config:\n      tenant: dev\n      cache_enabled: false\n",
    );
    assert_eq!(
        tempo.describe(),
        format!("Tempo at {url}/api/traces/v1/dev/tempo")
    );
    tempo.get_trace(trace_id).await.unwrap().unwrap();
    tempo.get_trace(trace_id).await.unwrap().unwrap();
    let requests = seen.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2, "no cache when cache_enabled is false");
    for (path, _, org) in requests {
        assert_eq!(
            path,
            format!(
                "/api/traces/v1/dev/tempo/api/traces/{}",
                trace_id.to_hex32()
            )
        );
        assert_eq!(org.as_deref(), Some("dev"));
    }
}
