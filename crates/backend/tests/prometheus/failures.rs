//! Prometheus that is slow, answers too much, is not Prometheus at all, redirects elsewhere, or
//! echoes the request (credentials included) in its errors: each gives an error naming the URL
//! and saying what to do, within the timeout, with bounded memory, and without a secret — in
//! the error or in the client's log.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::any;
use meshtrace_backend::prometheus::{ErrorKind, Expr, PrometheusOptions, Selector, Value};
use meshtrace_testkit::prometheus::RealPrometheus;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Ours, at, client, client_with, openmetrics, serve};

const PASSWORD: &str = "pw-S3cr3t\"<&>";
const TOKEN: &str = "tok-S3cr3t";
const HEADER: &str = "hdr-S3cr3t";

fn up() -> Expr {
    Expr::vector(Selector::metric("up").unwrap())
}

fn options(timeout_ms: u64, max_body_bytes: usize) -> PrometheusOptions {
    PrometheusOptions {
        timeout: Duration::from_millis(timeout_ms),
        max_body_bytes,
        ..PrometheusOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_prometheus_is_a_timeout_naming_the_url_and_query() {
    // Accepts connections and reads requests, never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    // Answers the headers, then one byte of the body every 100 ms.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let trickle_addr = listener.local_addr().unwrap();
    let trickle = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for _ in 0..1000 {
                    if stream.write_all(b" ").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
    });

    for url in [format!("http://{addr}"), format!("http://{trickle_addr}")] {
        let prometheus = client_with(&url, "", &options(500, 1 << 20));
        let e = prometheus.query(&up(), None).await.unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Timeout(Duration::from_millis(500)),
            "{e}"
        );
        let message = e.to_string();
        assert!(
            message.starts_with(&format!(
                "Prometheus at {url} did not answer within 0.5s (asked `up{{}}`)"
            )),
            "{message}"
        );
    }
    silent.abort();
    trickle.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_answer_is_refused_at_the_cap() {
    // Real answers over the cap: all 8 series for 10 minutes every second is ~200 KB.
    let real = RealPrometheus::start(&openmetrics()).await;
    let ours = Ours::start().await;
    let all = Expr::vector(Selector::metric("istio_requests_total").unwrap());
    for url in [real.url(""), ours.url()] {
        let small = client_with(&url, "", &options(10_000, 64 << 10));
        let e = small
            .query_range(&all, at(0), at(600), Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::TooLarge { limit: 64 << 10 }, "{e}");
        let message = e.to_string();
        assert!(
            message.contains(&format!(
                "Prometheus at {url} answered more than 65536 bytes"
            )),
            "{message}"
        );
        assert!(message.contains("a coarser step"), "{message}");
        // The same client reads an answer under the cap.
        let answer = small.query(&all, Some(at(300))).await.unwrap();
        assert!(matches!(answer.value, Value::Vector(ref v) if v.len() == 8));
    }
    // An endless body without a length: refused once the cap is passed, not read to the end.
    let endless = axum::Router::new().route(
        "/api/v1/query",
        any(|| async {
            let chunk = vec![b' '; 64 << 10];
            let stream = tokio_stream::iter(std::iter::repeat(chunk).map(Ok::<_, std::io::Error>));
            Body::from_stream(stream)
        }),
    );
    let (addr, task) = serve(endless).await;
    let e = client_with(&format!("http://{addr}"), "", &options(10_000, 1 << 20))
        .query(&up(), None)
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge { limit: 1 << 20 }, "{e}");
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_that_is_not_prometheus_is_said_so() {
    // A web page where the API should be (a console's root, a login page), 200 and 404.
    let page = "<html><head><title>Sign in</title><script>x()</script></head><body><h1>Please sign in</h1></body></html>";
    let app = axum::Router::new()
        .route(
            "/page/api/v1/query",
            any(move || async move { ([("content-type", "text/html")], page) }),
        )
        .route(
            "/gone/api/v1/query",
            any(|| async { (StatusCode::NOT_FOUND, "404 page not found") }),
        )
        .route(
            "/moved/api/v1/query",
            any(|| async {
                (
                    StatusCode::FOUND,
                    [("location", "http://127.0.0.2:9/elsewhere")],
                )
            }),
        )
        .route(
            "/down/api/v1/query",
            any(|| async {
                (
                    StatusCode::BAD_GATEWAY,
                    "<html><body><h1>502 Bad Gateway</h1></body></html>",
                )
            }),
        );
    let (addr, task) = serve(app).await;
    let cases = [
        (
            "page",
            200,
            "with Sign in Please sign in: this is not Prometheus's HTTP API",
        ),
        (
            "gone",
            404,
            "with 404 page not found: this is not Prometheus's HTTP API",
        ),
        (
            "moved",
            302,
            "redirects to another address, which meshtrace does not follow",
        ),
        (
            "down",
            502,
            "with 502 Bad Gateway: Prometheus, or a proxy in front of it, failed",
        ),
    ];
    for (path, status, said) in cases {
        let url = format!("http://{addr}/{path}");
        let e = client(&url).query(&up(), None).await.unwrap_err();
        let message = e.to_string();
        assert!(
            matches!(e.kind, ErrorKind::NotPrometheus { status: s, .. } if s == status),
            "{message}"
        );
        assert!(
            message.starts_with(&format!(
                "Prometheus at {url} answered HTTP {status} (asked `up{{}}`)"
            )),
            "{message}"
        );
        assert!(message.contains(said), "{said:?} not in {message}");
    }
    task.abort();

    // Nothing listens: unreachable, with the URL and what to check.
    let e = client("http://127.0.0.1:9")
        .query(&up(), None)
        .await
        .unwrap_err();
    let message = e.to_string();
    assert!(matches!(e.kind, ErrorKind::Unreachable(_)), "{message}");
    assert!(
        message.starts_with("Prometheus at http://127.0.0.1:9 is unreachable"),
        "{message}"
    );
    assert!(
        message.contains("check external_services.prometheus.url"),
        "{message}"
    );
}

/// Answers every request with its own headers and body: as Prometheus's JSON error, as text,
/// as HTML, or as the warnings and infos of a successful answer.
async fn echo(headers: HeaderMap, body: String) -> axum::response::Response {
    let mut text = String::new();
    for (name, value) in &headers {
        text.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    text.push_str(&body);
    let json =
        serde_json::json!({"status": "error", "errorType": text.clone(), "error": text.clone()});
    if body.contains("warn") {
        let answer = serde_json::json!({
            "status": "success",
            "data": {"resultType": "vector", "result": []},
            "warnings": [text.clone()],
            "infos": [text.clone()],
        });
        ([("content-type", "application/json")], answer.to_string()).into_response()
    } else if body.contains("json") {
        (StatusCode::UNPROCESSABLE_ENTITY, json.to_string()).into_response()
    } else if body.contains("html") {
        (
            StatusCode::BAD_GATEWAY,
            format!(
                "<html><pre>{}</pre></html>",
                text.replace('&', "&amp;").replace('<', "&lt;")
            ),
        )
            .into_response()
    } else {
        (StatusCode::INTERNAL_SERVER_ERROR, text).into_response()
    }
}

/// Collects everything the client logs, at every level.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_in_any_error_or_log() {
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (addr, task) = serve(axum::Router::new().fallback(echo)).await;
    let base = format!("http://kiali:{}@{addr}", "url-S3cr3t");
    let basic = format!(
        "    auth:\n      type: basic\n      username: kiali\n      password: {}\n    custom_headers:\n      X-Api-Key: {HEADER}\n",
        serde_json::to_string(PASSWORD).unwrap()
    );
    let bearer = format!(
        "    auth:\n      type: bearer\n      token: {TOKEN}\n    custom_headers:\n      X-Api-Key: {HEADER}\n"
    );
    let mut shown = Vec::new();
    for (url, auth) in [
        (base.clone(), ""),
        (format!("http://{addr}"), basic.as_str()),
        (format!("http://{addr}"), bearer.as_str()),
    ] {
        let prometheus = client_with(&url, auth, &PrometheusOptions::default());
        for marker in ["json", "html", "text"] {
            let expr = Expr::vector(Selector::metric("up").unwrap().eq("mode", marker).unwrap());
            let e = prometheus.query(&expr, None).await.unwrap_err();
            shown.push(e.to_string());
            shown.push(format!("{e:?}"));
        }
        // Prometheus's warnings and infos are excerpts too.
        let expr = Expr::vector(Selector::metric("up").unwrap().eq("mode", "warn").unwrap());
        let answer = prometheus.query(&expr, None).await.unwrap();
        assert_eq!(answer.warnings.len(), 1);
        shown.push(format!("{answer:?}"));
        shown.push(prometheus.describe().to_string());
        shown.push(prometheus.buildinfo().await.unwrap_err().to_string());
    }
    task.abort();
    let logged = String::from_utf8_lossy(&log.0.lock().unwrap()).to_string();
    // The capture works (the warning names the Prometheus and the query). The debug line of
    // each query is not required: a callsite first reached by a parallel test without this
    // subscriber can keep tracing's cached "not interested", which made the check flaky.
    assert!(
        logged.contains("Prometheus answered with warnings") && logged.contains("mode=\"warn\""),
        "the client's log was not captured: {logged}"
    );
    shown.push(logged);
    for text in &shown {
        assert!(!text.contains("S3cr3t"), "a secret leaked: {text}");
        for encoded in [
            base64(&format!("kiali:{PASSWORD}")),
            base64("kiali:url-S3cr3t"),
        ] {
            assert!(!text.contains(&encoded), "a Basic pair leaked: {text}");
        }
    }
    // The echoes were seen: the errors quote the answers, redacted.
    assert!(shown.iter().any(|s| s.contains("[redacted]")), "{shown:?}");
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}
