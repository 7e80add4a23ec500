//! `POST /api/archive/{traceID}`: copies a trace into the archive (`engine/archive.rs`), which
//! retention does not touch; `GET /api/traces/{traceID}` and the other get-trace routes then
//! find it after its spans expired. The answers are Jaeger's: on success the envelope with an
//! empty `data` array and an empty `errors` array; a trace that is not stored is a 404 with
//! `trace not found` in Jaeger's error envelope. Past the archive's bounds: 413 for a trace too
//! large, 507 when the archive is full.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;

use crate::Store;
use crate::api_v1::{ApiError, JaegerEnvelope, trace_id_param};
use crate::engine::ArchiveError;
use crate::error::{ErrorBody, ErrorCode};
use crate::request::blocking;

pub fn routes() -> Router<Arc<Store>> {
    Router::new().route("/api/archive/{trace_id}", post(archive))
}

async fn archive(
    State(store): State<Arc<Store>>,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = trace_id_param(&raw_id)?;
    match blocking(&store, move |s| Ok(s.archive_trace(id))).await? {
        Ok(()) => {
            let body = json!({ "data": [], "total": 0, "limit": 0, "offset": 0, "errors": [] });
            Ok(axum::Json(body).into_response())
        }
        Err(ArchiveError::NotFound) => Err(ApiError::new(ErrorCode::NotFound, "trace not found")),
        Err(error @ ArchiveError::TooLarge(_)) => {
            Err(ApiError::new(ErrorCode::TooLarge, error.to_string()))
        }
        Err(error @ ArchiveError::Full) => Ok(JaegerEnvelope::response(
            StatusCode::INSUFFICIENT_STORAGE,
            error.to_string(),
        )),
        Err(ArchiveError::Store(error)) => Err(error.into()),
    }
}
