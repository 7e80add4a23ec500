//! The static files (stylesheet and scripts, embedded in the binary) and the security headers
//! every console response carries: a Content Security Policy that lets no inline script or
//! style run, `nosniff`, and no referrer.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::Console;

/// No inline script or style may run: everything comes from our own `/static/`.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub(super) fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/static/meshtrace.css", get(css))
        .route("/static/meshtrace.js", get(js))
        .route("/static/timeline.js", get(timeline_js))
}

/// Adds the security headers to a response.
pub(super) async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/meshtrace.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/meshtrace.js"),
    )
}

async fn timeline_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/timeline.js"),
    )
}
