//! Kiali's tracing routes: `/api/tracing`, the traces and spans of an app, workload or
//! service, error traces, a trace by ID, diagnose and the configuration check.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use meshtrace_backend::{Found, TraceQuery};
use meshtrace_mesh::{
    Kind, SpanInfo, Target, span_info, span_matches_service, span_matches_workload, trace_matches,
};
use meshtrace_model::jaeger_json::{
    JsonProcess, JsonSpan, TraceJson, process_to_json, span_to_json,
};
use meshtrace_model::time::now_micros;
use meshtrace_model::{Span, Trace, TraceId};
use serde::Serialize;

use crate::error::{ApiError, ErrorCode};
use crate::params::{TracingParams, pairs};
use crate::{Console, check};

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/api/tracing", get(info))
        .route(
            "/api/namespaces/{namespace}/{kind}/{name}/traces",
            get(traces),
        )
        .route(
            "/api/namespaces/{namespace}/{kind}/{name}/spans",
            get(spans),
        )
        .route(
            "/api/namespaces/{namespace}/{kind}/{name}/errortraces",
            get(error_traces),
        )
        .route("/api/traces/{trace_id}", get(trace))
        .route("/api/tracing/diagnose", get(check::diagnose))
        .route("/api/tracing/check", post(check::check))
}

/// `GET /api/tracing`: Kiali's `TracingInfo`.
async fn info(State(console): State<Arc<Console>>) -> Json<serde_json::Value> {
    let t = &console.config.tracing;
    if !t.enabled {
        return Json(serde_json::json!({"enabled": false, "integration": false, "url": ""}));
    }
    let tempo = &t.tempo_config;
    Json(serde_json::json!({
        "enabled": true,
        "integration": !t.internal_url.is_empty(),
        "internalURL": meshtrace_config::redact_url(&t.internal_url),
        "provider": t.provider.as_str(),
        "url": t.external_url,
        "namespaceSelector": t.namespace_selector,
        "useWaypointName": t.use_waypoint_name,
        "whiteListIstioSystem": t.whitelist_istio_system,
        "tempoConfig": {
            "cacheCapacity": tempo.cache_capacity,
            "cacheEnabled": tempo.cache_enabled,
            "datasourceUID": tempo.datasource_uid,
            "name": tempo.name,
            "namespace": tempo.namespace,
            "orgID": tempo.org_id,
            "tenant": tempo.tenant,
            "urlFormat": tempo.url_format.as_str(),
        },
    }))
}

#[derive(Serialize)]
pub struct TracingError {
    pub msg: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TracingResponse<'a> {
    data: Vec<TraceJson<'a>>,
    errors: Vec<TracingError>,
    tracing_service_name: String,
    partial: bool,
}

fn kind(segment: &str) -> Result<Kind, ApiError> {
    Kind::from_plural(segment).ok_or_else(|| {
        ApiError::not_found(format!(
            "no such route: `{segment}` is not apps, workloads or services"
        ))
    })
}

/// What the traces and spans routes and the Traces tab ask for: an app, workload or service
/// and the search's parameters. The JSON routes build it from their path and query string
/// (`TracesRequest::from_route`), the pages from their view.
#[derive(Debug, Clone, PartialEq)]
pub struct TracesRequest {
    pub namespace: String,
    pub kind: Kind,
    pub name: String,
    pub params: TracingParams,
}

impl TracesRequest {
    /// The request of `/api/namespaces/{namespace}/{segment}/{name}/traces|spans?{raw}`: 404
    /// for an unknown kind, then 503 without a backend, then 400 for a bad parameter.
    async fn from_route(
        console: &Console,
        (namespace, segment, name): (String, String, String),
        raw: Option<&str>,
    ) -> Result<TracesRequest, ApiError> {
        let kind = kind(&segment)?;
        console.backend()?;
        let params = TracingParams::parse(raw, console.config.ui_tracing_limit as usize)?;
        Ok(TracesRequest {
            namespace,
            kind,
            name,
            params,
        })
    }
}

/// What the backend is asked, and which target the answer is filtered for.
pub(crate) struct Asked {
    pub target: Target,
    pub service: String,
    pub found: Found,
}

/// Searches the backend for the traces of `request`'s target, within `query_scope` and the
/// cluster asked (else the home cluster), and keeps those that involve the target.
pub(crate) async fn ask(console: &Console, request: TracesRequest) -> Result<Asked, ApiError> {
    let backend = console.backend()?;
    let TracesRequest {
        namespace,
        kind,
        name,
        params,
    } = request;
    let target = console.target(kind, namespace, name).await;
    let tracing = &console.config.tracing;
    let service = target.tracing_service_name(tracing.namespace_selector);
    let mut tags = params.tags;
    tags.extend(tracing.query_scope.clone());
    if let Some(cluster) = params
        .cluster
        .or_else(|| Some(console.config.cluster_name.clone()).filter(|c| !c.is_empty()))
    {
        tags.insert("istio.cluster_id".to_string(), cluster);
    }
    let query = TraceQuery {
        service: service.clone(),
        tags,
        start: params.start,
        end: params.end,
        min_duration: params.min_duration,
        limit: params.limit,
    };
    let mut found = console
        .timed("AppTraces", backend.find_traces(&query))
        .await?;
    found.traces.retain(|t| trace_matches(t, &target));
    Ok(Asked {
        target,
        service,
        found,
    })
}

/// `GET /api/namespaces/{ns}/{apps|workloads|services}/{name}/traces`.
async fn traces(
    State(console): State<Arc<Console>>,
    Path(path): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let request = TracesRequest::from_route(&console, path, raw.as_deref()).await?;
    let asked = ask(&console, request).await?;
    let body = traces_body(
        &asked.found.traces,
        &asked.service,
        asked.found.partial.as_deref(),
    )?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The body of the traces route: Kiali's `TracingResponse`, plus `partial` (true when the
/// backend's answer is known or likely to be incomplete; `errors` then says why).
pub fn traces_body(
    traces: &[Trace],
    service: &str,
    partial: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let response = TracingResponse {
        data: traces.iter().map(TraceJson).collect(),
        errors: partial
            .iter()
            .map(|reason| TracingError {
                msg: reason.to_string(),
            })
            .collect(),
        tracing_service_name: service.to_string(),
        partial: partial.is_some(),
    };
    serde_json::to_vec(&response).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("the traces could not be written as JSON: {e}"),
        )
    })
}

/// Kiali's `TracingSpan`: the Jaeger span with its process inline and `traceSize`, plus what
/// the span says about the mesh.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanOut {
    #[serde(flatten)]
    span: JsonSpan,
    process: JsonProcess,
    trace_size: usize,
    mesh: SpanInfo,
}

/// `GET /api/namespaces/{ns}/{kind}/{name}/spans`: the target's own spans of the traces found.
async fn spans(
    State(console): State<Arc<Console>>,
    Path(path): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Vec<SpanOut>>, ApiError> {
    let request = TracesRequest::from_route(&console, path, raw.as_deref()).await?;
    let asked = ask(&console, request).await?;
    let out = own_spans(&asked)
        .map(|(trace, span)| SpanOut {
            span: span_to_json(span, String::new()),
            process: process_to_json(&span.process),
            trace_size: trace.spans.len(),
            mesh: span_info(span),
        })
        .collect();
    Ok(Json(out))
}

/// The target's own spans among the traces found, with their traces, in the spans route's
/// order (the metrics tabs' Spans overlay draws the same ones).
pub(crate) fn own_spans(asked: &Asked) -> impl Iterator<Item = (&Trace, &Span)> {
    let target = &asked.target;
    asked.found.traces.iter().flat_map(move |trace| {
        trace
            .spans
            .iter()
            .filter(move |span| match target.kind {
                Kind::App => span.process.service_name == asked.service,
                Kind::Workload => span_matches_workload(span, &target.name, &target.namespace),
                Kind::Service => span_matches_service(span, &target.name, &target.namespace),
            })
            .map(move |span| (trace, span))
    })
}

/// `GET /api/namespaces/{ns}/apps/{app}/errortraces?duration=<s>`: how many traces of the app
/// had an error (Kiali: no cluster scoping, no limit).
async fn error_traces(
    State(console): State<Arc<Console>>,
    Path((namespace, segment, name)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Json<usize>, ApiError> {
    if kind(&segment)? != Kind::App {
        return Err(ApiError::not_found(
            "error traces are counted for apps only: /api/namespaces/{ns}/apps/{app}/errortraces",
        ));
    }
    let backend = console.backend()?;
    let mut duration = None;
    for (key, value) in pairs(raw.as_deref(), &["duration", "clusterName"])? {
        if key == "duration" {
            duration = Some(value.parse::<u64>().ok().filter(|d| *d > 0).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "query parameter `duration` must be a number of seconds greater than 0, found `{value}`"
                ))
            })?);
        }
    }
    let duration = duration
        .ok_or_else(|| ApiError::bad_request("query parameter `duration` (seconds) is required"))?;
    let target = console.target(Kind::App, namespace, name).await;
    let tracing = &console.config.tracing;
    let mut tags = BTreeMap::from([("error".to_string(), "true".to_string())]);
    tags.extend(tracing.query_scope.clone());
    let end = now_micros();
    let query = TraceQuery {
        service: target.tracing_service_name(tracing.namespace_selector),
        tags,
        start: end.saturating_sub(duration.saturating_mul(1_000_000)),
        end,
        min_duration: None,
        limit: crate::params::MAX_LIMIT,
    };
    let found = console
        .timed("ErrorTraces", backend.find_traces(&query))
        .await?;
    Ok(Json(found.traces.len()))
}

/// The trace ID of a path: 1 to 32 hex digits, not all zero; else a 400 that quotes at most
/// 64 characters of it.
pub(crate) fn parse_trace_id(text: &str) -> Result<TraceId, ApiError> {
    let valid = !text.is_empty() && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
    TraceId::from_hex(text)
        .ok()
        .filter(|id| valid && !id.is_zero())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid trace ID format: `{}` is not 1 to 32 hex digits",
                text.chars().take(64).collect::<String>()
            ))
        })
}

/// `GET /api/traces/{traceID}`.
async fn trace(
    State(console): State<Arc<Console>>,
    Path(trace_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<serde_json::Value>, ApiError> {
    pairs(raw.as_deref(), &["clusterName"])?;
    let backend = console.backend()?;
    let id = parse_trace_id(&trace_id)?;
    let trace: Option<Trace> = console.timed("TraceDetail", backend.get_trace(id)).await?;
    let trace = trace.ok_or_else(|| ApiError::not_found(format!("Trace {trace_id} not found")))?;
    Ok(Json(serde_json::json!({
        "data": TraceJson(&trace),
        "errors": [],
    })))
}
