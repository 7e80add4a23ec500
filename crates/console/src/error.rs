//! Errors as Kiali's API answers them: a status code and `{"error": "...", "detail"?: "..."}`.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub detail: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            detail: None,
        }
    }

    pub fn bad_request(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, error)
    }

    pub fn not_found(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, error)
    }

    /// The backend failed or is not there: 503, as Kiali answers.
    pub fn unavailable(error: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, error)
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> ApiError {
        self.detail = Some(detail.into());
        self
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
        (self.status, Json(body)).into_response()
    }
}
