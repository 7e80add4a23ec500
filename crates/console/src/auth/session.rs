//! Kiali's session cookie: `kiali-token-<cluster>` holds base64(nonce ‖ AES-GCM(JSON session))
//! encrypted with `login_token.signing_key` (AES-128, -192 or -256 by its length). A value over
//! 3584 bytes is split into `kiali-token-<cluster>-1`, `-2`, … with the count (1–180) in
//! `kiali-token-chunks-<cluster>`. The cookies are HttpOnly, SameSite=Strict, on the web root's
//! path, Secure over https, and expire with the session.
//!
//! The same sealing protects the short-lived login-in-progress cookie of `openid` (state,
//! nonce, PKCE verifier, where to go back to), so none of it can be read or forged.

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::aes::Aes192;
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::{Deserialize, Serialize};

/// Kiali's `SessionCookieMaxSize`: browsers keep 4 KiB a cookie, name and attributes included.
pub const CHUNK_BYTES: usize = 3584;
/// Kiali's bound on the chunk count (browsers keep about 180 cookies a domain).
pub const MAX_CHUNKS: usize = 180;
/// Cookies looked at in a request; the rest are ignored (a request may carry many).
const MAX_COOKIES: usize = 256;
const NONCE_BYTES: usize = 12;

type Aes192Gcm = AesGcm<Aes192, aes_gcm::aead::consts::U12>;

/// AES-GCM with the signing key; the key's length picks the AES variant.
#[derive(Clone)]
pub enum Sealer {
    Aes128(Box<Aes128Gcm>),
    Aes192(Box<Aes192Gcm>),
    Aes256(Box<Aes256Gcm>),
}

impl Sealer {
    /// `None` unless the key is 16, 24 or 32 bytes (checked with a message by the config).
    pub fn new(key: &[u8]) -> Option<Sealer> {
        match key.len() {
            16 => Aes128Gcm::new_from_slice(key)
                .ok()
                .map(|c| Sealer::Aes128(Box::new(c))),
            24 => Aes192Gcm::new_from_slice(key)
                .ok()
                .map(|c| Sealer::Aes192(Box::new(c))),
            32 => Aes256Gcm::new_from_slice(key)
                .ok()
                .map(|c| Sealer::Aes256(Box::new(c))),
            _ => None,
        }
    }

    /// base64(nonce ‖ ciphertext), as Kiali writes it.
    pub fn seal(&self, plain: &[u8]) -> Option<String> {
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).ok()?;
        let n = Nonce::from_slice(&nonce);
        let sealed = match self {
            Sealer::Aes128(c) => c.encrypt(n, plain),
            Sealer::Aes192(c) => c.encrypt(n, plain),
            Sealer::Aes256(c) => c.encrypt(n, plain),
        }
        .ok()?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Some(STANDARD.encode(out))
    }

    /// The plain bytes, or `None` for anything not sealed with this key (tampered, foreign,
    /// truncated, not base64). Kiali also accepts base64 without padding.
    pub fn open(&self, text: &str) -> Option<Vec<u8>> {
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| STANDARD_NO_PAD.decode(text))
            .ok()?;
        let (nonce, sealed) = bytes.split_at_checked(NONCE_BYTES)?;
        let n = Nonce::from_slice(nonce);
        match self {
            Sealer::Aes128(c) => c.decrypt(n, sealed),
            Sealer::Aes192(c) => c.decrypt(n, sealed),
            Sealer::Aes256(c) => c.decrypt(n, sealed),
        }
        .ok()
    }
}

/// Kiali's session, as it is encrypted into the cookie.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionData {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster: String,
    /// RFC 3339, as Go writes a `time.Time`.
    #[serde(rename = "expiresOn")]
    pub expires_on: String,
    #[serde(default)]
    pub payload: Option<Payload>,
    #[serde(rename = "sessionId", default)]
    pub session_id: String,
    pub strategy: String,
}

/// The payload of an `openid` or `header` session: who, and the token they came with.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Payload {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subject: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
}

/// The cookie names of a session keyed by `cluster`.
pub struct Names {
    pub base: String,
    pub chunks: String,
}

impl Names {
    pub fn new(cluster: &str) -> Names {
        Names {
            base: format!("kiali-token-{cluster}"),
            chunks: format!("kiali-token-chunks-{cluster}"),
        }
    }

    fn chunk(&self, i: usize) -> String {
        format!("{}-{i}", self.base)
    }
}

/// How a cookie is written: where it applies, whether only over https, and until when.
pub struct CookieAttrs<'a> {
    pub path: &'a str,
    pub secure: bool,
    /// An HTTP date (`Expires`), or `None` to delete the cookie.
    pub expires: Option<&'a str>,
    pub same_site: &'static str,
}

/// One `Set-Cookie` value. Names and values here are ours (base64, digits, cluster names
/// from the config), never a request's.
pub fn set_cookie(name: &str, value: &str, attrs: &CookieAttrs<'_>) -> String {
    let mut cookie = format!("{name}={value}; Path={}", attrs.path);
    match attrs.expires {
        Some(expires) => cookie.push_str(&format!("; Expires={expires}")),
        None => cookie.push_str("; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
    }
    cookie.push_str("; HttpOnly; SameSite=");
    cookie.push_str(attrs.same_site);
    if attrs.secure {
        cookie.push_str("; Secure");
    }
    cookie
}

/// The `Set-Cookie` values that store `sealed` under `names`, chunked as Kiali chunks it.
pub fn session_cookies(names: &Names, sealed: &str, attrs: &CookieAttrs<'_>) -> Vec<String> {
    let chunks: Vec<&str> = sealed
        .as_bytes()
        .chunks(CHUNK_BYTES)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    let mut cookies = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let name = if i == 0 {
            names.base.clone()
        } else {
            names.chunk(i)
        };
        cookies.push(set_cookie(&name, chunk, attrs));
    }
    if chunks.len() > 1 {
        cookies.push(set_cookie(&names.chunks, &chunks.len().to_string(), attrs));
    }
    cookies
}

/// The `Set-Cookie` values that delete a session: the cookies the request carried under
/// `names` (its chunks too), or the base cookie alone.
pub fn clear_cookies(names: &Names, headers: &HeaderMap, attrs: &CookieAttrs<'_>) -> Vec<String> {
    let mut cookies = vec![set_cookie(&names.base, "", attrs)];
    for (name, _) in cookies_of(headers) {
        let chunk = name
            .strip_prefix(names.base.as_str())
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| n.parse::<usize>().is_ok_and(|n| n <= MAX_CHUNKS));
        if chunk || name == names.chunks {
            cookies.push(set_cookie(name, "", attrs));
        }
    }
    cookies
}

/// The cookies of a request as (name, value), at most [`MAX_COOKIES`] of them.
pub fn cookies_of(headers: &HeaderMap) -> Vec<(&str, &str)> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .take(MAX_COOKIES)
        .collect()
}

pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    cookies_of(headers)
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// Why a session cookie was not read: said in logs, never to the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Unreadable {
    Missing,
    BadChunks,
    NotOurs,
}

/// The sealed text of the session under `names`, chunks joined (Kiali's rules: the count
/// cookie, when present, must be 1–180 and every chunk there).
pub fn read_sealed(names: &Names, headers: &HeaderMap) -> Result<String, Unreadable> {
    let all = cookies_of(headers);
    let find = |name: &str| all.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    let first = find(&names.base).ok_or(Unreadable::Missing)?;
    let Some(count) = find(&names.chunks) else {
        return Ok(first.to_string());
    };
    let count: usize = count.parse().map_err(|_| Unreadable::BadChunks)?;
    if !(1..=MAX_CHUNKS).contains(&count) {
        return Err(Unreadable::BadChunks);
    }
    let mut sealed = first.to_string();
    for i in 1..count {
        let chunk = find(&names.chunk(i)).ok_or(Unreadable::BadChunks)?;
        sealed.push_str(chunk);
    }
    Ok(sealed)
}

/// Opens a sealed session.
pub fn open_session(sealer: &Sealer, sealed: &str) -> Result<SessionData, Unreadable> {
    let plain = sealer.open(sealed).ok_or(Unreadable::NotOurs)?;
    serde_json::from_slice(&plain).map_err(|_| Unreadable::NotOurs)
}

/// A random session id shaped like the UUID v4 Kiali writes.
pub fn session_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        return String::new();
    }
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let part = |r: std::ops::Range<usize>| hex.get(r).unwrap_or_default().to_string();
    // Version 4 and the RFC 4122 variant, as a UUID v4 has them.
    let variant = ["8", "9", "a", "b"]
        .get(usize::from(b.get(8).copied().unwrap_or(0) >> 6))
        .copied()
        .unwrap_or("8");
    format!(
        "{}-{}-4{}-{variant}{}-{}",
        part(0..8),
        part(8..12),
        part(13..16),
        part(17..20),
        part(20..32)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs() -> CookieAttrs<'static> {
        CookieAttrs {
            path: "/",
            secure: false,
            expires: Some("Wed, 21 Oct 2015 07:28:00 GMT"),
            same_site: "Strict",
        }
    }

    fn request_with(set_cookies: &[String]) -> HeaderMap {
        let pairs: Vec<&str> = set_cookies
            .iter()
            .map(|c| c.split(';').next().unwrap())
            .collect();
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, pairs.join("; ").parse().unwrap());
        headers
    }

    #[test]
    fn every_key_length_seals_and_only_its_key_opens() {
        for len in [16, 24, 32] {
            let sealer = Sealer::new(&vec![7u8; len]).unwrap();
            let other = Sealer::new(&vec![8u8; len]).unwrap();
            let sealed = sealer.seal(b"{\"a\":1}").unwrap();
            assert_eq!(sealer.open(&sealed).unwrap(), b"{\"a\":1}");
            assert_eq!(other.open(&sealed), None);
            assert_eq!(
                sealer.open(sealed.trim_end_matches('=')).unwrap(),
                b"{\"a\":1}"
            );
        }
        assert!(Sealer::new(b"kiali").is_none());
    }

    #[test]
    fn a_flipped_bit_anywhere_is_refused() {
        let sealer = Sealer::new(&[1u8; 16]).unwrap();
        let sealed = STANDARD.decode(sealer.seal(b"payload").unwrap()).unwrap();
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(sealer.open(&STANDARD.encode(&bad)), None, "byte {i}");
        }
        assert_eq!(sealer.open(""), None);
        assert_eq!(sealer.open("!!!"), None);
        assert_eq!(sealer.open(&STANDARD.encode([0u8; 5])), None);
    }

    #[test]
    fn a_large_session_is_chunked_and_read_back_whole() {
        let names = Names::new("Kubernetes");
        let sealed = "A".repeat(CHUNK_BYTES * 2 + 10);
        let cookies = session_cookies(&names, &sealed, &attrs());
        assert_eq!(cookies.len(), 4);
        assert!(cookies[0].starts_with("kiali-token-Kubernetes=A"));
        assert!(cookies[1].starts_with("kiali-token-Kubernetes-1=A"));
        assert!(cookies[2].starts_with("kiali-token-Kubernetes-2=A"));
        assert!(cookies[3].starts_with("kiali-token-chunks-Kubernetes=3;"));
        assert!(
            cookies
                .iter()
                .all(|c| c.contains("; HttpOnly; SameSite=Strict"))
        );
        let headers = request_with(&cookies);
        assert_eq!(read_sealed(&names, &headers).unwrap(), sealed);
        let cleared = clear_cookies(&names, &headers, &attrs());
        assert_eq!(cleared.len(), 4);
        // A missing chunk, or a count out of Kiali's bounds, reads as no session.
        let headers = request_with(&[cookies[0].clone(), cookies[3].clone()]);
        assert_eq!(read_sealed(&names, &headers), Err(Unreadable::BadChunks));
        for count in ["0", "181", "-1", "x"] {
            let bad = set_cookie(&names.chunks, count, &attrs());
            let headers = request_with(&[cookies[0].clone(), bad]);
            assert_eq!(read_sealed(&names, &headers), Err(Unreadable::BadChunks));
        }
    }

    #[test]
    fn session_ids_look_like_uuid_v4() {
        let id = session_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, session_id());
    }
}
