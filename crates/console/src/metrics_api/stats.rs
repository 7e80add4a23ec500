//! `POST /api/stats/metrics`: Kiali's `MetricsStatsQueries` → `MetricsStatsResult`, the
//! response times (average and quantiles of `istio_request_duration_milliseconds` over an
//! interval, at a query time) that the trace and span heatmaps compare spans with.
//!
//! The body is read as Go's `encoding/json` reads Kiali's structs (field names matched
//! without regard to case, unknown fields ignored), bounded in size and number of queries.
//! Each query is checked with Kiali's messages; an invalid one becomes a warning, and the
//! request fails only when every query is invalid. Results are keyed as Kiali's UI looks them
//! up (`<ns>:<kind>:<name>:<peer>:<direction>:<interval>:<reporters>`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use meshtrace_backend::prometheus::{PrometheusClient, Value as PromValue};
use serde_json::{Map, Number, Value};

use super::queries::{self, Direction, Labels, TargetKind};
use crate::Console;
use crate::error::ApiError;

/// The largest body read: the heatmap of a 50-span trace asks ~150 queries of ~300 bytes.
pub const MAX_BODY: usize = 256 * 1024;
/// Queries one request may hold.
pub const MAX_QUERIES: usize = 200;
/// Quantiles and reporters one query may hold.
const MAX_LIST: usize = 10;
/// Prometheus queries in flight for one request (Kiali's chunks of 10).
const PARALLEL: usize = 10;
const DURATION_HISTOGRAM: &str = "istio_request_duration_milliseconds";

#[derive(Debug, Clone, PartialEq)]
struct Target {
    namespace: String,
    name: String,
    kind: String,
    cluster: String,
}

impl Target {
    fn key(&self) -> String {
        format!("{}:{}:{}", self.namespace, self.kind, self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
struct StatsQuery {
    target: Target,
    peer: Option<Target>,
    reporters: Vec<String>,
    query_time: i64,
    interval: String,
    direction: String,
    avg: bool,
    quantiles: Vec<String>,
}

/// The field `name` of a JSON object as Go finds it: the exact name, else one that differs
/// only in case.
fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Go's message for a value of the wrong type.
fn mismatch(value: &Value, path: &str, go_type: &str) -> ApiError {
    ApiError::bad_request(format!(
        "json: cannot unmarshal {} into Go struct field {path} of type {go_type}",
        type_name(value)
    ))
}

fn string(object: &Map<String, Value>, name: &str, path: &str) -> Result<String, ApiError> {
    match field(object, name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(mismatch(other, path, "string")),
    }
}

fn strings(object: &Map<String, Value>, name: &str, path: &str) -> Result<Vec<String>, ApiError> {
    match field(object, name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            if items.len() > MAX_LIST {
                return Err(ApiError::bad_request(format!(
                    "bad request: '{path}' holds {} values, at most {MAX_LIST} are taken",
                    items.len()
                )));
            }
            items
                .iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s.clone()),
                    Value::Null => Ok(String::new()),
                    other => Err(mismatch(other, path, "string")),
                })
                .collect()
        }
        Some(other) => Err(mismatch(other, path, "[]string")),
    }
}

fn target(value: Option<&Value>, path: &str) -> Result<Option<Target>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(o)) => Ok(Some(Target {
            namespace: string(o, "namespace", &format!("{path}.Namespace"))?,
            name: string(o, "name", &format!("{path}.Name"))?,
            kind: string(o, "kind", &format!("{path}.Kind"))?,
            cluster: string(o, "cluster", &format!("{path}.Cluster"))?,
        })),
        Some(other) => Err(mismatch(other, path, "models.Target")),
    }
}

fn parse_query(value: &Value) -> Result<StatsQuery, ApiError> {
    const PATH: &str = "MetricsStatsQueries.Queries";
    let Value::Object(o) = value else {
        return Err(mismatch(value, PATH, "models.MetricsStatsQuery"));
    };
    let query_time = match field(o, "queryTime") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            mismatch(
                &Value::Number(n.clone()),
                &format!("{PATH}.queryTime"),
                "int64",
            )
        })?,
        Some(other) => return Err(mismatch(other, &format!("{PATH}.queryTime"), "int64")),
    };
    let avg = match field(o, "avg") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(mismatch(other, &format!("{PATH}.Avg"), "bool")),
    };
    Ok(StatsQuery {
        target: target(field(o, "target"), &format!("{PATH}.Target"))?.unwrap_or(Target {
            namespace: String::new(),
            name: String::new(),
            kind: String::new(),
            cluster: String::new(),
        }),
        peer: target(field(o, "peerTarget"), &format!("{PATH}.PeerTarget"))?,
        reporters: strings(o, "reporters", &format!("{PATH}.reporters"))?,
        query_time,
        interval: string(o, "interval", &format!("{PATH}.interval"))?,
        direction: string(o, "direction", &format!("{PATH}.Direction"))?,
        avg,
        quantiles: strings(o, "quantiles", &format!("{PATH}.Quantiles"))?,
    })
}

/// A query checked as Kiali checks it (`MetricsStatsQuery.Validate`), plus what Kiali leaves
/// to Prometheus: the interval and the quantiles must parse.
#[derive(Clone)]
struct Checked {
    query: StatsQuery,
    kind: TargetKind,
    direction: Direction,
    interval: Duration,
    quantiles: Vec<(String, f64)>,
}

fn side_reporter(direction: &str) -> &'static str {
    if direction == "outbound" {
        "source"
    } else {
        "destination"
    }
}

fn validate(query: StatsQuery) -> Result<Checked, Vec<String>> {
    let mut errors = Vec::new();
    let q = &query;
    if q.target.name.is_empty() {
        errors.push("bad request: 'target.name' must be defined".to_string());
    }
    let kind = TargetKind::parse(&q.target.kind);
    if kind.is_none() {
        errors.push(
            "bad request: 'target.kind' must be either 'app', 'workload' or 'service'".to_string(),
        );
    }
    if kind == Some(TargetKind::Service) && q.direction != "inbound" {
        errors.push(
            "bad request: only 'inbound' direction is allowed for kind 'service'".to_string(),
        );
    }
    let direction = Direction::parse(&q.direction);
    if direction.is_none() {
        errors.push("bad request: 'direction' must be either 'inbound' or 'outbound'".to_string());
    } else if !q.reporters.is_empty() {
        let side = side_reporter(&q.direction);
        if q.reporters.iter().any(|r| r != side && r != "waypoint") {
            errors.push(format!(
                "bad request: 'reporters' can only include '{side}' or 'waypoint' for direction '{}'",
                q.direction
            ));
        } else if !q.reporters.iter().any(|r| r == side) {
            errors.push(format!(
                "bad request: 'reporters' must include '{side}' for direction '{}'",
                q.direction
            ));
        }
    }
    if q.query_time == 0 {
        errors.push("bad request: 'queryTime' must be defined".to_string());
    }
    if q.interval.is_empty() {
        errors.push("bad request: 'interval' must be defined".to_string());
    }
    let too_long = |s: &str| s.len() > super::MAX_NAME;
    let peer_names = q
        .peer
        .iter()
        .flat_map(|p| [&p.namespace, &p.name, &p.cluster]);
    let names = [&q.target.namespace, &q.target.name, &q.target.cluster];
    if names.into_iter().chain(peer_names).any(|s| too_long(s)) {
        errors.push(format!(
            "bad request: names are at most {} bytes",
            super::MAX_NAME
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let interval = match meshtrace_model::time::parse_prometheus_duration(&q.interval) {
        Some(d) if d.as_millis() > 0 => d,
        _ => {
            return Err(vec![format!(
                "not a valid duration string: {:?}",
                q.interval
            )]);
        }
    };
    let mut quantiles = Vec::new();
    for text in &q.quantiles {
        match text.parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => quantiles.push((text.clone(), v)),
            _ => {
                return Err(vec![format!(
                    "bad request: invalid quantile {text:?}: should be a number between 0 and 1"
                )]);
            }
        }
    }
    match (kind, direction) {
        (Some(kind), Some(direction)) => Ok(Checked {
            query,
            kind,
            direction,
            interval,
            quantiles,
        }),
        _ => Err(vec!["bad request: invalid query".to_string()]),
    }
}

impl Checked {
    /// Kiali's `GenKey`: the UI rebuilds it to find each result.
    fn key(&self) -> String {
        let q = &self.query;
        let mut reporters: Vec<&str> = q.reporters.iter().map(String::as_str).collect();
        if reporters.is_empty() {
            reporters.push(side_reporter(&q.direction));
        }
        reporters.sort_unstable();
        reporters.dedup();
        format!(
            "{}:{}:{}:{}:{}",
            q.target.key(),
            q.peer.as_ref().map(Target::key).unwrap_or_default(),
            q.direction,
            q.interval,
            reporters.join(",")
        )
    }

    /// What the answer depends on beyond the key and the time.
    fn cache_key(&self) -> String {
        let q = &self.query;
        format!(
            "{}|{:?}|{:?}|{}|{:?}",
            self.key(),
            q.target.cluster,
            q.peer.as_ref().map(|p| &p.cluster),
            q.avg,
            q.quantiles
        )
    }

    fn labels(&self) -> Result<Labels, ApiError> {
        let invalid = |e: meshtrace_backend::prometheus::promql::PromqlError| {
            ApiError::bad_request(format!("bad request: {e}"))
        };
        let q = &self.query;
        let mut labels = Labels::new(self.direction);
        if q.reporters.is_empty() {
            labels.reporters(&[self.direction.side().to_string()])
        } else {
            labels.reporters(&q.reporters)
        }
        .map_err(invalid)?;
        labels
            .target(self.kind, &q.target.name, &q.target.namespace)
            .map_err(invalid)?;
        if let Some(peer) = &q.peer {
            // Kiali ignores a peer of another kind.
            if let Some(kind) = TargetKind::parse(&peer.kind) {
                labels
                    .peer(kind, &peer.name, &peer.namespace)
                    .map_err(invalid)?;
            }
        }
        if !q.target.cluster.is_empty() {
            labels.cluster(&q.target.cluster).map_err(invalid)?;
        }
        Ok(labels)
    }
}

/// A float as Go's `encoding/json` writes the usual ones: whole numbers without a point.
fn json_number(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        // Whole and far below 2^53: exact.
        #[allow(clippy::cast_possible_truncation)]
        return Value::Number(Number::from(v as i64));
    }
    Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// The response times of one checked query: `[{name, value}]` sorted by name, NaN dropped.
async fn response_times(
    client: Arc<PrometheusClient>,
    checked: &Checked,
    limit: Arc<tokio::sync::Semaphore>,
) -> Result<Value, ApiError> {
    let labels = checked.labels()?;
    let invalid = |e: meshtrace_backend::prometheus::promql::PromqlError| {
        ApiError::bad_request(format!("bad request: {e}"))
    };
    let mut exprs = Vec::new();
    if checked.query.avg {
        let avg = queries::average(DURATION_HISTOGRAM, &labels, checked.interval, &[]);
        exprs.push(("avg".to_string(), avg.map_err(invalid)?));
    }
    for (text, q) in &checked.quantiles {
        let expr = queries::quantile(DURATION_HISTOGRAM, &labels, checked.interval, *q, &[]);
        exprs.push((text.clone(), expr.map_err(invalid)?));
    }
    let time_ms = checked.query.query_time.saturating_mul(1000);
    let mut tasks = tokio::task::JoinSet::new();
    for (name, expr) in exprs {
        let (client, limit) = (client.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            (name, client.query(&expr, Some(time_ms)).await)
        });
    }
    let mut stats: Vec<(String, f64)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (name, answer) =
            done.map_err(|e| ApiError::unavailable(format!("a stats query failed: {e}")))?;
        let answer = answer.map_err(|e| ApiError::unavailable(e.to_string()))?;
        if let PromValue::Vector(samples) = answer.value {
            for sample in samples {
                if !sample.point.value.is_nan() {
                    stats.push((name.clone(), sample.point.value));
                }
            }
        }
    }
    stats.sort_by(|a, b| a.0.cmp(&b.0));
    let times: Vec<Value> = stats
        .into_iter()
        .map(|(name, value)| {
            let mut stat = Map::new();
            stat.insert("name".into(), Value::String(name));
            stat.insert("value".into(), json_number(value));
            Value::Object(stat)
        })
        .collect();
    let mut out = Map::new();
    out.insert("responseTimes".into(), Value::Array(times));
    Ok(Value::Object(out))
}

async fn read_body(request: Request) -> Result<axum::body::Bytes, ApiError> {
    let too_large = format!(
        "the stats request is larger than {} KiB: ask fewer queries at once",
        MAX_BODY / 1024
    );
    crate::body::read_limited(request, MAX_BODY, &too_large).await
}

/// `POST /api/stats/metrics`.
pub(super) async fn stats(
    State(console): State<Arc<Console>>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let body = read_body(request).await?;
    let parsed: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}")))?;
    let raw = match &parsed {
        Value::Null => Vec::new(),
        Value::Object(o) => match field(o, "queries") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(other) => {
                return Err(mismatch(
                    other,
                    "MetricsStatsQueries.Queries",
                    "[]models.MetricsStatsQuery",
                ));
            }
        },
        other => {
            return Err(ApiError::bad_request(format!(
                "json: cannot unmarshal {} into Go value of type models.MetricsStatsQueries",
                type_name(other)
            )));
        }
    };
    Ok(Json(answer(&console, &raw).await?))
}

/// The stats for Kiali's queries `raw` (JSON objects as the body's `queries` holds them):
/// `{"stats": {<key>: {"responseTimes": […]}}, "warnings": […] | null}`. The console's pages
/// call this too, so their heatmaps show exactly what `POST /api/stats/metrics` answers.
pub(crate) async fn answer(console: &Console, raw: &[Value]) -> Result<Value, ApiError> {
    if raw.len() > MAX_QUERIES {
        return Err(ApiError::bad_request(format!(
            "bad request: {} queries, at most {MAX_QUERIES} are answered at once",
            raw.len()
        )));
    }
    let mut warnings = Vec::new();
    let mut valid = Vec::new();
    for value in raw {
        match validate(parse_query(value)?) {
            Ok(checked) => valid.push(checked),
            Err(errors) => warnings.extend(errors),
        }
    }
    if valid.is_empty() && !warnings.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{} errors:\n{}",
            warnings.len(),
            warnings.join("\n")
        )));
    }
    let mut stats = BTreeMap::new();
    if !valid.is_empty() {
        let client = console.prometheus()?.clone();
        let caches = &console.metrics_api;
        let limit = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let mut pending = Vec::new();
        for checked in &valid {
            match caches.stats_hit(&checked.cache_key(), checked.query.query_time) {
                Some(hit) => {
                    stats.insert(checked.key(), hit);
                }
                None => pending.push(checked),
            }
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (i, checked) in pending.iter().enumerate() {
            let (client, limit, checked) = (client.clone(), limit.clone(), (*checked).clone());
            tasks.spawn(async move { (i, response_times(client, &checked, limit).await) });
        }
        while let Some(done) = tasks.join_next().await {
            let (i, result) =
                done.map_err(|e| ApiError::unavailable(format!("a stats query failed: {e}")))?;
            let value = result?;
            if let Some(checked) = pending.get(i) {
                let time = checked.query.query_time;
                caches.keep_stats(checked.cache_key(), time, value.clone());
                stats.insert(checked.key(), value);
            }
        }
    }
    let mut out = Map::new();
    out.insert("stats".into(), Value::Object(stats.into_iter().collect()));
    out.insert(
        "warnings".into(),
        if warnings.is_empty() {
            Value::Null
        } else {
            Value::Array(warnings.into_iter().map(Value::String).collect())
        },
    );
    Ok(Value::Object(out))
}
