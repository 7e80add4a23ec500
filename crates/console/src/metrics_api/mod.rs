//! Kiali's metrics API over `external_services.prometheus`: the metrics of an app, workload,
//! service or namespace (`GET /api/namespaces/{ns}[/{apps|workloads|services}/{name}]/metrics`,
//! Kiali's `MetricsMap`) and the response-time stats of the trace heatmaps
//! (`POST /api/stats/metrics`, [`stats`]), both with Kiali's parameters, PromQL ([`queries`])
//! and JSON ([`json`]), through the console's one Prometheus client — so the answers are the
//! same whether the URL names a Prometheus or a meshtrace store's `/prometheus`.
//!
//! Answers are cached as Kiali caches its request rates (`cache_enabled`, `cache_duration`,
//! `cache_expiration`): an answer computed for a query time T serves the same request asked for
//! a time in [T, T + cache_duration), and is dropped `cache_expiration` after it was made.
//! A Prometheus that fails, or none, gives 503 with the reason and the Prometheus's URL.

mod json;
mod params;
mod queries;
mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use meshtrace_backend::prometheus::{Expr, PrometheusClient, Value as PromValue};
use meshtrace_config::PrometheusConfig;
use serde_json::Value;

pub(crate) use stats::answer as stats_answer;

use crate::Console;
use crate::cache::TtlCache;
use crate::error::ApiError;
use params::MetricsQuery;
use queries::{ISTIO_METRICS, Labels, TargetKind};

/// Answers kept by each cache.
const CACHE_ENTRIES: usize = 256;
/// Answers larger than this are not cached (a long range with many series).
const MAX_CACHED_BYTES: usize = 1 << 20;
/// The longest namespace or name taken (Kubernetes names are at most 253 bytes).
const MAX_NAME: usize = 253;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route(
            "/api/namespaces/{namespace}/metrics",
            get(namespace_metrics),
        )
        .route(
            "/api/namespaces/{namespace}/{kind}/{name}/metrics",
            get(item_metrics),
        )
        .route("/api/stats/metrics", post(stats::stats))
}

/// The answers kept for Kiali's `cache_*` time: whole `MetricsMap`s by request, and each stats
/// query's result.
pub(crate) struct Caches {
    /// `cache_duration` in seconds when `cache_enabled`, else `None`.
    duration: Option<i64>,
    metrics: TtlCache<String, (i64, String)>,
    stats: TtlCache<String, (i64, Value)>,
}

impl Caches {
    pub(crate) fn new(config: &PrometheusConfig) -> Caches {
        let expiration = config.cache_expiration();
        Caches {
            duration: config
                .cache_enabled
                .then(|| i64::try_from(config.cache_duration_secs).unwrap_or(i64::MAX)),
            metrics: TtlCache::new(CACHE_ENTRIES, expiration),
            stats: TtlCache::new(CACHE_ENTRIES, expiration),
        }
    }

    /// Kiali's rule: a hit when `0 <= time - cached time < cache_duration`.
    fn fresh(&self, cached: i64, time: i64) -> bool {
        self.duration.is_some_and(|d| {
            time.checked_sub(cached)
                .is_some_and(|age| (0..d).contains(&age))
        })
    }

    fn metrics_hit(&self, key: &String, time: i64) -> Option<String> {
        let hit = self.metrics.get(key)?;
        self.fresh(hit.0, time).then(|| hit.1.clone())
    }

    fn keep_metrics(&self, key: String, time: i64, body: &str) {
        if self.duration.is_some() && body.len() <= MAX_CACHED_BYTES {
            self.metrics.insert(key, (time, body.to_string()));
        }
    }

    fn stats_hit(&self, key: &String, time: i64) -> Option<Value> {
        let hit = self.stats.get(key)?;
        self.fresh(hit.0, time).then(|| hit.1.clone())
    }

    fn keep_stats(&self, key: String, time: i64, value: Value) {
        if self.duration.is_some() {
            self.stats.insert(key, (time, value));
        }
    }
}

fn now_seconds() -> i64 {
    i64::try_from(meshtrace_model::time::now_micros() / 1_000_000).unwrap_or(i64::MAX)
}

/// A namespace or name from the path: 400 past Kubernetes's length (it is only ever a
/// matcher's value).
fn checked_name<'a>(what: &str, name: &'a str) -> Result<&'a str, ApiError> {
    if name.len() > MAX_NAME {
        return Err(ApiError::bad_request(format!(
            "bad request, the {what} name is longer than {MAX_NAME} bytes"
        )));
    }
    Ok(name)
}

/// `GET /api/namespaces/{namespace}/metrics`.
async fn namespace_metrics(
    State(console): State<Arc<Console>>,
    Path(namespace): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let namespace = checked_name("namespace", &namespace)?;
    let query = MetricsQuery::parse(namespace, None, raw.as_deref(), now_seconds())
        .map_err(ApiError::bad_request)?;
    answer(&console, &query).await
}

/// `GET /api/namespaces/{namespace}/{apps|workloads|services}/{name}/metrics`.
async fn item_metrics(
    State(console): State<Arc<Console>>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let kind = TargetKind::from_plural(&kind).ok_or_else(|| {
        ApiError::not_found(format!(
            "no such route: `{kind}` is not apps, workloads or services"
        ))
    })?;
    let namespace = checked_name("namespace", &namespace)?;
    let name = checked_name(kind.as_str(), &name)?;
    let target = Some((kind, name.to_string()));
    let query = MetricsQuery::parse(namespace, target, raw.as_deref(), now_seconds())
        .map_err(ApiError::bad_request)?;
    answer(&console, &query).await
}

async fn answer(console: &Console, query: &MetricsQuery) -> Result<Response, ApiError> {
    let body = answer_body(console, query).await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The `MetricsMap` of `query` as JSON text, from the cache when it holds it.
async fn answer_body(console: &Console, query: &MetricsQuery) -> Result<String, ApiError> {
    let client = console.prometheus()?.clone();
    let key = query.cache_key();
    Ok(match console.metrics_api.metrics_hit(&key, query.end) {
        Some(body) => body,
        None => {
            let body = metrics_map(client, query).await?.to_string();
            console.metrics_api.keep_metrics(key, query.end, &body);
            body
        }
    })
}

/// What `GET /api/namespaces/{namespace}/{kind}s/{name}/metrics?{raw}` answers, asked
/// in-process (the metrics tabs): the same parsing, cache and `MetricsMap`. `kind` is `app`,
/// `workload` or `service`.
pub(crate) async fn item_metrics_map(
    console: &Console,
    namespace: &str,
    kind: &str,
    name: &str,
    raw: &str,
) -> Result<Value, ApiError> {
    let kind = TargetKind::parse(kind).ok_or_else(|| {
        ApiError::bad_request(format!("`{kind}` is not app, workload or service"))
    })?;
    let namespace = checked_name("namespace", namespace)?;
    let name = checked_name(kind.as_str(), name)?;
    let target = Some((kind, name.to_string()));
    let query = MetricsQuery::parse(namespace, target, Some(raw), now_seconds())
        .map_err(ApiError::bad_request)?;
    let body = answer_body(console, &query).await?;
    serde_json::from_str(&body)
        .map_err(|e| ApiError::unavailable(format!("the metrics answer is not JSON: {e}")))
}

/// One range query of a metrics request: which metric, which stat of a histogram.
struct Job {
    metric: &'static str,
    stat: Option<String>,
    expr: Expr,
}

fn jobs(query: &MetricsQuery) -> Result<(Vec<&'static str>, Vec<Job>), ApiError> {
    let invalid = |e: meshtrace_backend::prometheus::promql::PromqlError| {
        ApiError::bad_request(format!("bad request, {e}"))
    };
    let mut labels = Labels::new(query.direction);
    if let Some(reporters) = &query.reporters {
        labels.reporters(reporters).map_err(invalid)?;
    }
    match &query.target {
        Some((kind, name)) => labels.target(*kind, name, &query.namespace),
        None => labels.namespace(&query.namespace),
    }
    .map_err(invalid)?;
    if let Some(protocol) = &query.request_protocol {
        labels.protocol(protocol).map_err(invalid)?;
    }
    if let Some(cluster) = &query.cluster {
        labels.cluster(cluster).map_err(invalid)?;
    }
    let window = query.rate_interval;
    let by = &query.by_labels;
    let mut asked = Vec::new();
    let mut jobs = Vec::new();
    let wanted = |name: &str| query.filters.is_empty() || query.filters.iter().any(|f| f == name);
    for metric in ISTIO_METRICS.iter().filter(|m| wanted(m.kiali)) {
        asked.push(metric.kiali);
        if !metric.histogram {
            let expr =
                queries::counter(metric, &labels, query.rate_func, window, by).map_err(invalid)?;
            jobs.push(Job {
                metric: metric.kiali,
                stat: None,
                expr,
            });
            continue;
        }
        // Kiali lists a histogram's stats sorted by name: the quantiles, then `avg`.
        let mut stats: Vec<(String, Option<f64>)> = query
            .quantiles
            .iter()
            .map(|(text, q)| (text.clone(), Some(*q)))
            .collect();
        if query.avg {
            stats.push(("avg".to_string(), None));
        }
        stats.sort_by(|a, b| a.0.cmp(&b.0));
        for (stat, q) in stats {
            let expr = match q {
                Some(q) => queries::quantile(metric.istio, &labels, window, q, by),
                None => queries::average(metric.istio, &labels, window, by),
            }
            .map_err(invalid)?;
            jobs.push(Job {
                metric: metric.kiali,
                stat: Some(stat),
                expr,
            });
        }
    }
    Ok((asked, jobs))
}

/// Kiali's `MetricsMap` for `query`: every asked metric by name, `null` when it has no series.
async fn metrics_map(
    client: Arc<PrometheusClient>,
    query: &MetricsQuery,
) -> Result<Value, ApiError> {
    let (asked, jobs) = jobs(query)?;
    let step = Duration::from_secs(query.step.unsigned_abs());
    let start_ms = query.start.saturating_mul(1000);
    let end_ms = query.end.saturating_mul(1000);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, job) in jobs.iter().enumerate() {
        let client = client.clone();
        let expr = job.expr.clone();
        tasks.spawn(async move { (i, client.query_range(&expr, start_ms, end_ms, step).await) });
    }
    let mut answers = Vec::with_capacity(jobs.len());
    while let Some(done) = tasks.join_next().await {
        let (i, result) =
            done.map_err(|e| ApiError::unavailable(format!("a metrics query failed: {e}")))?;
        let job = jobs
            .get(i)
            .ok_or_else(|| ApiError::unavailable("a metrics query was lost"))?;
        let named = match &job.stat {
            Some(stat) => format!("{}/{stat}", job.metric),
            None => job.metric.to_string(),
        };
        let answer =
            result.map_err(|e| ApiError::unavailable(format!("error in metric {named}: {e}")))?;
        let PromValue::Matrix(series) = answer.value else {
            return Err(ApiError::unavailable(format!(
                "error in metric {named}: invalid query, matrix expected, {} answered a {}",
                client.describe(),
                answer.value.kind()
            )));
        };
        answers.push((i, series));
    }
    answers.sort_by_key(|(i, _)| *i);
    let mut map: BTreeMap<&str, Vec<Value>> = asked.iter().map(|m| (*m, Vec::new())).collect();
    for (i, series) in answers {
        let Some(job) = jobs.get(i) else { continue };
        let out = map.entry(job.metric).or_default();
        out.extend(
            series
                .iter()
                .map(|s| json::metric(s, job.metric, job.stat.as_deref())),
        );
    }
    // Kiali appends each metric's series to a nil list: none leaves it `null`.
    let object: serde_json::Map<String, Value> = map
        .into_iter()
        .map(|(name, series)| {
            let value = if series.is_empty() {
                Value::Null
            } else {
                Value::Array(series)
            };
            (name.to_string(), value)
        })
        .collect();
    Ok(Value::Object(object))
}
