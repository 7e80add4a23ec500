//! The graph page's side panel: the selected node's or edge's rates, response codes, response
//! time and throughput as the graph JSON has them, and a node's traces (its Traces list,
//! linking to the trace details); and the hops of a trace overlay.

use std::collections::{BTreeSet, HashMap};

use meshtrace_mesh::Kind;
use meshtrace_model::time::format_duration;
use serde_json::Value;

use super::super::view::View;
use super::{elements, node_name, text};
use crate::Console;
use crate::params::TracingParams;
use crate::tracing_api::{TracesRequest, ask};

pub const DEFAULT_TRACES: usize = 20;
pub const TRACE_LIMITS: [usize; 4] = [10, 20, 50, 100];

pub struct TraceRow {
    pub id: String,
    pub name: String,
    pub spans: usize,
    pub duration: String,
    pub error: bool,
}

pub struct Panel {
    pub title: String,
    pub kind: String,
    pub namespace: String,
    pub rows: Vec<(String, String)>,
    /// Response code → share of the requests (%).
    pub responses: Vec<(String, String)>,
    /// A node's traces; `None` for an edge.
    pub traces: Option<Vec<TraceRow>>,
    pub traces_problem: Option<String>,
    pub limits: Vec<(usize, bool)>,
}

/// A node's name with an app node's version.
fn versioned_name(data: &Value) -> String {
    let name = node_name(data);
    let version = text(data, "version");
    if text(data, "nodeType") == "app" && !version.is_empty() {
        format!("{name} {version}")
    } else {
        name.to_string()
    }
}

/// `name (namespace)` of every node, by id.
fn names(graph: &Value) -> HashMap<String, String> {
    elements(graph, "nodes")
        .map(|d| {
            (
                text(d, "id").to_string(),
                format!("{} ({})", versioned_name(d), text(d, "namespace")),
            )
        })
        .collect()
}

/// The overlay's hops: `caller → callee` for every marked edge.
pub fn hops(graph: &Value, marks: &BTreeSet<String>) -> Vec<String> {
    if marks.is_empty() {
        return Vec::new();
    }
    let names = names(graph);
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| "?".into());
    elements(graph, "edges")
        .filter(|d| marks.contains(text(d, "id")))
        .map(|d| format!("{} → {}", name(text(d, "source")), name(text(d, "target"))))
        .collect()
}

fn rate_rows(traffic: &Value) -> Vec<(String, String)> {
    let protocol = text(traffic, "protocol");
    traffic
        .get("rates")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(key, value)| {
            (
                format!("{protocol} {key}"),
                value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string),
            )
        })
        .collect()
}

/// An edge's security, as Kiali's edge summary shows it: "mTLS enabled" (with the share of
/// the traffic when it is not all of it) and the principals of its ends.
fn security_rows(edge: &Value) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let share = text(edge, "isMTLS");
    if let Some(percent) = share.parse::<f64>().ok().filter(|p| *p > 0.0) {
        let shown = if percent < 100.0 {
            format!("mTLS enabled [{share}% of request traffic]")
        } else {
            "mTLS enabled".to_string()
        };
        rows.push(("security".to_string(), shown));
    }
    for (key, label) in [
        ("sourcePrincipal", "source principal"),
        ("destPrincipal", "destination principal"),
    ] {
        let principal = text(edge, key);
        if !principal.is_empty() {
            rows.push((label.to_string(), principal.to_string()));
        }
    }
    rows
}

/// The panel of the element `focus`, if the graph has it.
pub async fn panel(
    console: &Console,
    graph: &Value,
    focus: &str,
    limit: usize,
    view: &View,
) -> Option<Panel> {
    if focus.is_empty() {
        return None;
    }
    let limits = TRACE_LIMITS.iter().map(|&l| (l, l == limit)).collect();
    if let Some(edge) = elements(graph, "edges").find(|d| text(d, "id") == focus) {
        let names = names(graph);
        let name = |key: &str| names.get(text(edge, key)).cloned().unwrap_or_default();
        let traffic = edge.get("traffic").unwrap_or(&Value::Null);
        let mut rows = rate_rows(traffic);
        for (key, label, unit) in [
            ("responseTime", "response time", "ms"),
            ("throughput", "throughput", "B/s"),
        ] {
            let value = text(edge, key);
            if !value.is_empty() {
                rows.push((label.to_string(), format!("{value} {unit}")));
            }
        }
        rows.extend(security_rows(edge));
        let responses = traffic
            .get("responses")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(code, detail)| {
                let share: f64 = detail
                    .get("flags")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .filter_map(|(_, p)| p.as_str().and_then(|s| s.parse::<f64>().ok()))
                    .sum();
                (code.clone(), format!("{share:.1}%"))
            })
            .collect();
        return Some(Panel {
            title: format!("{} → {}", name("source"), name("target")),
            kind: "edge".into(),
            namespace: String::new(),
            rows,
            responses,
            traces: None,
            traces_problem: None,
            limits,
        });
    }
    let node = elements(graph, "nodes").find(|d| text(d, "id") == focus)?;
    let rows = node
        .get("traffic")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(rate_rows)
        .collect();
    let (traces, traces_problem) = match node_traces(console, node, limit, view).await {
        Ok(rows) => (Some(rows), None),
        Err(problem) => (Some(Vec::new()), Some(problem)),
    };
    Some(Panel {
        title: versioned_name(node),
        kind: text(node, "nodeType").to_string(),
        namespace: text(node, "namespace").to_string(),
        rows,
        responses: Vec::new(),
        traces,
        traces_problem,
        limits,
    })
}

/// The node's traces over the page's time range, as its Traces tab would list them.
async fn node_traces(
    console: &Console,
    node: &Value,
    limit: usize,
    view: &View,
) -> Result<Vec<TraceRow>, String> {
    let (kind, name) = match text(node, "nodeType") {
        "service" => (Kind::Service, text(node, "service")),
        "workload" => (Kind::Workload, text(node, "workload")),
        "app" if !text(node, "workload").is_empty() => (Kind::Workload, text(node, "workload")),
        "app" => (Kind::App, text(node, "app")),
        other => return Err(format!("a node of type {other} has no traces of its own")),
    };
    let (start, end) = view.window();
    let raw = format!("limit={limit}&startMicros={start}&endMicros={end}");
    let params = TracingParams::parse(Some(&raw), limit).map_err(|e| e.error)?;
    let request = TracesRequest {
        namespace: text(node, "namespace").to_string(),
        kind,
        name: name.to_string(),
        params,
    };
    let asked = ask(console, request).await.map_err(|e| e.error)?;
    Ok(asked
        .found
        .traces
        .iter()
        .filter_map(|trace| {
            let root = trace.root()?;
            Some(TraceRow {
                id: root.trace_id.to_hex32(),
                name: format!("{}: {}", root.process.service_name, root.operation_name),
                spans: trace.spans.len(),
                duration: format_duration(trace.duration()),
                error: trace.spans.iter().any(meshtrace_model::Span::has_error),
            })
        })
        .collect())
}
