//! The Jaeger UI's other routes, over the wire: `POST /api/transform` (the UI's OTLP file
//! upload) against the answer Jaeger itself gives for its own fixture and against the same
//! spans stored and read back; hostile bodies; and `POST /api/archive/{traceID}` with the
//! archived trace still found after retention removed its spans, also after a restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestStore;
use meshtrace_store::Store;
use meshtrace_store::server::{Limits, LoopbackServer, ServeOptions};
use serde_json::{Value, json};

fn fixture(name: &str) -> String {
    let path = format!(
        "{}/../../tests/fixtures/jaeger/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

async fn post(
    store: &TestStore,
    path: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, String, String) {
    let request = store
        .http
        .post(store.query(path))
        .header("content-type", "application/json")
        .body(body);
    meshtrace_testkit::http::parts(request).await
}

/// Jaeger's error envelope, written out here as Jaeger's `http.Error` writes it.
fn jaeger_error(code: u16, msg: &str) -> String {
    format!(
        "{{\"data\":null,\"total\":0,\"limit\":0,\"offset\":0,\"errors\":[{{\"code\":{code},\"msg\":\"{msg}\"}}]}}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn transform_answers_what_jaeger_answers_for_its_fixture() {
    let store = TestStore::memory().await;
    let (status, content_type, body) =
        post(&store, "/api/transform", fixture("otlp2jaeger-in.json")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/json");
    let got: Value = serde_json::from_str(&body).unwrap();
    let expected: Value = serde_json::from_str(&fixture("otlp2jaeger-out.json")).unwrap();
    // The whole envelope, duplicate span included: Jaeger's transform does not deduplicate.
    assert_eq!(got, expected);
    // Nothing was stored.
    let (status, _) = store
        .get_json("/api/traces/83a9efd15c1c98a977e0711cc93ee28b")
        .await;
    assert_eq!(status, 404);
    store.stop().await;
}

/// OTLP JSON as exporters write it (hex IDs, nanosecond strings, typed attribute values, two
/// resources and two traces), written by hand here rather than by the decoder's library.
fn exporter_file(start_ns: u64) -> String {
    let t = |offset_us: u64| (start_ns + offset_us * 1000).to_string();
    json!({"resourceSpans": [
        {"resource": {"attributes": [
            {"key": "service.name", "value": {"stringValue": "frontend"}},
            {"key": "host.name", "value": {"stringValue": "node-1"}}]},
         "scopeSpans": [{"scope": {"name": "io.opentelemetry.http", "version": "1.2.0"}, "spans": [
            {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
             "name": "GET /checkout", "kind": 2, "startTimeUnixNano": t(0), "endTimeUnixNano": t(5000),
             "attributes": [
                {"key": "http.response.status_code", "value": {"intValue": "200"}},
                {"key": "sampled", "value": {"boolValue": true}},
                {"key": "ratio", "value": {"doubleValue": 0.25}}],
             "events": [{"timeUnixNano": t(100), "name": "cache miss",
                         "attributes": [{"key": "key", "value": {"stringValue": "cart-42"}}]}],
             "status": {}},
            {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "00f067aa0ba902b7",
             "parentSpanId": "b7ad6b7169203331", "name": "POST /pay", "kind": 3,
             "startTimeUnixNano": t(200), "endTimeUnixNano": t(4000),
             "status": {"code": 2, "message": "card declined"}}]}]},
        {"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "payments"}}]},
         "scopeSpans": [{"spans": [
            {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "1c5ea8b4ff7e2a9d",
             "parentSpanId": "00f067aa0ba902b7", "name": "charge", "kind": 2,
             "startTimeUnixNano": t(300), "endTimeUnixNano": t(3900)},
            {"traceId": "4bf92f3577b34da6a3ce929d0e0e4736", "spanId": "5c4b3a2918070615",
             "name": "nightly settle", "kind": 1,
             "startTimeUnixNano": t(10), "endTimeUnixNano": t(20)}]}]}
    ]})
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn transform_matches_the_same_spans_stored_and_read_back() {
    let store = TestStore::memory().await;
    let file = exporter_file(meshtrace_testkit::now() * 1000);
    let (status, _, body) = post(&store, "/api/transform", file.clone()).await;
    assert_eq!(status, 200, "{body}");
    let transformed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(transformed["errors"], Value::Null);
    let traces = transformed["data"].as_array().unwrap();
    // In order of first appearance in the file.
    let ids: Vec<&str> = traces
        .iter()
        .map(|t| t["traceID"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "0af7651916cd43dd8448eb211c80319c",
            "4bf92f3577b34da6a3ce929d0e0e4736"
        ]
    );
    assert_eq!(traces[0]["spans"].as_array().unwrap().len(), 3);

    store.export("application/json", file.into_bytes()).await;
    for trace in traces {
        let id = trace["traceID"].as_str().unwrap();
        let (status, stored) = store.get_json(&format!("/api/traces/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(&stored["data"][0], trace, "trace {id}");
    }
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn transform_refuses_hostile_bodies_with_jaegers_envelope() {
    let max_body = 64 << 10;
    let store = TestStore::start(Store::in_memory(Duration::from_secs(3600)), max_body).await;
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("not JSON", b"{\"resourceSpans\": [".to_vec(), 400),
        ("a wrong type", br#"{"resourceSpans": 5}"#.to_vec(), 400),
        ("deep nesting", "[".repeat(100_000).into_bytes(), 413),
        ("deep nesting within the limit", "[".repeat(50_000).into_bytes(), 400),
        (
            "nested values",
            format!(
                r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"k","value":{}}}]}}}}]}}"#,
                r#"{"kvlistValue":{"values":[{"key":"k","value":"#.repeat(400)
            )
            .into_bytes(),
            400,
        ),
        ("huge", vec![b' '; max_body + 1], 413),
    ];
    for (what, body, expected) in cases {
        let (status, content_type, text) = post(&store, "/api/transform", body).await;
        assert_eq!(status, expected, "{what}: {text}");
        assert_eq!(content_type, "text/plain; charset=utf-8", "{what}");
        let envelope: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(envelope["data"], Value::Null, "{what}");
        assert_eq!(envelope["errors"][0]["code"], expected, "{what}");
        let msg = envelope["errors"][0]["msg"].as_str().unwrap();
        if expected == 400 {
            assert!(msg.starts_with("cannot unmarshal OTLP : "), "{what}: {msg}");
        } else {
            assert!(msg.contains(&max_body.to_string()), "{what}: {msg}");
        }
    }
    // A gzip body is inflated under the same limit.
    let bomb = {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![b' '; 10 << 20]).unwrap();
        gz.finish().unwrap()
    };
    let (status, _) = store
        .post_bytes(
            &store.query("/api/transform"),
            "application/json",
            Some("gzip"),
            bomb,
        )
        .await;
    assert_eq!(status, 413);
    // Still serving.
    let (status, _, _) = post(&store, "/api/transform", fixture("otlp2jaeger-in.json")).await;
    assert_eq!(status, 200);
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn archiving_an_unknown_or_malformed_trace_answers_as_jaeger() {
    let store = TestStore::memory().await;
    let (status, content_type, body) =
        post(&store, "/api/archive/0af7651916cd43dd8448eb211c80319c", "").await;
    assert_eq!(
        (status, content_type.as_str()),
        (404, "text/plain; charset=utf-8")
    );
    assert_eq!(body, jaeger_error(404, "trace not found"));
    let (status, _, body) = post(&store, "/api/archive/not-hex", "").await;
    assert_eq!(status, 400, "{body}");
    let envelope: Value = serde_json::from_str(&body).unwrap();
    assert!(
        envelope["errors"][0]["msg"]
            .as_str()
            .unwrap()
            .starts_with("cannot parse traceID param")
    );
    let (status, _) = store
        .get_json("/api/traces/0af7651916cd43dd8448eb211c80319c")
        .await;
    assert_eq!(status, 404);
    store.stop().await;
}

async fn start(store: Arc<Store>) -> (LoopbackServer, String) {
    let options = ServeOptions {
        jaeger_ui: None,
        max_body: 16 << 20,
        retention_interval: Duration::from_millis(200),
        limits: Limits::default(),
    };
    let server = LoopbackServer::start_with(store, options).await.unwrap();
    let base = format!("http://{}", server.addresses.query_http);
    (server, base)
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = http.get(url).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{url}: {e}: {text}")),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archived_trace_outlives_retention_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::Client::new();
    let kept = "0af7651916cd43dd8448eb211c80319c";
    let expired = "4bf92f3577b34da6a3ce929d0e0e4736";
    let store = Arc::new(Store::open(dir.path(), Duration::from_secs(2)).unwrap());
    let (server, base) = start(store).await;
    let otlp = format!("http://{}/v1/traces", server.addresses.otlp_http);
    let response = http
        .post(&otlp)
        .header("content-type", "application/json")
        .body(exporter_file(meshtrace_testkit::now() * 1000))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (status, before) = get(&http, &format!("{base}/api/traces/{kept}")).await;
    assert_eq!(status, 200);

    let response = http
        .post(format!("{base}/api/archive/{kept}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"data": [], "total": 0, "limit": 0, "offset": 0, "errors": []})
    );

    // Retention (2 s, a pass every 200 ms) removes the trace that was not archived.
    let mut gone = false;
    for _ in 0..300 {
        if get(&http, &format!("{base}/api/traces/{expired}")).await.0 == 404 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "retention never removed {expired}");
    let (status, services) = get(&http, &format!("{base}/api/services")).await;
    assert_eq!(status, 200);
    assert_eq!(services["data"], json!([]), "the live tables are empty");

    let (status, after) = get(&http, &format!("{base}/api/traces/{kept}")).await;
    assert_eq!(status, 200);
    assert_eq!(after, before);
    let (status, v3) = get(&http, &format!("{base}/api/v3/traces/{kept}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        v3["result"]["resourceSpans"].as_array().unwrap().len(),
        2,
        "{v3}"
    );
    server.stop().await.unwrap();

    // Durable: found again after the store is reopened.
    let store = Arc::new(Store::open(dir.path(), Duration::from_secs(2)).unwrap());
    let (server, base) = start(store).await;
    let (status, reopened) = get(&http, &format!("{base}/api/traces/{kept}")).await;
    assert_eq!(status, 200);
    assert_eq!(reopened, before);
    let (status, _) = get(&http, &format!("{base}/api/traces/{expired}")).await;
    assert_eq!(status, 404);
    server.stop().await.unwrap();
}
