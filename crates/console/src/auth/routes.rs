//! The auth routes, open without a session: Kiali's `/api/auth/info`,
//! `/api/auth/openid_redirect`, `/api/authenticate` and `/api/logout`, plus two pages of
//! meshtrace's own, `/login` (what the strategy needs, and why the last login failed) and
//! `/logout` (asks, then ends the session and sends the browser to the provider's end-session
//! page).
//!
//! Logging out changes state, so it is guarded as the gate guards other routes: the `POST`s
//! need the session's CSRF token, and the `GET` of Kiali's `/api/logout` acts only on a request
//! that carries the session cookie — `SameSite=Strict` keeps it off every request another site
//! starts, so a link elsewhere cannot log a user out.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use meshtrace_config::AuthStrategy;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{User, add_cookies, csrf, openid, redirect};
use crate::Console;
use crate::error::{ApiError, ErrorCode};

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/api/auth/info", get(info))
        .route("/api/auth/openid_redirect", get(openid_redirect))
        .route("/api/authenticate", get(authenticate))
        .route("/api/logout", get(api_logout).post(api_logout))
        .route("/logout", get(logout_page).post(logout))
        .route("/login", get(login_page))
}

#[derive(Deserialize)]
struct ReturnTo {
    return_to: Option<String>,
}

#[derive(Deserialize)]
struct LoginQuery {
    return_to: Option<String>,
    openid_error: Option<String>,
}

/// The user of a request that passed no gate (these routes are open): the session cookie's,
/// or for `header` the proxy's headers.
fn current_user(console: &Console, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<User> {
    let auth = &console.auth;
    match auth.strategy {
        AuthStrategy::OpenId => auth.session(headers),
        AuthStrategy::Header => {
            let trusted = &auth.ready.as_ref().ok()?.trusted;
            super::header::user(trusted, peer, headers).ok()
        }
        _ => None,
    }
}

fn peer_of(connect: Option<Extension<ConnectInfo<SocketAddr>>>) -> Option<SocketAddr> {
    connect.map(|c| c.0.0)
}

/// `GET /api/auth/info`, as Kiali answers it.
async fn info(
    State(console): State<Arc<Console>>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let auth = &console.auth;
    let mut body = serde_json::Map::new();
    body.insert("strategy".into(), auth.strategy.as_str().into());
    if auth.strategy == AuthStrategy::OpenId {
        let endpoint = format!("{}/api/auth/openid_redirect", auth.prefix);
        body.insert("authorizationEndpoint".into(), endpoint.into());
    }
    let mut session = serde_json::Map::new();
    let mut token = None;
    if let Some(user) = current_user(&console, peer_of(connect), &headers) {
        token = auth.csrf_token(&user);
        session.insert("username".into(), user.name.into());
        if let Some(expires) = user.expires_on.and_then(rfc1123z) {
            session.insert("expiresOn".into(), expires.into());
        }
    }
    body.insert("sessionInfo".into(), session.into());
    let mut response = Json(Value::from(body)).into_response();
    if let Some(value) = token.and_then(|t| HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert(csrf::HEADER, value);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// RFC 1123 with a numeric zone, as Kiali writes `expiresOn` there.
fn rfc1123z(unix: i64) -> Option<String> {
    Some(
        chrono::DateTime::from_timestamp(unix, 0)?
            .format("%a, %d %b %Y %H:%M:%S %z")
            .to_string(),
    )
}

async fn openid_redirect(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    Query(query): Query<ReturnTo>,
) -> Response {
    if console.auth.strategy != AuthStrategy::OpenId {
        return (
            ErrorCode::NotFound.status(),
            "OpenId strategy is not enabled",
        )
            .into_response();
    }
    openid::start(&console, &headers, query.return_to.as_deref()).await
}

/// `GET /api/authenticate`: for `header`, the session Kiali creates from the proxy's token
/// (it names the user and its expiry; the header is still needed on every request).
async fn authenticate(
    State(console): State<Arc<Console>>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
) -> Response {
    let auth = &console.auth;
    match auth.strategy {
        AuthStrategy::Anonymous => Json(json!({ "username": "anonymous" })).into_response(),
        AuthStrategy::Header => {
            let ready = match auth.ready() {
                Ok(ready) => ready,
                Err(response) => return *response,
            };
            let mut user = match super::header::user(&ready.trusted, peer_of(connect), &headers) {
                Ok(user) => user,
                Err(refusal) => return refusal.into_response("/api/authenticate"),
            };
            let secs = i64::try_from(ready.session_secs).unwrap_or(i64::MAX);
            let expires = super::now().saturating_add(secs);
            user.expires_on = Some(expires);
            let token = super::header::bearer(&headers).unwrap_or_default();
            let Some(cookies) = auth.new_session(&headers, &user, token) else {
                return ApiError::new(ErrorCode::Internal, "the session could not be sealed")
                    .into_response();
            };
            let expires_on = chrono::DateTime::from_timestamp(expires, 0)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            let mut response =
                Json(json!({ "expiresOn": expires_on, "username": user.name })).into_response();
            add_cookies(&mut response, cookies);
            response
        }
        _ => ApiError::new(
            ErrorCode::Internal,
            "support for OpenID's implicit flow has been removed",
        )
        .into_response(),
    }
}

/// `GET /api/logout`, as Kiali: 204 with the session's cookies deleted, or 200
/// `{"redirect_url": …}` when the provider has an end-session endpoint. A `POST` needs the
/// session's CSRF token in `X-CSRF-Token`.
async fn api_logout(
    State(console): State<Arc<Console>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let auth = &console.auth;
    let user = auth.session(&headers);
    if let Some(user) = &user
        && csrf::changes_state(&method)
    {
        let presented = headers.get(csrf::HEADER).and_then(|v| v.to_str().ok());
        if !auth.csrf_accepts(user, presented) {
            return csrf::refused().into_response();
        }
    }
    if super::session::cookie(&headers, &auth.names.base).is_none() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let mut response = match openid::end_session_url(&console, &headers, user.as_ref()).await {
        Some(url) => Json(json!({ "redirect_url": url })).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    };
    add_cookies(&mut response, auth.clear_session(&headers));
    response
}

/// `GET /logout`: a page that asks, with the form that logs out (the masthead's **Log out**
/// posts the same form); without a session, the login page.
async fn logout_page(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    let auth = &console.auth;
    let Some(token) = auth
        .session(&headers)
        .and_then(|user| auth.csrf_token(&user))
    else {
        return redirect(&format!("{}/login", auth.prefix));
    };
    let body = format!(
        "<form method=\"post\" action=\"{}/logout\"><input type=\"hidden\" name=\"{}\" \
         value=\"{}\"><p>Log out of meshtrace?</p><button id=\"logout\">Log out</button></form>",
        escape(&auth.prefix),
        csrf::FIELD,
        escape(&token)
    );
    small_page("log out", &auth.prefix, &body)
}

/// `POST /logout`, the form of the logout page and the masthead: ends the session, then on to
/// the provider's end-session page, or to the login page. A session's form must carry its
/// token. The way on is a page, not a redirect: the console's pages allow forms to post only
/// to their own origin (CSP `form-action 'self'`), which browsers apply to a redirect too.
async fn logout(State(console): State<Arc<Console>>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = &console.auth;
    let user = auth.session(&headers);
    if let Some(user) = &user
        && !auth.csrf_accepts(user, csrf::form_field(&body).as_deref())
    {
        return csrf::refused().into_response();
    }
    let target = match openid::end_session_url(&console, &headers, user.as_ref()).await {
        Some(url) => url,
        None => format!("{}/login", auth.prefix),
    };
    let mut response = onward("logged out", "Logged out.", &target);
    add_cookies(&mut response, auth.clear_session(&headers));
    response
}

/// A page that sends the browser on to `url` at once (a meta refresh), with a link for a
/// browser that does not follow it.
pub(super) fn onward(title: &str, say: &str, url: &str) -> Response {
    let url = escape(url);
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>meshtrace: {title}</title>\
         <meta http-equiv=\"refresh\" content=\"0;url={url}\"></head>\
         <body><p>{say} <a href=\"{url}\">Continue</a>.</p></body></html>"
    );
    let mut response = Html(page).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /login`: a page of its own (no script) saying how to log in, and why the last
/// attempt failed.
async fn login_page(
    State(console): State<Arc<Console>>,
    connect: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let auth = &console.auth;
    let back = auth.return_path(query.return_to.as_deref());
    if auth.strategy == AuthStrategy::Anonymous
        || current_user(&console, peer_of(connect), &headers).is_some()
    {
        return redirect(&back);
    }
    let mut body = String::new();
    if let Some(problem) = auth.problem() {
        body.push_str(&format!(
            "<p class=\"error\">Authentication is misconfigured: {}</p>",
            escape(problem)
        ));
    } else if auth.strategy == AuthStrategy::OpenId {
        if let Some(error) = &query.openid_error {
            let error: String = error.chars().take(300).collect();
            body.push_str(&format!(
                "<p class=\"error\" id=\"login-error\">The login failed: {}</p>",
                escape(&error)
            ));
        }
        body.push_str(&format!(
            "<p><a id=\"login\" href=\"{}/api/auth/openid_redirect?return_to={}\">Log in with \
             OpenID Connect</a></p>",
            escape(&auth.prefix),
            escape(&super::encode(&back))
        ));
    } else {
        body.push_str(
            "<p>This console is served behind an authenticating proxy: open it through the \
             proxy, which logs you in.</p>",
        );
    }
    small_page("log in", &auth.prefix, &body)
}

/// A page of the auth routes: no script, the console's style sheet, never cached.
fn small_page(title: &str, prefix: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>meshtrace: {title}</title>\
         <link rel=\"stylesheet\" href=\"{}/static/meshtrace.css\"></head>\
         <body><main><h1>meshtrace</h1>{body}</main></body></html>",
        escape(prefix)
    );
    let mut response = Html(page).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; frame-ancestors 'none'"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Text made safe inside HTML text and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}
