//! The provider's answer to a login (`openid`): it comes to the web root with `code` and
//! `state` (Kiali has no callback path). The state must be this browser's login's, the code is
//! exchanged with the PKCE verifier, and the ID token's signature, issuer, audience, expiry and
//! nonce are checked by `openidconnect`; then `allowed_domains` and `username_claim` apply, as
//! Kiali applies them, and the session starts.

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::{AuthorizationCode, Nonce, PkceCodeVerifier, TokenResponse};

use super::openid::{LoginState, bounded, login_error, params};
use super::{User, add_cookies, now};
use crate::Console;

/// Whether a request to the web root is the provider's answer: `state` with `code` or `error`.
pub fn is_callback(path: &str, query: Option<&str>) -> bool {
    if !matches!(path, "/" | "") {
        return false;
    }
    let params = params(query);
    let has = |key: &str| params.iter().any(|(k, _)| k == key);
    has("state") && (has("code") || has("error"))
}

/// The provider's answer: checks it, exchanges the code, verifies the ID token, and starts the
/// session; any failure lands on the login page with what failed.
pub async fn callback(console: &Console, request: Request) -> Response {
    let auth = &console.auth;
    let headers = request.headers();
    let params = params(request.uri().query());
    let clear_login = {
        let attrs = auth.attrs(headers, None, "Lax");
        super::session::set_cookie(&auth.nonce_cookie(), "", &attrs)
    };
    let mut response = match finish(console, headers, &params).await {
        Ok((user, token, return_to)) => match auth.new_session(headers, &user, &token) {
            Some(cookies) => {
                tracing::info!(user = %user.name, "openid login");
                let mut response = continue_to(&return_to);
                add_cookies(&mut response, cookies);
                response
            }
            None => login_error(auth, "the session could not be sealed"),
        },
        Err(error) => {
            tracing::warn!(%error, "openid login refused");
            login_error(auth, &error)
        }
    };
    add_cookies(&mut response, vec![clear_login]);
    response
}

async fn finish(
    console: &Console,
    headers: &HeaderMap,
    params: &[(String, String)],
) -> Result<(User, String, String), String> {
    let get = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let auth = &console.auth;
    let ready = auth
        .ready()
        .map_err(|_| "authentication is misconfigured")?;
    let provider = ready
        .openid
        .as_ref()
        .ok_or("the openid strategy is not configured")?;
    let sealer = auth.sealer().ok_or("authentication is misconfigured")?;
    let login = super::session::cookie(headers, &auth.nonce_cookie())
        .and_then(|sealed| sealer.open(sealed))
        .and_then(|plain| serde_json::from_slice::<LoginState>(&plain).ok())
        .ok_or(
            "this browser holds no login in progress (its cookie is missing, expired or \
             foreign): log in again",
        )?;
    if login.expires < now() {
        return Err(format!(
            "the login took longer than auth.openid.authentication_timeout ({} s): log in again",
            provider.config.authentication_timeout_secs
        ));
    }
    if get("state") != Some(login.state.as_str()) {
        return Err("the provider's answer carries another login's state: log in again".into());
    }
    if let Some(error) = get("error") {
        let detail = get("error_description").unwrap_or_default();
        return Err(format!(
            "the provider refused the login: {} {}",
            bounded(error),
            bounded(detail)
        ));
    }
    let code = get("code").ok_or("the provider's answer has no code")?;
    let metadata = provider.metadata().await?;
    let client = provider.client(&metadata, &login.redirect_uri)?;
    let http = provider.http();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .map_err(|e| format!("the provider has no token endpoint: {e}"))?
        .set_pkce_verifier(PkceCodeVerifier::new(login.pkce.clone()))
        .request_async(&http)
        .await
        .map_err(|e| token_error(&e))?;
    let id_token = tokens
        .id_token()
        .ok_or("the provider's token answer has no ID token")?;
    let verifier = client.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &Nonce::new(login.nonce.clone()))
        .map_err(|e| format!("the ID token was refused: {}", bounded(&e.to_string())))?;
    let expires = claims.expiration().timestamp();
    let token = id_token.to_string();
    // The signature is checked: its claims can be read as they are, for any claim name.
    let all = token
        .split('.')
        .nth(1)
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|c| serde_json::from_slice::<serde_json::Value>(&c).ok())
        .ok_or("the ID token's claims cannot be read")?;
    allowed_domain(&all, &provider.config.allowed_domains)?;
    let claim = &provider.config.username_claim;
    let name = match all.get(claim) {
        Some(serde_json::Value::String(name)) => name.clone(),
        Some(value @ serde_json::Value::Number(_)) => value.to_string(),
        _ => {
            return Err(format!(
                "the ID token has no `{}` claim (auth.openid.username_claim)",
                bounded(claim)
            ));
        }
    };
    let user = User {
        name: bounded(&name),
        expires_on: Some(expires),
        id_token: Some(token.clone()),
        // Bound when its session is sealed; this value serves no request.
        binding: String::new(),
    };
    Ok((user, token, login.return_to))
}

/// Kiali's rule: the `hd` claim, else the domain of `email`, must be allowed.
fn allowed_domain(claims: &serde_json::Value, allowed: &[String]) -> Result<(), String> {
    if allowed.is_empty() {
        return Ok(());
    }
    let domain = if let Some(hd) = claims.get("hd").and_then(|v| v.as_str()) {
        hd.to_string()
    } else if let Some(email) = claims.get("email").and_then(|v| v.as_str()) {
        let (_, domain) = email.rsplit_once('@').ok_or_else(|| {
            format!(
                "cannot detect hosted domain on OpenID for the email {}",
                bounded(email)
            )
        })?;
        domain.to_string()
    } else {
        return Err(
            "cannot detect hosted domain on OpenID: the ID token has no `hd` or `email` claim"
                .into(),
        );
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(&domain)) {
        Ok(())
    } else {
        Err(format!("domain {} not allowed to login", bounded(&domain)))
    }
}

/// The page that ends a login: it sends the browser on from the console's own origin, so
/// that the new SameSite=Strict cookie goes with the next request (a redirect that follows
/// the provider's cross-site one would not carry it).
fn continue_to(path: &str) -> Response {
    super::routes::onward("logged in", "Logged in.", path)
}

fn token_error<E: std::error::Error, T: openidconnect::ErrorResponse>(
    error: &openidconnect::RequestTokenError<E, T>,
) -> String {
    use openidconnect::RequestTokenError as R;
    match error {
        R::ServerResponse(e) => {
            format!("the provider refused the code: {}", bounded(&e.to_string()))
        }
        R::Request(e) => format!("cannot reach the provider's token endpoint: {e}"),
        R::Parse(_, _) => "the provider's token answer is not JSON".into(),
        R::Other(e) => bounded(e),
    }
}
