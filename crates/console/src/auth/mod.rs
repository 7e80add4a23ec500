//! Who may use the console: Kiali's `auth.strategy` — `anonymous` (anyone), `openid` (a login
//! at an OpenID Connect provider, kept in Kiali's encrypted session cookie) and `header`
//! (behind an authenticating reverse proxy at a configured address). `token` and `openshift`
//! need the Kubernetes API; the configuration refuses them.
//!
//! [`gate`] stands in front of every route. Open to all: `/healthz`, `/readyz`, `/metrics`
//! (unless made private), the auth routes, the login page and static assets. Everything else
//! needs a session: an API call without one gets 401 JSON, a page a redirect to the login.
//! A signed-in user's state-changing requests also need their CSRF token ([`csrf`]).

mod callback;
pub(crate) mod csrf;
mod header;
mod openid;
mod routes;
mod session;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header as h};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use meshtrace_config::{AuthStrategy, Config};

pub use routes::routes;

use crate::Console;
use crate::error::{ApiError, ErrorCode};
use session::{CookieAttrs, Names, Sealer};

/// Settings of authentication that are not in Kiali's configuration.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// The OpenID client secret's file (Kiali's Secret mount); a missing file means a public
    /// client, which authenticates with PKCE alone.
    pub oidc_secret_file: PathBuf,
    /// The `header` strategy's proxies: requests from other addresses are refused.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Whether `/metrics` is open to all (scrapers hold no session).
    pub public_metrics: bool,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            oidc_secret_file: PathBuf::from(meshtrace_config::DEFAULT_OIDC_SECRET_FILE),
            trusted_proxies: Vec::new(),
            public_metrics: true,
        }
    }
}

/// The user a request is served for.
#[derive(Debug, Clone)]
pub struct User {
    pub name: String,
    /// Unix seconds; `None` when nothing ends the session (a proxied request).
    pub expires_on: Option<i64>,
    /// The ID token, for the provider's logout (`id_token_hint`).
    pub(crate) id_token: Option<String>,
    /// What the user's CSRF token is bound to (see [`csrf`]); empty binds nothing.
    pub(crate) binding: String,
}

/// Authentication as configured, ready to check requests.
pub struct Auth {
    strategy: AuthStrategy,
    /// `Err` when the configuration cannot work (an unreadable signing key, a header strategy
    /// with no proxy to trust): every protected route then answers 503, and `serve` refuses
    /// to start.
    ready: Result<Ready, String>,
    public_metrics: bool,
    names: Names,
    cluster: String,
    /// `server.web_root` (a cookie's `Path`) and the same without a trailing slash.
    web_root: String,
    prefix: String,
}

struct Ready {
    sealer: Option<Sealer>,
    minter: Option<csrf::Minter>,
    openid: Option<openid::Provider>,
    trusted: Vec<ipnet::IpNet>,
    session_secs: u64,
}

impl Auth {
    pub fn new(config: &Config, options: &AuthOptions) -> Auth {
        let strategy = config.auth.strategy;
        Auth {
            strategy,
            ready: Ready::new(config, options),
            public_metrics: options.public_metrics,
            names: Names::new(config.session_cluster()),
            cluster: config.session_cluster().to_string(),
            web_root: config.server.web_root.clone(),
            prefix: config.server.path_prefix().to_string(),
        }
    }

    pub fn strategy(&self) -> AuthStrategy {
        self.strategy
    }

    /// Why authentication cannot work as configured, if it cannot.
    pub fn problem(&self) -> Option<&str> {
        self.ready.as_ref().err().map(String::as_str)
    }

    fn ready(&self) -> Result<&Ready, Box<Response>> {
        self.ready.as_ref().map_err(|problem| {
            Box::new(
                ApiError::unavailable(format!("authentication is misconfigured: {problem}"))
                    .into_response(),
            )
        })
    }

    /// Cookie attributes for this request: Secure when it came over https.
    fn attrs<'a>(
        &'a self,
        headers: &HeaderMap,
        expires: Option<&'a str>,
        same_site: &'static str,
    ) -> CookieAttrs<'a> {
        CookieAttrs {
            path: &self.web_root,
            secure: over_https(headers),
            expires,
            same_site,
        }
    }

    /// The session the request's cookie holds, if it is this strategy's, unexpired, and
    /// sealed with this key.
    fn session(&self, headers: &HeaderMap) -> Option<User> {
        let ready = self.ready.as_ref().ok()?;
        let sealer = ready.sealer.as_ref()?;
        let sealed = session::read_sealed(&self.names, headers).ok()?;
        let data = match session::open_session(sealer, &sealed) {
            Ok(data) => data,
            Err(why) => {
                tracing::info!(?why, "a session cookie was refused");
                return None;
            }
        };
        let expires = chrono::DateTime::parse_from_rfc3339(&data.expires_on).ok()?;
        let expires = expires.timestamp();
        if data.strategy != self.strategy.as_str() || expires <= now() {
            return None;
        }
        let payload = data.payload.unwrap_or_default();
        Some(User {
            name: payload.subject,
            expires_on: Some(expires),
            id_token: (!payload.token.is_empty()).then_some(payload.token),
            binding: data.session_id,
        })
    }

    /// The `Set-Cookie` values of a new session.
    fn new_session(&self, headers: &HeaderMap, user: &User, token: &str) -> Option<Vec<String>> {
        let sealer = self.ready.as_ref().ok()?.sealer.as_ref()?;
        let expires = user.expires_on?;
        let data = session::SessionData {
            cluster: self.cluster.clone(),
            expires_on: chrono::DateTime::from_timestamp(expires, 0)?
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            payload: Some(session::Payload {
                subject: user.name.clone(),
                token: token.to_string(),
            }),
            session_id: session::session_id(),
            strategy: self.strategy.as_str().to_string(),
        };
        let sealed = sealer.seal(&serde_json::to_vec(&data).ok()?)?;
        let expires = http_date(expires)?;
        let attrs = self.attrs(headers, Some(&expires), "Strict");
        Some(session::session_cookies(&self.names, &sealed, &attrs))
    }

    fn clear_session(&self, headers: &HeaderMap) -> Vec<String> {
        session::clear_cookies(&self.names, headers, &self.attrs(headers, None, "Strict"))
    }

    /// The CSRF token pages and API clients of `user` send back with a state-changing
    /// request; `None` under `anonymous`, which has no credential to protect.
    pub fn csrf_token(&self, user: &User) -> Option<String> {
        let minter = self.ready.as_ref().ok()?.minter.as_ref()?;
        (!user.binding.is_empty()).then(|| minter.token(&user.binding))
    }

    /// Whether `presented` is `user`'s CSRF token.
    fn csrf_accepts(&self, user: &User, presented: Option<&str>) -> bool {
        let minter = self.ready.as_ref().ok().and_then(|r| r.minter.as_ref());
        minter.is_some_and(|m| !user.binding.is_empty() && m.verify(&user.binding, presented))
    }

    fn sealer(&self) -> Option<&Sealer> {
        self.ready.as_ref().ok()?.sealer.as_ref()
    }

    /// Kiali's cookie of a login in progress.
    fn nonce_cookie(&self) -> String {
        format!("kiali-token-nonce-{}", self.cluster)
    }

    /// Whether `path` (below the web root) is open without a session.
    fn is_public(&self, path: &str) -> bool {
        match path {
            "/healthz" | "/readyz" | "/login" | "/logout" | "/api/logout" | "/api/authenticate" => {
                true
            }
            "/metrics" => self.public_metrics,
            _ => path.starts_with("/api/auth/") || path.starts_with("/static/"),
        }
    }

    /// A path inside the console, as a browser should be sent back to it: `return_to` when it
    /// is a same-origin path under the web root, else the web root. Anything else (another
    /// host, `//host`, `\`, a scheme, control characters) is an open-redirect attempt.
    fn return_path(&self, return_to: Option<&str>) -> String {
        let home = format!("{}/", self.prefix);
        let Some(path) = return_to else {
            return home;
        };
        let under_root = self.prefix.is_empty()
            || path == self.prefix
            || path
                .strip_prefix(self.prefix.as_str())
                .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'));
        let plain = path.len() <= 2048
            && path.starts_with('/')
            && !path.starts_with("//")
            && !path.contains('\\')
            && !path.chars().any(|c| c.is_control() || c == ' ');
        if !(under_root && plain) {
            return home;
        }
        // The parser must agree that the path stays on this origin.
        match url::Url::parse("http://console.invalid/").and_then(|base| base.join(path)) {
            Ok(url) if url.host_str() == Some("console.invalid") => path.to_string(),
            _ => home,
        }
    }
}

/// Checks every request against the strategy: see the module doc.
pub async fn gate(State(console): State<Arc<Console>>, request: Request, next: Next) -> Response {
    let auth = &console.auth;
    let path = auth.relative_path(&request);
    if auth.strategy == AuthStrategy::OpenId && callback::is_callback(&path, request.uri().query())
    {
        return callback::callback(&console, request).await;
    }
    if auth.strategy == AuthStrategy::Anonymous || auth.is_public(&path) {
        return next.run(request).await;
    }
    let ready = match auth.ready() {
        Ok(ready) => ready,
        Err(response) => return *response,
    };
    let user = match auth.strategy {
        AuthStrategy::OpenId => auth.session(request.headers()),
        AuthStrategy::Header => {
            let peer = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0);
            match header::user(&ready.trusted, peer, request.headers()) {
                Ok(user) => Some(user),
                Err(refusal) => return refusal.into_response(&path),
            }
        }
        _ => None,
    };
    let Some(user) = user else {
        return auth.unauthenticated(&request);
    };
    let mut request = request;
    if csrf::changes_state(request.method()) {
        let Some(minter) = &ready.minter else {
            return ApiError::new(ErrorCode::Internal, "no CSRF key").into_response();
        };
        request = match csrf::check(minter, &user.binding, request).await {
            Ok(request) => request,
            Err(refused) => return refused.into_response(),
        };
    }
    request.extensions_mut().insert(user);
    next.run(request).await
}

impl Auth {
    /// No valid session: 401 JSON for the API and anything but a page read; a redirect to the
    /// login for a page. Stale session cookies are deleted.
    fn unauthenticated(&self, request: &Request) -> Response {
        let headers = request.headers();
        let path = self.relative_path(request);
        let page_read = matches!(*request.method(), Method::GET | Method::HEAD)
            && !(path == "/api" || path.starts_with("/api/"));
        let mut response = if page_read {
            let back = original_uri(request)
                .path_and_query()
                .map(axum::http::uri::PathAndQuery::as_str);
            let login = format!(
                "{}/login?return_to={}",
                self.prefix,
                encode(&self.return_path(back))
            );
            redirect(&login)
        } else {
            ApiError::new(ErrorCode::Unauthorized, "Unauthorized")
                .with_detail(format!(
                    "no valid session: log in at {}/login (GET {}/api/auth/info describes the strategy)",
                    self.prefix, self.prefix
                ))
                .into_response()
        };
        if session::cookie(headers, &self.names.base).is_some() {
            add_cookies(&mut response, self.clear_session(headers));
        }
        response
    }
}

/// The URI as the client sent it: a layer of a router nested under the web root sees it whole
/// in some places and without the web root in others, so both are read from the original.
fn original_uri(request: &Request) -> &axum::http::Uri {
    request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or(request.uri(), |original| &original.0)
}

impl Auth {
    /// The request's path below the web root (`/` for the web root itself).
    fn relative_path(&self, request: &Request) -> String {
        let full = original_uri(request).path();
        let rest = if self.prefix.is_empty() {
            full
        } else if full == self.prefix {
            ""
        } else {
            full.strip_prefix(self.prefix.as_str())
                .filter(|rest| rest.starts_with('/'))
                .unwrap_or(full)
        };
        if rest.is_empty() { "/" } else { rest }.to_string()
    }
}

pub(crate) fn redirect(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(h::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(h::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn add_cookies(response: &mut Response, cookies: Vec<String>) {
    for cookie in cookies {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(h::SET_COOKIE, value);
        }
    }
}

pub(crate) fn encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Whether the browser reached the console over https (directly, or as a TLS-terminating
/// proxy says with `X-Forwarded-Proto`). Only the cookies' `Secure` flag depends on it.
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// An HTTP date (`Expires`).
pub(crate) fn http_date(unix: i64) -> Option<String> {
    Some(
        chrono::DateTime::from_timestamp(unix, 0)?
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string(),
    )
}

impl Ready {
    fn new(config: &Config, options: &AuthOptions) -> Result<Ready, String> {
        let strategy = config.auth.strategy;
        let mut ready = Ready {
            sealer: None,
            minter: None,
            openid: None,
            trusted: options.trusted_proxies.clone(),
            session_secs: config.login_token.expiration_seconds,
        };
        match strategy {
            AuthStrategy::Anonymous => return Ok(ready),
            AuthStrategy::Token | AuthStrategy::OpenShift => {
                return Err(format!(
                    "the `{}` strategy needs the Kubernetes API, which meshtrace does not use",
                    strategy.as_str()
                ));
            }
            AuthStrategy::OpenId | AuthStrategy::Header => {}
        }
        let key = config
            .login_token
            .signing_key
            .resolve()
            .map_err(|e| format!("login_token.signing_key: {e}"))?;
        if let Some(problem) = meshtrace_config::signing_key_problem(&key) {
            return Err(format!("login_token.signing_key {problem}"));
        }
        ready.sealer = Sealer::new(key.as_bytes());
        ready.minter = csrf::Minter::new(key.as_bytes());
        if strategy == AuthStrategy::OpenId {
            ready.openid = Some(openid::Provider::new(config, &options.oidc_secret_file)?);
        }
        if strategy == AuthStrategy::Header && ready.trusted.is_empty() {
            return Err(
                "the `header` strategy trusts the Authorization header only from the \
                        authenticating proxy, and no proxy address is configured \
                        (--auth-trusted-proxy)"
                    .to_string(),
            );
        }
        Ok(ready)
    }
}
