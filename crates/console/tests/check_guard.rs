//! The configuration check (`POST /api/tracing/check`, the tester form `POST /console/tracing`)
//! under attack, over the wire: real consoles on loopback ports, real HTTP servers standing for
//! the configured backend and for a stranger on another port of the same host, recording every
//! byte they receive, and reqwest (or a raw TCP stream) as the attacker.
//!
//! Issue 13, defect 2 (live secrets sent wherever the posted config points, cross-origin form
//! posts, port scanning) and the console part of defect 1 (the size of a posted draft).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::Request;
use axum::response::IntoResponse;
use base64::Engine as _;
use meshtrace_console::ConsoleOptions;
use serde_json::{Value, json};

#[allow(dead_code)]
mod common;

use common::post_check as check;

/// An HTTP server that answers as a Jaeger query service (and an OAuth2 token endpoint) and
/// keeps the raw text of every request: method, target, headers, body.
struct Recorder {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    async fn start() -> Recorder {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |request: Request| {
            let log = log.clone();
            async move {
                let (parts, body) = request.into_parts();
                let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
                let mut text = format!("{} {}\n", parts.method, parts.uri);
                for (name, value) in &parts.headers {
                    text.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value.as_bytes())));
                }
                text.push('\n');
                text.push_str(&String::from_utf8_lossy(&body));
                log.lock().unwrap().push(text);
                let json = match parts.uri.path() {
                    "/token" => json!({"access_token": "t0ken-from-idp", "token_type": "bearer", "expires_in": 300}),
                    _ => json!({"data": ["productpage"], "total": 1, "limit": 0, "offset": 0, "errors": null}),
                };
                axum::Json(json).into_response()
            }
        });
        let address = meshtrace_testkit::http::serve(app).await;
        Recorder { address, seen }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

const BASIC_PASSWORD: &str = "b4sic-s3cret";
const BEARER: &str = "bearer-s3cret";
const HEADER: &str = "hdr-s3cret";
const CLIENT_SECRET: &str = "client-s3cret";

/// Every form a configured secret can take on the wire.
fn secrets() -> Vec<String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    vec![
        BASIC_PASSWORD.to_string(),
        b64(&format!("kiali:{BASIC_PASSWORD}")),
        BEARER.to_string(),
        HEADER.to_string(),
        CLIENT_SECRET.to_string(),
        b64(&format!("meshtrace:{CLIENT_SECRET}")),
        "t0ken-from-idp".to_string(),
    ]
}

fn leaked(recorder: &Recorder) -> Vec<String> {
    let seen = recorder.seen().join("\n----\n");
    secrets().into_iter().filter(|s| seen.contains(s)).collect()
}

/// The auth block of each kind, in YAML (live) and as the console shows it (camelCase JSON).
fn auth(kind: &str, backend: &Recorder) -> (String, Value) {
    match kind {
        "basic" => (
            format!(
                "    auth:\n      type: basic\n      username: kiali\n      password: {BASIC_PASSWORD}\n"
            ),
            json!({"type": "basic", "username": "xxx", "password": "xxx"}),
        ),
        "bearer" => (
            format!("    auth:\n      type: bearer\n      token: {BEARER}\n"),
            json!({"type": "bearer", "token": "xxx"}),
        ),
        _ => (
            format!(
                "    auth:\n      type: oauth2\n      insecure_skip_verify: true\n      oauth2:\n        token_url: {}/token\n        client_id: meshtrace\n        client_secret: {CLIENT_SECRET}\n        auth_style: {kind}\n",
                backend.url()
            ),
            json!({"type": "oauth2", "insecureSkipVerify": true, "oauth2": {"tokenUrl": format!("{}/token", backend.url()), "clientId": "meshtrace", "clientSecret": "xxx", "authStyle": kind}}),
        ),
    }
}

/// A console whose backend is `backend` (Jaeger HTTP) with `auth` and a secret custom header.
async fn console(
    backend: &Recorder,
    auth_yaml: &str,
    any_host: bool,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let yaml = format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: {}\n    use_grpc: false\n    custom_headers:\n      X-Api-Key: {HEADER}\n{auth_yaml}",
        backend.url()
    );
    let options = ConsoleOptions {
        allow_check_any_host: any_host,
        background_inventory: false,
        ..ConsoleOptions::default()
    };
    common::start_console(options, move |_| yaml).await
}

/// The configuration as the console shows it: every secret `xxx`.
fn shown(internal_url: &str, auth: &Value) -> Value {
    json!({
        "enabled": true,
        "provider": "jaeger",
        "internalURL": internal_url,
        "useGRPC": false,
        "queryTimeout": 2,
        "customHeaders": {"X-Api-Key": "xxx"},
        "auth": auth,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn shown_secrets_go_to_the_configured_backend_only() {
    for kind in ["basic", "bearer", "header", "params"] {
        let backend = Recorder::start().await;
        let stranger = Recorder::start().await;
        let (auth_yaml, auth_json) = auth(kind, &backend);
        for any_host in [false, true] {
            let (c, _stop) = console(&backend, &auth_yaml, any_host).await;
            // Another port of the same host, and another scheme on the backend's own port.
            let mut answers = Vec::new();
            for elsewhere in [stranger.url(), format!("https://{}", backend.address)] {
                answers.push(check(c, &shown(&elsewhere, &auth_json)).await);
            }
            // The configured backend with the token URL of a stranger.
            if kind == "header" || kind == "params" {
                let mut posted = shown(&backend.url(), &auth_json);
                posted["auth"]["oauth2"]["tokenUrl"] = format!("{}/token", stranger.url()).into();
                answers.push(check(c, &posted).await);
            }
            assert_eq!(
                leaked(&stranger),
                Vec::<String>::new(),
                "{kind} any_host={any_host}"
            );
            for (status, body) in answers {
                // 403: out of reach; 400: the secrets would leave the configured backend.
                let expected = if any_host { 400 } else { 403 };
                assert_eq!(status, expected, "{kind} any_host={any_host}: {body}");
            }
            if !any_host {
                assert_eq!(
                    stranger.seen(),
                    Vec::<String>::new(),
                    "{kind}: the stranger was called"
                );
            }
            assert_eq!(
                backend.seen(),
                Vec::<String>::new(),
                "{kind}: the backend was called"
            );

            // The configuration as shown, unchanged: the live secrets go to the backend.
            let (status, body) = check(c, &shown(&format!("{}/", backend.url()), &auth_json)).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (200, Some("")),
                "{kind}: {body}"
            );
            let received = backend.seen().join("\n");
            assert!(received.contains(HEADER), "{kind}: {received}");
            let expected = match kind {
                "basic" => secrets()[1].clone(),
                "bearer" => BEARER.to_string(),
                "header" => secrets()[5].clone(),
                _ => CLIENT_SECRET.to_string(),
            };
            assert!(received.contains(&expected), "{kind}: {received}");
            backend.seen.lock().unwrap().clear();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_any_host_allowed_typed_values_reach_another_host() {
    let backend = Recorder::start().await;
    let stranger = Recorder::start().await;
    let (auth_yaml, _) = auth("basic", &backend);
    let (c, _stop) = console(&backend, &auth_yaml, true).await;
    let typed = json!({"type": "basic", "username": "other", "password": "typed-pass"});
    let mut posted = shown(&stranger.url(), &typed);
    posted["customHeaders"] = json!({});
    let (status, body) = check(c, &posted).await;
    assert_eq!((status, body["error"].as_str()), (200, Some("")), "{body}");
    let received = stranger.seen().join("\n");
    let pair = base64::engine::general_purpose::STANDARD.encode("other:typed-pass");
    assert!(received.contains(&pair), "{received}");
    assert_eq!(leaked(&stranger), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_and_open_ports_answer_alike() {
    let backend = Recorder::start().await;
    let open = Recorder::start().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let (auth_yaml, auth_json) = auth("basic", &backend);
    let (c, _stop) = console(&backend, &auth_yaml, false).await;
    let mut answers = Vec::new();
    for target in [open.url(), format!("http://{closed}")] {
        let mut posted = shown(&target, &auth_json);
        posted["auth"] = json!({"type": "none"});
        posted["customHeaders"] = json!({});
        let api = check(c, &posted).await;
        let form = reqwest::Client::new()
            .post(format!("http://{c}/console/tracing"))
            .form_config(&format!(
                "external_services:\n  tracing:\n    enabled: true\n    internal_url: {target}\n    use_grpc: false\n"
            ))
            .send()
            .await
            .unwrap();
        let status = form.status().as_u16();
        let page = form.text().await.unwrap();
        let result = page
            .split("id=\"check-result\"")
            .nth(1)
            .and_then(|rest| rest.split("</div>").next())
            .unwrap_or("no result on the page")
            .to_string();
        answers.push((api, status, result));
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0].0.0, 403, "{:?}", answers[0]);
    assert!(answers[0].2.contains("refused"), "{:?}", answers[0]);
    assert_eq!(open.seen(), Vec::<String>::new());
}

/// The tester's form: `config=<draft>`, form-encoded.
trait FormConfig {
    fn form_config(self, draft: &str) -> Self;
}

impl FormConfig for reqwest::RequestBuilder {
    fn form_config(self, draft: &str) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("config", draft)
            .finish();
        self.header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

/// Sends `request` with the given extra headers; the status and body.
async fn post_with(request: reqwest::RequestBuilder, headers: &[(&str, String)]) -> (u16, String) {
    let mut request = request;
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_origin_posts_are_refused() {
    let backend = Recorder::start().await;
    let (auth_yaml, auth_json) = auth("basic", &backend);
    let (c, _stop) = console(&backend, &auth_yaml, false).await;
    let client = reqwest::Client::new();
    let api = || {
        client
            .post(format!("http://{c}/api/tracing/check"))
            .json(&shown(&backend.url(), &auth_json))
    };
    let yaml = format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: {}\n    use_grpc: false\n    custom_headers:\n      X-Api-Key: xxx\n    auth:\n      type: basic\n      username: xxx\n      password: xxx\n",
        backend.url()
    );
    let form = || {
        client
            .post(format!("http://{c}/console/tracing"))
            .form_config(&yaml)
    };
    let evil = "http://evil.example".to_string();
    for headers in [
        vec![("Origin", evil.clone())],
        vec![("Origin", format!("http://127.0.0.1:{}", c.port() + 1))],
        vec![("Origin", "null".to_string())],
        vec![("Referer", format!("{evil}/page.html"))],
        vec![
            ("Sec-Fetch-Site", "cross-site".to_string()),
            ("Origin", evil.clone()),
        ],
        vec![("Sec-Fetch-Site", "same-site".to_string())],
    ] {
        for request in [api(), form()] {
            let (status, body) = post_with(request, &headers).await;
            assert_eq!(status, 403, "{headers:?}: {body}");
            assert!(
                body.contains("cross-origin request refused"),
                "{headers:?}: {body}"
            );
        }
    }
    assert_eq!(
        backend.seen(),
        Vec::<String>::new(),
        "a refused request reached the backend"
    );

    // The console's own pages, and clients that are not browsers, keep working.
    let own = format!("http://{c}");
    for headers in [
        vec![],
        vec![("Origin", own.clone())],
        vec![("Referer", format!("{own}/console/tracing"))],
        vec![
            ("Sec-Fetch-Site", "same-origin".to_string()),
            ("Origin", own.clone()),
        ],
    ] {
        let (status, body) = post_with(api(), &headers).await;
        assert_eq!(status, 200, "{headers:?}: {body}");
        let (status, body) = post_with(form(), &headers).await;
        assert_eq!(status, 200, "{headers:?}: {body}");
    }
    assert!(!backend.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_drafts_are_refused() {
    let backend = Recorder::start().await;
    let (c, _stop) = console(&backend, "", false).await;
    let client = reqwest::Client::new();
    let mut big = shown(&backend.url(), &json!({"type": "none"}));
    big["whiteListIstioSystem"] = json!(vec!["x".repeat(1000); 70]);
    let (status, body) = check(c, &big).await;
    assert_eq!(status, 413);
    assert_eq!(
        body["error"],
        "the configuration is larger than 64 KiB: post the tracing section only"
    );
    let response = client
        .post(format!("http://{c}/console/tracing"))
        .form_config(&format!("# {}", "a".repeat(70_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let page = response.text().await.unwrap();
    assert!(page.contains("larger than 64 KiB"));
    assert!(
        !page.contains(&"a".repeat(1000)),
        "the draft is shown again"
    );

    // A declared length past the limit is refused before any of the body is sent.
    for path in ["/api/tracing/check", "/console/tracing"] {
        let answer = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut stream = std::net::TcpStream::connect(c).unwrap();
            // Only so that a console waiting for the body fails the test instead of hanging it.
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(20)))
                .unwrap();
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: {c}\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).unwrap();
            let mut answer = vec![0; 4096];
            let read = stream.read(&mut answer).unwrap_or(0);
            String::from_utf8_lossy(&answer[..read]).into_owned()
        })
        .await
        .unwrap();
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
    }
    assert_eq!(backend.seen(), Vec::<String>::new());
}
