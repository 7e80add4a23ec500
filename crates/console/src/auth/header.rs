//! The `header` strategy: an authenticating reverse proxy puts `Authorization: Bearer <token>`
//! (and optionally `Impersonate-User`) on every request, as for Kiali. Kiali asks the
//! Kubernetes API who the token belongs to; meshtrace has no Kubernetes API, so it believes the
//! header only from the configured proxy addresses, and refuses requests from anywhere else or
//! without the header. The user shown is the impersonated one, else the token's subject.

use std::net::SocketAddr;

use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::User;
use crate::error::{ApiError, ErrorCode};

/// Longest user name taken from a header; longer ones are refused, not cut.
const MAX_NAME: usize = 256;
/// Longest token whose claims are read for a subject.
const MAX_TOKEN: usize = 16 << 10;

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not from a trusted proxy: the header could be anyone's.
    Untrusted,
    /// From the proxy, without the header (Kiali: 401 `Token is missing`).
    Missing,
    /// An `Impersonate-User` that is not a plain name.
    BadUser,
}

impl Refusal {
    pub fn into_response(self, _path: &str) -> Response {
        match self {
            Refusal::Untrusted => ApiError::new(
                ErrorCode::Forbidden,
                "requests must come through the authenticating proxy",
            )
            .with_detail(
                "the `header` strategy accepts requests only from the configured proxy addresses",
            )
            .into_response(),
            Refusal::Missing => ApiError::new(ErrorCode::Unauthorized, "Token is missing")
                .with_detail("the proxy sent no `Authorization: Bearer` header")
                .into_response(),
            Refusal::BadUser => ApiError::bad_request(
                "the Impersonate-User header is not a user name (at most 256 printable characters)",
            )
            .into_response(),
        }
    }
}

/// The user of a request under the `header` strategy.
pub fn user(
    trusted: &[ipnet::IpNet],
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
) -> Result<User, Refusal> {
    let peer = peer.ok_or(Refusal::Untrusted)?;
    // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
    let ip = peer.ip().to_canonical();
    if !trusted.iter().any(|net| net.contains(&ip)) {
        return Err(Refusal::Untrusted);
    }
    let token = bearer(headers).ok_or(Refusal::Missing)?;
    let name = match headers.get("impersonate-user") {
        Some(value) => {
            let name = value.to_str().map_err(|_| Refusal::BadUser)?.trim();
            if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
                return Err(Refusal::BadUser);
            }
            name.to_string()
        }
        None => subject(token).unwrap_or_else(|| "token".to_string()),
    };
    Ok(User {
        binding: format!("{token}\n{name}"),
        name,
        expires_on: None,
        id_token: None,
    })
}

/// The token of `Authorization`, as Kiali takes it: a value containing `Bearer`, with the
/// `Bearer` prefix removed. A bare `Bearer` (HTTP trims the space after it) is no token.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if !value.contains("Bearer") {
        return None;
    }
    let token = value.strip_prefix("Bearer").unwrap_or(value).trim();
    (!token.is_empty()).then_some(token)
}

/// The `sub` of a JWT, read without verifying it (only the proxy is trusted, not the token),
/// shortened as Kiali shortens service accounts.
fn subject(token: &str) -> Option<String> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let mut parts = token.split('.');
    let claims = parts.nth(1)?;
    let claims = URL_SAFE_NO_PAD.decode(claims.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&claims).ok()?;
    let sub = claims.get("sub")?.as_str()?;
    let sub = sub.strip_prefix("system:serviceaccount:").unwrap_or(sub);
    (!sub.is_empty() && sub.len() <= MAX_NAME && !sub.chars().any(char::is_control))
        .then(|| sub.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;

    #[test]
    fn only_trusted_peers_with_a_bearer_token_pass() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:5000".parse().unwrap();
        let other: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let with = headers(&[("authorization", "Bearer abc")]);
        assert_eq!(user(&trusted, Some(proxy), &with).unwrap().name, "token");
        assert_eq!(user(&trusted, Some(mapped), &with).unwrap().name, "token");
        assert_eq!(
            user(&trusted, Some(other), &with).unwrap_err(),
            Refusal::Untrusted
        );
        assert_eq!(user(&trusted, None, &with).unwrap_err(), Refusal::Untrusted);
        for value in ["Basic abc", "Bearer ", "Bearer", "bearer abc"] {
            let h = headers(&[("authorization", value)]);
            assert_eq!(
                user(&trusted, Some(proxy), &h).unwrap_err(),
                Refusal::Missing
            );
        }
        let h = headers(&[
            ("authorization", "Bearer abc"),
            ("impersonate-user", "alice"),
        ]);
        assert_eq!(user(&trusted, Some(proxy), &h).unwrap().name, "alice");
        let long = "a".repeat(MAX_NAME + 1);
        let h = headers(&[("authorization", "Bearer abc"), ("impersonate-user", &long)]);
        assert_eq!(
            user(&trusted, Some(proxy), &h).unwrap_err(),
            Refusal::BadUser
        );
    }

    #[test]
    fn the_subject_comes_from_the_token_claims() {
        let claims = URL_SAFE_NO_PAD.encode(r#"{"sub":"system:serviceaccount:mesh:viewer"}"#);
        assert_eq!(
            subject(&format!("e30.{claims}.sig")).as_deref(),
            Some("mesh:viewer")
        );
        assert_eq!(subject("not-a-jwt"), None);
        assert_eq!(subject("a.!!!.c"), None);
    }
}
