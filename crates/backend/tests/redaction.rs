//! Backends that echo the request (issue 13, defect 9): a gateway or a misbehaving backend that
//! answers an error with the request's headers and body must not put the configured
//! credentials into the errors the clients build — those are shown on the console's API, its
//! pages and its logs. Echo servers on loopback answer 500/502 in text, JSON, HTML and gRPC.

mod common;

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine as _;
use meshtrace_backend::{BackendError, TraceQuery, TracingBackend};

const USER: &str = "kiali";
/// Every secret holds `S3cr3t`, so no plain, JSON-, HTML- or form-encoded copy goes unseen;
/// their base64 forms are checked one by one.
const PASSWORD: &str = "pw-S3cr3t/&+\"<x> y";
const TOKEN: &str = "tok-S3cr3t";
const HEADER_VALUE: &str = "hdr-S3cr3t";
const CLIENT_SECRET: &str = "cs-S3cr3t&+ =";
const ACCESS_TOKEN: &str = "at-S3cr3t-1";

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn form(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Fails when `shown` holds a secret in any form an echo can produce.
fn assert_clean(shown: &str) {
    let forbidden = [
        "S3cr3t".to_string(),
        b64(&format!("{USER}:{PASSWORD}")),
        b64(&format!("{USER}:{}", form(CLIENT_SECRET))),
        b64(&format!("{USER}:{CLIENT_SECRET}")),
    ];
    for secret in &forbidden {
        assert!(
            !shown.contains(secret.as_str()),
            "`{secret}` leaked: {shown}"
        );
    }
}

#[derive(Clone, Copy)]
enum Echo {
    /// 500, text/plain: request line, headers, body.
    Text,
    /// 502, application/json, as API gateways report upstream failures.
    Json,
    /// 502, text/html, as nginx-style error pages look, with the request in a `<pre>`.
    Html,
    /// 200 with text that is not what the API answers (a login page, a misrouted path).
    Ok,
}

async fn echo(
    State(mode): State<Echo>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let mut text = format!("{method} {uri}\n");
    for (name, value) in &headers {
        text.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&body));
    match mode {
        Echo::Text => (StatusCode::INTERNAL_SERVER_ERROR, text).into_response(),
        Echo::Ok => (StatusCode::OK, text).into_response(),
        Echo::Json => {
            let headers: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect();
            let json = serde_json::json!({
                "message": "upstream failed",
                "request": {"uri": uri.to_string(), "headers": headers,
                            "body": String::from_utf8_lossy(&body)},
            });
            (
                StatusCode::BAD_GATEWAY,
                [("content-type", "application/json")],
                json.to_string(),
            )
                .into_response()
        }
        Echo::Html => {
            let escaped = text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;");
            let page = format!(
                "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<pre>{escaped}</pre><script>alert(1)</script>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
            );
            (
                StatusCode::BAD_GATEWAY,
                [("content-type", "text/html")],
                page,
            )
                .into_response()
        }
    }
}

async fn echo_server(mode: Echo) -> String {
    let app = axum::Router::new().fallback(echo).with_state(mode);
    let address = meshtrace_testkit::http::serve(app).await;
    format!("http://{address}")
}

fn backend(
    provider: &str,
    use_grpc: bool,
    internal_url: &str,
    extra: &str,
) -> Box<dyn TracingBackend> {
    let extra = format!(
        "    query_timeout: 3\n    custom_headers:\n      X-Api-Key: {HEADER_VALUE}\n{extra}"
    );
    common::tracing_backend(provider, use_grpc, internal_url, &extra)
}

fn basic() -> String {
    format!("    auth:\n      type: basic\n      username: {USER}\n      password: {PASSWORD:?}\n")
}

fn bearer() -> String {
    format!("    auth:\n      type: bearer\n      token: {TOKEN}\n")
}

fn query() -> TraceQuery {
    TraceQuery {
        service: "reviews.bookinfo".into(),
        tags: [("mesh_id".to_string(), "m1".to_string())].into(),
        start: 1,
        end: 2,
        min_duration: None,
        limit: 20,
    }
}

/// The errors of every call of `client`, as they are shown.
async fn errors(client: &dyn TracingBackend) -> Vec<String> {
    let mut shown = vec![
        client.services().await.unwrap_err().to_string(),
        client.status().await.unwrap_err().to_string(),
        client.find_traces(&query()).await.unwrap_err().to_string(),
        client
            .get_trace(meshtrace_model::TraceId(42))
            .await
            .unwrap_err()
            .to_string(),
    ];
    shown.dedup();
    shown
}

#[tokio::test(flavor = "multi_thread")]
async fn echoed_credentials_are_not_in_the_errors_of_the_http_clients() {
    for (mode, status) in [(Echo::Text, 500), (Echo::Json, 502), (Echo::Html, 502)] {
        let url = echo_server(mode).await;
        for (provider, auth) in [
            ("jaeger", basic()),
            ("tempo", bearer()),
            ("jaeger", bearer()),
        ] {
            let client = backend(provider, false, &url, &auth);
            for shown in errors(&*client).await {
                assert_clean(&shown);
                // The error still says what happened.
                assert!(
                    shown.contains(&format!("answered HTTP {status}")),
                    "{shown}"
                );
                assert!(shown.len() < 1024, "the excerpt is capped: {shown}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn html_error_pages_are_told_as_text() {
    let url = echo_server(Echo::Html).await;
    let shown = backend("jaeger", false, &url, &basic())
        .services()
        .await
        .unwrap_err()
        .to_string();
    assert_clean(&shown);
    assert!(!shown.contains('<') && !shown.contains("alert"), "{shown}");
    assert!(shown.contains("502 Bad Gateway"), "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_2xx_answer_is_not_relayed_with_the_credentials() {
    let url = echo_server(Echo::Ok).await;
    for (provider, auth) in [("jaeger", basic()), ("tempo", bearer())] {
        let client = backend(provider, false, &url, &auth);
        let error = client.find_traces(&query()).await.unwrap_err();
        assert!(matches!(error, BackendError::Decode { .. }), "{error}");
        assert_clean(&error.to_string());
        let error = client.services().await.unwrap_err();
        assert_clean(&error.to_string());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_echoing_token_url_shows_neither_the_client_secret_nor_the_token() {
    let echo = echo_server(Echo::Text).await;
    for style in ["header", "params"] {
        let oauth2 = format!(
            "    auth:\n      type: oauth2\n      insecure_skip_verify: true\n      oauth2:\n        token_url: {echo}/token\n        client_id: {USER}\n        client_secret: {CLIENT_SECRET:?}\n        auth_style: {style}\n"
        );
        let client = backend("jaeger", false, &echo, &oauth2);
        let shown = client.services().await.unwrap_err().to_string();
        assert_clean(&shown);
        assert!(shown.contains("answered HTTP 500"), "{shown}");
    }

    // A token endpoint that works, in front of a backend that echoes: the access token it
    // gave out is not shown either.
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(|| async {
            (
                [("content-type", "application/json")],
                format!(r#"{{"access_token":"{ACCESS_TOKEN}","expires_in":3600}}"#),
            )
        }),
    );
    let address = meshtrace_testkit::http::serve(app).await;
    let oauth2 = format!(
        "    auth:\n      type: oauth2\n      insecure_skip_verify: true\n      oauth2:\n        token_url: http://{address}/token\n        client_id: {USER}\n        client_secret: {CLIENT_SECRET:?}\n"
    );
    for shown in errors(&*backend("tempo", false, &echo, &oauth2)).await {
        assert_clean(&shown);
    }
}

/// A gRPC server whose every call fails with a status message holding the request's metadata,
/// as a gateway that reports what it received might.
#[derive(Clone)]
struct GrpcEcho;

impl tonic::server::NamedService for GrpcEcho {
    const NAME: &'static str = "jaeger.api_v2.QueryService";
}

impl tower::Service<http::Request<tonic::body::Body>> for GrpcEcho {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let mut text = String::from("rejected:");
        for (name, value) in request.headers() {
            text.push_str(&format!(
                " {name}={}",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        std::future::ready(Ok(tonic::Status::internal(text).into_http()))
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn echoed_metadata_is_not_in_the_errors_of_the_grpc_client() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(GrpcEcho)
            .serve_with_incoming(incoming),
    );
    let url = format!("http://{address}");
    for auth in [basic(), bearer()] {
        let client = backend("jaeger", true, &url, &auth);
        let shown = client.services().await.unwrap_err().to_string();
        assert_clean(&shown);
        assert!(shown.contains("rejected"), "{shown}");
    }
}
