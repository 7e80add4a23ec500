//! CSRF tokens under the `openid` strategy, against a real provider (node's oidc-provider,
//! see common/oidc.rs): a signed-in user's state-changing requests pass only with the token
//! of their own session, in the `X-CSRF-Token` header or a form's `csrf_token` field; pages
//! carry it, `/api/auth/info` hands it to API clients, and logging out needs it too.

#[allow(dead_code)]
mod common;
#[allow(dead_code)]
#[path = "common/oidc.rs"]
mod oidc;

use oidc::{Browser, Setup, setup_at};
use reqwest::{Method, StatusCode};
use serde_json::Value;

const REFUSED: &str = "missing or wrong CSRF token";

/// Logs `user` in; returns the token `/api/auth/info` gives the session.
async fn log_in(s: &Setup, browser: &mut Browser, user: &str) -> String {
    let (_, response) = browser
        .login(s.console, &s.url("/api/auth/openid_redirect"), user)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let info = browser.get(&s.url("/api/auth/info")).await;
    assert_eq!(info.headers()["cache-control"], "no-store");
    let token = info.headers()["x-csrf-token"].to_str().unwrap().to_string();
    let body: Value = info.json().await.unwrap();
    assert_eq!(body["sessionInfo"]["username"], user);
    token
}

/// A `POST` of `body` with the browser's cookies and `headers`: its status and text.
async fn post(
    browser: &Browser,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, String) {
    let port = reqwest::Url::parse(url).unwrap().port().unwrap();
    let mut request = reqwest::Client::new()
        .post(url)
        .header("cookie", browser.cookies_for(port))
        .body(body.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

#[tokio::test(flavor = "multi_thread")]
async fn state_changing_requests_need_the_sessions_own_token() {
    let s = setup_at("/", "", 3600, None).await;
    let mut alice = Browser::default();
    let token = log_in(&s, &mut alice, "alice@example.com").await;
    let mut bob = Browser::default();
    let bobs_token = log_in(&s, &mut bob, "bob@example.com").await;
    assert_ne!(token, bobs_token);

    // Pages carry the token: a meta tag for scripts, a field in the tester's form.
    let page = alice
        .get(&s.url("/console/tracing"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!(r#"<meta name="csrf-token" content="{token}">"#)),
        "{page}"
    );
    assert!(
        page.contains(&format!(
            r#"<input type="hidden" name="csrf_token" value="{token}">"#
        )),
        "{page}"
    );

    // The API: a draft that does not parse gets its 400 only with the token.
    let check = s.url("/api/tracing/check");
    let draft = "tracing: [unclosed";
    for headers in [
        vec![],
        vec![("x-csrf-token", "")],
        vec![("x-csrf-token", "AAAA")],
        vec![("x-csrf-token", bobs_token.as_str())],
    ] {
        let (status, body) = post(&alice, &check, &headers, draft).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{headers:?}: {body}");
        assert!(body.contains(REFUSED), "{body}");
    }
    let (status, body) = post(&alice, &check, &[("x-csrf-token", &token)], draft).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(!body.contains(REFUSED), "{body}");

    // The tester's form: the token in its field, read from the body, which still reaches the
    // check whole.
    let tester = s.url("/console/tracing");
    let (status, body) = post(&alice, &tester, &[FORM], &form(&[("config", draft)])).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let with_bobs = form(&[("csrf_token", &bobs_token), ("config", draft)]);
    let (status, _) = post(&alice, &tester, &[FORM], &with_bobs).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let with_token = form(&[("csrf_token", &token), ("config", draft)]);
    let (_, body) = post(&alice, &tester, &[FORM], &with_token).await;
    assert!(
        body.contains(r#"id="check-result" data-ok="false""#),
        "{body}"
    );
    assert!(!body.contains(REFUSED), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logging_out_needs_the_token_and_a_link_elsewhere_cannot_do_it() {
    let s = setup_at("/", "", 3600, None).await;
    let mut browser = Browser::default();
    let token = log_in(&s, &mut browser, "carol@example.com").await;
    let still_in = |status: StatusCode| assert_eq!(status, StatusCode::OK);

    // A form posted from elsewhere has no token: refused, the session kept.
    let logout = s.url("/logout");
    let (status, body) = post(&browser, &logout, &[FORM], "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = post(&browser, &s.url("/api/logout"), &[], "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    still_in(browser.get(&s.url("/api/status")).await.status());

    // A link followed from another site carries no SameSite=Strict cookie: nothing happens,
    // and no cookie is deleted.
    let bare = meshtrace_testkit::http::no_redirects();
    for path in ["/api/logout", "/logout"] {
        let response = bare.get(s.url(path)).send().await.unwrap();
        assert!(response.headers().get("set-cookie").is_none(), "{path}");
    }
    still_in(browser.get(&s.url("/api/status")).await.status());

    // With the token, the form logs out and sends the browser on to the provider's
    // end-session page.
    let field = [("csrf_token", token.as_str())];
    let out = browser.request(Method::POST, &logout, Some(&field)).await;
    assert_eq!(out.status(), StatusCode::OK);
    let to = oidc::onward(&out.text().await.unwrap());
    assert!(to.starts_with(&s.provider.issuer), "{to}");
    assert_eq!(
        browser.get(&s.url("/api/status")).await.status(),
        StatusCode::UNAUTHORIZED
    );
}
