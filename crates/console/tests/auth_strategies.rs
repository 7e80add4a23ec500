//! `anonymous` (the console as before, and `/api/auth/info` saying so) and `header` behind a
//! real nginx that logs users in: nginx reaches the console from 127.0.0.2, the only address
//! the console trusts, and adds the Authorization (and Impersonate-User) headers; the same
//! headers sent straight from 127.0.0.1 are refused.

#[allow(dead_code)]
mod common;
#[allow(dead_code)]
#[path = "../../backend/tests/proxy/nginx.rs"]
mod nginx;

use std::net::SocketAddr;

use base64::Engine as _;
use meshtrace_console::auth::AuthOptions;
use meshtrace_console::{Console, ConsoleOptions};
use meshtrace_testkit::http::no_redirects;
use reqwest::StatusCode;
use serde_json::{Value, json};

const KEY: &str = "0123456789abcdef";

async fn console(yaml: &str, trusted: &[&str]) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let options = ConsoleOptions {
        background_inventory: false,
        auth: AuthOptions {
            trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
            ..AuthOptions::default()
        },
        ..ConsoleOptions::default()
    };
    common::start_console(options, |_| yaml.to_string()).await
}

/// A GET with `headers`, its status and JSON body.
async fn get_json(url: &str, headers: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut request = no_redirects().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread")]
async fn anonymous_serves_everyone_and_says_so() {
    let (console, _stop) = console("auth:\n  strategy: anonymous\n", &[]).await;
    let client = no_redirects();
    let url = |path: &str| format!("http://{console}{path}");
    let (_, info) = get_json(&url("/api/auth/info"), &[]).await;
    assert_eq!(info, json!({ "strategy": "anonymous", "sessionInfo": {} }));
    for path in ["/api/status", "/console/services"] {
        assert_eq!(
            client.get(url(path)).send().await.unwrap().status(),
            StatusCode::OK,
            "{path}"
        );
    }
    let login = client.get(url("/login")).send().await.unwrap();
    assert_eq!(login.status(), StatusCode::FOUND);
    assert_eq!(login.headers()["location"], "/");
    let logout = client.get(url("/api/logout")).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let redirect = client
        .get(url("/api/auth/openid_redirect"))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        redirect.text().await.unwrap(),
        "OpenId strategy is not enabled"
    );
}

/// A token shaped like a Kubernetes service account's (only its claims are read).
fn service_account_token() -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = b64.encode(r#"{"sub":"system:serviceaccount:mesh:viewer"}"#);
    format!("{}.{claims}.c2ln", b64.encode(r#"{"alg":"RS256"}"#))
}

#[tokio::test(flavor = "multi_thread")]
async fn header_trusts_only_the_proxy_behind_a_real_nginx() {
    let yaml = format!("auth:\n  strategy: header\nlogin_token:\n  signing_key: {KEY}\n");
    let (console, _stop) = console(&yaml, &["127.0.0.2/32"]).await;
    let [plain, alice] = nginx::free_ports::<2>();
    let token = service_account_token();
    let servers = format!(
        "server {{ listen 127.0.0.1:{plain};\n location / {{ proxy_pass http://{console};\n \
         proxy_bind 127.0.0.2;\n proxy_set_header Authorization \"Bearer {token}\"; }} }}\n\
         server {{ listen 127.0.0.1:{alice};\n location / {{ proxy_pass http://{console};\n \
         proxy_bind 127.0.0.2;\n proxy_set_header Authorization \"Bearer {token}\";\n \
         proxy_set_header Impersonate-User alice; }} }}\n"
    );
    let _nginx = nginx::Nginx::start(&servers, &[plain, alice]).await;
    let client = no_redirects();

    // Through the proxy: pages and API, and the user is the token's subject or the
    // impersonated one.
    for path in ["/api/status", "/console/services"] {
        let response = client
            .get(format!("http://127.0.0.1:{plain}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
    let (_, info) = get_json(&format!("http://127.0.0.1:{plain}/api/auth/info"), &[]).await;
    assert_eq!(
        info,
        json!({ "strategy": "header", "sessionInfo": { "username": "mesh:viewer" } })
    );
    let (_, info) = get_json(&format!("http://127.0.0.1:{alice}/api/auth/info"), &[]).await;
    assert_eq!(info["sessionInfo"]["username"], "alice");
    // The masthead names the user; the proxy owns the session, so no logout link.
    let page = meshtrace_testkit::http::text(
        client.get(format!("http://127.0.0.1:{alice}/console/services")),
    )
    .await;
    assert!(
        page.contains(r#"id="masthead-user" title="signed in as">alice</span>"#),
        "{page}"
    );
    assert!(!page.contains("logout-link"), "{page}");
    // A state-changing request needs the CSRF token bound to the proxy's credential, which
    // `/api/auth/info` hands out.
    let info = client
        .get(format!("http://127.0.0.1:{alice}/api/auth/info"))
        .send()
        .await
        .unwrap();
    let token = info.headers()["x-csrf-token"].to_str().unwrap().to_string();
    let check = format!("http://127.0.0.1:{alice}/api/tracing/check");
    for (presented, status) in [
        (None, StatusCode::FORBIDDEN),
        (Some("AAAA"), StatusCode::FORBIDDEN),
        (Some(token.as_str()), StatusCode::BAD_REQUEST),
    ] {
        let mut request = client.post(&check).body("tracing: [unclosed");
        if let Some(token) = presented {
            request = request.header("x-csrf-token", token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{presented:?}");
    }
    // Another proxy credential (no impersonation) has another token.
    let info = client
        .get(format!("http://127.0.0.1:{plain}/api/auth/info"))
        .send()
        .await
        .unwrap();
    assert_ne!(info.headers()["x-csrf-token"].to_str().unwrap(), token);
    // Kiali's GET /api/authenticate: a session cookie naming the user, with its expiry.
    let authenticate = client
        .get(format!("http://127.0.0.1:{alice}/api/authenticate"))
        .send()
        .await
        .unwrap();
    assert_eq!(authenticate.status(), StatusCode::OK);
    let cookie = authenticate.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("kiali-token-Kubernetes="), "{cookie}");
    assert!(cookie.contains("HttpOnly; SameSite=Strict"), "{cookie}");
    let body: Value = authenticate.json().await.unwrap();
    assert_eq!(body["username"], "alice");
    assert!(body["expiresOn"].as_str().unwrap().ends_with('Z'));

    // Straight to the console, from an address that is not the proxy: refused, whatever the
    // headers say, and whatever cookie comes along.
    let cookie_pair = cookie.split(';').next().unwrap().to_string();
    let bearer = format!("Bearer {token}");
    for path in [
        "/api/status",
        "/console",
        "/console/traces/0b/tooltip",
        "/api/authenticate",
    ] {
        let forged = [
            ("authorization", bearer.as_str()),
            ("impersonate-user", "admin"),
            ("cookie", &cookie_pair),
        ];
        let (status, body) = get_json(&format!("http://{console}{path}"), &forged).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(
            body["error"],
            "requests must come through the authenticating proxy"
        );
    }
    let forged = [("authorization", bearer.as_str())];
    let (_, info) = get_json(&format!("http://{console}/api/auth/info"), &forged).await;
    assert_eq!(info, json!({ "strategy": "header", "sessionInfo": {} }));
    // Probes still reach the console directly.
    let health = client
        .get(format!("http://{console}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn header_refuses_requests_from_the_proxy_without_the_header() {
    let yaml = format!("auth:\n  strategy: header\nlogin_token:\n  signing_key: {KEY}\n");
    let (console, _stop) = console(&yaml, &["127.0.0.1/32"]).await;
    let status_url = format!("http://{console}/api/status");
    for auth in [
        &[][..],
        &[("authorization", "Basic YTpi")],
        &[("authorization", "Bearer ")],
    ] {
        let (status, body) = get_json(&status_url, auth).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(body["error"], "Token is missing");
    }
    let long = "a".repeat(300);
    let bad_user = [
        ("authorization", "Bearer t"),
        ("impersonate-user", long.as_str()),
    ];
    let (status, _) = get_json(&status_url, &bad_user).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configuration_that_cannot_work_is_refused_not_served_open() {
    // `header` with no proxy to trust, and a signing key file that vanished since the check.
    let yaml = format!("auth:\n  strategy: header\nlogin_token:\n  signing_key: {KEY}\n");
    let config = meshtrace_config::load_str(&yaml).unwrap().config;
    let app = Console::new(config, ConsoleOptions::default());
    assert!(
        app.auth
            .problem()
            .unwrap()
            .contains("no proxy address is configured")
    );
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, KEY).unwrap();
    let yaml = format!(
        "auth:\n  strategy: header\nlogin_token:\n  signing_key: {}\n",
        key.display()
    );
    let config = meshtrace_config::load_str(&yaml).unwrap().config;
    std::fs::remove_file(&key).unwrap();
    let options = ConsoleOptions {
        auth: AuthOptions {
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            ..AuthOptions::default()
        },
        background_inventory: false,
        ..ConsoleOptions::default()
    };
    let app = Console::new(config, options.clone());
    assert!(
        app.auth
            .problem()
            .unwrap()
            .contains("cannot read the credential file")
    );
    let (console, _stop) = common::start_console(options, |_| yaml.clone()).await;
    let response = reqwest::Client::new()
        .get(format!("http://{console}/api/status"))
        .header("authorization", "Bearer t")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
}
