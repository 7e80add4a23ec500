//! Jaeger's api_v3 HTTP gateway (`/api/v3/...`): OTLP JSON traces (hex IDs, integer enums,
//! default values omitted as protojson omits them), trace summaries for the Jaeger UI ≥ v2.19,
//! services and operations. Both the camelCase parameter names (Jaeger ≥ v2.19) and the older
//! snake_case ones are accepted. JSON is written by [`crate::protojson`], field by field.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use meshtrace_model::otlp::spans_to_otlp;
use meshtrace_model::{Trace, TraceId};
use serde_json::{Value, json};

use crate::Store;
use crate::error::{ErrorBody, ErrorCode, HttpError};
use crate::protojson::{self, Object};
use crate::query::{TraceQuery, summarize};
use crate::request::{blocking, param, query_pairs};
use meshtrace_model::time::{parse_go_duration, parse_rfc3339};

const DEFAULT_SEARCH_DEPTH: usize = 100;

pub fn routes() -> Router<Arc<Store>> {
    Router::new()
        .route("/api/v3/services", get(services))
        .route("/api/v3/operations", get(operations))
        .route("/api/v3/traces", get(find_traces))
        .route("/api/v3/traces/{trace_id}", get(get_trace))
        .route("/api/v3/trace-summaries", get(find_trace_summaries))
}

/// The gRPC-gateway error shape Jaeger's v3 routes use.
pub type V3Error = HttpError<GatewayError>;

pub struct GatewayError;

impl ErrorBody for GatewayError {
    fn response(status: StatusCode, message: String) -> Response {
        let body = json!({"error": {"httpCode": status.as_u16(), "message": message}});
        (status, axum::Json(body)).into_response()
    }
}

fn no_traces() -> V3Error {
    V3Error::new(ErrorCode::NotFound, "No traces found")
}

async fn services(State(store): State<Arc<Store>>) -> Result<Response, V3Error> {
    let services = blocking(&store, super::engine::Store::services).await?;
    Ok(axum::Json(json!({ "services": services })).into_response())
}

async fn operations(
    State(store): State<Arc<Store>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, V3Error> {
    let pairs = query_pairs(raw.as_deref());
    let service = param(&pairs, &["service"])
        .ok_or_else(|| V3Error::bad_request("service is required"))?
        .to_string();
    let kind = param(&pairs, &["spanKind", "span_kind"]).map(str::to_string);
    let operations = blocking(&store, move |s| s.operations(&service, kind.as_deref())).await?;
    Ok(axum::Json(json!({ "operations": operations })).into_response())
}

async fn get_trace(
    State(store): State<Arc<Store>>,
    Path(raw_id): Path<String>,
) -> Result<Response, V3Error> {
    let id = TraceId::from_hex(&raw_id)
        .map_err(|e| V3Error::bad_request(format!("malformed parameter trace_id: {e}")))?;
    match blocking(&store, move |s| s.get_trace_or_archived(id)).await? {
        Some(trace) => Ok(axum::Json(traces_result(std::slice::from_ref(&trace))).into_response()),
        None => Err(no_traces()),
    }
}

/// The traces the search in the query string `raw` finds: what `/api/v3/traces` and
/// `/api/v3/trace-summaries` both answer from.
async fn search(store: &Arc<Store>, raw: Option<&str>) -> Result<Vec<Trace>, V3Error> {
    let query = parse_query(&query_pairs(raw))?;
    Ok(blocking(store, move |s| s.find_traces(&query)).await?)
}

async fn find_traces(
    State(store): State<Arc<Store>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, V3Error> {
    let traces = search(&store, raw.as_deref()).await?;
    if traces.is_empty() {
        return Err(no_traces());
    }
    Ok(axum::Json(traces_result(&traces)).into_response())
}

async fn find_trace_summaries(
    State(store): State<Arc<Store>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, V3Error> {
    let traces = search(&store, raw.as_deref()).await?;
    let summaries: Vec<Value> = traces.iter().map(summary).collect();
    Ok(axum::Json(json!({ "summaries": summaries })).into_response())
}

pub fn parse_query(pairs: &[(String, String)]) -> Result<TraceQuery, V3Error> {
    // A parameter by either of its names, read with `parse`; a malformed value is a 400.
    let read = |camel: &str, snake: &str, parse: fn(&str) -> Result<u64, String>| {
        param(pairs, &[camel, snake])
            .map(|v| {
                parse(v)
                    .map_err(|e| V3Error::bad_request(format!("malformed parameter {camel}: {e}")))
            })
            .transpose()
    };
    let start_min = read("query.startTimeMin", "query.start_time_min", parse_rfc3339)?;
    let start_max = read("query.startTimeMax", "query.start_time_max", parse_rfc3339)?;
    let (Some(start_min), Some(start_max)) = (start_min, start_max) else {
        return Err(V3Error::bad_request(
            "query.startTimeMin and query.startTimeMax are required parameters",
        ));
    };
    if start_max < start_min {
        return Err(V3Error::bad_request(
            "query.startTimeMin must be before query.startTimeMax",
        ));
    }
    let duration_min = read("query.durationMin", "query.duration_min", parse_go_duration)?;
    let duration_max = read("query.durationMax", "query.duration_max", parse_go_duration)?;
    let limit = match param(
        pairs,
        &[
            "query.searchDepth",
            "query.search_depth",
            "query.num_traces",
        ],
    ) {
        Some(v) => v.parse::<i64>().map_err(|_| {
            V3Error::bad_request(format!(
                "malformed parameter query.searchDepth: \"{v}\" is not a whole number"
            ))
        })?,
        None => 0,
    };
    let tags = match param(pairs, &["query.attributes"]) {
        Some(json) => serde_json::from_str::<BTreeMap<String, String>>(json)
            .map_err(|e| {
                V3Error::bad_request(format!("malformed parameter query.attributes: {e}"))
            })?
            .into_iter()
            .collect(),
        None => Vec::new(),
    };
    Ok(TraceQuery {
        service: param(pairs, &["query.serviceName", "query.service_name"]).map(str::to_string),
        operation: param(pairs, &["query.operationName", "query.operation_name"])
            .map(str::to_string),
        tags,
        start_min,
        start_max,
        duration_min,
        duration_max,
        limit: usize::try_from(limit)
            .ok()
            .filter(|l| *l > 0)
            .unwrap_or(DEFAULT_SEARCH_DEPTH),
    })
}

/// `{"result": {"resourceSpans": [...]}}`, as the gateway writes `GRPCGatewayWrapper`.
fn traces_result(traces: &[Trace]) -> Value {
    let spans = traces.iter().flat_map(|t| &t.spans);
    let resource_spans = protojson::resource_spans(&spans_to_otlp(spans));
    json!({"result": {"resourceSpans": resource_spans}})
}

/// A `TraceSummary` as Jaeger's api_v3 HTTP gateway writes it (protojson: defaults left out,
/// 64-bit numbers as strings).
fn summary(trace: &Trace) -> Value {
    let s = summarize(trace);
    let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    let services: Vec<Value> = s
        .services
        .iter()
        .map(|(name, spans, errors)| {
            Object::new()
                .string("name", name)
                .int("spanCount", count(*spans))
                .int("errorSpanCount", count(*errors))
                .build()
        })
        .collect();
    Object::new()
        .string("traceId", &s.trace_id.to_hex32())
        .string("rootServiceName", &s.root_service_name)
        .string("rootOperationName", &s.root_operation_name)
        .int64("minStartTimeUnixNano", s.min_start_time_unix_nano)
        .int64("maxEndTimeUnixNano", s.max_end_time_unix_nano)
        .int("spanCount", count(s.span_count))
        .int("errorSpanCount", count(s.error_span_count))
        .int("orphanSpanCount", count(s.orphan_span_count))
        .list("services", services)
        .build()
}
