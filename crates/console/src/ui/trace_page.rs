//! The trace timeline (`/console/traces/{traceID}`, also `/jaeger/trace/{id}`): the page, the
//! timeline's data (`timeline.json`) and one span's tags and logs (`spans/{spanID}`), all read
//! through the trace cache.

use std::collections::BTreeSet;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use meshtrace_mesh::stats::TraceSummary;
use meshtrace_model::TraceId;

use super::shell::{Shell, Visitor, known_namespaces};
use super::timeline;
use super::view::{View, ago, format_duration, format_time};
use crate::Console;
use crate::error::{ErrorCode, page};
use crate::tracing_api::parse_trace_id;

pub(super) async fn trace_page(
    State(console): State<Arc<Console>>,
    Path(trace_id): Path<String>,
    visitor: Visitor,
    RawQuery(raw): RawQuery,
) -> Response {
    render_trace_page(&console, &visitor, &trace_id, raw.as_deref(), None).await
}

pub(super) async fn render_trace_page(
    console: &Console,
    visitor: &Visitor,
    trace_id: &str,
    raw: Option<&str>,
    back: Option<String>,
) -> Response {
    let id = match parse_trace_id(trace_id) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    let view = View::parse(raw);
    let ui_find = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "uiFind")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut shell = Shell::new(
        console,
        visitor,
        &view,
        format!("Trace {trace_id}"),
        "",
        &known_namespaces(console).await,
    );
    let trace = match console.trace(id).await {
        Ok(Some(trace)) => trace,
        Ok(None) => {
            shell.error = Some(format!("Trace {trace_id} not found"));
            return page(Some(ErrorCode::NotFound), missing_trace(shell, id));
        }
        Err(error) => {
            let code = error.code;
            shell.error = Some(error.error);
            return page(Some(code), missing_trace(shell, id));
        }
    };
    let summary = TraceSummary::of(&trace);
    let services: BTreeSet<&str> = trace
        .spans
        .iter()
        .map(|s| s.process.service_name.as_str())
        .collect();
    let hex = id.to_hex32();
    let base = format!("{}/console/traces/{hex}", shell.root);
    page(
        None,
        TracePage {
            name: summary.name(),
            spans: summary.spans,
            services: services.len(),
            error_spans: summary.error_spans,
            duration: format_duration(summary.duration),
            duration_micros: summary.duration,
            started: format_time(summary.start),
            ago: ago(summary.start),
            data_url: format!("{base}/timeline.json"),
            span_url: format!("{base}/spans/SPAN"),
            ui_find,
            back,
            trace_id: hex,
            shell,
        },
    )
}

#[derive(Template)]
#[template(path = "trace.html")]
struct TracePage {
    shell: Shell,
    name: String,
    trace_id: String,
    spans: usize,
    services: usize,
    error_spans: usize,
    duration: String,
    duration_micros: u64,
    started: String,
    ago: String,
    data_url: String,
    span_url: String,
    ui_find: String,
    back: Option<String>,
}

fn missing_trace(shell: Shell, id: TraceId) -> TracePage {
    TracePage {
        name: "(trace not available)".into(),
        trace_id: id.to_hex32(),
        spans: 0,
        services: 0,
        error_spans: 0,
        duration: String::new(),
        duration_micros: 0,
        started: String::new(),
        ago: String::new(),
        data_url: String::new(),
        span_url: String::new(),
        ui_find: String::new(),
        back: None,
        shell,
    }
}

/// The trace `trace_id` names, through the cache; else the answer to give: 400 for an ID that
/// is not 1 to 32 hex digits, 404 for a trace the backend does not know, the backend's error.
pub(super) async fn read_trace(
    console: &Console,
    trace_id: &str,
) -> Result<Arc<meshtrace_model::Trace>, Response> {
    let id = parse_trace_id(trace_id).map_err(IntoResponse::into_response)?;
    match console.trace(id).await {
        Ok(Some(trace)) => Ok(trace),
        Ok(None) => {
            Err(crate::ApiError::not_found(format!("Trace {trace_id} not found")).into_response())
        }
        Err(error) => Err(error.into_response()),
    }
}

pub(super) async fn timeline_data(
    State(console): State<Arc<Console>>,
    Path(trace_id): Path<String>,
) -> Response {
    match read_trace(&console, &trace_id).await {
        Ok(trace) => (
            [(header::CONTENT_TYPE, "application/json")],
            timeline::data(&trace),
        )
            .into_response(),
        Err(response) => response,
    }
}

pub(super) async fn span_data(
    State(console): State<Arc<Console>>,
    Path((trace_id, span_id)): Path<(String, String)>,
) -> Response {
    if let Err(error) = parse_trace_id(&trace_id) {
        return error.into_response();
    }
    let Ok(span_id) = meshtrace_model::SpanId::from_hex(&span_id) else {
        return crate::ApiError::bad_request("the span ID is not 1 to 16 hex digits")
            .into_response();
    };
    let trace = match read_trace(&console, &trace_id).await {
        Ok(trace) => trace,
        Err(response) => return response,
    };
    let (start, _) = trace.bounds();
    match trace.spans.iter().find(|s| s.span_id == span_id) {
        Some(span) => axum::Json(timeline::span_json(span, start)).into_response(),
        None => crate::ApiError::not_found(format!("span {span_id} is not in trace {trace_id}"))
            .into_response(),
    }
}
