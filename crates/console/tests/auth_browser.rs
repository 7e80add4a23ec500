//! The `openid` login in headless Chromium: the console's login page, the provider's own login
//! form (node's oidc-provider), back to the page the user asked for with Kiali's session cookie
//! (HttpOnly, SameSite=Strict: the console's own page moves the browser on, so the cookie goes
//! along), then logging out through the provider's end-session page.

#[allow(dead_code)]
mod common;
#[path = "browser/driver.rs"]
mod driver;
#[allow(dead_code)]
#[path = "common/oidc.rs"]
mod oidc;

use std::time::Duration;

use fantoccini::{Client, Locator};

/// Waits until the browser is at a URL whose path and query start with `path`.
async fn wait_for_path(client: &Client, path: &str) -> String {
    let mut at = String::new();
    for _ in 0..200 {
        if let Ok(url) = client.current_url().await {
            at = url.to_string();
            let here = format!(
                "{}{}",
                url.path(),
                url.query().map(|q| format!("?{q}")).unwrap_or_default()
            );
            if here.starts_with(path) {
                return at;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the browser stays at {at}, not {path}");
}

async fn fill(client: &Client, css: &str, text: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_logs_in_and_out_through_the_providers_pages_in_chromium() {
    let s = oidc::setup_at("/", "", 3600, None).await;
    let browser = driver::browser().await;
    let client = &browser.client;

    // A page without a session: the login page, with a link to the provider.
    client.goto(&s.url("/console/services")).await.unwrap();
    wait_for_path(client, "/login?return_to=%2Fconsole%2Fservices").await;
    click(client, "#login").await;

    // The provider's own login form.
    let at = wait_for_path(client, "/interaction/").await;
    assert!(at.starts_with(&s.provider.issuer), "{at}");
    fill(client, "input[name=login]", "ivan@example.com").await;
    fill(client, "input[name=password]", "any").await;
    click(client, "button[type=submit]").await;

    // Back at the page asked for, logged in.
    wait_for_path(client, "/console/services").await;
    let source = client.source().await.unwrap();
    assert!(
        !source.contains("id=\"login\""),
        "still the login page: {source}"
    );
    let cookies = client.get_all_cookies().await.unwrap();
    let session = cookies
        .iter()
        .find(|c| c.name() == "kiali-token-Kubernetes")
        .unwrap_or_else(|| panic!("no session cookie in {cookies:?}"));
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(format!("{:?}", session.same_site()), "Some(Strict)");
    assert!(
        !cookies
            .iter()
            .any(|c| c.name() == "kiali-token-nonce-Kubernetes")
    );
    // The masthead names the user.
    let user = client.find(Locator::Css("#masthead-user")).await.unwrap();
    assert_eq!(user.text().await.unwrap(), "ivan@example.com");
    client.goto(&s.url("/api/auth/info")).await.unwrap();
    let info = client.source().await.unwrap();
    assert!(info.contains("\"username\":\"ivan@example.com\""), "{info}");

    // Logging out from the masthead: the provider asks, then sends the browser back, without
    // a session.
    client.goto(&s.url("/console/services")).await.unwrap();
    click(client, "#logout-link").await;
    let at = wait_for_path(client, "/session/end").await;
    assert!(at.starts_with(&s.provider.issuer), "{at}");
    click(client, "button[name=logout]").await;
    wait_for_path(client, "/login").await;
    let cookies = client.get_all_cookies().await.unwrap();
    assert!(
        !cookies.iter().any(|c| c.name() == "kiali-token-Kubernetes"),
        "{cookies:?}"
    );
    client.goto(&s.url("/console/services")).await.unwrap();
    wait_for_path(client, "/login?return_to=").await;
    browser.client.clone().close().await.unwrap();
}
