//! The `openid` strategy, as Kiali does it: `/api/auth/openid_redirect` starts the
//! authorization-code flow with PKCE, `state` and `nonce` against the provider found by
//! discovery; the provider sends the browser back to the web root with `code` and `state`; the
//! code is exchanged and the ID token's signature, issuer, audience, expiry and nonce are
//! checked by the `openidconnect` crate; `allowed_domains` and `username_claim` apply; the
//! session lives in Kiali's cookie until the ID token expires.
//!
//! What the login needs between the two legs (state, nonce, PKCE verifier, the redirect URI
//! and where to go back to) travels sealed in Kiali's nonce cookie,
//! `kiali-token-nonce-<cluster>`, for `authentication_timeout` seconds.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::response::Response;
use meshtrace_config::{Config, OpenIdConfig};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient};
use openidconnect::{
    AuthUrl, ClientId, ClientSecret, CsrfToken, EndSessionUrl, IssuerUrl, JsonWebKeySet,
    JsonWebKeySetUrl, LogoutRequest, Nonce, PkceCodeChallenge, PostLogoutRedirectUrl,
    ProviderMetadataWithLogout, RedirectUrl, Scope, TokenUrl, UserInfoUrl,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{Auth, User, add_cookies, encode, now, redirect};
use crate::Console;

/// How long discovered metadata and keys are used before they are fetched again.
const METADATA_TTL: Duration = Duration::from_secs(300);
/// The longest answer read from the provider (metadata, keys, tokens).
const MAX_ANSWER: usize = 1 << 20;
const TIMEOUT: Duration = Duration::from_secs(10);
/// Where Kiali's Deployment mounts the provider's CA (ConfigMap `kiali-cabundle`).
const CA_FILE: &str = "/kiali-cabundle/openid-server-ca.crt";

pub struct Provider {
    pub(super) config: OpenIdConfig,
    scopes: Vec<String>,
    secret: Option<String>,
    http: reqwest::Client,
    metadata: Mutex<Option<(Instant, Arc<ProviderMetadataWithLogout>)>>,
}

/// What the login needs between its two legs.
#[derive(Serialize, Deserialize)]
pub(super) struct LoginState {
    pub(super) state: String,
    pub(super) nonce: String,
    pub(super) pkce: String,
    pub(super) redirect_uri: String,
    pub(super) return_to: String,
    pub(super) expires: i64,
}

/// Why a request to the provider failed (its text goes into the login page's message).
#[derive(Debug)]
pub struct HttpError(String);

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpError {}

/// The HTTP client the `openidconnect` crate sends its requests with.
pub(super) struct Http(reqwest::Client);

type Answer = Result<openidconnect::HttpResponse, HttpError>;

impl<'c> openidconnect::AsyncHttpClient<'c> for Http {
    type Error = HttpError;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + Send + 'c>>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(send(&self.0, request))
    }
}

/// One request to the provider, its answer read up to [`MAX_ANSWER`] bytes.
async fn send(client: &reqwest::Client, request: openidconnect::HttpRequest) -> Answer {
    let (parts, body) = request.into_parts();
    let mut answer = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(describe(&e)))?;
    let mut response = openidconnect::http::Response::builder().status(answer.status());
    for (name, value) in answer.headers() {
        response = response.header(name, value);
    }
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| HttpError(describe(&e)))? {
        if body.len().saturating_add(chunk.len()) > MAX_ANSWER {
            return Err(HttpError(
                "the provider's answer is larger than 1 MiB".into(),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    response.body(body).map_err(|e| HttpError(e.to_string()))
}

impl Provider {
    pub fn new(config: &Config, secret_file: &Path) -> Result<Provider, String> {
        let openid = &config.auth.openid;
        let secret = match std::fs::read(secret_file) {
            Ok(bytes) if bytes.len() <= 64 << 10 => {
                let text = String::from_utf8(bytes).map_err(|_| {
                    format!(
                        "the OpenID client secret in {} is not UTF-8",
                        secret_file.display()
                    )
                })?;
                Some(text.trim().to_string()).filter(|s| !s.is_empty())
            }
            Ok(_) => {
                return Err(format!(
                    "the OpenID client secret file {} is larger than 64 KiB",
                    secret_file.display()
                ));
            }
            // No Secret mounted: a public client (PKCE alone), as Kiali allows.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("cannot read {}: {e}", secret_file.display())),
        };
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            // openidconnect's advice: a redirect could send a request anywhere (SSRF).
            .redirect(reqwest::redirect::Policy::none())
            .tls_danger_accept_invalid_certs(openid.insecure_skip_verify_tls);
        if let Ok(pem) = std::fs::read(CA_FILE) {
            let ca = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("{CA_FILE} is not a PEM certificate: {e}"))?;
            builder = builder.add_root_certificate(ca);
        }
        if !openid.http_proxy.is_empty() {
            let proxy =
                reqwest::Proxy::http(&openid.http_proxy).map_err(|e| bad("http_proxy", e))?;
            builder = builder.proxy(proxy);
        }
        if !openid.https_proxy.is_empty() {
            let proxy =
                reqwest::Proxy::https(&openid.https_proxy).map_err(|e| bad("https_proxy", e))?;
            builder = builder.proxy(proxy);
        }
        let http = builder
            .build()
            .map_err(|e| format!("the OpenID HTTP client cannot be built: {e}"))?;
        Ok(Provider {
            config: openid.clone(),
            scopes: config.auth.openid_scopes(),
            secret,
            http,
            metadata: Mutex::new(None),
        })
    }

    pub(super) fn http(&self) -> Http {
        Http(self.http.clone())
    }

    /// The provider's metadata and keys, from discovery (cached), with `discovery_override`.
    pub(super) async fn metadata(&self) -> Result<Arc<ProviderMetadataWithLogout>, String> {
        let mut cached = self.metadata.lock().await;
        if let Some((at, metadata)) = cached.as_ref()
            && at.elapsed() < METADATA_TTL
        {
            return Ok(metadata.clone());
        }
        let http = self.http();
        let issuer = IssuerUrl::new(self.config.issuer_uri.clone())
            .map_err(|e| format!("auth.openid.issuer_uri: {e}"))?;
        let mut metadata = ProviderMetadataWithLogout::discover_async(issuer, &http)
            .await
            .map_err(|e| {
                format!(
                    "OpenID discovery at the issuer failed: {}",
                    discovery_error(&e)
                )
            })?;
        let o = &self.config.discovery_override;
        if let Some(endpoint) = self.config.authorization_override() {
            metadata = metadata.set_authorization_endpoint(
                AuthUrl::new(endpoint.to_string()).map_err(|e| bad("authorization_endpoint", e))?,
            );
        }
        if !o.token_endpoint.is_empty() {
            let url =
                TokenUrl::new(o.token_endpoint.clone()).map_err(|e| bad("token_endpoint", e))?;
            metadata = metadata.set_token_endpoint(Some(url));
        }
        if !o.userinfo_endpoint.is_empty() {
            let url = UserInfoUrl::new(o.userinfo_endpoint.clone())
                .map_err(|e| bad("userinfo_endpoint", e))?;
            metadata = metadata.set_userinfo_endpoint(Some(url));
        }
        if !o.jwks_uri.is_empty() {
            let url = JsonWebKeySetUrl::new(o.jwks_uri.clone()).map_err(|e| bad("jwks_uri", e))?;
            let keys = JsonWebKeySet::fetch_async(&url, &http)
                .await
                .map_err(|e| format!("the provider's keys: {}", discovery_error(&e)))?;
            metadata = metadata.set_jwks_uri(url).set_jwks(keys);
        }
        if !o.end_session_endpoint.is_empty() {
            let url = EndSessionUrl::new(o.end_session_endpoint.clone())
                .map_err(|e| bad("end_session_endpoint", e))?;
            metadata.additional_metadata_mut().end_session_endpoint = Some(url);
        }
        let metadata = Arc::new(metadata);
        *cached = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    pub(super) fn client(
        &self,
        metadata: &ProviderMetadataWithLogout,
        redirect_uri: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        String,
    > {
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| format!("the console's URL {redirect_uri} is not a URL: {e}"))?;
        Ok(CoreClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(self.config.client_id.clone()),
            self.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
    }
}

/// Starts a login: the nonce cookie, then a redirect to the provider's authorization endpoint.
/// A provider that cannot be reached sends the browser to the login page with the reason.
pub async fn start(console: &Console, headers: &HeaderMap, return_to: Option<&str>) -> Response {
    let auth = &console.auth;
    let (Ok(ready), Some(sealer)) = (auth.ready(), auth.sealer()) else {
        return login_error(
            auth,
            "authentication is misconfigured: see the console's log",
        );
    };
    let Some(provider) = ready.openid.as_ref() else {
        return login_error(auth, "the openid strategy is not configured");
    };
    let Some(redirect_uri) = console_url(headers, &auth.prefix) else {
        return login_error(auth, "the request's Host header is not a host name");
    };
    let metadata = match provider.metadata().await {
        Ok(metadata) => metadata,
        Err(error) => return login_error(auth, &error),
    };
    let client = match provider.client(&metadata, &redirect_uri) {
        Ok(client) => client,
        Err(error) => return login_error(auth, &error),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in provider.scopes.iter().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    for (name, value) in &provider.config.additional_request_params {
        request = request.add_extra_param(name.clone(), value.clone());
    }
    let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
    let timeout = i64::try_from(provider.config.authentication_timeout_secs).unwrap_or(300);
    let login = LoginState {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce: verifier.secret().clone(),
        redirect_uri,
        return_to: auth.return_path(return_to),
        expires: now().saturating_add(timeout),
    };
    let sealed = serde_json::to_vec(&login)
        .ok()
        .and_then(|plain| sealer.seal(&plain));
    let (Some(sealed), Some(expires)) = (sealed, super::http_date(login.expires)) else {
        return login_error(
            auth,
            "the login could not be started (random source or clock)",
        );
    };
    let mut response = redirect(url.as_str());
    // Lax: the provider's redirect back is a cross-site navigation, which carries Lax cookies.
    let attrs = auth.attrs(headers, Some(&expires), "Lax");
    add_cookies(
        &mut response,
        vec![super::session::set_cookie(
            &auth.nonce_cookie(),
            &sealed,
            &attrs,
        )],
    );
    response
}

/// The provider's end-session URL for this user, when it has one (RP-initiated logout).
pub async fn end_session_url(
    console: &Console,
    headers: &HeaderMap,
    user: Option<&User>,
) -> Option<String> {
    let auth = &console.auth;
    let provider = auth.ready().ok()?.openid.as_ref()?;
    let metadata = provider.metadata().await.ok()?;
    let endpoint = metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()?;
    let back = if provider.config.post_logout_redirect_uri.is_empty() {
        console_url(headers, &auth.prefix)?
    } else {
        provider.config.post_logout_redirect_uri.clone()
    };
    let mut request = LogoutRequest::from(endpoint)
        .set_client_id(ClientId::new(provider.config.client_id.clone()));
    if let Ok(back) = PostLogoutRedirectUrl::new(back) {
        request = request.set_post_logout_redirect_uri(back);
    }
    let mut url = request.http_get_url();
    if let Some(token) = user.and_then(|u| u.id_token.as_deref()) {
        url.query_pairs_mut().append_pair("id_token_hint", token);
    }
    Some(url.to_string())
}

/// The console's URL as the browser reaches it (Kiali guesses it the same way): the scheme
/// from `X-Forwarded-Proto`, the host from `X-Forwarded-Host` or `Host`, then the web root.
fn console_url(headers: &HeaderMap, prefix: &str) -> Option<String> {
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(axum::http::header::HOST))?
        .to_str()
        .ok()?
        .split(',')
        .next()?
        .trim();
    let plain = |c: char| c.is_ascii_alphanumeric() || "-.:[]_".contains(c);
    if host.is_empty() || host.len() > 255 || !host.chars().all(plain) {
        return None;
    }
    let scheme = if super::over_https(headers) {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}{prefix}/"))
}

pub(super) fn login_error(auth: &Auth, error: &str) -> Response {
    redirect(&format!(
        "{}/login?openid_error={}",
        auth.prefix,
        encode(&bounded(error))
    ))
}

fn bad(key: &str, error: impl std::fmt::Display) -> String {
    format!("auth.openid.{key}: {error}")
}

/// A query's parameters, at most 32 (a callback has a handful).
pub(super) fn params(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .take(32)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Text from the provider or the ID token, cut to 200 characters for messages.
pub(super) fn bounded(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

fn discovery_error<E: std::error::Error>(error: &openidconnect::DiscoveryError<E>) -> String {
    use openidconnect::DiscoveryError as D;
    match error {
        D::Request(e) => format!("cannot reach the provider: {e}"),
        D::Parse(_) => "the provider's answer is not OpenID metadata (an HTML page?)".into(),
        D::Response(status, _, message) if status.is_success() => format!(
            "the provider's answer is not OpenID metadata (an HTML page?): {}",
            bounded(message)
        ),
        D::Response(status, _, _) => format!("the provider answered HTTP {status}"),
        D::Validation(e) => bounded(e),
        other => bounded(&other.to_string()),
    }
}
