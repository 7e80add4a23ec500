//! Jaeger's HTTP query API (`/api/...`), as the Jaeger UI up to v2.14, Grafana's Jaeger data
//! source and Kiali's Jaeger HTTP client call it: routes, parameters, defaults, the
//! `{data,total,limit,offset,errors}` envelope, and errors written the way Go's `http.Error`
//! writes them (`text/plain`, a trailing newline). Every parameter comes from a stranger: what
//! cannot be read is a 400 naming the parameter, never a panic.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use meshtrace_model::TraceId;
use meshtrace_model::jaeger_json::TraceJson;
use meshtrace_model::time::{now_micros, parse_go_duration};
use serde::Serialize;

use crate::error::{ErrorBody, ErrorCode, HttpError};
use crate::query::TraceQuery;
use crate::request::{blocking, first, query_pairs};
use crate::{Store, StoreError};

const DEFAULT_LIMIT: usize = 100;
const DEFAULT_LOOKBACK_US: u64 = 2 * 24 * 3600 * 1_000_000;
const DEFAULT_DEPENDENCY_LOOKBACK_MS: u64 = 24 * 3600 * 1000;

pub fn routes() -> Router<Arc<Store>> {
    Router::new()
        .route("/api/services", get(services))
        .route(
            "/api/services/{service}/operations",
            get(service_operations),
        )
        .route("/api/operations", get(operations))
        .route("/api/traces", get(search))
        .route("/api/traces/{trace_id}", get(trace))
        .route("/api/dependencies", get(dependencies))
}

#[derive(Serialize)]
struct Envelope<T: Serialize> {
    data: T,
    total: usize,
    limit: usize,
    offset: usize,
    errors: Option<Vec<EnvelopeError>>,
}

#[derive(Serialize)]
struct EnvelopeError {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    msg: String,
    #[serde(rename = "traceID", skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
}

/// A list in Jaeger's envelope, its length as the total.
fn listed<T: Serialize>(items: Vec<T>) -> Response {
    let total = items.len();
    ok(items, total)
}

fn ok<T: Serialize>(data: T, total: usize) -> Response {
    ok_with_errors(data, total, None)
}

fn ok_with_errors<T: Serialize>(
    data: T,
    total: usize,
    errors: Option<Vec<EnvelopeError>>,
) -> Response {
    let envelope = Envelope {
        data,
        total,
        limit: 0,
        offset: 0,
        errors,
    };
    axum::Json(envelope).into_response()
}

/// An error as Jaeger writes it: the envelope with `errors[0] = {code, msg}`, as text/plain.
pub type ApiError = HttpError<JaegerEnvelope>;

pub struct JaegerEnvelope;

impl ErrorBody for JaegerEnvelope {
    fn response(status: StatusCode, message: String) -> Response {
        let envelope = Envelope::<Option<()>> {
            data: None,
            total: 0,
            limit: 0,
            offset: 0,
            errors: Some(vec![EnvelopeError {
                code: Some(status.as_u16()),
                msg: message,
                trace_id: None,
            }]),
        };
        // Plain data always serializes; the fallback only keeps a panic out of reach.
        let mut body = serde_json::to_string(&envelope)
            .unwrap_or_else(|_| r#"{"data":null,"errors":[{"msg":"internal error"}]}"#.into());
        body.push('\n');
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}

async fn services(State(store): State<Arc<Store>>) -> Result<Response, ApiError> {
    let services = blocking(&store, super::engine::Store::services).await?;
    Ok(listed(services))
}

async fn service_operations(
    State(store): State<Arc<Store>>,
    Path(service): Path<String>,
) -> Result<Response, ApiError> {
    let operations = blocking(&store, move |s| s.operations(&service, None)).await?;
    let mut names: Vec<String> = operations.into_iter().map(|o| o.name).collect();
    names.sort();
    names.dedup();
    Ok(listed(names))
}

async fn operations(
    State(store): State<Arc<Store>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    let service = first(&pairs, "service")
        .ok_or_else(|| ApiError::bad_request("parameter 'service' is required"))?
        .to_string();
    let kind = first(&pairs, "spanKind").map(str::to_string);
    let operations = blocking(&store, move |s| s.operations(&service, kind.as_deref())).await?;
    Ok(listed(operations))
}

async fn trace(
    State(store): State<Arc<Store>>,
    Path(raw_id): Path<String>,
) -> Result<Response, ApiError> {
    let id = trace_id_param(&raw_id)?;
    match blocking(&store, move |s| s.get_trace_or_archived(id)).await? {
        Some(trace) => Ok(ok([TraceJson(&trace)], 0)),
        None => Err(ApiError::new(ErrorCode::NotFound, "trace not found")),
    }
}

/// A trace ID from a path or a query, with Jaeger's message when it cannot be read.
pub(crate) fn trace_id_param(raw: &str) -> Result<TraceId, ApiError> {
    TraceId::from_hex(raw)
        .map_err(|e| ApiError::bad_request(format!("cannot parse traceID param: {e}")))
}

async fn search(
    State(store): State<Arc<Store>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    let trace_ids: Vec<&str> = pairs
        .iter()
        .filter(|(k, v)| k == "traceID" && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    if !trace_ids.is_empty() {
        let ids = trace_ids
            .iter()
            .map(|raw| trace_id_param(raw))
            .collect::<Result<Vec<_>, _>>()?;
        let found = blocking(&store, move |s| {
            ids.into_iter()
                .map(|id| Ok((id, s.get_trace_or_archived(id)?)))
                .collect::<Result<Vec<_>, StoreError>>()
        })
        .await?;
        let mut data = Vec::new();
        let mut errors = Vec::new();
        for (id, trace) in found {
            match trace {
                Some(trace) => data.push(trace),
                None => errors.push(EnvelopeError {
                    code: None,
                    msg: "trace not found".to_string(),
                    trace_id: Some(id.to_string()),
                }),
            }
        }
        let data: Vec<TraceJson> = data.iter().map(TraceJson).collect();
        return Ok(ok_with_errors(
            data,
            0,
            (!errors.is_empty()).then_some(errors),
        ));
    }
    let query = parse_search(&pairs)?;
    let traces = blocking(&store, move |s| s.find_traces(&query)).await?;
    let data: Vec<TraceJson> = traces.iter().map(TraceJson).collect();
    Ok(ok(data, 0))
}

/// `/api/traces` search parameters, with Jaeger's defaults and messages.
fn parse_search(pairs: &[(String, String)]) -> Result<TraceQuery, ApiError> {
    let service = first(pairs, "service")
        .ok_or_else(|| ApiError::bad_request("parameter 'service' is required"))?
        .to_string();
    let int = |name: &str| -> Result<Option<u64>, ApiError> {
        first(pairs, name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("unable to parse param '{name}': \"{v}\" is not a whole number of microseconds"))
                })
            })
            .transpose()
    };
    let end = int("end")?.unwrap_or_else(now_micros);
    let start = int("start")?.unwrap_or(end.saturating_sub(DEFAULT_LOOKBACK_US));
    if start > end {
        return Err(ApiError::bad_request(format!(
            "unable to parse param 'start': the start ({start}) is after the end ({end})"
        )));
    }
    let duration = |name: &str| -> Result<Option<u64>, ApiError> {
        first(pairs, name)
            .map(|v| {
                parse_go_duration(v).map_err(|e| {
                    ApiError::bad_request(format!("unable to parse param '{name}': {e}"))
                })
            })
            .transpose()
    };
    let duration_min = duration("minDuration")?;
    let duration_max = duration("maxDuration")?;
    if let (Some(min), Some(max)) = (duration_min, duration_max) {
        if max < min {
            return Err(ApiError::bad_request(
                "'maxDuration' should be greater than 'minDuration'",
            ));
        }
    }
    let limit = match first(pairs, "limit") {
        Some(v) => v
            .parse::<i32>()
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "unable to parse param 'limit': \"{v}\" is not a whole number"
                ))
            })?
            .max(0) as usize,
        None => DEFAULT_LIMIT,
    };
    let mut tags = Vec::new();
    for (key, value) in pairs {
        match key.as_str() {
            "tags" => {
                let map: std::collections::BTreeMap<String, String> = serde_json::from_str(value)
                    .map_err(|e| {
                    ApiError::bad_request(format!(
                        "malformed 'tags' parameter, cannot unmarshal JSON: {e}"
                    ))
                })?;
                tags.extend(map);
            }
            "tag" => {
                let (k, v) = value.split_once(':').ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "malformed 'tag' parameter, expecting key:value, received: {value}"
                    ))
                })?;
                tags.push((k.to_string(), v.to_string()));
            }
            _ => {}
        }
    }
    Ok(TraceQuery {
        service: Some(service),
        operation: first(pairs, "operation").map(str::to_string),
        tags,
        start_min: start,
        start_max: end,
        duration_min,
        duration_max,
        limit: if limit == 0 { DEFAULT_LIMIT } else { limit },
    })
}

async fn dependencies(
    State(store): State<Arc<Store>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    // Milliseconds, returned in microseconds (the store's unit).
    let millis = |name: &str, default_ms: u64| -> Result<u64, ApiError> {
        let ms = match first(&pairs, name) {
            Some(v) => v.parse::<u64>().map_err(|_| {
                ApiError::bad_request(format!(
                    "unable to parse param '{name}': \"{v}\" is not a whole number of milliseconds"
                ))
            })?,
            None => default_ms,
        };
        ms.checked_mul(1000).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unable to parse param '{name}': {ms} milliseconds is too large"
            ))
        })
    };
    let end = millis("endTs", now_micros() / 1000)?;
    let lookback = millis("lookback", DEFAULT_DEPENDENCY_LOOKBACK_MS)?;
    let service = first(&pairs, "service").map(str::to_string);
    let mut links = blocking(&store, move |s| s.dependencies(end, lookback)).await?;
    if let Some(service) = service {
        links.retain(|l| l.parent == service || l.child == service);
    }
    Ok(ok(links, 0))
}
