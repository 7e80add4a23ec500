//! `POST /api/transform`: an OTLP JSON file in (an `ExportTraceServiceRequest` in OTLP's JSON
//! encoding, as OTel exporters and the Collector's file exporter write it), the Jaeger UI JSON
//! out, as Jaeger's query service answers it — the Jaeger UI's "upload an OTLP file" calls it.
//! Nothing is stored. Spans are grouped into traces by trace ID in order of first appearance and
//! kept as sent (duplicates included), as Jaeger does. The body is held to `--max-body` (413),
//! and a body that is not OTLP JSON is a 400, both in Jaeger's error envelope.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use meshtrace_model::jaeger_json::TraceJson;
use meshtrace_model::otlp::spans_from_otlp;
use meshtrace_model::{Trace, TraceId};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::json;

use crate::Store;
use crate::api_v1::ApiError;
use crate::error::ErrorCode;
use crate::ingest::{IngestError, read_body};

pub fn routes(max_body: usize) -> Router<Arc<Store>> {
    Router::new().route(
        "/api/transform",
        post(move |headers: HeaderMap, body: Body| transform(headers, body, max_body)),
    )
}

async fn transform(headers: HeaderMap, body: Body, max_body: usize) -> Result<Response, ApiError> {
    let bytes = read_body(body, &headers, max_body)
        .await
        .map_err(|error| match error {
            IngestError::TooLarge(_) => ApiError::new(ErrorCode::TooLarge, error.to_string()),
            other => ApiError::bad_request(other.to_string()),
        })?;
    // Jaeger's message for a body its OTLP JSON reader refuses.
    let request: ExportTraceServiceRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("cannot unmarshal OTLP : {e}")))?;
    drop(bytes);
    let converted = spans_from_otlp(&request.resource_spans);
    drop(request);
    let traces = group_by_trace(converted.spans);
    // Jaeger converts every span; spans meshtrace cannot read (past its limits, bad IDs) are
    // named in `errors` instead of being dropped silently.
    let errors: Option<Vec<_>> = (!converted.rejected.is_empty()).then(|| {
        converted
            .rejected
            .iter()
            .map(|r| json!({ "msg": format!("{}: {}", r.location, r.reason) }))
            .collect()
    });
    let data: Vec<TraceJson> = traces.iter().map(TraceJson).collect();
    let body = json!({ "data": data, "total": 0, "limit": 0, "offset": 0, "errors": errors });
    Ok(axum::Json(body).into_response())
}

/// Traces in order of their first span; the map holds one entry per trace of the body, so it is
/// bounded by the body limit.
fn group_by_trace(spans: Vec<meshtrace_model::Span>) -> Vec<Trace> {
    let mut traces: Vec<Trace> = Vec::new();
    let mut index: HashMap<TraceId, usize> = HashMap::new();
    for span in spans {
        let at = *index.entry(span.trace_id).or_insert_with(|| {
            traces.push(Trace::default());
            traces.len().saturating_sub(1)
        });
        if let Some(trace) = traces.get_mut(at) {
            trace.spans.push(span);
        }
    }
    traces
}
