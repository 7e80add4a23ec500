//! Jaeger's Service Performance Monitoring API (the Jaeger UI's Monitor tab) over the metrics
//! derived at ingest: `GET /api/metrics/latencies`, `/calls`, `/errors` with Jaeger's
//! parameters and defaults, answering the bare protobuf-JSON `MetricFamily` Jaeger writes
//! (gogo jsonpb: lowerCamelCase, enum names, defaults left out, non-finite doubles as
//! strings); its errors in Jaeger's `{data,total,limit,offset,errors}` envelope as Go's
//! `http.Error` writes it; and `/api/metrics/minstep` (removed in Jaeger v2.18, still asked by
//! older UIs): the derivation step.

mod compute;
pub mod params;

use std::sync::Arc;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use meshtrace_metrics::Matcher;
use serde_json::{Value, json};

use crate::Store;
use crate::derive::read::ReadError;
use crate::derive::series::Family;
use crate::protojson::{Object, double};
use compute::{Figure, Line};
use meshtrace_model::time::now_micros;
use params::{MetricsQuery, Params};

/// Service and operation pairs one answer may hold.
const MAX_SERIES: usize = 20_000;

pub fn routes() -> Router<Arc<Store>> {
    Router::new()
        .route("/api/metrics/latencies", get(latencies))
        .route("/api/metrics/calls", get(calls))
        .route("/api/metrics/errors", get(errors))
        .route("/api/metrics/minstep", get(minstep))
}

async fn latencies(State(store): State<Arc<Store>>, RawQuery(raw): RawQuery) -> Response {
    let params = Params::parse(raw.as_deref());
    match params::quantile(&params) {
        Ok(q) => answer(store, params, Figure::Latencies(q)).await,
        Err(message) => error(StatusCode::BAD_REQUEST, &message),
    }
}

async fn calls(State(store): State<Arc<Store>>, RawQuery(raw): RawQuery) -> Response {
    answer(store, Params::parse(raw.as_deref()), Figure::Calls).await
}

async fn errors(State(store): State<Arc<Store>>, RawQuery(raw): RawQuery) -> Response {
    answer(store, Params::parse(raw.as_deref()), Figure::Errors).await
}

async fn minstep(State(store): State<Arc<Store>>) -> Response {
    let Some(derive) = store.derivation() else {
        return disabled();
    };
    let body =
        json!({"data": derive.step_ms(), "total": 0, "limit": 0, "offset": 0, "errors": null});
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn answer(store: Arc<Store>, params: Params, figure: Figure) -> Response {
    let now_ms = i64::try_from(now_micros() / 1000).unwrap_or(i64::MAX);
    let query = match params::metrics_query(&params, now_ms) {
        Ok(query) => query,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    if store.derivation().is_none() {
        return disabled();
    }
    let pretty = !matches!(params.get("prettyPrint"), "" | "false");
    let read = {
        let query = query.clone();
        tokio::task::spawn_blocking(move || read_lines(&store, &query, figure)).await
    };
    let lines = match read {
        Ok(Ok(lines)) => lines,
        Ok(Err(message)) => return error(StatusCode::INTERNAL_SERVER_ERROR, &message),
        Err(_) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the metrics query did not run",
            );
        }
    };
    let body = family(&query, figure, &lines);
    let text = if pretty {
        pretty_json(&body)
    } else {
        body.to_string()
    };
    (
        [(header::CONTENT_TYPE, "application/json")],
        go_escape(&text),
    )
        .into_response()
}

fn read_lines(store: &Store, query: &MetricsQuery, figure: Figure) -> Result<Vec<Line>, String> {
    let Some(derive) = store.derivation() else {
        return Ok(Vec::new());
    };
    // As Jaeger asks Prometheus: `service_name =~ "a|b"`, `span_kind =~ "SPAN_KIND_SERVER|…"`.
    let services = Matcher::regex("service_name", &query.services.join("|"), false)
        .map_err(|e| format!("unable to parse param 'service': {e}"))?;
    let kinds: Vec<&str> = query.span_kinds.iter().map(|k| k.otel()).collect();
    let kinds = Matcher::regex("span_kind", &kinds.join("|"), false)
        .map_err(|e| format!("the span kinds: {e}"))?;
    let matchers = [(Some(0), &services), (Some(2), &kinds)];
    let start = query.end_ms.saturating_sub(query.lookback_ms);
    let after = u64::try_from(start.saturating_sub(query.rate_per_ms)).unwrap_or(0);
    let until = u64::try_from(query.end_ms).unwrap_or(0);
    let series = derive
        .read(
            store.kv(),
            store.damage(),
            Family::Service,
            &matchers,
            (after, until),
            MAX_SERIES,
        )
        .map_err(|e| match e {
            ReadError::TooLarge(n) => format!(
                "the services asked have {n} series, more than {MAX_SERIES}: ask for fewer services"
            ),
            ReadError::Store(e) => format!("failed executing metrics query: {e}"),
        })?;
    Ok(compute::compute(query, figure, series))
}

/// The `MetricFamily` Jaeger's query service writes.
fn family(query: &MetricsQuery, figure: Figure, lines: &[Line]) -> Value {
    let (name, help) = match figure {
        Figure::Latencies(q) => (
            "service_latencies",
            format!(
                "{}th quantile latency, grouped by service",
                go_two_decimals(q)
            ),
        ),
        Figure::Calls => (
            "service_call_rate",
            "calls/sec, grouped by service".to_string(),
        ),
        Figure::Errors => (
            "service_error_rate",
            "error rate, computed as a fraction of errors/sec over calls/sec, grouped by service"
                .to_string(),
        ),
    };
    let (name, help) = if query.group_by_operation {
        (
            name.replacen("service", "service_operation", 1),
            format!("{help} & operation"),
        )
    } else {
        (name.to_string(), help)
    };
    let metrics = lines
        .iter()
        .map(|line| {
            let mut labels = vec![label("service_name", &line.service)];
            if let Some(operation) = &line.operation {
                labels.push(label("operation", operation));
            }
            let points = line
                .points
                .iter()
                .map(|(at, value)| {
                    let gauge = json!({"doubleValue": double(*value)});
                    Object::new()
                        .message("gaugeValue", Some(gauge))
                        .string("timestamp", &timestamp(*at))
                        .build()
                })
                .collect();
            Object::new()
                .list("labels", labels)
                .list("metricPoints", points)
                .build()
        })
        .collect();
    Object::new()
        .string("name", &name)
        .string("type", "GAUGE")
        .string("help", &help)
        .list("metrics", metrics)
        .build()
}

fn label(name: &str, value: &str) -> Value {
    Object::new()
        .string("name", name)
        .string("value", value)
        .build()
}

/// RFC 3339 as protobuf's JSON writes a Timestamp (`2026-08-20T10:00:00Z`, `….500Z`).
fn timestamp(ms: i64) -> String {
    let time = prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: i32::try_from(ms.rem_euclid(1000).saturating_mul(1_000_000)).unwrap_or(0),
    };
    time.to_string()
}

/// Go's `%.2f`.
fn go_two_decimals(q: f64) -> String {
    if q.is_nan() {
        "NaN".to_string()
    } else if q == f64::INFINITY {
        "+Inf".to_string()
    } else if q == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{q:.2}")
    }
}

/// jsonpb's indented form (four spaces).
fn pretty_json(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    match serde::Serialize::serialize(value, &mut serializer) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        Err(_) => value.to_string(),
    }
}

fn disabled() -> Response {
    error(
        StatusCode::NOT_IMPLEMENTED,
        "trace metrics are currently disabled - no metrics backend configured",
    )
}

/// Jaeger's error envelope, written as Go's `http.Error` writes it.
fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "data": null, "total": 0, "limit": 0, "offset": 0,
        "errors": [{"code": status.as_u16(), "msg": message}],
    });
    (
        status,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("{}\n", go_escape(&body.to_string())),
    )
        .into_response()
}

/// JSON text with `<`, `>` and `&` escaped as Go's encoding/json (and so jsonpb) writes them
/// (`\u0026`). Outside strings JSON has none of these characters, so a plain replace is safe.
fn go_escape(json: &str) -> String {
    json.replace('&', "\\u0026")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
}
