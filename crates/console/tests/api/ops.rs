//! The configuration check, diagnose, status, health and metrics; and every route under the
//! web root.

use meshtrace_console::ConsoleOptions;
use serde_json::Value;

use crate::common::post_check;
use crate::{console, error, filled_store, get, setup, tracing_yaml};

#[tokio::test(flavor = "multi_thread")]
async fn check_status_metrics_and_health() {
    let s = setup(1, true).await;
    let c = s.console;
    let grpc = s.store.addresses.query_grpc;

    // The live configuration, as the console shows it (camelCase, secrets as xxx).
    let posted = serde_json::json!({
        "enabled": true,
        "provider": "jaeger",
        "internalURL": format!("http://{grpc}"),
        "useGRPC": true,
        "queryTimeout": 3,
        "customHeaders": {"X-Tenant": "xxx"},
    });
    let (status, body) = post_check(c, &posted).await;
    assert_eq!(status, 200);
    assert_eq!(body["error"], "", "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Success getting service status")
    );

    // Another port of the backend's host, or another host: refused with one answer, the
    // console is neither an open proxy nor a port scanner.
    let mut other_port = posted.clone();
    other_port["internalURL"] = format!("http://{}", s.store.addresses.query_http).into();
    let mut elsewhere = posted.clone();
    elsewhere["internalURL"] = "http://10.1.2.3:16685".into();
    for refused in [other_port, elsewhere] {
        let (status, body) = post_check(c, &refused).await;
        assert_eq!(status, 403);
        assert!(
            error(&body).starts_with("refused: the check only reaches the configured backend"),
            "{body}"
        );
    }

    // Invalid configurations are 400 with every problem.
    let (status, body) = post_check(
        c,
        &serde_json::json!({"internalURL": "http://127.0.0.1:1", "qeuryTimeout": 3}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("qeury_timeout"),
        "{body}"
    );

    // Diagnose finds the store's gRPC port.
    let (status, body) = get(c, "/api/tracing/diagnose").await;
    assert_eq!(status, 200);
    assert_eq!(body["validConfig"][0]["url"], format!("http://{grpc}"));
    assert_eq!(body["validConfig"][0]["useGRPC"], true);
    assert!(!body["logLine"].as_array().unwrap().is_empty());

    let (status, body) = get(c, "/api/status").await;
    assert_eq!(status, 200);
    assert_eq!(
        body["externalServices"][0]["url"],
        "http://jaeger.example.com"
    );

    assert_eq!(get(c, "/healthz").await, (200, Value::String("ok".into())));
    let (status, ready) = get(c, "/readyz").await;
    assert_eq!(status, 200);
    assert_eq!(ready["backend"], format!("Jaeger gRPC at http://{grpc}"));

    get(c, "/api/namespaces/bookinfo/apps/productpage/traces").await;
    let (_, metrics) = get(c, "/metrics").await;
    let metrics = metrics.as_str().unwrap();
    assert!(metrics.contains("meshtrace_http_requests_total{route=\"/api/namespaces/{namespace}/{kind}/{name}/traces\",method=\"GET\",status=\"200\"} 1"), "{metrics}");
    assert!(
        metrics.contains(
            "meshtrace_tracing_processing_duration_seconds_count{query_group=\"AppTraces\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("meshtrace_http_request_duration_seconds_bucket{le=\"+Inf\",route=\"/api/tracing/check\"} 4"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_lives_under_the_web_root() {
    let store = filled_store(20, 1).await;
    let yaml = format!(
        "{}server:\n  web_root: /kiali\n",
        tracing_yaml(&format!("http://{}", store.addresses.query_grpc), true, "")
    );
    let (c, _stop) = console(&yaml, ConsoleOptions::default()).await;
    assert_eq!(get(c, "/kiali/api/tracing").await.0, 200);
    assert_eq!(get(c, "/api/tracing").await.0, 404);
    assert_eq!(get(c, "/healthz").await.0, 200);
    assert_eq!(get(c, "/kiali/healthz").await.0, 200);
}
