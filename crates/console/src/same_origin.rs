//! Refuses cross-origin state-changing requests (CSRF): a page on another site can make the
//! operator's browser send a form POST to the console, and the console acts on it with the
//! console's own reach (the configuration check calls the backend with the live secrets).
//!
//! Every request whose method is not safe (anything but GET, HEAD, OPTIONS, TRACE) must come
//! from the console's own origin, as the browser tells it:
//! - `Sec-Fetch-Site`, when present, decides: `same-origin` and `none` (typed by the user) pass,
//!   `same-site` and `cross-site` do not. Browsers set it and no page can forge it, so it also
//!   holds behind a proxy that rewrites `Host`.
//! - else `Origin`, falling back to `Referer`, must name the host and port the request was sent
//!   to (its `Host`, or the URI's authority in HTTP/2); `Origin: null` does not.
//! - a request with none of these headers is not a browser's (curl, scripts, Kiali's own
//!   clients) and passes: such a client is not a confused deputy.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The answer to a cross-origin request; it echoes nothing of the request.
pub const REFUSED: &str = "cross-origin request refused: the console accepts POST, PUT, PATCH \
                           and DELETE only from its own pages (Sec-Fetch-Site, Origin or Referer \
                           names another site)";

pub async fn refuse_cross_origin(request: Request, next: Next) -> Response {
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    if safe
        || same_origin(
            request.headers(),
            request
                .uri()
                .authority()
                .map(axum::http::uri::Authority::as_str),
        )
    {
        next.run(request).await
    } else {
        ApiError::forbidden(REFUSED).into_response()
    }
}

/// True when the browser says the request comes from the console's own origin, or when no
/// browser is involved (none of the headers).
fn same_origin(headers: &HeaderMap, authority: Option<&str>) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(claimed) = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
    else {
        return true;
    };
    let Some(claimed) = claimed.to_str().ok().and_then(|v| url::Url::parse(v).ok()) else {
        // `Origin: null` (a sandboxed frame, a `data:` page) and anything unreadable.
        return false;
    };
    let target = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(authority);
    let Some(target) = target.filter(|t| !t.contains(['/', '@', '?', '#', '\\'])) else {
        return false;
    };
    // The Host read with the claimed origin's scheme, so that a missing port means the same
    // default on both sides (a TLS-terminating proxy keeps `https` and port 443 consistent).
    let Ok(target) = url::Url::parse(&format!("{}://{target}", claimed.scheme())) else {
        return false;
    };
    claimed.host_str().is_some()
        && claimed.host_str() == target.host_str()
        && claimed.port_or_known_default() == target.port_or_known_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;

    #[test]
    fn the_browser_headers_decide() {
        let host = ("host", "console.example:8080");
        for (pass, extra) in [
            (true, vec![]),
            (true, vec![("origin", "http://console.example:8080")]),
            (true, vec![("origin", "https://CONSOLE.example:8080")]),
            (
                true,
                vec![("referer", "http://console.example:8080/console/tracing")],
            ),
            (
                true,
                vec![
                    ("sec-fetch-site", "same-origin"),
                    ("origin", "https://proxy"),
                ],
            ),
            (false, vec![("origin", "http://evil.example")]),
            (false, vec![("origin", "http://console.example:8081")]),
            (false, vec![("origin", "http://console.example")]),
            (false, vec![("origin", "null")]),
            (
                false,
                vec![("referer", "http://evil.example/console.example:8080")],
            ),
            (false, vec![("sec-fetch-site", "cross-site")]),
            (false, vec![("sec-fetch-site", "same-site")]),
        ] {
            let mut pairs = vec![host];
            pairs.extend(extra.iter().copied());
            assert_eq!(same_origin(&headers(&pairs), None), pass, "{pairs:?}");
        }
        let default_port = headers(&[
            ("host", "console.example"),
            ("origin", "https://console.example:443"),
        ]);
        assert!(same_origin(&default_port, None));
        let http2 = headers(&[("origin", "http://[::1]:9000")]);
        assert!(same_origin(&http2, Some("[::1]:9000")));
        assert!(!same_origin(&http2, None));
    }
}
