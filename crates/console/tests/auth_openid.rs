//! The `openid` strategy against a real provider (node's oidc-provider on a loopback port,
//! see common/oidc.rs): logging in through the provider's own form, Kiali's session cookie,
//! what needs the session and what does not, logging out, and every bad answer refused with a
//! page that says why.

#[allow(dead_code)]
mod common;
#[path = "common/oidc.rs"]
mod oidc;

use oidc::{Browser, CLIENT_ID, CLIENT_SECRET, KEY, Setup, setup_at};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::Value;

/// A console with `strategy: openid` against a fresh provider; `extra` is added under
/// `auth.openid`, `issuer` replaces the provider's URL when given.
async fn setup(extra: &str, id_token_ttl: u64, issuer: Option<&str>) -> Setup {
    setup_at("/", extra, id_token_ttl, issuer).await
}

/// Logs `user` in from the console's login route; returns the final console URL and page.
async fn log_in(s: &Setup, browser: &mut Browser, user: &str, return_to: &str) -> (String, String) {
    let start = s.url(&format!(
        "/api/auth/openid_redirect?return_to={}",
        form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
    ));
    let (url, response) = browser.login(s.console, &start, user).await;
    let status = response.status();
    let page = response.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{url}: {page}");
    (url, page)
}

/// Starts a login without following it: the provider's authorization URL and its state.
async fn start_login(browser: &mut Browser, s: &Setup) -> (String, String) {
    let start = browser.get(&s.url("/api/auth/openid_redirect")).await;
    let authorize = start.headers()[LOCATION].to_str().unwrap().to_string();
    let state = reqwest::Url::parse(&authorize)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    (authorize, state)
}

/// The login page's error text for a refused login (the callback sends the browser there).
async fn refusal(browser: &mut Browser, s: &Setup, callback: &str) -> String {
    let response = browser.get(callback).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()[LOCATION].to_str().unwrap().to_string();
    assert!(location.starts_with("/login?openid_error="), "{location}");
    let page = browser.get(&s.url(&location)).await.text().await.unwrap();
    let start = page
        .find("id=\"login-error\">")
        .expect("an error on the page");
    let text = &page[start..];
    text[..text.find("</p>").unwrap()].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_session_pages_redirect_to_the_login_and_the_api_answers_401() {
    let s = setup("", 3600, None).await;
    let client = meshtrace_testkit::http::no_redirects();
    let page = client
        .get(s.url("/console/services?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FOUND);
    assert_eq!(
        page.headers()[LOCATION],
        "/login?return_to=%2Fconsole%2Fservices%3Fx%3D1"
    );
    let api = client.get(s.url("/api/status")).send().await.unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let body: Value = api.json().await.unwrap();
    assert_eq!(body["error"], "Unauthorized");
    for open in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/static/meshtrace.css",
        "/login",
    ] {
        let response = client.get(s.url(open)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{open}");
    }
    let info: Value = meshtrace_testkit::http::json(client.get(s.url("/api/auth/info"))).await;
    assert_eq!(
        info,
        serde_json::json!({
            "strategy": "openid",
            "authorizationEndpoint": "/api/auth/openid_redirect",
            "sessionInfo": {}
        })
    );
    // The login page links to the provider's login, going back where the user was headed.
    let login =
        meshtrace_testkit::http::text(client.get(s.url("/login?return_to=%2Fconsole%2Fservices")))
            .await;
    assert!(
        login.contains("href=\"/api/auth/openid_redirect?return_to=%2Fconsole%2Fservices\""),
        "{login}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_through_the_provider_opens_pages_and_api_with_kialis_cookie() {
    let s = setup("", 3600, None).await;
    let mut browser = Browser::default();
    // The redirect to the provider: code flow with PKCE (S256), state, nonce, the scopes.
    let start = browser.get(&s.url("/api/auth/openid_redirect")).await;
    assert_eq!(start.status(), StatusCode::FOUND);
    let authorize = reqwest::Url::parse(start.headers()[LOCATION].to_str().unwrap()).unwrap();
    assert!(
        authorize
            .as_str()
            .starts_with(&format!("{}/auth?", s.provider.issuer))
    );
    let q: std::collections::BTreeMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], format!("http://{}/", s.console));
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], "openid profile email");
    assert!(q["state"].len() >= 16 && q["nonce"].len() >= 16);
    let nonce_cookie = &browser.set_by["kiali-token-nonce-Kubernetes"];
    assert!(nonce_cookie.attributes.contains("HttpOnly"));
    assert!(nonce_cookie.attributes.contains("SameSite=Lax"));

    let (url, page) = log_in(&s, &mut browser, "alice@example.com", "/console/services").await;
    assert_eq!(url.split('?').next().unwrap(), s.url("/"));
    assert!(page.contains("url=/console/services"), "{page}");
    let session = &browser.set_by["kiali-token-Kubernetes"];
    for attribute in ["Path=/", "HttpOnly", "SameSite=Strict", "Expires="] {
        assert!(
            session.attributes.contains(attribute),
            "{attribute}: {session:?}"
        );
    }
    assert!(
        !session.attributes.contains("Secure"),
        "plain http: {session:?}"
    );
    assert!(!session.value.contains("alice"), "the session is encrypted");
    assert!(!browser.holds(s.console.port(), "kiali-token-nonce-Kubernetes"));

    let status = browser.get(&s.url("/api/status")).await;
    assert_eq!(status.status(), StatusCode::OK);
    let page = browser.get(&s.url("/console/services")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let info: Value = browser
        .get(&s.url("/api/auth/info"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["sessionInfo"]["username"], "alice@example.com");
    // RFC 1123 with a numeric zone, as Kiali writes it.
    let expires = info["sessionInfo"]["expiresOn"].as_str().unwrap();
    assert!(expires.ends_with("+0000"), "{expires}");
    assert!(
        chrono::DateTime::parse_from_rfc2822(expires).is_ok(),
        "{expires}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tampered_foreign_and_huge_cookies_are_refused_and_cleared() {
    let s = setup("", 3600, None).await;
    let mut browser = Browser::default();
    log_in(&s, &mut browser, "bob", "/").await;
    let key = (s.console.port(), "kiali-token-Kubernetes".to_string());
    let good = browser.jar[&key].clone();
    let client = reqwest::Client::new();
    let with = |cookie: String| {
        client
            .get(s.url("/api/status"))
            .header("cookie", cookie)
            .send()
    };
    assert_eq!(
        with(format!("kiali-token-Kubernetes={good}"))
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    // One character changed in the middle of the ciphertext.
    let mut bytes = good.clone().into_bytes();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).unwrap();
    let response = with(format!("kiali-token-Kubernetes={tampered}"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("kiali-token-Kubernetes=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // Another cluster's cookie name, garbage, a forged chunk count, and a cookie of 60 KiB.
    for cookie in [
        format!("kiali-token-Other={good}"),
        "kiali-token-Kubernetes=not-base64-!!!".to_string(),
        format!("kiali-token-Kubernetes={good}; kiali-token-chunks-Kubernetes=181"),
        format!("kiali-token-Kubernetes={good}; kiali-token-chunks-Kubernetes=2"),
        format!("kiali-token-Kubernetes={}", "A".repeat(60 << 10)),
    ] {
        let response = with(cookie.clone()).await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{}",
            &cookie[..40]
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_state_a_lost_login_and_a_replayed_code_are_refused_with_the_reason() {
    let s = setup("", 3600, None).await;
    let mut browser = Browser::default();
    let state = start_login(&mut browser, &s).await.1;
    // The provider's answer with another state.
    let error = refusal(&mut browser, &s, &s.url("/?code=abc&state=forged")).await;
    assert!(error.contains("another login&#39;s state"), "{error}");
    // The same answer without the login cookie (another browser, or cookies dropped).
    let mut other = Browser::default();
    let error = refusal(&mut other, &s, &s.url(&format!("/?code=abc&state={state}"))).await;
    assert!(error.contains("holds no login in progress"), "{error}");
    // The provider's own refusal, passed on.
    let state = start_login(&mut browser, &s).await.1;
    let error = refusal(
        &mut browser,
        &s,
        &s.url(&format!(
            "/?error=access_denied&error_description=no%3Cb%3E&state={state}"
        )),
    )
    .await;
    assert!(
        error.contains("the provider refused the login: access_denied no&lt;b&gt;"),
        "{error}"
    );

    // A full login, then its callback replayed with the same (used) code.
    let mut browser = Browser::default();
    let start = s.url("/api/auth/openid_redirect");
    let first = browser.get(&start).await;
    let url = first.headers()[LOCATION].to_str().unwrap().to_string();
    let nonce_cookie =
        browser.jar[&(s.console.port(), "kiali-token-nonce-Kubernetes".to_string())].clone();
    let (callback, _) = browser.login(s.console, &url, "carol").await;
    browser.forget(s.console.port(), "kiali-token");
    browser.jar.insert(
        (s.console.port(), "kiali-token-nonce-Kubernetes".into()),
        nonce_cookie,
    );
    let error = refusal(&mut browser, &s, &callback).await;
    assert!(
        error.contains("the provider refused the code: invalid_grant"),
        "{error}"
    );
    assert!(!error.contains(CLIENT_SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_domains_refuses_users_of_other_domains() {
    let s = setup("allowed_domains: [example.org]", 3600, None).await;
    let mut browser = Browser::default();
    let start = s.url("/api/auth/openid_redirect");
    let (url, response) = browser
        .login(s.console, &start, "mallory@example.com")
        .await;
    assert!(
        url.ends_with("/login?openid_error=domain+example.com+not+allowed+to+login"),
        "{url}"
    );
    let page = response.text().await.unwrap();
    assert!(
        page.contains("The login failed: domain example.com not allowed to login"),
        "{page}"
    );
    assert!(!browser.holds(s.console.port(), "kiali-token-Kubernetes"));
    // Another browser: the provider still holds mallory's session in the first.
    let mut browser = Browser::default();
    let (_, page) = log_in(&s, &mut browser, "olivia@example.org", "/").await;
    assert!(page.contains("Logged in"));
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_clears_the_session_and_goes_to_the_providers_end_session() {
    let s = setup("", 3600, None).await;
    let mut browser = Browser::default();
    log_in(&s, &mut browser, "dave", "/").await;
    let id_token_hint = {
        let logout = browser.get(&s.url("/api/logout")).await;
        assert_eq!(logout.status(), StatusCode::OK);
        let body: Value = logout.json().await.unwrap();
        let url = reqwest::Url::parse(body["redirect_url"].as_str().unwrap()).unwrap();
        assert_eq!(url.path(), "/session/end");
        assert!(url.as_str().starts_with(&s.provider.issuer));
        let q: std::collections::BTreeMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(
            q["post_logout_redirect_uri"],
            format!("http://{}/", s.console)
        );
        assert_eq!(q["client_id"], CLIENT_ID);
        q["id_token_hint"].clone()
    };
    assert_eq!(id_token_hint.split('.').count(), 3);
    assert!(!browser.holds(s.console.port(), "kiali-token-Kubernetes"));
    assert_eq!(
        browser.get(&s.url("/api/status")).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The page route does the same for a browser: it asks, and its form (with the session's
    // CSRF token) sends the browser on to the provider's end-session page, which offers to
    // log out there too.
    log_in(&s, &mut browser, "dave", "/").await;
    let asks = browser.get(&s.url("/logout")).await.text().await.unwrap();
    let token = asks
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no token in {asks}"))
        .to_string();
    let form = [("csrf_token", token.as_str())];
    let logout = browser
        .request(reqwest::Method::POST, &s.url("/logout"), Some(&form))
        .await;
    assert_eq!(logout.status(), StatusCode::OK);
    let end = oidc::onward(&logout.text().await.unwrap());
    assert!(
        end.starts_with(&format!("{}/session/end?", s.provider.issuer)),
        "{end}"
    );
    assert_eq!(browser.get(&end).await.status(), StatusCode::OK);
    assert_eq!(
        browser.get(&s.url("/api/status")).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_session_ends_when_the_id_token_expires() {
    let s = setup("", 3, None).await;
    let mut browser = Browser::default();
    log_in(&s, &mut browser, "erin", "/").await;
    // Waits until the token's expiry has passed by the console's clock: this is not a timing
    // assertion, only a wait for a deadline the provider set.
    let mut status = StatusCode::OK;
    for _ in 0..100 {
        status = browser.get(&s.url("/api/status")).await.status();
        if status != StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(!browser.holds(s.console.port(), "kiali-token-Kubernetes"));
    let page = browser.get(&s.url("/console")).await;
    assert_eq!(page.status(), StatusCode::FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn return_urls_stay_on_the_console() {
    let s = setup("", 3600, None).await;
    for hostile in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        " /x",
        "javascript:alert(1)",
        "\u{0}/x",
    ] {
        let mut browser = Browser::default();
        let (_, page) = log_in(&s, &mut browser, "frank", hostile).await;
        // The hostile target (escaped or not) never becomes the place to continue to.
        assert!(page.contains("url=/\""), "{hostile}: {page}");
        let login = browser
            .get(&s.url(&format!(
                "/login?return_to={}",
                form_urlencoded::byte_serialize(hostile.as_bytes()).collect::<String>()
            )))
            .await;
        // Logged in: the login page sends the browser on, home and nowhere else.
        assert_eq!(login.headers()[LOCATION], "/", "{hostile}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_that_is_down_or_another_issuer_gives_a_login_page_with_the_reason() {
    // Nothing listens on the issuer's port.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let s = setup("", 3600, Some(&format!("http://{closed}"))).await;
    let mut browser = Browser::default();
    let error = refusal(&mut browser, &s, &s.url("/api/auth/openid_redirect")).await;
    assert!(error.contains("cannot reach the provider"), "{error}");
    // An address that answers every path with an HTML page, not metadata.
    let html = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let html_issuer = format!("http://{}", html.local_addr().unwrap());
    let pages = axum::Router::new()
        .fallback(|| async { axum::response::Html("<html><body>Welcome to nginx!</body></html>") });
    tokio::spawn(async move { axum::serve(html, pages).await });
    let s = setup("", 3600, Some(&html_issuer)).await;
    let error = refusal(&mut browser, &s, &s.url("/api/auth/openid_redirect")).await;
    assert!(
        error.contains("not OpenID metadata (an HTML page?)"),
        "{error}"
    );
    // The provider under another name: its metadata names another issuer.
    let s = setup("", 3600, None).await;
    let renamed = s.provider.issuer.replace("127.0.0.1", "localhost");
    let s3 = setup("", 3600, Some(&renamed)).await;
    let error = refusal(&mut browser, &s3, &s3.url("/api/auth/openid_redirect")).await;
    assert!(error.to_lowercase().contains("issuer"), "{error}");
    assert!(!error.contains(CLIENT_SECRET));
}

/// Opens and reseals a cookie as someone holding the signing key would (AES-256-GCM,
/// base64(nonce ‖ ciphertext)): the only way to hand the console a login whose nonce differs
/// from the one the provider signed, since the state and the PKCE verifier travel with it.
fn reseal(cookie: &str, edit: impl FnOnce(&mut Value)) -> String {
    use aes_gcm::aead::{Aead, KeyInit};
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(KEY.as_bytes()).unwrap();
    let bytes = b64.decode(cookie).unwrap();
    let (nonce, sealed) = bytes.split_at(12);
    let plain = cipher
        .decrypt(aes_gcm::Nonce::from_slice(nonce), sealed)
        .unwrap();
    let mut login: Value = serde_json::from_slice(&plain).unwrap();
    edit(&mut login);
    let plain = serde_json::to_vec(&login).unwrap();
    let mut out = nonce.to_vec();
    out.extend(
        cipher
            .encrypt(aes_gcm::Nonce::from_slice(nonce), plain.as_slice())
            .unwrap(),
    );
    b64.encode(out)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_id_token_for_another_nonce_is_refused() {
    let s = setup("", 3600, None).await;
    let mut browser = Browser::default();
    let (authorize, _) = start_login(&mut browser, &s).await;
    let key = (s.console.port(), "kiali-token-nonce-Kubernetes".to_string());
    let forged = reseal(&browser.jar[&key], |login| {
        login["nonce"] = "another-login-s-nonce".into();
    });
    browser.jar.insert(key, forged);
    let (url, response) = browser.login(s.console, &authorize, "grace").await;
    assert!(url.contains("/login?openid_error="), "{url}");
    let page = response.text().await.unwrap();
    assert!(
        page.contains("The login failed: the ID token was refused"),
        "{page}"
    );
    assert!(page.to_lowercase().contains("nonce"), "{page}");
    assert!(!browser.holds(s.console.port(), "kiali-token-Kubernetes"));
}

#[tokio::test(flavor = "multi_thread")]
async fn under_a_web_root_the_login_returns_there_and_the_cookie_is_scoped_to_it() {
    let s = setup_at("/kiali", "", 3600, None).await;
    let client = meshtrace_testkit::http::no_redirects();
    let page = client
        .get(s.url("/kiali/console/services"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.headers()[LOCATION],
        "/kiali/login?return_to=%2Fkiali%2Fconsole%2Fservices"
    );
    let mut browser = Browser::default();
    let start = s.url("/kiali/api/auth/openid_redirect?return_to=%2Fkiali%2Fconsole%2Fservices");
    let (url, response) = browser.login(s.console, &start, "heidi").await;
    assert!(url.starts_with(&s.url("/kiali/?code=")), "{url}");
    let page = response.text().await.unwrap();
    assert!(page.contains("url=/kiali/console/services"), "{page}");
    let session = &browser.set_by["kiali-token-Kubernetes"];
    assert!(session.attributes.contains("Path=/kiali;"), "{session:?}");
    let status = browser.get(&s.url("/kiali/api/status")).await;
    assert_eq!(status.status(), StatusCode::OK);
    // A path outside the web root is not a place to return to.
    let login = browser.get(&s.url("/kiali/login?return_to=%2Fother")).await;
    assert_eq!(login.headers()[LOCATION], "/kiali/");
}
