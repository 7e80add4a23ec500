//! Posted bodies read within a limit: refused with 413 at once when `Content-Length` declares
//! more (nothing is read), else as soon as the bytes read pass it; a body that cannot be read
//! is a 400.

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::header;

use crate::error::ApiError;

/// The body of `request`, at most `max` bytes; past it, a 413 that says `too_large`.
pub(crate) async fn read_limited(
    request: Request,
    max: usize,
    too_large: &str,
) -> Result<Bytes, ApiError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(ApiError::too_large(too_large));
    }
    axum::body::to_bytes(request.into_body(), max)
        .await
        .map_err(|e| {
            let limit = std::error::Error::source(&e).is_some_and(
                <dyn std::error::Error + 'static>::is::<http_body_util::LengthLimitError>,
            );
            if limit {
                ApiError::too_large(too_large)
            } else {
                ApiError::bad_request("the request body could not be read")
            }
        })
}
