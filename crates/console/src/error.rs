//! The console's errors and how they answer, from this one place: an [`ErrorCode`] for each
//! kind of failure gives the HTTP status; the API routes answer Kiali's JSON body
//! `{"error": "...", "detail"?: "..."}` ([`ApiError`]), the pages an HTML page that says what
//! went wrong in its shell, with the same status ([`page`]).

use askama::Template;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// What went wrong, as far as the client is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// A malformed request: a query parameter, an ID, a posted configuration.
    BadRequest,
    /// No valid session (`auth.strategy` `openid` or `header`).
    Unauthorized,
    /// Refused: a cross-origin request, a destination the check may not reach.
    Forbidden,
    /// No such route, page, trace, span or item.
    NotFound,
    /// A posted body past its limit.
    TooLarge,
    /// A posted configuration that was read but does not work (the tester page).
    Unprocessable,
    /// The backend failed or there is none: 503, as Kiali answers.
    Unavailable,
    /// The console itself failed (a page that could not be rendered).
    Internal,
}

impl ErrorCode {
    pub const fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error as Kiali's API answers it: a status code and `{"error": "...", "detail"?: "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub error: String,
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(code: ErrorCode, error: impl Into<String>) -> ApiError {
        ApiError {
            code,
            error: error.into(),
            detail: None,
        }
    }

    pub fn bad_request(error: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, error)
    }

    pub fn forbidden(error: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, error)
    }

    pub fn not_found(error: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, error)
    }

    pub fn too_large(error: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::TooLarge, error)
    }

    /// The backend failed or is not there: 503, as Kiali answers.
    pub fn unavailable(error: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unavailable, error)
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> ApiError {
        self.detail = Some(detail.into());
        self
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }
}

impl From<meshtrace_backend::BackendError> for ApiError {
    fn from(error: meshtrace_backend::BackendError) -> ApiError {
        // Backend errors name the backend and never carry a secret. A search the backend
        // cannot be asked (a tag key its query language cannot name) is the caller's error.
        match error {
            meshtrace_backend::BackendError::InvalidQuery(_) => {
                ApiError::bad_request(error.to_string())
            }
            _ => ApiError::unavailable(error.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("error".to_string(), self.error.into());
        if let Some(detail) = self.detail {
            body.insert("detail".to_string(), detail.into());
        }
        (self.code.status(), Json(body)).into_response()
    }
}

/// A page: the rendered HTML with 200, or with the status of `error` (which the page shows).
/// A page that cannot be rendered is a 500 that says so, as text.
pub(crate) fn page(error: Option<ErrorCode>, template: impl Template) -> Response {
    let status = error.map_or(StatusCode::OK, ErrorCode::status);
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => (
            ErrorCode::Internal.status(),
            format!("the page could not be rendered: {e}"),
        )
            .into_response(),
    }
}

/// The answer to a page path that names no page (`/console/gadgets`), as text.
pub(crate) fn no_such_page() -> Response {
    (ErrorCode::NotFound.status(), "no such page").into_response()
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn codes_give_the_status_and_api_errors_keep_kialis_body() {
        for (code, status) in [
            (ErrorCode::BadRequest, 400),
            (ErrorCode::Forbidden, 403),
            (ErrorCode::NotFound, 404),
            (ErrorCode::TooLarge, 413),
            (ErrorCode::Unprocessable, 422),
            (ErrorCode::Unavailable, 503),
            (ErrorCode::Internal, 500),
        ] {
            assert_eq!(code.status().as_u16(), status, "{code:?}");
        }
        let response = ApiError::unavailable("the backend is down")
            .with_detail("connection refused")
            .into_response();
        assert_eq!(response.status().as_u16(), 503);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            serde_json::json!({"error": "the backend is down", "detail": "connection refused"})
        );
        let response = no_such_page();
        assert_eq!(response.status().as_u16(), 404);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"no such page");
    }
}
