//! The console's API end to end: a real `meshtrace store` on loopback ports, the simulator
//! sending Bookinfo traffic to it over OTLP/gRPC, and the console reading the store over the
//! wire (Jaeger gRPC or HTTP), asked with reqwest.

use std::collections::BTreeSet;
use std::net::SocketAddr;

mod common;

use meshtrace_console::ConsoleOptions;
use meshtrace_store::server::LoopbackServer;
use serde_json::Value;

struct Setup {
    store: LoopbackServer,
    console: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn filled_store(requests: usize, clusters: usize) -> LoopbackServer {
    common::filled_store(requests, clusters, 7, &[]).await
}

async fn console(
    yaml: &str,
    options: ConsoleOptions,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    common::start_console(options, |_| yaml.to_string()).await
}

fn tracing_yaml(internal_url: &str, use_grpc: bool, extra: &str) -> String {
    format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: {internal_url}\n    use_grpc: {use_grpc}\n    external_url: http://jaeger.example.com\n{extra}"
    )
}

async fn setup(clusters: usize, use_grpc: bool) -> Setup {
    let store = filled_store(300, clusters).await;
    let url = if use_grpc {
        format!("http://{}", store.addresses.query_grpc)
    } else {
        format!("http://{}", store.addresses.query_http)
    };
    let (console, stop) =
        console(&tracing_yaml(&url, use_grpc, ""), ConsoleOptions::default()).await;
    Setup {
        store,
        console,
        _stop: stop,
    }
}

async fn get(console: SocketAddr, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("http://{console}{path}"))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

fn tag<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .and_then(|t| t["value"].as_str())
}

fn has_error(span: &Value) -> bool {
    span["tags"].as_array().is_some_and(|tags| {
        tags.iter()
            .any(|t| t["key"] == "error" && (t["value"] == true || t["value"] == "true"))
    })
}

/// The pod in a span's node_id.
fn pod(span: &Value) -> String {
    tag(span, "node_id")
        .and_then(|n| n.split('~').nth(2))
        .and_then(|s| s.rsplit_once('.'))
        .map(|(pod, _)| pod.to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn kiali_routes_over_grpc_and_http() {
    for use_grpc in [true, false] {
        let s = setup(1, use_grpc).await;
        let c = s.console;

        let (status, info) = get(c, "/api/tracing").await;
        assert_eq!(status, 200);
        assert_eq!(info["enabled"], true);
        assert_eq!(info["integration"], true);
        assert_eq!(info["provider"], "jaeger");
        assert_eq!(info["url"], "http://jaeger.example.com");

        // App traces: Kiali's TracingResponse.
        let (status, body) = get(
            c,
            "/api/namespaces/bookinfo/apps/productpage/traces?limit=50",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["tracingServiceName"], "productpage.bookinfo");
        let traces = body["data"].as_array().unwrap();
        assert!(!traces.is_empty());
        for trace in traces {
            assert!(trace["traceID"].as_str().unwrap().len() == 32);
            assert!(
                trace["processes"]
                    .as_object()
                    .unwrap()
                    .values()
                    .any(|p| p["serviceName"] == "productpage.bookinfo")
            );
        }
        assert_eq!(
            body["partial"], true,
            "50 of 300 traces: the limit was reached"
        );
        assert!(
            body["errors"][0]["msg"]
                .as_str()
                .unwrap()
                .contains("limit of 50")
        );

        // A workload's traces all hold a span from one of its pods.
        let (status, body) = get(
            c,
            "/api/namespaces/bookinfo/workloads/reviews-v2/traces?limit=500",
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["tracingServiceName"], "reviews.bookinfo");
        let traces = body["data"].as_array().unwrap();
        assert!(!traces.is_empty());
        assert_eq!(body["partial"], false);
        for trace in traces {
            let spans = trace["spans"].as_array().unwrap();
            assert!(
                spans.iter().any(|s| pod(s).starts_with("reviews-v2-")),
                "{trace}"
            );
        }
        // ...and not every reviews trace is one of reviews-v2's.
        let (_, all_reviews) =
            get(c, "/api/namespaces/bookinfo/apps/reviews/traces?limit=500").await;
        assert!(all_reviews["data"].as_array().unwrap().len() > traces.len());

        // A service's traces hold a call to it.
        let (_, body) = get(
            c,
            "/api/namespaces/bookinfo/services/ratings/traces?limit=500",
        )
        .await;
        for trace in body["data"].as_array().unwrap() {
            assert!(trace["spans"].as_array().unwrap().iter().any(|s| {
                s["operationName"]
                    .as_str()
                    .unwrap()
                    .starts_with("ratings.bookinfo.svc.cluster.local")
            }));
        }

        // Errors only.
        let (_, body) = get(c, "/api/namespaces/bookinfo/apps/productpage/traces?limit=500&tags=%7B%22error%22%3A%22true%22%7D").await;
        let failed = body["data"].as_array().unwrap();
        assert!(!failed.is_empty());
        for trace in failed {
            assert!(trace["spans"].as_array().unwrap().iter().any(has_error));
        }
        let (status, count) = get(
            c,
            "/api/namespaces/bookinfo/apps/productpage/errortraces?duration=3600",
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(count.as_u64().unwrap() as usize, failed.len());

        // Spans: the workload's own spans, with traceSize and what they say about the mesh.
        let (status, spans) = get(
            c,
            "/api/namespaces/bookinfo/workloads/reviews-v2/spans?limit=500",
        )
        .await;
        assert_eq!(status, 200);
        let spans = spans.as_array().unwrap();
        assert!(!spans.is_empty());
        for span in spans {
            assert!(pod(span).starts_with("reviews-v2-"), "{span}");
            assert!(span["traceSize"].as_u64().unwrap() >= 2);
            assert_eq!(span["process"]["serviceName"], "reviews.bookinfo");
            assert_eq!(span["mesh"]["workload"], "reviews-v2");
            assert_eq!(span["mesh"]["app"], "reviews");
            assert!(["inbound", "outbound"].contains(&span["mesh"]["direction"].as_str().unwrap()));
        }

        // A trace by ID; malformed and unknown IDs.
        let id = traces[0]["traceID"].as_str().unwrap();
        let (status, body) = get(c, &format!("/api/traces/{id}")).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["traceID"], id);
        assert_eq!(
            body["data"]["spans"].as_array().unwrap().len(),
            traces[0]["spans"].as_array().unwrap().len()
        );
        let (status, body) = get(c, "/api/traces/not-hex").await;
        assert_eq!(status, 400);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("Invalid trace ID format")
        );
        let (status, body) = get(c, "/api/traces/00000000000000000000000000abcdef").await;
        assert_eq!(status, 404);
        assert_eq!(
            body["error"],
            "Trace 00000000000000000000000000abcdef not found"
        );

        // Inventory.
        let (status, body) = get(c, "/api/namespaces").await;
        assert_eq!(status, 200, "{body}");
        let names: BTreeSet<&str> = body["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains("bookinfo") && names.contains("istio-system"),
            "{names:?}"
        );
        let (_, body) = get(c, "/api/namespaces/bookinfo/apps").await;
        let apps: BTreeSet<&str> = body["applications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            apps,
            BTreeSet::from(["details", "productpage", "ratings", "reviews"])
        );
        let (_, body) = get(c, "/api/namespaces/bookinfo/workloads").await;
        let workloads: BTreeSet<&str> = body["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert!(
            workloads.is_superset(&BTreeSet::from([
                "reviews-v1",
                "reviews-v2",
                "reviews-v3",
                "productpage-v1"
            ])),
            "{workloads:?}"
        );
        let (_, reviews) = get(c, "/api/namespaces/bookinfo/apps/reviews").await;
        assert_eq!(
            reviews["related"],
            serde_json::json!(["reviews-v1", "reviews-v2", "reviews-v3"])
        );
        assert!(reviews["counts"]["requests"].as_u64().unwrap() > 0);
        let (_, ratings) = get(c, "/api/namespaces/bookinfo/services/ratings").await;
        assert_eq!(ratings["app"], "ratings");
        assert!(ratings["inventory"]["traces"].as_u64().unwrap() > 0);
        let (status, body) = get(c, "/api/namespaces/bookinfo/apps/nosuch").await;
        assert_eq!(status, 404);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("`nosuch` was not seen")
        );

        drop(s.store);
    }
}

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
        assert!(
            body["error"].as_str().unwrap().starts_with(message),
            "{path}: {body}"
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
    let all = all["data"].as_array().unwrap().len();
    for cluster in ["cluster-1", "cluster-2"] {
        let (status, body) = get(
            c,
            &format!(
                "/api/namespaces/bookinfo/apps/reviews/traces?limit=1000&clusterName={cluster}"
            ),
        )
        .await;
        assert_eq!(status, 200);
        let traces = body["data"].as_array().unwrap();
        assert!(!traces.is_empty());
        for trace in traces {
            assert!(
                trace["spans"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| tag(s, "istio.cluster_id") == Some(cluster))
            );
        }
    }
    assert!(all > 0);
    // No cluster configured or asked: no istio.cluster_id tag is added, every trace matches.
    let (_, body) = get(c, "/api/namespaces/bookinfo/apps/reviews/traces?limit=1000").await;
    let unscoped = body["data"].as_array().unwrap().len();
    let (_, body) = get(
        c,
        "/api/namespaces/bookinfo/apps/reviews/traces?limit=1000&clusterName=elsewhere",
    )
    .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 0);
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
    let scoped = body["data"].as_array().unwrap();
    assert!(!scoped.is_empty() && scoped.len() <= unscoped);
    for trace in scoped {
        assert!(
            trace["spans"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| tag(s, "istio.cluster_id") == Some("cluster-2"))
        );
    }
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
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("tracing has no internal_url"),
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
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("tracing is not enabled")
    );

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
    let message = body["error"].as_str().unwrap();
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
    let client = reqwest::Client::new();
    let check = |body: Value| {
        let client = client.clone();
        async move {
            let response = client
                .post(format!("http://{c}/api/tracing/check"))
                .json(&body)
                .send()
                .await
                .unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = check(posted.clone()).await;
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
        let (status, body) = check(refused).await;
        assert_eq!(status, 403);
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .starts_with("refused: the check only reaches the configured backend"),
            "{body}"
        );
    }

    // Invalid configurations are 400 with every problem.
    let (status, body) =
        check(serde_json::json!({"internalURL": "http://127.0.0.1:1", "qeuryTimeout": 3})).await;
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
