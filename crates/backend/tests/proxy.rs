//! The Jaeger clients through a real nginx in front of a real `meshtrace store`, as production
//! setups put one: TLS with a CA made by the test, basic auth, a bearer token, mutual TLS, and a
//! custom header the proxy insists on. And a slow link that makes the deadline run out while
//! traces are streaming in.
//!
//! nginx comes from Debian's package `nginx` (`./scripts/test` installs it).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meshtrace_backend::{BackendError, Options, TraceQuery, TracingBackend, connect};
use meshtrace_model::{KeyValue, Span, TraceId};
use meshtrace_store::Store;
use meshtrace_store::server::LoopbackServer;
use meshtrace_testkit::{SpanBuilder, now, process};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "proxy/nginx.rs"]
mod nginx;

use nginx::{Nginx, Pki, free_ports};

const PASSWORD: &str = "pw-SECRET";
const TOKEN: &str = "tok-SECRET";

/// `traces` traces of `per_trace` spans each, all of service `reviews.bookinfo`.
fn dataset(traces: u64, per_trace: u64) -> Vec<Span> {
    let process = process(
        "reviews.bookinfo",
        vec![KeyValue::string("hostname", "reviews-v2-7d8f9c6b5-x2kqp")],
    );
    let base = now() - 60_000_000;
    let mut spans = Vec::new();
    for t in 1..=traces {
        for s in 1..=per_trace {
            let operation = format!("reviews.bookinfo.svc.cluster.local:9080/op{s}");
            spans.push(
                SpanBuilder::new((t as u128) << 64 | 5, t * 1000 + s, &operation, &process)
                    .at(base + t * 1000 + s, 1000)
                    .tag(KeyValue::string("span.kind", "server"))
                    .tag(KeyValue::string(
                        "http.url",
                        "http://reviews:9080/reviews/0",
                    ))
                    .build(),
            );
        }
    }
    spans
}

async fn store(spans: &[Span]) -> LoopbackServer {
    let store = Store::in_memory(Duration::from_secs(3600 * 24));
    store.write(spans).unwrap();
    LoopbackServer::start(Arc::new(store), 1 << 20)
        .await
        .unwrap()
}

fn backend(
    internal_url: &str,
    use_grpc: bool,
    extra: &str,
) -> Result<Box<dyn TracingBackend>, BackendError> {
    backend_with_timeout(internal_url, use_grpc, 3, extra)
}

fn backend_with_timeout(
    internal_url: &str,
    use_grpc: bool,
    query_timeout: u32,
    extra: &str,
) -> Result<Box<dyn TracingBackend>, BackendError> {
    let yaml = format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: {internal_url}\n    use_grpc: {use_grpc}\n    query_timeout: {query_timeout}\n{extra}"
    );
    let loaded = meshtrace_config::load_str(&yaml).unwrap_or_else(|e| panic!("{e:?}: {yaml}"));
    connect(&loaded.config.tracing, &Options::default())
}

/// The error a client connected with `extra` gives when asked for the services: the
/// configuration must be accepted, the call must fail.
async fn services_error(internal_url: &str, use_grpc: bool, extra: &str) -> BackendError {
    backend(internal_url, use_grpc, extra)
        .unwrap()
        .services()
        .await
        .unwrap_err()
}

fn query(limit: usize) -> TraceQuery {
    TraceQuery {
        service: "reviews.bookinfo".into(),
        tags: BTreeMap::new(),
        start: now() - 3_600_000_000,
        end: now(),
        min_duration: None,
        limit,
    }
}

/// The answers a client must give for the three-trace dataset.
async fn answers_fully(client: &dyn TracingBackend) {
    client.status().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(client.services().await.unwrap(), ["reviews.bookinfo"]);
    let found = client.find_traces(&query(20)).await.unwrap();
    assert_eq!(found.traces.len(), 3, "{}", client.describe());
    assert_eq!(found.partial, None);
    let trace = client
        .get_trace(TraceId(2 << 64 | 5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(trace.spans.len(), 4);
}

fn assert_no_secret(message: &str) {
    assert!(!message.contains("SECRET"), "a secret leaked: {message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn through_nginx_with_tls_basic_auth_bearer_mtls_and_custom_headers() {
    let server = store(&dataset(3, 4)).await;
    let pki = Pki::new();
    std::fs::write(pki.path("htpasswd"), format!("kiali:{{PLAIN}}{PASSWORD}\n")).unwrap();
    let [basic, bearer, mutual] = free_ports();
    let tls = format!(
        "ssl_certificate {}; ssl_certificate_key {};",
        pki.path("server.pem").display(),
        pki.path("server.key").display()
    );
    let http = server.addresses.query_http;
    let grpc = server.addresses.query_grpc;
    let servers = format!(
        r#"
  # Jaeger HTTP under /jaeger: basic auth and a tenant header.
  server {{
    listen 127.0.0.1:{basic} ssl;
    {tls}
    location /jaeger/ {{
      auth_basic "tracing";
      auth_basic_user_file {htpasswd};
      if ($http_x_tenant != "bookinfo") {{ return 403; }}
      proxy_pass http://{http}/;
    }}
  }}
  # Jaeger gRPC over TLS and HTTP/2: a bearer token and the tenant header.
  server {{
    listen 127.0.0.1:{bearer} ssl http2;
    {tls}
    location / {{
      if ($http_authorization != "Bearer {TOKEN}") {{ return 401; }}
      if ($http_x_tenant != "bookinfo") {{ return 403; }}
      grpc_pass grpc://{grpc};
    }}
  }}
  # Mutual TLS: the client must show a certificate from the test CA.
  server {{
    listen 127.0.0.1:{mutual} ssl;
    {tls}
    ssl_client_certificate {ca};
    ssl_verify_client on;
    location / {{ proxy_pass http://{http}; }}
  }}
"#,
        htpasswd = pki.path("htpasswd").display(),
        ca = pki.path("ca.pem").display(),
    );
    let _nginx = Nginx::start(&servers, &[basic, bearer, mutual]).await;
    let ca = format!("      ca_file: {}\n", pki.path("ca.pem").display());
    let tenant = "    custom_headers:\n      X-Tenant: bookinfo\n";

    // Basic auth, Jaeger HTTP with a path prefix, the CA file, the custom header.
    let basic_auth = format!(
        "    auth:\n      type: basic\n      username: kiali\n      password: {PASSWORD}\n{ca}{tenant}"
    );
    let url = format!("https://localhost:{basic}/jaeger");
    answers_fully(&*backend(&url, false, &basic_auth).unwrap()).await;

    // The same through gRPC with a bearer token sent as metadata.
    let bearer_auth = format!("    auth:\n      type: bearer\n      token: {TOKEN}\n{ca}{tenant}");
    let grpc_url = format!("https://localhost:{bearer}");
    answers_fully(&*backend(&grpc_url, true, &bearer_auth).unwrap()).await;

    // Mutual TLS with the client certificate and key as files.
    let mtls = format!(
        "    auth:\n      cert_file: {}\n      key_file: {}\n{ca}",
        pki.path("client.pem").display(),
        pki.path("client.key").display()
    );
    let mtls_url = format!("https://localhost:{mutual}");
    answers_fully(&*backend(&mtls_url, false, &mtls).unwrap()).await;

    // insecure_skip_verify: the CA is not needed.
    let insecure = format!(
        "    auth:\n      type: basic\n      username: kiali\n      password: {PASSWORD}\n      insecure_skip_verify: true\n{tenant}"
    );
    answers_fully(&*backend(&url, false, &insecure).unwrap()).await;

    // What goes wrong, said precisely and without secrets.
    let wrong_password = basic_auth.replace(PASSWORD, "wrong-SECRET");
    let error = services_error(&url, false, &wrong_password).await;
    assert!(
        matches!(error, BackendError::Unauthorized { status: 401, .. }),
        "{error}"
    );
    assert_no_secret(&error.to_string());

    let no_tenant = basic_auth.replace(tenant, "");
    let error = services_error(&url, false, &no_tenant).await;
    assert!(
        matches!(error, BackendError::Unauthorized { status: 403, .. }),
        "{error}"
    );

    let unknown_ca = basic_auth.replace(&ca, "");
    let message = services_error(&url, false, &unknown_ca).await.to_string();
    assert!(message.contains("certificate"), "{message}");
    assert!(message.contains("ca_file"), "{message}");

    let wrong_token = bearer_auth.replace(TOKEN, "bad-SECRET");
    let error = services_error(&grpc_url, true, &wrong_token).await;
    let message = error.to_string();
    assert!(message.contains("credentials were refused"), "{message}");
    assert_no_secret(&message);

    let no_client_cert = ca.clone();
    let error = services_error(&mtls_url, false, &format!("    auth:\n{no_client_cert}")).await;
    assert!(
        matches!(error, BackendError::Status { status: 400, .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_settings_that_cannot_work_are_config_errors() {
    let pki = Pki::new();
    let url = "https://localhost:9";
    let cases = [
        (
            "    auth:\n      ca_file: /no/such/ca.pem\n".to_string(),
            "auth.ca_file `/no/such/ca.pem` cannot be read",
        ),
        (
            format!(
                "    auth:\n      ca_file: {}\n",
                pki.path("server.key").display()
            ),
            "holds no PEM certificate",
        ),
        (
            format!(
                "    auth:\n      cert_file: {}\n      key_file: {}\n",
                pki.path("client.pem").display(),
                pki.path("ca.pem").display()
            ),
            "auth.key_file holds no PEM private key",
        ),
    ];
    for (yaml, expected) in cases {
        for use_grpc in [false, true] {
            let Err(error) = backend(url, use_grpc, &yaml) else {
                panic!("{yaml} was accepted");
            };
            assert!(error.to_string().contains(expected), "{error}");
        }
    }
}

/// Passes bytes both ways, the server's answer at about `bytes_per_second`.
async fn slow_link(
    upstream: std::net::SocketAddr,
    bytes_per_second: usize,
) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = tokio::net::TcpStream::connect(upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
            });
            tokio::spawn(async move {
                let step = bytes_per_second / 20;
                let mut buffer = vec![0u8; step];
                loop {
                    match server_read.read(&mut buffer).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if client_write.write_all(&buffer[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
        }
    });
    address
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deadline_that_runs_out_mid_stream_gives_a_partial_answer() {
    // 400 traces of 12 spans: about 700 KB of chunks, 14 s over a 50 KB/s link; the
    // query_timeout is 1 s.
    let server = store(&dataset(400, 12)).await;
    let link = slow_link(server.addresses.query_grpc, 50_000).await;
    let client = backend_with_timeout(&format!("http://{link}"), true, 1, "").unwrap();
    let found = client.find_traces(&query(1000)).await.unwrap();
    assert_eq!(
        found.partial.as_deref(),
        Some("the query_timeout of 1s ran out while traces were arriving: the list is incomplete")
    );
    assert!(!found.traces.is_empty());
    assert!(found.traces.len() < 400, "{}", found.traces.len());
    // Every trace shown is whole: a trace cut by the deadline is left out.
    assert!(found.traces.iter().all(|t| t.spans.len() == 12));

    // A trace that cannot arrive in time is an error, not half a trace.
    let mut big = dataset(1, 6000);
    for span in &mut big {
        span.trace_id = TraceId(9 << 64 | 9);
    }
    let server = store(&big).await;
    let link = slow_link(server.addresses.query_grpc, 50_000).await;
    let client = backend_with_timeout(&format!("http://{link}"), true, 1, "").unwrap();
    let error = client.get_trace(TraceId(9 << 64 | 9)).await.unwrap_err();
    assert!(matches!(error, BackendError::Timeout { .. }), "{error}");
}

/// What the OAuth2 token endpoint saw, and the tokens it issued (`tok-1`, `tok-2`, …).
#[derive(Default)]
struct TokenLog {
    requests: std::sync::Mutex<Vec<(Option<String>, String)>>,
}

/// A client-credentials token endpoint (an identity provider cannot run here): each request
/// gets a new token valid for `lifetime` seconds; the client `kiali` with secret `cs-SECRET`
/// is the only one accepted, in the header or in the form.
async fn token_endpoint(lifetime: u64) -> (String, Arc<TokenLog>) {
    use axum::http::{HeaderMap, StatusCode};
    let log = Arc::new(TokenLog::default());
    let seen = log.clone();
    let app = axum::Router::new().route(
        "/token",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                let authorization = headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_string());
                let form: BTreeMap<String, String> =
                    form_urlencoded::parse(body.as_bytes()).into_owned().collect();
                let mut requests = seen.requests.lock().unwrap();
                requests.push((authorization.clone(), body.clone()));
                let by_header = authorization.as_deref() == Some("Basic a2lhbGk6Y3MtU0VDUkVU");
                let by_form = form.get("client_id").map(String::as_str) == Some("kiali")
                    && form.get("client_secret").map(String::as_str) == Some("cs-SECRET");
                if !(by_header || by_form) {
                    return (
                        StatusCode::UNAUTHORIZED,
                        r#"{"error":"invalid_client"}"#.to_string(),
                    );
                }
                (
                    StatusCode::OK,
                    format!(
                        r#"{{"access_token":"tok-{}","token_type":"Bearer","expires_in":{lifetime}}}"#,
                        requests.len()
                    ),
                )
            }
        }),
    );
    let address = meshtrace_testkit::http::serve(app).await;
    (format!("http://{address}/token"), log)
}

#[tokio::test(flavor = "multi_thread")]
async fn oauth2_tokens_are_fetched_cached_and_refreshed() {
    let server = store(&dataset(3, 4)).await;
    let [port] = free_ports();
    let http = server.addresses.query_http;
    let servers = format!(
        r#"
  server {{
    listen 127.0.0.1:{port};
    location / {{
      if ($http_authorization !~ "^Bearer tok-[0-9]+$") {{ return 401; }}
      proxy_pass http://{http};
    }}
  }}
"#
    );
    let _nginx = Nginx::start(&servers, &[port]).await;
    let url = format!("http://127.0.0.1:{port}");

    // Header style; the token lives 11 s, so with the 10 s margin it is fetched again after 1 s.
    let (token_url, log) = token_endpoint(11).await;
    let oauth2 = format!(
        "    auth:\n      type: oauth2\n      insecure_skip_verify: true\n      oauth2:\n        token_url: {token_url}\n        client_id: kiali\n        client_secret: cs-SECRET\n        scopes: [traces.read, openid]\n        audience: tracing\n"
    );
    let client = backend(&url, false, &oauth2).unwrap();
    answers_fully(&*client).await;
    {
        let requests = log.requests.lock().unwrap();
        assert_eq!(requests.len(), 1, "one token for four calls");
        assert_eq!(
            requests[0],
            (
                Some("Basic a2lhbGk6Y3MtU0VDUkVU".to_string()),
                "grant_type=client_credentials&scope=traces.read+openid&audience=tracing"
                    .to_string()
            )
        );
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    client.services().await.unwrap();
    assert_eq!(log.requests.lock().unwrap().len(), 2, "refreshed");

    // Params style: the client's id and secret in the form.
    let (token_url, log) = token_endpoint(3600).await;
    let params = format!(
        "    auth:\n      type: oauth2\n      insecure_skip_verify: true\n      oauth2:\n        token_url: {token_url}\n        client_id: kiali\n        client_secret: cs-SECRET\n        auth_style: params\n"
    );
    backend(&url, false, &params)
        .unwrap()
        .services()
        .await
        .unwrap();
    let requests = log.requests.lock().unwrap().clone();
    assert_eq!(
        requests,
        [(
            None,
            "grant_type=client_credentials&client_id=kiali&client_secret=cs-SECRET".to_string()
        )]
    );

    // A refused client: the token endpoint's answer is told, the secret is not.
    let refused = params.replace("cs-SECRET", "other-SECRET");
    let message = services_error(&url, false, &refused).await.to_string();
    assert!(
        message.contains(&format!(
            "the OAuth2 token URL {token_url} answered HTTP 401: {{\"error\":\"invalid_client\"}}"
        )),
        "{message}"
    );
    assert_no_secret(&message);
}

#[tokio::test(flavor = "multi_thread")]
async fn diagnose_finds_tls_ports_and_probes_them_over_https() {
    let server = store(&dataset(3, 4)).await;
    let pki = Pki::new();
    let [https, grpcs] = free_ports();
    let tls = format!(
        "ssl_certificate {}; ssl_certificate_key {};",
        pki.path("server.pem").display(),
        pki.path("server.key").display()
    );
    let servers = format!(
        r#"
  server {{ listen 127.0.0.1:{https} ssl; {tls} location / {{ proxy_pass http://{http}; }} }}
  server {{ listen 127.0.0.1:{grpcs} ssl http2; {tls} location / {{ grpc_pass grpc://{grpc}; }} }}
"#,
        http = server.addresses.query_http,
        grpc = server.addresses.query_grpc,
    );
    let _nginx = Nginx::start(&servers, &[https, grpcs]).await;
    let yaml = format!(
        "external_services:\n  tracing:\n    auth:\n      ca_file: {}\n",
        pki.path("ca.pem").display()
    );
    let base = meshtrace_config::load_str(&yaml).unwrap().config.tracing;
    // No usual ports: whatever else listens on Jaeger's ports of this machine plays no part.
    let diagnosis = meshtrace_backend::diagnose::diagnose_ports(
        &format!("localhost:{https}"),
        &base,
        &[grpcs],
        &[],
        &Options::default(),
    )
    .await
    .unwrap();
    let working: Vec<(bool, &str)> = diagnosis
        .working
        .iter()
        .map(|w| (w.use_grpc, w.internal_url.as_str()))
        .collect();
    assert_eq!(
        working,
        [
            (true, format!("https://localhost:{grpcs}").as_str()),
            (false, format!("https://localhost:{https}").as_str()),
        ],
        "{:#?}",
        diagnosis.probes
    );
    assert!(
        diagnosis
            .probes
            .iter()
            .any(|p| p.test == format!("tls localhost:{https}") && p.result.is_ok())
    );
    // The block to paste carries the TLS settings the probes used.
    let block = diagnosis.working[0].yaml();
    assert!(
        block.contains(&format!("ca_file: {}", pki.path("ca.pem").display())),
        "{block}"
    );

    // Without the CA, the https probes fail and say why.
    let bare = meshtrace_config::TracingConfig::default();
    let diagnosis = meshtrace_backend::diagnose::diagnose_ports(
        &format!("localhost:{https}"),
        &bare,
        &[],
        &[],
        &Options::default(),
    )
    .await
    .unwrap();
    assert!(diagnosis.working.is_empty());
    let http_probe = diagnosis
        .probes
        .iter()
        .find(|p| p.test == format!("Jaeger HTTP https://localhost:{https}"))
        .unwrap();
    let reason = http_probe.result.clone().unwrap_err();
    assert!(reason.contains("set auth.ca_file"), "{reason}");
}
