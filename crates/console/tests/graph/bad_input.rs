//! Bad requests to the graph routes, and a metrics source that fails: each answers Kiali's
//! JSON error with the right status and a message naming what was wrong; names with markup
//! come back as JSON text, never as markup.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use meshtrace_console::ConsoleOptions;
use meshtrace_metrics::http::{ApiOptions, router};
use meshtrace_metrics::{Labels, MemorySource};
use meshtrace_testkit::http::error_text;

use crate::bookinfo::{console_over, get, prometheus_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_named() {
    let store = crate::common::filled_store(40, 1, 3, &[]).await;
    let (console, _stop) = console_over(&store, &prometheus_url(&store)).await;
    let cases = [
        (
            "/api/namespaces/graph?namespaces=bookinfo&graphType=mesh",
            "Invalid graphType [mesh]: must be app, versionedApp, workload or service",
        ),
        (
            "/api/namespaces/graph?graphType=app",
            "At least one namespace must be specified via the namespaces query parameter.",
        ),
        (
            "/api/namespaces/graph?namespaces=bookinfo&colour=red",
            "unknown query parameter `colour`",
        ),
        (
            "/api/namespaces/graph?namespaces=bookinfo&duration=ten",
            "Invalid duration [ten]",
        ),
        (
            "/api/namespaces/graph?namespaces=bookinfo&appenders=deadNode,magic",
            "Invalid appender [magic]",
        ),
        (
            "/api/namespaces/graph?namespaces=bookinfo&responseTime=90",
            "Invalid responseTime [90]",
        ),
        (
            "/api/namespaces/graph?namespaces=bookinfo&rateTcp=requests",
            "Invalid rateTcp [requests]",
        ),
        (
            "/api/namespaces/graph?namespaces=bookinfo,nowhere",
            "Invalid namespace [nowhere]: the console knows no such namespace",
        ),
        (
            "/api/namespaces/bookinfo/applications/reviews/graph?graphType=workload",
            "Invalid graphType [workload]. This node detail graph supports only graphType app or versionedApp.",
        ),
        (
            "/api/namespaces/graph?namespaces=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "Invalid namespace [<script>alert(1)</script>]",
        ),
        (
            "/api/namespaces/bookinfo/workloads/%3Cimg%20src%3Dx%3E/graph",
            "Invalid workload [<img src=x>]",
        ),
    ];
    for (path, message) in cases {
        let (status, body) = get(console, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        let error = error_text(&body);
        assert!(error.starts_with(message), "{path}: {error}");
    }
    // The known namespaces are listed for the unknown one.
    let (_, body) = get(console, "/api/namespaces/graph?namespaces=nowhere").await;
    assert!(
        error_text(&body).contains("bookinfo, istio-system, travel"),
        "{body}"
    );
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_source_failures_and_limits() {
    let store = crate::common::filled_store(20, 1, 4, &[]).await;

    // Nothing listens: 503 naming the Prometheus and why.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let url = format!("http://{closed}");
    let (console, _stop) = console_over(&store, &url).await;
    let (status, body) = get(console, "/api/namespaces/graph?namespaces=bookinfo").await;
    assert_eq!(status, 503, "{body}");
    let error = error_text(&body);
    assert!(
        error.contains(&format!("Prometheus at http://{closed}")),
        "{error}"
    );
    assert!(error.contains("is unreachable"), "{error}");
    // Whichever query failed first (they run concurrently) is named.
    assert!(
        error.contains("(asked `round("),
        "the query is named: {error}"
    );

    // Disabled: 503 saying so.
    let yaml = format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: http://{}\n    use_grpc: false\n  prometheus:\n    enabled: false\n",
        store.addresses.query_http
    );
    let (console, _stop) = crate::common::start_console(ConsoleOptions::default(), |_| yaml).await;
    let (status, body) = get(console, "/api/namespaces/graph?namespaces=bookinfo").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        error_text(&body).contains("Prometheus is disabled"),
        "{body}"
    );

    // A mesh past the graph's bounds: 422 naming the limit, not an unbounded answer.
    let mut source = MemorySource::builder();
    let now = now_ms();
    for i in 0..3000 {
        let labels = Labels::new(
            [
                ("__name__", "istio_requests_total"),
                ("reporter", "source"),
                ("source_workload_namespace", "bookinfo"),
                ("source_workload", &format!("caller-{i}")),
                ("source_canonical_service", &format!("caller-{i}")),
                ("source_canonical_revision", "v1"),
                ("destination_service_namespace", "bookinfo"),
                (
                    "destination_service",
                    &format!("callee-{i}.bookinfo.svc.cluster.local"),
                ),
                ("destination_service_name", &format!("callee-{i}")),
                ("destination_workload_namespace", "bookinfo"),
                ("destination_workload", &format!("callee-{i}-v1")),
                ("destination_canonical_service", &format!("callee-{i}")),
                ("destination_canonical_revision", "v1"),
                ("request_protocol", "http"),
                ("response_code", "200"),
                ("response_flags", "-"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        source.push(&labels, now - 60_000, 0.0);
        source.push(&labels, now - 1_000, 60.0);
    }
    let api = router(Arc::new(source.build()), ApiOptions::default());
    let app: axum::Router = axum::Router::new().nest("/prometheus", api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let prometheus = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let url = format!("http://{prometheus}/prometheus");
    let (console, _stop) = console_over(&store, &url).await;
    let (status, body) = get(
        console,
        "/api/namespaces/graph?namespaces=bookinfo&duration=5m&appenders=",
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(error_text(&body).contains("more than 5000 nodes"), "{body}");
}
