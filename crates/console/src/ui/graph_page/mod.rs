//! The graph page, at Kiali's URL (`/console/graph/namespaces?namespaces=…&graphType=…`):
//! the mesh graph of the graph API ([`crate::graph`]) drawn on the server as SVG, with
//! Kiali's options in the URL (graph type, edge labels, idle edges, service nodes), a side
//! panel for the node or edge selected (`focus=`), and the trace overlay (`traceId=`).
//!
//! Every element links to the same page with itself in focus: no script is needed to use it.

pub(super) mod draw;
pub(super) mod layout;
pub(super) mod overlay;
mod panel;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::HeaderValue;
use axum::response::Response;

use super::Choice;
use super::shell::{Shell, Visitor, inventory};
use super::view::View;
use crate::Console;
use crate::error::page;
use crate::tracing_api::parse_trace_id;
use draw::{Drawing, EdgeLabel};
use panel::Panel;

/// The graph types the page offers, as Kiali's menu.
const GRAPH_TYPES: [(&str, &str); 4] = [
    ("app", "App graph"),
    ("versionedApp", "Versioned app graph"),
    ("workload", "Workload graph"),
    ("service", "Service graph"),
];
/// Kiali's "Edge labels" menu.
const EDGE_LABELS: [(&str, &str); 4] = [
    ("trafficRate", "Traffic rate"),
    ("trafficDistribution", "Traffic distribution"),
    ("responseTime", "Response time (95th)"),
    ("throughput", "Throughput"),
];

/// The page's own options (the namespaces and time range are the shell's [`View`]).
struct GraphView {
    graph_type: String,
    labels: Vec<EdgeLabel>,
    label_names: Vec<String>,
    idle_edges: bool,
    inject_services: bool,
    /// Kiali's Display option "Security" (`badgeSecurity`): lock badges on mTLS edges.
    security: bool,
    focus: String,
    traces_limit: usize,
}

impl GraphView {
    fn parse(raw: Option<&str>) -> GraphView {
        let mut view = GraphView {
            graph_type: "versionedApp".into(),
            labels: Vec::new(),
            label_names: Vec::new(),
            idle_edges: false,
            inject_services: true,
            security: false,
            focus: String::new(),
            traces_limit: panel::DEFAULT_TRACES,
        };
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "graphType" if GRAPH_TYPES.iter().any(|(t, _)| *t == value) => {
                    view.graph_type = value.into_owned();
                }
                "edges" => {
                    for name in value.split(',') {
                        if let Some(label) = EdgeLabel::parse(name)
                            && !view.labels.contains(&label)
                        {
                            view.labels.push(label);
                            view.label_names.push(name.to_string());
                        }
                    }
                }
                "idleEdges" => view.idle_edges = value == "true",
                "injectServiceNodes" => view.inject_services = value != "false",
                "badgeSecurity" => view.security = value == "true",
                // Element ids are hex digests: anything else selects nothing.
                "focus" if value.len() <= 64 && value.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    view.focus = value.into_owned();
                }
                "tracesLimit" => {
                    if let Some(limit) = value
                        .parse()
                        .ok()
                        .filter(|l| panel::TRACE_LIMITS.contains(l))
                    {
                        view.traces_limit = limit;
                    }
                }
                _ => {}
            }
        }
        view
    }

    /// The options as hidden fields and query pairs (without the focus).
    fn pairs(&self) -> Vec<(String, String)> {
        let mut pairs = vec![
            ("graphType".to_string(), self.graph_type.clone()),
            (
                "injectServiceNodes".into(),
                self.inject_services.to_string(),
            ),
        ];
        if !self.label_names.is_empty() {
            pairs.push(("edges".into(), self.label_names.join(",")));
        }
        if self.idle_edges {
            pairs.push(("idleEdges".into(), "true".into()));
        }
        if self.security {
            pairs.push(("badgeSecurity".into(), "true".into()));
        }
        if self.traces_limit != panel::DEFAULT_TRACES {
            pairs.push(("tracesLimit".into(), self.traces_limit.to_string()));
        }
        pairs
    }
}

struct LabelChoice {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

#[derive(Template)]
#[template(path = "graph.html")]
struct GraphPage {
    shell: Shell,
    graph_types: Vec<Choice>,
    label_choices: Vec<LabelChoice>,
    idle_edges: bool,
    inject_services: bool,
    security: bool,
    /// The page's URL without the focus, for the elements' links.
    here: String,
    drawing: Option<Drawing>,
    focus: String,
    panel: Option<Panel>,
    trace_id: String,
    /// Why the overlay is missing, when it is.
    overlay_problem: Option<String>,
    hops: Vec<String>,
    empty: bool,
}

pub(super) async fn graph_page(
    State(console): State<Arc<Console>>,
    visitor: Visitor,
    RawQuery(raw): RawQuery,
) -> Response {
    let view = View::parse(raw.as_deref());
    let options = GraphView::parse(raw.as_deref());
    let (_, known, inventory_error) = inventory(&console).await;
    let mut shell = Shell::new(
        &console,
        &visitor,
        &view,
        "Traffic graph".into(),
        "graph/namespaces",
        &known,
    );
    shell.keep = options.pairs();
    let root = shell.root.clone();
    let namespaces = if view.namespaces.is_empty() {
        known.clone()
    } else {
        view.namespaces.clone()
    };
    let mut here_pairs: Vec<(String, String)> = vec![];
    if !view.namespaces.is_empty() {
        here_pairs.push(("namespaces".into(), view.namespaces.join(",")));
    }
    here_pairs.push(("duration".into(), view.duration.to_string()));
    if view.refresh != 0 {
        here_pairs.push(("refresh".into(), view.refresh.to_string()));
    }
    here_pairs.extend(options.pairs());
    if !view.trace_id.is_empty() {
        here_pairs.push(("traceId".into(), view.trace_id.clone()));
    }
    let here = format!(
        "{root}/console/graph/namespaces?{}",
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&here_pairs)
            .finish()
    );
    let mut graph_page = GraphPage {
        graph_types: GRAPH_TYPES
            .iter()
            .map(|(value, label)| Choice {
                value: value.to_string(),
                label: label.to_string(),
                selected: *value == options.graph_type,
            })
            .collect(),
        label_choices: EDGE_LABELS
            .iter()
            .map(|&(value, label)| LabelChoice {
                value,
                label,
                checked: options.label_names.iter().any(|n| n == value),
            })
            .collect(),
        idle_edges: options.idle_edges,
        inject_services: options.inject_services,
        security: options.security,
        here,
        drawing: None,
        focus: options.focus.clone(),
        panel: None,
        trace_id: view.trace_id.clone(),
        overlay_problem: None,
        hops: Vec::new(),
        empty: false,
        shell,
    };
    if namespaces.is_empty() {
        graph_page.shell.error = inventory_error.map(|e| e.error);
        graph_page.empty = true;
        return page(None, graph_page);
    }
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("namespaces", &namespaces.join(","))
        .append_pair("graphType", &options.graph_type)
        .append_pair("duration", &format!("{}s", view.duration))
        .append_pair("injectServiceNodes", &options.inject_services.to_string())
        .append_pair("includeIdleEdges", &options.idle_edges.to_string())
        // Kiali's UI boxes by cluster and namespace (the API draws a cluster box only when the
        // graph spans two clusters or more) and by app.
        .append_pair("boxBy", "cluster,namespace,app")
        // As Kiali's UI: the security policy is asked only when it is shown.
        .append_pair(
            "appenders",
            if options.security {
                "responseTime,throughput,securityPolicy"
            } else {
                "responseTime,throughput"
            },
        )
        .finish();
    let started = Instant::now();
    let graph = match crate::graph::graph_of(&console, Some(&query), None).await {
        Ok(graph) => graph,
        Err(error) => {
            let code = error.code;
            graph_page.shell.error = Some(format!(
                "The graph cannot be drawn: {}{}",
                error.error,
                error
                    .detail
                    .as_deref()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ));
            return page(Some(code), graph_page);
        }
    };
    let graph_time = started.elapsed();
    let json = serde_json::to_value(&graph).unwrap_or_default();
    let marks = overlay_marks(&console, &view.trace_id, &json, &mut graph_page).await;
    let started = Instant::now();
    let drawing = draw::draw(&json, &options.labels, &marks, options.security);
    let draw_time = started.elapsed();
    let layout_time = drawing.layout_time;
    graph_page.empty = drawing.nodes.is_empty();
    graph_page.hops = panel::hops(&json, &marks);
    graph_page.panel =
        panel::panel(&console, &json, &options.focus, options.traces_limit, &view).await;
    graph_page.drawing = Some(drawing);
    let started = Instant::now();
    let mut response = page(None, graph_page);
    let timing = [
        ("graph", "the graph API's answer", graph_time),
        ("draw", "the drawing with its layout", draw_time),
        ("layout", "the layout", layout_time),
        ("render", "the HTML", started.elapsed()),
    ];
    if let Ok(value) = HeaderValue::from_str(&server_timing(&timing)) {
        response.headers_mut().insert("server-timing", value);
    }
    response
}

/// A `Server-Timing` header value (W3C): where the page's time went, for the browser's
/// developer tools and the graph benchmark.
fn server_timing(parts: &[(&str, &str, Duration)]) -> String {
    parts
        .iter()
        .map(|(name, description, time)| {
            format!(
                "{name};desc=\"{description}\";dur={:.3}",
                time.as_secs_f64() * 1e3
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The ids the trace of `trace_id` passed through; a trace that cannot be had leaves the
/// graph as it is and says why.
async fn overlay_marks(
    console: &Console,
    trace_id: &str,
    graph: &serde_json::Value,
    graph_page: &mut GraphPage,
) -> BTreeSet<String> {
    if trace_id.is_empty() {
        return BTreeSet::new();
    }
    let problem = match parse_trace_id(trace_id) {
        Err(error) => error.error,
        Ok(id) => match console.trace(id).await {
            Ok(Some(trace)) => return overlay::marks(graph, &trace),
            Ok(None) => format!("Trace {trace_id} was not found: the graph is shown without it."),
            Err(error) => format!("Trace {trace_id} could not be read: {}", error.error),
        },
    };
    graph_page.overlay_problem = Some(problem);
    BTreeSet::new()
}

/// The `data` of the graph JSON's `nodes` or `edges`.
fn elements<'a>(
    graph: &'a serde_json::Value,
    key: &str,
) -> impl Iterator<Item = &'a serde_json::Value> {
    graph
        .get("elements")
        .and_then(|e| e.get(key))
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("data"))
}

/// A text field of an element's data, `""` when absent.
fn text<'a>(data: &'a serde_json::Value, key: &str) -> &'a str {
    data.get(key)
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
}

/// A node's name as the graph shows it: its service, app, workload or aggregate.
fn node_name(data: &serde_json::Value) -> &str {
    match text(data, "nodeType") {
        "service" => text(data, "service"),
        "app" => text(data, "app"),
        "workload" => text(data, "workload"),
        "aggregate" => text(data, "aggregate"),
        _ => "unknown",
    }
}
