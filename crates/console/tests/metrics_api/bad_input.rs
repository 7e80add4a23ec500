//! Every way a metrics request can go wrong, with its status and message: Prometheus down,
//! slow, answering HTML, refusing the credentials, refusing the query, not configured; bad
//! parameters and bad stats bodies. No answer holds the password. And the cache: asked twice
//! within `cache_duration`, Prometheus is asked once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use base64::Engine as _;
use meshtrace_backend::prometheus::PrometheusOptions;
use meshtrace_console::ConsoleOptions;
use serde_json::{Value, json};

use crate::{common, config, get, post_stats};

const PASSWORD: &str = "pw-SECRET";

/// A server answering every request with `answer`, counting the requests.
async fn fake<F, R>(answer: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(Request) -> R + Clone + Send + Sync + 'static,
    R: std::future::Future<Output = axum::response::Response> + Send + 'static,
{
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let app = axum::Router::new().fallback(move |request: Request| {
        counter.fetch_add(1, Ordering::SeqCst);
        answer(request)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, asked)
}

/// Prometheus's answer to any query: nothing.
async fn empty(_: Request) -> axum::response::Response {
    (
        [("content-type", "application/json")],
        r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
    )
        .into_response()
}

fn basic_auth() -> String {
    format!("    auth:\n      type: basic\n      username: kiali\n      password: {PASSWORD}\n")
}

async fn console_for(prometheus_yaml: &str, options: ConsoleOptions) -> SocketAddr {
    let yaml = config("http://127.0.0.1:9", prometheus_yaml);
    let (console, stop) = common::start_console(options, |_| yaml).await;
    // The console lives as long as the test process.
    std::mem::forget(stop);
    console
}

/// The error of a console with the Prometheus of `prometheus_yaml` (default options).
async fn error_of(prometheus_yaml: &str) -> String {
    unavailable(console_for(prometheus_yaml, ConsoleOptions::default()).await).await
}

/// The 503 of the workload metrics route, its message checked for the password.
async fn unavailable(console: SocketAddr) -> String {
    let (status, body) = get(
        console,
        "/api/namespaces/bookinfo/workloads/reviews-v1/metrics?filters[]=request_count",
    )
    .await;
    assert_eq!(status, 503, "{body}");
    let text = body.to_string();
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("kiali:{PASSWORD}"));
    assert!(
        !text.contains("SECRET") && !text.contains(&encoded),
        "{text}"
    );
    body["error"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_failures_answer_503_with_the_url_and_the_reason() {
    // Slow: the client's deadline ends it.
    let (slow, _) = fake(|_| async {
        tokio::time::sleep(Duration::from_secs(600)).await;
        StatusCode::OK.into_response()
    })
    .await;
    let options = ConsoleOptions {
        prometheus: PrometheusOptions {
            timeout: Duration::from_secs(1),
            ..PrometheusOptions::default()
        },
        ..ConsoleOptions::default()
    };
    let console = console_for(&format!("    url: http://{slow}\n"), options).await;
    let error = unavailable(console).await;
    assert!(
        error.starts_with(&format!(
            "error in metric request_count: Prometheus at http://{slow} did not answer within 1s"
        )),
        "{error}"
    );

    // A web page where Prometheus should be.
    let (html, _) = fake(|_| async {
        (
            [("content-type", "text/html")],
            "<html><body>Welcome to nginx!</body></html>",
        )
            .into_response()
    })
    .await;
    let error = error_of(&format!("    url: http://{html}\n")).await;
    assert!(
        error.contains(&format!("Prometheus at http://{html} answered HTTP 200")),
        "{error}"
    );
    assert!(
        error.contains("this is not Prometheus's HTTP API"),
        "{error}"
    );

    // Refused credentials; the server echoes what it was sent, password included.
    for code in [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN] {
        let (refusing, _) = fake(move |request: Request| async move {
            let sent = format!("{:?}", request.headers());
            (code, sent).into_response()
        })
        .await;
        let error = error_of(&format!("    url: http://{refusing}\n{}", basic_auth())).await;
        assert!(
            error.contains(&format!(
                "Prometheus at http://{refusing} refused the credentials (HTTP {})",
                code.as_u16()
            )),
            "{error}"
        );
    }

    // A query Prometheus refuses, with its reason.
    let (refusing, _) = fake(|_| async {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            [("content-type", "application/json")],
            r#"{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory"}"#,
        )
            .into_response()
    })
    .await;
    let error = error_of(&format!("    url: http://{refusing}\n")).await;
    assert!(
        error.contains("(HTTP 422, execution): query processing would load too many samples"),
        "{error}"
    );
    assert!(
        error.contains("istio_requests_total{"),
        "the query is named: {error}"
    );

    // Down.
    let error = error_of("    url: http://127.0.0.1:9\n").await;
    assert!(
        error.contains("Prometheus at http://127.0.0.1:9 is unreachable"),
        "{error}"
    );

    // Not configured.
    let error = error_of("    enabled: false\n").await;
    assert!(
        error.contains("Prometheus is disabled (enabled: false)"),
        "{error}"
    );
    let query = json!({"queries": [{"target": {"namespace": "bookinfo", "name": "reviews-v1", "kind": "workload"},
        "queryTime": 1_700_000_000, "interval": "10m", "direction": "inbound", "avg": true}]});
    let (status, body) = post_stats(console, &query).await;
    assert_eq!(status, 503, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_parameters_and_bodies_are_refused_with_kialis_messages() {
    let (prometheus, asked) = fake(empty).await;
    let console = console_for(
        &format!("    url: http://{prometheus}\n"),
        ConsoleOptions::default(),
    )
    .await;
    let bad = |path: &'static str| async move {
        let (status, body) = get(console, path).await;
        (
            status,
            body["error"].as_str().unwrap_or_default().to_string(),
        )
    };
    assert_eq!(
        bad("/api/namespaces/bookinfo/metrics?foo=1").await,
        (400, "unsupported query parameter 'foo'".to_string())
    );
    assert_eq!(
        bad("/api/namespaces/bookinfo/workloads/w/metrics?includeAmbient=true").await,
        (
            400,
            "unsupported query parameter 'includeAmbient'".to_string()
        )
    );
    let (status, error) =
        bad("/api/namespaces/bookinfo/apps/a/metrics?duration=86400&step=5").await;
    assert_eq!(status, 400);
    assert!(
        error.contains("'duration' (86400s) and 'step' (5s) ask for 17280 points per series, more than the 11000"),
        "{error}"
    );
    assert_eq!(
        bad("/api/namespaces/bookinfo/apps/a/metrics?direction=sideways").await,
        (
            400,
            "bad request, query parameter 'direction' must be either 'inbound' or 'outbound'"
                .to_string()
        )
    );
    assert_eq!(
        bad("/api/namespaces/bookinfo/apps/a/metrics?byLabels[]=le)%20or%20vector(1)").await,
        (
            400,
            "bad request, invalid label name in 'byLabels': \"le) or vector(1)\"".to_string()
        )
    );
    assert_eq!(bad("/api/namespaces/bookinfo/pods/a/metrics").await.0, 404);
    assert_eq!(
        asked.load(Ordering::SeqCst),
        0,
        "no bad request reaches Prometheus"
    );

    // Stats bodies.
    let post_raw = |body: String| {
        let url = format!("http://{console}/api/stats/metrics");
        let request = reqwest::Client::new().post(url);
        crate::send(
            request
                .header("content-type", "application/json")
                .body(body),
        )
    };
    let (status, body) = post_raw("{not json".to_string()).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        post_raw(format!("{{\"queries\":[\"{}\"]}}", "x".repeat(300 * 1024))).await;
    assert_eq!(status, 413, "{body}");
    let many: Vec<Value> = (0..201).map(|_| json!({})).collect();
    let (status, body) = post_stats(console, &json!({"queries": many})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "bad request: 201 queries, at most 200 are answered at once"
    );
    let (status, body) = post_stats(console, &json!({"queries": [{"queryTime": "soon"}]})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "json: cannot unmarshal string into Go struct field MetricsStatsQueries.Queries.queryTime of type int64"
    );
    let invalid = json!({"queries": [{
        "target": {"namespace": "bookinfo", "name": "reviews", "kind": "service"},
        "direction": "outbound", "reporters": ["destination"]
    }]});
    let (status, body) = post_stats(console, &invalid).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["error"],
        "4 errors:\nbad request: only 'inbound' direction is allowed for kind 'service'\n\
         bad request: 'reporters' can only include 'source' or 'waypoint' for direction 'outbound'\n\
         bad request: 'queryTime' must be defined\nbad request: 'interval' must be defined"
    );
    // One good query among bad ones: its stats, and the others as warnings. Field names in
    // any case, as Go reads them.
    let mixed = json!({"Queries": [
        {"TARGET": {"Namespace": "bookinfo", "name": "reviews-v1", "kind": "workload"},
         "queryTime": 1_700_000_000, "interval": "10m", "direction": "inbound", "avg": true},
        {"target": {"namespace": "bookinfo", "name": "", "kind": "workload"},
         "queryTime": 1_700_000_000, "interval": "10m", "direction": "inbound"},
        {"target": {"namespace": "bookinfo", "name": "x", "kind": "workload"},
         "queryTime": 1_700_000_000, "interval": "10m", "direction": "inbound", "quantiles": ["0.5) or vector(1"]},
    ]});
    let (status, body) = post_stats(console, &mixed).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "stats": {"bookinfo:workload:reviews-v1::inbound:10m:destination": {"responseTimes": []}},
            "warnings": [
                "bad request: 'target.name' must be defined",
                "bad request: invalid quantile \"0.5) or vector(1\": should be a number between 0 and 1",
            ],
        })
    );
    let (status, body) = post_stats(console, &json!({})).await;
    assert_eq!(
        (status, body),
        (200, json!({"stats": {}, "warnings": null}))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_are_kept_for_cache_duration() {
    let path = |time: i64| {
        format!("/api/namespaces/bookinfo/metrics?filters[]=request_count&queryTime={time}")
    };
    let (prometheus, asked) = fake(empty).await;
    let console = console_for(
        &format!("    url: http://{prometheus}\n    cache_duration: 10\n"),
        ConsoleOptions::default(),
    )
    .await;
    let (status, first) = get(console, &path(1_700_000_000)).await;
    assert_eq!((status, &first), (200, &json!({"request_count": null})));
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    // 9 s later: still within cache_duration.
    let (_, again) = get(console, &path(1_700_000_009)).await;
    assert_eq!(again, first);
    assert_eq!(asked.load(Ordering::SeqCst), 1, "answered from the cache");
    // 10 s later, or earlier than the answer kept: asked again.
    get(console, &path(1_700_000_010)).await;
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    get(console, &path(1_699_999_999)).await;
    assert_eq!(asked.load(Ordering::SeqCst), 3);

    let (prometheus, asked) = fake(empty).await;
    let console = console_for(
        &format!("    url: http://{prometheus}\n    cache_enabled: false\n"),
        ConsoleOptions::default(),
    )
    .await;
    get(console, &path(1_700_000_000)).await;
    get(console, &path(1_700_000_000)).await;
    assert_eq!(asked.load(Ordering::SeqCst), 2, "no cache");
}
