//! What the traces routes make of their requests: bad ones are named, the cluster asked (or
//! the home cluster) scopes the search, and without a backend every route says why.

use meshtrace_console::ConsoleOptions;

use crate::{console, data, error, get, setup, spans, tag, tracing_yaml};

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_are_named() {
    let s = setup(1, true).await;
    let c = s.console;
    for (path, status, message) in [
        (
            "/api/namespaces/bookinfo/apps/productpage/traces?lmit=5",
            400,
            "unknown query parameter `lmit`",
        ),
        (
            "/api/namespaces/bookinfo/apps/productpage/traces?limit=0",
            400,
            "query parameter `limit` must be greater than 0",
        ),
        (
            "/api/namespaces/bookinfo/apps/productpage/traces?startMicros=abc",
            400,
            "query parameter `startMicros` must be a non-negative integer, found `abc`",
        ),
        (
            "/api/namespaces/bookinfo/apps/productpage/traces?tags=null",
            400,
            "query parameter `tags` must be a JSON object",
        ),
        (
            "/api/namespaces/bookinfo/gadgets/productpage/traces",
            404,
            "no such route: `gadgets` is not apps, workloads or services",
        ),
        (
            "/api/namespaces/bookinfo/apps/productpage/errortraces",
            400,
            "query parameter `duration` (seconds) is required",
        ),
        (
            "/api/namespaces/bookinfo/apps/productpage/errortraces?duration=0",
            400,
            "query parameter `duration` must be a number of seconds greater than 0, found `0`",
        ),
        (
            "/api/traces/0123456789abcdef0123456789abcdef0",
            400,
            "Invalid trace ID format",
        ),
    ] {
        let (got, body) = get(c, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert!(error(&body).starts_with(message), "{path}: {body}");
    }
}

/// Every trace of `body` has a span in `cluster`.
fn all_in_cluster(body: &serde_json::Value, cluster: &str) {
    for trace in data(body) {
        assert!(
            spans(trace)
                .iter()
                .any(|s| tag(s, "istio.cluster_id") == Some(cluster))
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cluster_scoping() {
    let s = setup(2, true).await;
    let c = s.console;
    let all = get(
        c,
        "/api/namespaces/bookinfo/apps/productpage/traces?limit=1000",
    )
    .await
    .1;
    let all = data(&all).len();
    for cluster in ["cluster-1", "cluster-2"] {
        let (status, body) = get(
            c,
            &format!(
                "/api/namespaces/bookinfo/apps/reviews/traces?limit=1000&clusterName={cluster}"
            ),
        )
        .await;
        assert_eq!(status, 200);
        assert!(!data(&body).is_empty());
        all_in_cluster(&body, cluster);
    }
    assert!(all > 0);
    // No cluster configured or asked: no istio.cluster_id tag is added, every trace matches.
    let (_, body) = get(c, "/api/namespaces/bookinfo/apps/reviews/traces?limit=1000").await;
    let unscoped = data(&body).len();
    let (_, body) = get(
        c,
        "/api/namespaces/bookinfo/apps/reviews/traces?limit=1000&clusterName=elsewhere",
    )
    .await;
    assert_eq!(data(&body).len(), 0);
    assert!(unscoped > 0);

    // The home cluster from kubernetes_config.cluster_name scopes every query.
    let url = format!("http://{}", s.store.addresses.query_grpc);
    let (home, _stop) = console(
        &format!(
            "{}kubernetes_config:\n  cluster_name: cluster-2\n",
            tracing_yaml(&url, true, "")
        ),
        ConsoleOptions::default(),
    )
    .await;
    let (_, body) = get(
        home,
        "/api/namespaces/bookinfo/apps/reviews/traces?limit=1000",
    )
    .await;
    let scoped = data(&body);
    assert!(!scoped.is_empty() && scoped.len() <= unscoped);
    all_in_cluster(&body, "cluster-2");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_backend_the_traces_routes_say_why() {
    // Only external_url: links, no charts.
    let (c, _stop) = console(
        "external_services:\n  tracing:\n    enabled: true\n    external_url: http://jaeger.example.com\n",
        ConsoleOptions::default(),
    )
    .await;
    let (_, info) = get(c, "/api/tracing").await;
    assert_eq!(info["integration"], false);
    assert_eq!(info["url"], "http://jaeger.example.com");
    for path in [
        "/api/namespaces/bookinfo/apps/productpage/traces",
        "/api/namespaces/bookinfo/workloads/reviews-v2/spans",
        "/api/traces/abc",
        "/api/namespaces",
    ] {
        let (status, body) = get(c, path).await;
        assert_eq!(status, 503, "{path}");
        assert!(
            error(&body).starts_with("tracing has no internal_url"),
            "{body}"
        );
    }

    // Tracing disabled.
    let (c, _stop2) = console(
        "external_services:\n  tracing:\n    enabled: false\n",
        ConsoleOptions::default(),
    )
    .await;
    let (_, info) = get(c, "/api/tracing").await;
    assert_eq!(
        info,
        serde_json::json!({"enabled": false, "integration": false, "url": ""})
    );
    let (status, body) = get(c, "/api/namespaces/bookinfo/apps/productpage/traces").await;
    assert_eq!(status, 503);
    assert!(error(&body).starts_with("tracing is not enabled"));

    // A backend that is not there: 503 naming it, no secret.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (c, _stop3) = console(
        &tracing_yaml(
            &format!("http://user:pw-SECRET@{dead}"),
            false,
            "    auth:\n      type: bearer\n      token: tok-SECRET\n",
        ),
        ConsoleOptions::default(),
    )
    .await;
    let (status, body) = get(c, "/api/namespaces/bookinfo/apps/productpage/traces").await;
    assert_eq!(status, 503);
    let message = error(&body);
    assert!(
        message.starts_with(&format!("Jaeger HTTP at http://user:xxx@{dead}")),
        "{message}"
    );
    let (status, body) = get(c, "/api/status").await;
    assert_eq!(status, 200);
    assert_eq!(body["externalServices"][0]["name"], "jaeger");
    let (_, info) = get(c, "/api/tracing").await;
    for text in [message.to_string(), body.to_string(), info.to_string()] {
        assert!(!text.contains("SECRET"), "{text}");
    }
}
