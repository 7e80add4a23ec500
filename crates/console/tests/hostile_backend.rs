//! The console in front of backends a stranger can play with (issue 13): tag keys that try to
//! leave `query_scope` in a Tempo search (defect 4), and a backend that echoes the request,
//! credentials included, in its error answers (defect 9). Tempo cannot run here: a local
//! server answers with the real search response Kiali captured (tests/fixtures/tempo), once per
//! mesh, and records the TraceQL it is sent.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

// Only the console starter is used here.
#[allow(dead_code)]
mod common;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine as _;
use meshtrace_console::ConsoleOptions;
use serde_json::{Value, json};

fn options() -> ConsoleOptions {
    ConsoleOptions {
        background_inventory: false,
        ..ConsoleOptions::default()
    }
}

async fn get(console: SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{console}{path}"))
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Kiali's captured Ambient search answer, its one trace once per mesh: `mesh_id` set to each
/// of `meshes` (`None`: not set) on every span, and a trace ID ending in the mesh's index.
fn meshes_answer(meshes: &[Option<&str>]) -> Value {
    let path = format!(
        "{}/../../tests/fixtures/tempo/responseAmbient.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let real: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    meshtrace_testkit::tempo::answer_per_mesh(&real, meshes)
}

/// The `q`s a fake Tempo was sent, and what it answers.
type TempoState = (Arc<Mutex<Vec<String>>>, Arc<Value>);

/// A Tempo answering every search with three traces — of mesh m1, of mesh m2, of no mesh —
/// and keeping the `q` of each.
async fn fake_tempo() -> (String, Arc<Mutex<Vec<String>>>) {
    let queries: Arc<Mutex<Vec<String>>> = Arc::default();
    let answer = Arc::new(meshes_answer(&[Some("m1"), Some("m2"), None]));
    let app = axum::Router::new()
        .route(
            "/api/search",
            axum::routing::get(
                |State((queries, answer)): State<TempoState>, RawQuery(raw): RawQuery| async move {
                    let q = form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                        .find(|(k, _)| k == "q")
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default();
                    queries.lock().unwrap().push(q);
                    axum::Json(answer.as_ref().clone())
                },
            ),
        )
        .route(
            "/api/search/tag/service.name/values",
            axum::routing::get(|| async {
                axum::Json(json!({"tagValues": ["waypoint.bookinfo"]}))
            }),
        )
        .with_state((queries.clone(), answer));
    let address = meshtrace_testkit::http::serve(app).await;
    (format!("http://{address}"), queries)
}

#[tokio::test(flavor = "multi_thread")]
async fn tag_keys_cannot_take_a_tempo_search_out_of_query_scope() {
    let (tempo, queries) = fake_tempo().await;
    let yaml = format!(
        "external_services:\n  tracing:\n    enabled: true\n    provider: tempo\n    use_grpc: false\n    internal_url: {tempo}\n    query_scope:\n      mesh_id: m1\n"
    );
    let (console, _stop) = common::start_console(options(), |_| yaml).await;
    let traces = "/api/namespaces/bookinfo/apps/waypoint/traces";
    let ids = |body: &str| -> Vec<String> {
        let body: Value = serde_json::from_str(body).unwrap();
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["traceID"].as_str().unwrap().to_string())
            .collect()
    };

    // Tempo answers with every mesh: the console shows mesh m1's trace only.
    let (status, body) = get(console, traces).await;
    assert_eq!(status, 200, "{body}");
    let shown = ids(&body);
    assert_eq!(shown.len(), 1, "{body}");
    assert!(
        shown[0].ends_with("2e299711ce47710289dc66407274040"),
        "{body}"
    );

    // The key that closed the spanset is one condition of it, quoted as TraceQL allows, and
    // the scope is still a condition; nothing Tempo answered carries that key.
    let injected = json!({"x} || { true": "y"}).to_string();
    let (status, body) = get(console, &format!("{traces}?tags={}", enc(&injected))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&body), Vec::<String>::new(), "{body}");
    let sent = queries.lock().unwrap().last().cloned().unwrap();
    assert!(
        sent.starts_with(
            "{ resource.service.name = \"waypoint.bookinfo\" && .mesh_id = \"m1\" && .\"x} || { true\" = \"y\" } | select("
        ),
        "{sent}"
    );

    // A key TraceQL cannot name at all: 400, naming it; Tempo is not asked.
    let asked = queries.lock().unwrap().len();
    let bad = json!({"a\nb": "y"}).to_string();
    let (status, body) = get(console, &format!("{traces}?tags={}", enc(&bad))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("tag key `a\\\\nb`"), "{body}");
    assert_eq!(queries.lock().unwrap().len(), asked);

    // The search page and the inventory stay within the scope too.
    let (status, page) = get(
        console,
        &format!(
            "/jaeger/search?service=waypoint.bookinfo&tags={}",
            enc(&injected)
        ),
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        !page.contains("2e299711ce47710289dc66407274041"),
        "mesh m2 shown"
    );
    let sent = queries.lock().unwrap().last().cloned().unwrap();
    assert!(sent.contains(" && .mesh_id = \"m1\" && "), "{sent}");
    let (status, page) = get(console, "/jaeger/search?service=waypoint.bookinfo").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("2e299711ce47710289dc66407274040"),
        "mesh m1 not shown"
    );
    assert!(
        !page.contains("2e299711ce47710289dc66407274041"),
        "mesh m2 shown"
    );
    assert!(
        !page.contains("2e299711ce47710289dc66407274042"),
        "no mesh shown"
    );
    let (status, _) = get(console, "/console/overview").await;
    assert_eq!(status, 200);
    let sent = queries.lock().unwrap().last().cloned().unwrap();
    assert!(
        sent.contains(".mesh_id = \"m1\""),
        "inventory query: {sent}"
    );
}

const PASSWORD: &str = "pw-S3cr3t&<x>";
const HEADER_VALUE: &str = "hdr-S3cr3t";

/// A gateway that answers 502 with the request it received, as text and as an HTML page.
async fn echoing_gateway() -> String {
    let app = axum::Router::new().fallback(
        |uri: Uri, headers: HeaderMap, body: Bytes| async move {
            let mut text = format!("GET {uri}\n");
            for (name, value) in &headers {
                text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("")));
            }
            text.push_str(&String::from_utf8_lossy(&body));
            let page = if uri.path().ends_with("/services") {
                format!("<html><head><title>502 Bad Gateway</title></head><body><pre>{text}</pre></body></html>")
            } else {
                text
            };
            (StatusCode::BAD_GATEWAY, page).into_response()
        },
    );
    let address = meshtrace_testkit::http::serve(app).await;
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backend_that_echoes_the_request_does_not_show_the_credentials() {
    let gateway = echoing_gateway().await;
    let yaml = format!(
        "external_services:\n  tracing:\n    enabled: true\n    use_grpc: false\n    internal_url: {gateway}\n    auth:\n      type: basic\n      username: kiali\n      password: {PASSWORD:?}\n    custom_headers:\n      X-Api-Key: {HEADER_VALUE}\n"
    );
    let (console, _stop) = common::start_console(options(), |_| yaml).await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("kiali:{PASSWORD}"));
    let clean = |shown: &str| {
        for secret in ["S3cr3t", basic.as_str()] {
            assert!(!shown.contains(secret), "`{secret}` shown: {shown}");
        }
    };

    let (status, body) = get(console, "/api/namespaces/bookinfo/apps/reviews/traces").await;
    assert_eq!(status, 503, "{body}");
    clean(&body);
    let error: Value = serde_json::from_str(&body).unwrap();
    let error = error["error"].as_str().unwrap();
    assert!(error.contains("answered HTTP 502"), "{error}");

    for path in [
        "/api/namespaces/bookinfo/apps/reviews/spans",
        "/jaeger/search?service=reviews.bookinfo",
        "/console/overview",
        "/api/status",
    ] {
        let (_, body) = get(console, path).await;
        clean(&body);
    }
}
