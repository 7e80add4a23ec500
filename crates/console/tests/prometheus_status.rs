//! `GET /api/status` covers Prometheus as Kiali lists it (`{"name": "Prometheus", "version"}`),
//! and says in `warningMessages` what is wrong with it: unreachable, refusing the
//! credentials, holding no Istio metrics. Prometheus here is meshtrace's own API on a loopback
//! port; the secrets never show.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::IntoResponse;
use meshtrace_console::ConsoleOptions;
use meshtrace_metrics::http::{ApiOptions, router};
use meshtrace_metrics::{Labels, MemorySource};
use serde_json::Value;

#[path = "common/mod.rs"]
#[allow(dead_code)]
mod common;

const TOKEN: &str = "tok-SECRET";

/// meshtrace's Prometheus API under `/prometheus`, over `istio_requests_total` series sampled
/// now (`istio` of them), requiring the bearer token.
async fn prometheus(istio: usize) -> SocketAddr {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut source = MemorySource::builder();
    for i in 0..istio {
        let labels = Labels::new([
            ("__name__".to_string(), "istio_requests_total".to_string()),
            ("destination_workload".to_string(), format!("reviews-v{i}")),
        ]);
        source.push(&labels, now_ms - 5_000, 1.0);
    }
    let api = router(Arc::new(source.build()), ApiOptions::default()).layer(
        axum::middleware::from_fn(|request: Request, next: Next| async move {
            let authorized = request
                .headers()
                .get("authorization")
                .is_some_and(|v| v.as_bytes() == format!("Bearer {TOKEN}").as_bytes());
            if authorized {
                next.run(request).await
            } else {
                StatusCode::UNAUTHORIZED.into_response()
            }
        }),
    );
    let app: axum::Router = axum::Router::new().nest("/prometheus", api);
    meshtrace_testkit::http::serve(app).await
}

async fn status(prometheus_yaml: &str) -> Value {
    let yaml = format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: http://127.0.0.1:9\n    use_grpc: false\n  prometheus:\n{prometheus_yaml}"
    );
    let (console, _stop) = common::start_console(ConsoleOptions::default(), |_| yaml).await;
    // The first read waits a moment for Prometheus (at most a second); read until it is in.
    let mut body = Value::Null;
    for _ in 0..50 {
        body = reqwest::get(format!("http://{console}/api/status"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["externalServices"].as_array().unwrap().len() < 2
            || body["externalServices"][1]["version"].is_string()
            || !body["warningMessages"].as_array().unwrap().is_empty()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!body.to_string().contains("SECRET"), "{body}");
    body
}

fn auth() -> String {
    format!("    auth:\n      type: bearer\n      token: {TOKEN}\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn status_lists_prometheus_with_its_version_and_what_is_wrong() {
    // Reachable, with Istio's metrics: the version, no warning.
    let addr = prometheus(2).await;
    let body = status(&format!("    url: http://{addr}/prometheus\n{}", auth())).await;
    assert_eq!(body["externalServices"][0]["name"], "jaeger", "{body}");
    assert_eq!(
        body["externalServices"][1],
        serde_json::json!({"name": "Prometheus", "version": "3.0.0"})
    );
    assert_eq!(body["warningMessages"], serde_json::json!([]));

    // Reachable, no Istio metrics: the version, and why the pages will be empty.
    let empty = prometheus(0).await;
    let body = status(&format!("    url: http://{empty}/prometheus\n{}", auth())).await;
    assert_eq!(body["externalServices"][1]["version"], "3.0.0");
    let warning = body["warningMessages"][0].as_str().unwrap();
    assert!(
        warning.starts_with(&format!(
            "Prometheus at http://{empty}/prometheus has no istio_requests_total series in the last 5 minutes"
        )),
        "{warning}"
    );

    // Refused credentials: the entry without a version, the reason with what to check.
    let wrong = auth().replace(TOKEN, "bad-SECRET");
    let body = status(&format!("    url: http://{addr}/prometheus\n{wrong}")).await;
    assert_eq!(
        body["externalServices"][1],
        serde_json::json!({"name": "Prometheus"})
    );
    let warning = body["warningMessages"][0].as_str().unwrap();
    assert!(
        warning.starts_with(&format!(
            "Prometheus at http://{addr}/prometheus refused the credentials (HTTP 401)"
        )),
        "{warning}"
    );

    // Unreachable.
    let body = status("    url: http://127.0.0.1:9\n").await;
    let warning = body["warningMessages"][0].as_str().unwrap();
    assert!(
        warning.starts_with("Prometheus at http://127.0.0.1:9 is unreachable"),
        "{warning}"
    );

    // Disabled: not listed, nothing said.
    let body = status("    enabled: false\n").await;
    assert_eq!(
        body["externalServices"].as_array().unwrap().len(),
        1,
        "{body}"
    );
    assert_eq!(body["warningMessages"], serde_json::json!([]));
}
