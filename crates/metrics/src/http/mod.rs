//! Prometheus's HTTP query API over any [`SeriesSource`]: `/api/v1/query`, `/query_range`,
//! `/series`, `/labels`, `/label/{name}/values`, `/metadata`, `/status/buildinfo` (and
//! `/status/config`, `/status/runtimeinfo`, `/-/healthy`, `/-/ready`, which Kiali reads), with
//! Prometheus's parameters, JSON and errors. Queries are evaluated on threads of their own, a
//! bounded number at a time, each under a deadline.

mod gofloat;
mod json;
mod params;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use tokio::sync::Semaphore;

use crate::promql::{self, EngineOptions, QueryError, too_many_points};
use crate::series::{Labels, Matcher};
use crate::source::{SelectLimits, SeriesSource, SourceError};
use params::{
    DEFAULT_END, DEFAULT_START, Form, invalid, is_label_name, parse_duration_ms, parse_time,
    time_param,
};

/// What `/api/v1/status/buildinfo` reports, as this API writes it and as the console's
/// Prometheus client reads it (a field Prometheus leaves out reads as empty).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
    pub branch: String,
    pub build_user: String,
    pub build_date: String,
    pub go_version: String,
}

impl BuildInfo {
    /// meshtrace's own, which the API reports unless told otherwise.
    pub fn meshtrace() -> Self {
        BuildInfo {
            // The Prometheus API version this one follows; clients such as Grafana read it.
            version: "3.0.0".to_string(),
            revision: format!("meshtrace-{}", env!("CARGO_PKG_VERSION")),
            branch: "meshtrace".to_string(),
            build_user: "meshtrace".to_string(),
            build_date: String::new(),
            go_version: "none (meshtrace is written in Rust)".to_string(),
        }
    }
}

/// How the API evaluates and what it reports.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    pub engine: EngineOptions,
    /// Queries evaluated at once; more wait (within their deadline) for a slot.
    pub max_concurrent_queries: usize,
    /// Largest POST body accepted.
    pub max_body_bytes: usize,
    pub build_info: BuildInfo,
    /// What `/status/config` reports as `global.scrape_interval` (Kiali derives steps from it).
    pub scrape_interval: Duration,
    /// What `/status/runtimeinfo` reports as `storageRetention`.
    pub retention: Duration,
}

impl Default for ApiOptions {
    fn default() -> Self {
        ApiOptions {
            engine: EngineOptions::default(),
            max_concurrent_queries: 4,
            max_body_bytes: 1 << 20,
            build_info: BuildInfo::meshtrace(),
            scrape_interval: Duration::from_secs(15),
            retention: Duration::from_secs(15 * 24 * 3600),
        }
    }
}

struct Api {
    source: Arc<dyn SeriesSource>,
    options: ApiOptions,
    slots: Arc<Semaphore>,
}

/// The API's routes, relative to where the caller mounts them (`/api/v1/...`, `/-/...`).
pub fn router(source: Arc<dyn SeriesSource>, options: ApiOptions) -> Router {
    let slots = Arc::new(Semaphore::new(options.max_concurrent_queries.max(1)));
    let api = Arc::new(Api {
        source,
        options,
        slots,
    });
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/status/buildinfo", get(buildinfo))
        .route("/api/v1/status/config", get(config))
        .route("/api/v1/status/runtimeinfo", get(runtimeinfo))
        .route(
            "/-/healthy",
            get(|| async { "meshtrace Prometheus API is Healthy.\n" }),
        )
        .route(
            "/-/ready",
            get(|| async { "meshtrace Prometheus API is Ready.\n" }),
        )
        .with_state(api)
}

/// The request's form; a body over the limit is refused.
async fn read_form(api: &Api, request: Request) -> Result<Form, Response> {
    let (parts, body) = request.into_parts();
    let query = parts.uri.query().map(str::to_string);
    let urlencoded = parts.method == Method::POST
        && parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = if urlencoded {
        match to_bytes(Body::new(body), api.options.max_body_bytes).await {
            Ok(bytes) => Some(bytes),
            Err(_) => {
                return Err(json::error_with_status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "bad_data",
                    &format!(
                        "the request body is larger than {} bytes",
                        api.options.max_body_bytes
                    ),
                ));
            }
        }
    } else {
        None
    };
    Ok(Form::new(query.as_deref(), body.as_deref()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The deadline of a query: the configured timeout, shortened by a `timeout` parameter.
fn deadline(api: &Api, form: &Form) -> Result<Instant, QueryError> {
    let mut timeout = api.options.engine.limits.timeout;
    let requested = form.value("timeout");
    if !requested.is_empty() {
        let ms = parse_duration_ms(requested).map_err(|e| invalid("timeout", e))?;
        timeout = timeout.min(Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
    }
    Ok(Instant::now()
        .checked_add(timeout)
        .unwrap_or_else(Instant::now))
}

/// The engine options of one request (`lookback_delta` may replace the default).
fn engine_options(api: &Api, form: &Form) -> Result<EngineOptions, QueryError> {
    let mut options = api.options.engine.clone();
    let lookback = form.value("lookback_delta");
    if !lookback.is_empty() {
        let ms = parse_duration_ms(lookback).map_err(|e| invalid("lookback_delta", e))?;
        if ms < 0 {
            return Err(invalid("lookback_delta", "must not be negative"));
        }
        if ms > 0 {
            options.lookback_delta = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
        }
    }
    Ok(options)
}

/// The stack of the thread a query is planned and evaluated on. Both recurse once per level of
/// the query, up to the parser's nesting and operator limits; at those limits a debug build
/// needs about 2 MiB (the runtime's blocking threads have exactly that), a release build far
/// less. Only reserved address space until used; one thread per slot at most.
const EVALUATION_STACK: usize = 8 << 20;

/// Runs `work` on a thread of its own (with [`EVALUATION_STACK`]) once a slot is free, all
/// within `deadline`.
async fn evaluate<T: Send + 'static>(
    api: &Api,
    deadline: Instant,
    work: impl FnOnce() -> Result<T, QueryError> + Send + 'static,
) -> Result<T, QueryError> {
    let timed_out = || QueryError::Timeout("query timed out in query execution".to_string());
    let permit = tokio::time::timeout_at(deadline.into(), api.slots.clone().acquire_owned())
        .await
        .map_err(|_| timed_out())?
        .map_err(|_| QueryError::Internal("the query engine is shutting down".to_string()))?;
    let (answer, answered) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("promql-eval".to_string())
        .stack_size(EVALUATION_STACK)
        .spawn(move || {
            let _permit = permit;
            // The receiver is gone only when the request was dropped: nobody waits for this.
            let _ = answer.send(work());
        })
        .map_err(|e| QueryError::Internal(format!("no thread to evaluate the query on: {e}")))?;
    // A panic in `work` drops the sender.
    answered
        .await
        .map_err(|_| QueryError::Internal("the query evaluation failed".to_string()))?
}

/// What a handler computes: the JSON of `data`, and warnings.
type Answer = Result<(String, Vec<String>), QueryError>;

/// Reads the request's form, runs `handler` on it, and answers in Prometheus's envelope.
async fn answer<F, Fut>(api: Arc<Api>, request: Request, handler: F) -> Response
where
    F: FnOnce(Arc<Api>, Form) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    let form = match read_form(&api, request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    match handler(api, form).await {
        Ok((data, warnings)) => json::success(&data, &warnings),
        Err(err) => json::error(&err),
    }
}

async fn query(State(api): State<Arc<Api>>, request: Request) -> Response {
    answer(api, request, instant).await
}

async fn instant(api: Arc<Api>, form: Form) -> Answer {
    let time = time_param(&form, "time", now_ms())?;
    let deadline = deadline(&api, &form)?;
    let options = engine_options(&api, &form)?;
    let text = form.value("query").to_string();
    let source = api.source.clone();
    let value = evaluate(&api, deadline, move || {
        promql::instant_query(source.as_ref(), &text, time, &options, deadline).map_err(|e| match e
        {
            QueryError::BadData(m) => invalid("query", m),
            other => other,
        })
    })
    .await?;
    Ok((json::query_data(&value), Vec::new()))
}

async fn query_range(State(api): State<Arc<Api>>, request: Request) -> Response {
    answer(api, request, range).await
}

async fn range(api: Arc<Api>, form: Form) -> Answer {
    let start = parse_time(form.value("start")).map_err(|e| invalid("start", e))?;
    let end = parse_time(form.value("end")).map_err(|e| invalid("end", e))?;
    if end < start {
        return Err(invalid(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step = parse_duration_ms(form.value("step")).map_err(|e| invalid("step", e))?;
    if step <= 0 {
        return Err(invalid(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if end
        .saturating_sub(start)
        .checked_div(step)
        .unwrap_or(i64::MAX)
        > promql::MAX_POINTS_PER_SERIES
    {
        return Err(too_many_points());
    }
    let deadline = deadline(&api, &form)?;
    let options = engine_options(&api, &form)?;
    let text = form.value("query").to_string();
    let source = api.source.clone();
    let value = evaluate(&api, deadline, move || {
        promql::range_query(source.as_ref(), &text, start, end, step, &options, deadline)
    })
    .await?;
    Ok((json::query_data(&value), Vec::new()))
}

/// The time range of a metadata request (`start`, `end`; everything by default).
fn metadata_range(form: &Form) -> Result<(i64, i64), QueryError> {
    let start = time_param(form, "start", DEFAULT_START)?;
    let end = time_param(form, "end", DEFAULT_END)?;
    Ok((start, end))
}

/// A positive `limit` parameter, or none.
fn limit_param(form: &Form) -> Result<Option<usize>, QueryError> {
    let text = form.value("limit");
    if text.is_empty() {
        return Ok(None);
    }
    let limit: i64 = text
        .parse()
        .map_err(|_| invalid("limit", format!("cannot parse {text:?} to a valid limit")))?;
    Ok((limit > 0).then(|| usize::try_from(limit).unwrap_or(usize::MAX)))
}

/// The label sets of every series matching any selector of `match[]` (all series when there
/// is none), sorted and without repeats. The selectors are parsed on the evaluation thread too:
/// compiling their regular expressions can take a while.
async fn matching_series(
    api: &Arc<Api>,
    form: &Form,
    start: i64,
    end: i64,
) -> Result<Vec<Labels>, QueryError> {
    let deadline = Instant::now()
        .checked_add(api.options.engine.limits.timeout)
        .unwrap_or_else(Instant::now);
    let source = api.source.clone();
    let engine = api.options.engine.clone();
    let limits = SelectLimits {
        max_series: engine.limits.max_series,
        max_samples: engine.limits.max_samples,
    };
    let texts: Vec<String> = form
        .values("match[]")
        .into_iter()
        .map(str::to_string)
        .collect();
    evaluate(api, deadline, move || {
        let mut sets = texts
            .iter()
            .map(|text| promql::series_selector(text, &engine))
            .collect::<Result<Vec<Vec<Matcher>>, QueryError>>()?;
        if sets.is_empty() {
            sets.push(Vec::new());
        }
        let mut all: Vec<Labels> = Vec::new();
        for matchers in &sets {
            let found =
                source
                    .series_labels(matchers, start, end, limits)
                    .map_err(|e| match e {
                        SourceError::TooLarge(m) => QueryError::Execution(m),
                        SourceError::Failed(m) => QueryError::Internal(m),
                    })?;
            all.extend(found);
            if all.len() > limits.max_series {
                return Err(QueryError::Execution(
                    limits.exceeded(all.len(), 0).to_string(),
                ));
            }
        }
        all.sort();
        all.dedup();
        Ok(all)
    })
    .await
}

/// Applies `limit`, warning as Prometheus does when it cut the list.
fn truncate<T>(items: &mut Vec<T>, limit: Option<usize>) -> Vec<String> {
    match limit {
        Some(limit) if items.len() > limit => {
            items.truncate(limit);
            vec!["results truncated due to limit".to_string()]
        }
        _ => Vec::new(),
    }
}

async fn series(State(api): State<Arc<Api>>, request: Request) -> Response {
    answer(api, request, series_data).await
}

async fn series_data(api: Arc<Api>, form: Form) -> Answer {
    let (start, end) = metadata_range(&form)?;
    let limit = limit_param(&form)?;
    if form.values("match[]").is_empty() {
        return Err(QueryError::BadData(
            "no match[] parameter provided".to_string(),
        ));
    }
    let mut found = matching_series(&api, &form, start, end).await?;
    let warnings = truncate(&mut found, limit);
    let mut data = String::new();
    json::array(&mut data, &found, json::labels);
    Ok((data, warnings))
}

async fn labels(State(api): State<Arc<Api>>, request: Request) -> Response {
    answer(api, request, labels_data).await
}

async fn labels_data(api: Arc<Api>, form: Form) -> Answer {
    let (start, end) = metadata_range(&form)?;
    let limit = limit_param(&form)?;
    let found = matching_series(&api, &form, start, end).await?;
    let names = found.iter().flat_map(|l| l.iter().map(|(n, _)| n));
    Ok(string_list(names.collect(), limit))
}

/// A sorted list of distinct strings, cut at `limit`.
fn string_list(mut items: Vec<&str>, limit: Option<usize>) -> (String, Vec<String>) {
    items.sort_unstable();
    items.dedup();
    let warnings = truncate(&mut items, limit);
    let mut data = String::new();
    json::strings(&mut data, items);
    (data, warnings)
}

async fn label_values(
    State(api): State<Arc<Api>>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    answer(api, request, |api, form| label_values_data(api, form, name)).await
}

async fn label_values_data(api: Arc<Api>, form: Form, name: String) -> Answer {
    if !is_label_name(&name) {
        return Err(QueryError::BadData(format!("invalid label name: {name:?}")));
    }
    let (start, end) = metadata_range(&form)?;
    let limit = limit_param(&form)?;
    let found = matching_series(&api, &form, start, end).await?;
    let values = found.iter().filter_map(|l| l.get(&name));
    Ok(string_list(values.collect(), limit))
}

async fn metadata(State(api): State<Arc<Api>>, request: Request) -> Response {
    let form = match read_form(&api, request).await {
        Ok(form) => form,
        Err(response) => return response,
    };
    let limit = match limit_param(&form) {
        Ok(limit) => limit,
        Err(err) => return json::error(&err),
    };
    let metric = form.value("metric").to_string();
    let mut families = api.source.metadata();
    families.retain(|m| metric.is_empty() || m.name == metric);
    families.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(limit) = limit {
        families.truncate(limit);
    }
    let mut data = String::from("{");
    for (i, m) in families.iter().enumerate() {
        if i > 0 {
            data.push(',');
        }
        json::string(&mut data, &m.name);
        data.push_str(":[{\"type\":");
        json::string(&mut data, m.kind.as_str());
        data.push_str(",\"help\":");
        json::string(&mut data, &m.help);
        data.push_str(",\"unit\":");
        json::string(&mut data, &m.unit);
        data.push_str("}]");
    }
    data.push('}');
    json::success(&data, &[])
}

async fn buildinfo(State(api): State<Arc<Api>>) -> Response {
    let b = &api.options.build_info;
    let mut data = String::from("{");
    for (i, (key, value)) in [
        ("version", &b.version),
        ("revision", &b.revision),
        ("branch", &b.branch),
        ("buildUser", &b.build_user),
        ("buildDate", &b.build_date),
        ("goVersion", &b.go_version),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            data.push(',');
        }
        json::string(&mut data, key);
        data.push(':');
        json::string(&mut data, value);
    }
    data.push('}');
    json::success(&data, &[])
}

async fn config(State(api): State<Arc<Api>>) -> Response {
    let yaml = format!(
        "global:\n  scrape_interval: {}s\n  evaluation_interval: {}s\n",
        api.options.scrape_interval.as_secs().max(1),
        api.options.scrape_interval.as_secs().max(1)
    );
    let mut data = String::from("{\"yaml\":");
    json::string(&mut data, &yaml);
    data.push('}');
    json::success(&data, &[])
}

async fn runtimeinfo(State(api): State<Arc<Api>>) -> Response {
    let seconds = api.options.retention.as_secs();
    // Kiali reads the first word of `storageRetention` as a Prometheus duration.
    let retention = if seconds > 0 && seconds % 86_400 == 0 {
        format!("{}d", seconds / 86_400)
    } else {
        format!("{}s", seconds.max(1))
    };
    let mut data =
        String::from("{\"reloadConfigSuccess\":true,\"corruptionCount\":0,\"storageRetention\":");
    json::string(&mut data, &retention);
    data.push('}');
    json::success(&data, &[])
}
