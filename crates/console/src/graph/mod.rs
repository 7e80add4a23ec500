//! Kiali's traffic graph API: `GET /api/namespaces/graph` and the node graphs
//! `GET /api/namespaces/{ns}/{applications|workloads|services}/{name}/graph` (and
//! `…/applications/{app}/versions/{version}/graph`), answering Kiali's Cytoscape JSON.
//!
//! A graph is built as Kiali builds it: its queries ([`queries`], typed PromQL over the
//! configured Prometheus, meshtrace's store or any other) are asked at `queryTime`; each
//! namespace's answers fill a traffic map ([`traffic`]) in Kiali's order, the appenders' answers
//! are applied, the namespaces' maps are merged, the finalizers run ([`finalize`]), a service
//! graph is reduced, and the map is written ([`cytoscape`]). Building is pure ([`build`]); the
//! handlers do the asking.
//!
//! Bad input answers 400 naming the parameter; a namespace the console does not know (the
//! inventory of the traces) 400; the metrics source failing 503 naming it and why; a graph past
//! [`traffic::MAX_NODES`] nodes or [`traffic::MAX_EDGES`] edges, or answers past [`MAX_SERIES`]
//! series, 422.

pub mod cytoscape;
pub mod ends;
pub mod finalize;
pub mod options;
pub mod queries;
pub mod rates;
pub mod security;
pub mod traffic;

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use meshtrace_backend::prometheus::{Labels, PrometheusClient, Value};

use crate::Console;
use crate::error::{ApiError, ErrorCode};
use finalize::EdgeValues;
use options::{GraphOptions, GraphType, NodeTarget};
use queries::{Purpose, Query};
use traffic::{MAX_EDGES, MAX_NODES, TooLarge, TrafficMap};

/// Queries in flight at once for one graph.
const PARALLEL_QUERIES: usize = 8;
/// Series held from all the answers of one graph (each answer is also capped in bytes by the
/// Prometheus client).
pub const MAX_SERIES: usize = 200_000;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/api/namespaces/graph", get(namespaces_graph))
        .route(
            "/api/namespaces/{namespace}/applications/{app}/graph",
            get(app_graph),
        )
        .route(
            "/api/namespaces/{namespace}/applications/{app}/versions/{version}/graph",
            get(app_version_graph),
        )
        .route(
            "/api/namespaces/{namespace}/workloads/{workload}/graph",
            get(workload_graph),
        )
        .route(
            "/api/namespaces/{namespace}/services/{service}/graph",
            get(service_graph),
        )
}

/// One query's answer: each series' labels and value.
pub type Samples = Vec<(Labels, f64)>;

fn too_large(_: TooLarge) -> ApiError {
    ApiError::new(
        ErrorCode::Unprocessable,
        format!(
            "the graph has more than {MAX_NODES} nodes or {MAX_EDGES} edges, the most the console \
             draws: ask for fewer namespaces, a shorter duration or a node graph"
        ),
    )
}

/// The graph from the answers to `queries(o)`, in their order. `known`: the namespaces the
/// console knows (nodes elsewhere are inaccessible), when it knows any.
pub fn build(
    o: &GraphOptions,
    answers: &[(Query, Samples)],
    known: Option<&BTreeSet<String>>,
) -> Result<cytoscape::Config, TooLarge> {
    let mut merged = TrafficMap::default();
    for ns in &o.namespaces {
        let mut map = TrafficMap::default();
        let mut response_times = EdgeValues::default();
        let mut throughputs = EdgeValues::default();
        let mut policies = security::Policies::default();
        for (query, samples) in answers.iter().filter(|(q, _)| &q.namespace == ns) {
            match query.purpose {
                Purpose::Traffic(metric) => map.populate(samples, metric, o)?,
                Purpose::ResponseTime => response_times.add_response_times(samples, o),
                Purpose::Throughput => throughputs.add_throughput(samples, o),
                Purpose::SecurityPolicy => policies.add_samples(samples, o),
            }
        }
        finalize::apply(&mut map, &response_times, &throughputs);
        policies.apply(&mut map);
        merged.merge(map, ns)?;
    }
    finalize::finalize(&mut merged, &o.namespaces, known);
    if o.graph_type == GraphType::Service && o.node.is_none() {
        merged = finalize::reduce_to_service_graph(&merged)?;
    }
    Ok(cytoscape::config(
        &merged,
        o.graph_type,
        o.box_by,
        o.query_time,
        o.duration.as_secs(),
    ))
}

/// The queries of the graph `o` asks for.
pub fn queries_of(o: &GraphOptions) -> Result<Vec<Query>, ApiError> {
    let built = if o.node.is_some() {
        queries::node_queries(o)
    } else {
        queries::namespace_queries(o)
    };
    built.map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Asks every query (a few at a time); the first failure is the answer.
async fn ask(
    prometheus: &Arc<PrometheusClient>,
    queries: Vec<Query>,
    time_ms: i64,
) -> Result<Vec<(Query, Samples)>, ApiError> {
    let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL_QUERIES));
    let mut calls = tokio::task::JoinSet::new();
    let count = queries.len();
    for (index, query) in queries.into_iter().enumerate() {
        let prometheus = prometheus.clone();
        let permits = permits.clone();
        calls.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let answer = prometheus.query(&query.expr, Some(time_ms)).await;
            (index, query, answer)
        });
    }
    let mut held = 0usize;
    let mut answers: Vec<Option<(Query, Samples)>> = Vec::new();
    answers.resize_with(count, || None);
    while let Some(joined) = calls.join_next().await {
        let Ok((index, query, answer)) = joined else {
            return Err(ApiError::unavailable("a graph query stopped unexpectedly"));
        };
        let answer = answer.map_err(|e| ApiError::unavailable(e.to_string()))?;
        let samples: Samples = match answer.value {
            Value::Vector(samples) => samples
                .into_iter()
                .map(|s| (s.metric, s.point.value))
                .collect(),
            other => {
                return Err(ApiError::unavailable(format!(
                    "{} answered a graph query with a {} instead of a vector",
                    prometheus.describe(),
                    other.kind()
                )));
            }
        };
        held = held.saturating_add(samples.len());
        if held > MAX_SERIES {
            return Err(ApiError::new(
                ErrorCode::Unprocessable,
                format!(
                    "{} answered the graph's queries with more than {MAX_SERIES} series, the most \
                     the console reads for one graph: ask for fewer namespaces, a shorter \
                     duration or a node graph",
                    prometheus.describe()
                ),
            ));
        }
        if let Some(slot) = answers.get_mut(index) {
            *slot = Some((query, samples));
        }
    }
    Ok(answers.into_iter().flatten().collect())
}

/// The namespaces the console knows (from the inventory of the traces), or `None` when the
/// inventory cannot be had (no tracing backend): then any well-formed namespace is asked for.
async fn known_namespaces(console: &Console) -> Option<BTreeSet<String>> {
    match console.inventory().await {
        Ok(snapshot) => Some(
            snapshot
                .inventory
                .namespaces()
                .into_iter()
                .map(|n| n.name)
                .collect(),
        ),
        Err(error) => {
            tracing::debug!(error = %error.error, "graph: namespaces not checked (no inventory)");
            None
        }
    }
}

async fn graph(
    console: Arc<Console>,
    raw: Option<String>,
    node: Option<(String, NodeTarget)>,
) -> Result<Response, ApiError> {
    Ok(Json(graph_of(&console, raw.as_deref(), node).await?).into_response())
}

/// The graph a request asks for (its query string and, for a node graph, the node): what the
/// routes answer and the graph page draws.
pub async fn graph_of(
    console: &Console,
    raw: Option<&str>,
    node: Option<(String, NodeTarget)>,
) -> Result<cytoscape::Config, ApiError> {
    let o = GraphOptions::parse(raw, node)?;
    let prometheus = console.prometheus()?.clone();
    let known = known_namespaces(console).await;
    if let Some(known) = &known {
        for ns in &o.namespaces {
            if !known.contains(ns) {
                return Err(ApiError::bad_request(format!(
                    "Invalid namespace [{}]: the console knows no such namespace (it knows the \
                     namespaces seen in the traces of the last {} minutes: {})",
                    options::shown(ns),
                    console.options.inventory_window.as_secs() / 60,
                    if known.is_empty() {
                        "none yet".to_string()
                    } else {
                        known.iter().cloned().collect::<Vec<_>>().join(", ")
                    }
                )));
            }
        }
    }
    let queries = queries_of(&o)?;
    let time_ms = o.query_time.saturating_mul(1000);
    let answers = ask(&prometheus, queries, time_ms).await?;
    build(&o, &answers, known.as_ref()).map_err(too_large)
}

async fn namespaces_graph(
    State(console): State<Arc<Console>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    graph(console, raw, None).await
}

async fn app_graph(
    State(console): State<Arc<Console>>,
    Path((namespace, app)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let target = NodeTarget::App { app, version: None };
    graph(console, raw, Some((namespace, target))).await
}

async fn app_version_graph(
    State(console): State<Arc<Console>>,
    Path((namespace, app, version)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let target = NodeTarget::App {
        app,
        version: Some(version),
    };
    graph(console, raw, Some((namespace, target))).await
}

async fn workload_graph(
    State(console): State<Arc<Console>>,
    Path((namespace, workload)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    graph(
        console,
        raw,
        Some((namespace, NodeTarget::Workload(workload))),
    )
    .await
}

async fn service_graph(
    State(console): State<Arc<Console>>,
    Path((namespace, service)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    graph(
        console,
        raw,
        Some((namespace, NodeTarget::Service(service))),
    )
    .await
}
