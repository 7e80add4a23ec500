//! The CSRF token of a signed-in user. A state-changing request (any method but GET, HEAD,
//! OPTIONS and TRACE) made with a session must carry it, in the `X-CSRF-Token` header or, for
//! an HTML form, in its `csrf_token` field. Pages carry it (a `<meta name="csrf-token">` and a
//! hidden field in each form); API clients read it from the `X-CSRF-Token` header of
//! `GET /api/auth/info`.
//!
//! The token is an HMAC of what the user's credential is bound to — the session's id
//! (`openid`) or the proxy's bearer token and impersonated user (`header`) — keyed with
//! `login_token.signing_key`. So it needs no state, changes with every login, and a page of
//! another site can neither read nor compute it. It adds to the same-origin check
//! (`same_origin.rs`), which stays in front of it.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ApiError;

/// The request header that carries the token, and the response header of `/api/auth/info`.
pub const HEADER: &str = "x-csrf-token";
/// The form field that carries the token in a page's forms.
pub const FIELD: &str = "csrf_token";
/// The largest form body read to find the field: the configuration tester's draft bound.
const MAX_FORM: usize = crate::check::MAX_DRAFT;
/// What the HMAC is keyed for, so the key's other use (sealing sessions) never meets it.
const PURPOSE: &[u8] = b"meshtrace csrf token\0";

/// Makes and checks tokens with the signing key.
#[derive(Clone)]
pub struct Minter(Hmac<Sha256>);

impl Minter {
    pub fn new(key: &[u8]) -> Option<Minter> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
        mac.update(PURPOSE);
        Some(Minter(mac))
    }

    /// The token of a credential's binding (see the module doc).
    pub fn token(&self, binding: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(binding).finalize().into_bytes())
    }

    /// Whether `presented` is the token of `binding`.
    pub fn verify(&self, binding: &str, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| self.accepts(binding, p))
    }

    /// Whether `presented` is the token of `binding`, compared in constant time.
    fn accepts(&self, binding: &str, presented: &str) -> bool {
        match URL_SAFE_NO_PAD.decode(presented.trim()) {
            Ok(bytes) => self.mac(binding).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }

    fn mac(&self, binding: &str) -> Hmac<Sha256> {
        let mut mac = self.0.clone();
        mac.update(binding.as_bytes());
        mac
    }
}

/// Whether a request changes state (and so needs the token).
pub fn changes_state(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

pub fn refused() -> ApiError {
    ApiError::forbidden(
        "missing or wrong CSRF token: send the page's token in the X-CSRF-Token header or the \
         csrf_token form field (GET /api/auth/info returns it in its X-CSRF-Token header)",
    )
}

/// Checks the token of a state-changing request of a signed-in user. A form's body is read
/// (bounded) to find its field, and given back whole to the request for its handler.
pub async fn check(minter: &Minter, binding: &str, request: Request) -> Result<Request, ApiError> {
    if let Some(presented) = request.headers().get(HEADER) {
        let presented = presented.to_str().unwrap_or_default();
        return if minter.accepts(binding, presented) {
            Ok(request)
        } else {
            Err(refused())
        };
    }
    if !is_form(request.headers()) {
        return Err(refused());
    }
    let (parts, body) = request.into_parts();
    let bytes = read_form(body).await?;
    let presented = form_urlencoded::parse(&bytes)
        .find(|(key, _)| key == FIELD)
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    if minter.accepts(binding, &presented) {
        Ok(Request::from_parts(parts, Body::from(bytes)))
    } else {
        Err(refused())
    }
}

/// The token a form posted to a route the gate leaves open (`POST /logout`) carries.
pub fn form_field(body: &[u8]) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == FIELD)
        .map(|(_, value)| value.into_owned())
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

async fn read_form(body: Body) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_FORM).await.map_err(|_| {
        ApiError::too_large(format!(
            "a form is at most {} KiB (or the body could not be read)",
            MAX_FORM / 1024
        ))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_its_own_binding_under_its_own_key() {
        let minter = Minter::new(&[7u8; 32]).unwrap();
        let other_key = Minter::new(&[8u8; 32]).unwrap();
        let token = minter.token("session-a");
        assert!(minter.verify("session-a", Some(&token)));
        assert!(!minter.verify("session-b", Some(&token)));
        assert!(!other_key.verify("session-a", Some(&token)));
        assert!(!minter.verify("session-a", None));
        assert!(!minter.verify("session-a", Some("")));
        assert!(!minter.verify("session-a", Some("not base64 at all!")));
        let mut flipped = token.into_bytes();
        if let Some(first) = flipped.first_mut() {
            *first = if *first == b'A' { b'B' } else { b'A' };
        }
        assert!(!minter.verify("session-a", Some(std::str::from_utf8(&flipped).unwrap())));
    }
}
