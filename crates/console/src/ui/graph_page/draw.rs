//! Kiali's graph JSON (the body of `/api/namespaces/graph`) made into what the page's SVG
//! template draws: shapes, labels, boxes, edges with their labels and colours, and the
//! `in-trace` marks of a trace overlay. Reading the JSON rather than the graph builder's
//! types keeps the page on the same contract as Kiali's own UI.
//!
//! Colours follow Kiali's default health thresholds (`health_config.rate`): HTTP 5xx and
//! gRPC errors are degraded above 0 % and failing above 10 %; HTTP 4xx degraded above 10 %,
//! failing above 20 %.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::layout::{self, BoxArea, Item};
use super::{elements, node_name, text};

/// What the edges say, as Kiali's "Edge labels" menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeLabel {
    RequestRate,
    RequestPercent,
    ResponseTime,
    Throughput,
}

impl EdgeLabel {
    pub fn parse(text: &str) -> Option<EdgeLabel> {
        Some(match text {
            "trafficRate" => EdgeLabel::RequestRate,
            "trafficDistribution" => EdgeLabel::RequestPercent,
            "responseTime" => EdgeLabel::ResponseTime,
            "throughput" => EdgeLabel::Throughput,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Degraded,
    Failure,
    Idle,
}

impl Health {
    pub fn class(self) -> &'static str {
        match self {
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Failure => "failure",
            Health::Idle => "idle",
        }
    }
}

pub struct DrawnNode {
    pub id: String,
    pub x: f64,
    pub y: f64,
    /// `workload`, `app`, `service`, `unknown`, `aggregate`.
    pub kind: String,
    pub label: String,
    pub sublabel: String,
    pub health: Health,
    pub root: bool,
    pub gateway: bool,
    pub outside: bool,
    pub in_trace: bool,
}

pub struct DrawnEdge {
    pub id: String,
    /// The SVG path.
    pub path: String,
    pub label: String,
    pub label_x: f64,
    pub label_y: f64,
    pub health: Health,
    pub protocol: String,
    pub in_trace: bool,
    /// The share of the edge's traffic over mutual TLS (`isMTLS`, %), when the Security
    /// display option is on and it is above 0: the edge gets a lock badge.
    pub mtls: Option<String>,
}

pub struct DrawnBox {
    pub area: BoxArea,
    pub label: String,
    pub kind: &'static str,
}

pub struct Drawing {
    pub width: f64,
    pub height: f64,
    pub nodes: Vec<DrawnNode>,
    pub edges: Vec<DrawnEdge>,
    pub boxes: Vec<DrawnBox>,
    /// How long the layout took, for the page's `Server-Timing` header.
    pub layout_time: std::time::Duration,
}

fn flag(data: &Value, key: &str) -> bool {
    data.get(key)
        .is_some_and(|v| !v.is_null() && v != &Value::Bool(false))
}

/// A rate of the JSON (Kiali writes them as strings).
fn rate(rates: &Value, key: &str) -> f64 {
    rates
        .get(key)
        .and_then(|v| {
            v.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| v.as_f64())
        })
        .filter(|v: &f64| v.is_finite())
        .unwrap_or(0.0)
}

/// Kiali's default thresholds over an edge's (or node's inbound) responses.
pub fn health(protocol: &str, total: f64, responses: &Value, rates: &Value) -> Health {
    if total <= 0.0 {
        return Health::Idle;
    }
    let share = |matches: &dyn Fn(&str) -> bool| -> f64 {
        let Some(codes) = responses.as_object() else {
            return 0.0;
        };
        codes
            .iter()
            .filter(|(code, _)| matches(code))
            .map(|(_, detail)| {
                detail
                    .get("flags")
                    .and_then(Value::as_object)
                    .map_or(0.0, |flags| {
                        flags
                            .values()
                            .filter_map(|p| p.as_str().and_then(|s| s.parse::<f64>().ok()))
                            .sum()
                    })
            })
            .sum()
    };
    let grade = |percent: f64, degraded: f64, failure: f64| {
        if percent > failure {
            Health::Failure
        } else if percent > degraded {
            Health::Degraded
        } else {
            Health::Healthy
        }
    };
    if protocol == "grpc" {
        let errors = rate(rates, "grpcPercentErr");
        return grade(errors, 0.0, 10.0);
    }
    let five = share(&|code| code.starts_with('5') && code.len() == 3);
    let four = share(&|code| code.starts_with('4') && code.len() == 3);
    worse(grade(five, 0.0, 10.0), grade(four, 10.0, 20.0))
}

fn worse(a: Health, b: Health) -> Health {
    let rank = |h: Health| match h {
        Health::Failure => 3,
        Health::Degraded => 2,
        Health::Healthy => 1,
        Health::Idle => 0,
    };
    if rank(a) >= rank(b) { a } else { b }
}

/// A node's health from its inbound rates (`httpIn`, `httpIn4xx`, `httpIn5xx`, `grpcIn`,
/// `grpcInErr`), with the same thresholds as the edges.
fn inbound_health(data: &Value) -> Health {
    let traffic = data.get("traffic").and_then(Value::as_array);
    let mut worst = Health::Idle;
    for t in traffic.into_iter().flatten() {
        let rates = t.get("rates").unwrap_or(&Value::Null);
        let (total, five, four) = match text(t, "protocol") {
            "grpc" => (rate(rates, "grpcIn"), rate(rates, "grpcInErr"), 0.0),
            _ => (
                rate(rates, "httpIn"),
                rate(rates, "httpIn5xx"),
                rate(rates, "httpIn4xx"),
            ),
        };
        if total <= 0.0 {
            continue;
        }
        let percent = |n: f64| n / total * 100.0;
        let grade = if percent(five) > 10.0 || percent(four) > 20.0 {
            Health::Failure
        } else if five > 0.0 || percent(four) > 10.0 {
            Health::Degraded
        } else {
            Health::Healthy
        };
        worst = worse(worst, grade);
    }
    worst
}

fn edge_label(choice: &[EdgeLabel], protocol: &str, data: &Value) -> String {
    let traffic = data.get("traffic").unwrap_or(&Value::Null);
    let rates = traffic.get("rates").unwrap_or(&Value::Null);
    let mut parts = Vec::new();
    for label in choice {
        match label {
            EdgeLabel::RequestRate => match protocol {
                "tcp" => parts.push(format!("{:.0}bps", rate(rates, "tcp"))),
                "grpc" => parts.push(format!("{:.2}rps", rate(rates, "grpc"))),
                _ => {
                    let total = rate(rates, "http");
                    let errors = rate(rates, "httpPercentErr");
                    parts.push(if errors > 0.0 {
                        format!("{total:.2}rps {errors:.1}%")
                    } else {
                        format!("{total:.2}rps")
                    });
                }
            },
            EdgeLabel::RequestPercent => {
                let key = if protocol == "grpc" {
                    "grpcPercentReq"
                } else {
                    "httpPercentReq"
                };
                parts.push(format!("{:.1}%", rate(rates, key)));
            }
            EdgeLabel::ResponseTime => {
                let ms = rate(data, "responseTime");
                if ms > 0.0 {
                    parts.push(if ms >= 1000.0 {
                        format!("{:.2}s", ms / 1000.0)
                    } else {
                        format!("{ms:.0}ms")
                    });
                }
            }
            EdgeLabel::Throughput => {
                let bytes = rate(data, "throughput");
                if bytes > 0.0 {
                    parts.push(if bytes >= 1024.0 {
                        format!("{:.2}kbps", bytes / 1024.0)
                    } else {
                        format!("{bytes:.0}bps")
                    });
                }
            }
        }
    }
    parts.join(" · ")
}

fn node_labels(data: &Value) -> (String, String) {
    let kind = text(data, "nodeType");
    let name = node_name(data);
    let version = text(data, "version");
    let sub = if kind == "app" && !version.is_empty() {
        version.to_string()
    } else {
        text(data, "namespace").to_string()
    };
    (name.to_string(), sub)
}

/// The boxes a node sits in: its cluster (when the graph has cluster boxes: two clusters or
/// more), its namespace (when more than one namespace shows, or when asked with
/// `boxBy=namespace`) and, for app boxes (`parent` pointing to a box node), its app.
fn boxes_of(
    data: &Value,
    by_cluster: bool,
    by_namespace: bool,
    app_boxes: &HashMap<&str, String>,
) -> Vec<String> {
    let mut path = Vec::new();
    if by_cluster {
        path.push(text(data, "cluster").to_string());
    }
    if by_namespace {
        path.push(text(data, "namespace").to_string());
    }
    if let Some(app) = app_boxes.get(text(data, "parent")) {
        path.push(app.clone());
    }
    path
}

/// An edge's `isMTLS` when it is above 0.
fn mtls_share(edge: &Value) -> Option<String> {
    let share = rate(edge, "isMTLS");
    (share > 0.0).then(|| text(edge, "isMTLS").to_string())
}

/// Draws `graph` (Kiali's JSON). `trace` holds the ids of the nodes and edges a trace passed
/// through; `security`: lock badges on the edges with mutual TLS traffic.
pub fn draw(
    graph: &Value,
    labels: &[EdgeLabel],
    trace: &BTreeSet<String>,
    security: bool,
) -> Drawing {
    let all_nodes: Vec<&Value> = elements(graph, "nodes").collect();
    let cluster_boxes = all_nodes.iter().any(|d| text(d, "isBox") == "cluster");
    let namespace_boxes = all_nodes.iter().any(|d| text(d, "isBox") == "namespace")
        || all_nodes
            .iter()
            .filter(|d| !flag(d, "isBox"))
            .map(|d| text(d, "namespace"))
            .collect::<BTreeSet<_>>()
            .len()
            > 1;
    let app_boxes: HashMap<&str, String> = all_nodes
        .iter()
        .filter(|d| text(d, "isBox") == "app")
        .map(|d| (text(d, "id"), text(d, "app").to_string()))
        .collect();
    let nodes: Vec<&Value> = all_nodes
        .into_iter()
        .filter(|d| !flag(d, "isBox"))
        .collect();
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(i, d)| (text(d, "id"), i))
        .collect();
    let edges: Vec<&Value> = elements(graph, "edges").collect();
    let pairs: Vec<(usize, usize)> = edges
        .iter()
        .filter_map(|e| {
            Some((
                *index.get(text(e, "source"))?,
                *index.get(text(e, "target"))?,
            ))
        })
        .collect();
    let items: Vec<Item> = nodes
        .iter()
        .map(|d| Item {
            boxes: boxes_of(d, cluster_boxes, namespace_boxes, &app_boxes),
        })
        .collect();
    let layout_started = std::time::Instant::now();
    let placed = layout::layout(&items, &pairs);
    let layout_time = layout_started.elapsed();
    let drawn_nodes: Vec<DrawnNode> = nodes
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (x, y) = placed.points.get(i).copied().unwrap_or_default();
            let (label, sublabel) = node_labels(d);
            let id = text(d, "id").to_string();
            DrawnNode {
                in_trace: trace.contains(&id),
                id,
                x,
                y,
                kind: text(d, "nodeType").to_string(),
                label,
                sublabel,
                health: inbound_health(d),
                root: flag(d, "isRoot"),
                gateway: flag(d, "isGateway"),
                outside: flag(d, "isOutside") || flag(d, "isInaccessible"),
            }
        })
        .collect();
    let drawn_edges = edges
        .iter()
        .filter_map(|e| {
            let from = placed.points.get(*index.get(text(e, "source"))?).copied()?;
            let to = placed.points.get(*index.get(text(e, "target"))?).copied()?;
            let traffic = e.get("traffic").unwrap_or(&Value::Null);
            let protocol = text(traffic, "protocol").to_string();
            let rates = traffic.get("rates").unwrap_or(&Value::Null);
            let total = match protocol.as_str() {
                "grpc" => rate(rates, "grpc"),
                "tcp" => rate(rates, "tcp"),
                _ => rate(rates, "http"),
            };
            let responses = traffic.get("responses").unwrap_or(&Value::Null);
            let (path, label_x, label_y) = route(from, to);
            let id = text(e, "id").to_string();
            Some(DrawnEdge {
                in_trace: trace.contains(&id),
                id,
                path,
                label: edge_label(labels, &protocol, e),
                label_x,
                label_y,
                health: health(&protocol, total, responses, rates),
                protocol,
                mtls: if security { mtls_share(e) } else { None },
            })
        })
        .collect();
    // The levels of a box path, outermost first; app boxes are innermost.
    let levels: Vec<&'static str> = [
        cluster_boxes.then_some("cluster"),
        namespace_boxes.then_some("namespace"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let boxes = placed
        .boxes
        .into_iter()
        .map(|area| DrawnBox {
            kind: area
                .path
                .len()
                .checked_sub(1)
                .and_then(|level| levels.get(level).copied())
                .unwrap_or("app"),
            label: area.path.last().cloned().unwrap_or_default(),
            area,
        })
        .collect();
    Drawing {
        width: placed.width,
        height: placed.height,
        nodes: drawn_nodes,
        edges: drawn_edges,
        boxes,
        layout_time,
    }
}

/// Node radius, so that edges start and end at the shapes' rims.
const RIM: f64 = 22.0;

/// The path of an edge and where its label goes: a gentle curve from the source's right to the
/// target's left, or, for an edge that goes back (a cycle) or stays in its column, an arc
/// below both.
fn route(from: (f64, f64), to: (f64, f64)) -> (String, f64, f64) {
    if to.0 > from.0 + RIM {
        let (x1, y1, x2, y2) = (from.0 + RIM, from.1, to.0 - RIM, to.1);
        let mid = (x1 + x2) / 2.0;
        (
            format!("M{x1:.1},{y1:.1} C{mid:.1},{y1:.1} {mid:.1},{y2:.1} {x2:.1},{y2:.1}"),
            mid,
            (y1 + y2) / 2.0,
        )
    } else {
        let (x1, y1, x2, y2) = (from.0, from.1 + RIM, to.0, to.1 + RIM);
        let low = y1.max(y2) + layout::ROW * 0.6;
        (
            format!("M{x1:.1},{y1:.1} C{x1:.1},{low:.1} {x2:.1},{low:.1} {x2:.1},{y2:.1}"),
            (x1 + x2) / 2.0,
            low,
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kialis_default_thresholds_colour_the_edges() {
        let edge = |code: &str, pct: &str| json!({ code: { "flags": { "-": pct } }, "200": { "flags": { "-": "50.0" } } });
        let rates = json!({});
        assert_eq!(
            health("http", 1.0, &edge("500", "0.5"), &rates),
            Health::Degraded
        );
        assert_eq!(
            health("http", 1.0, &edge("503", "10.5"), &rates),
            Health::Failure
        );
        assert_eq!(
            health("http", 1.0, &edge("404", "9.0"), &rates),
            Health::Healthy
        );
        assert_eq!(
            health("http", 1.0, &edge("404", "15.0"), &rates),
            Health::Degraded
        );
        assert_eq!(
            health("http", 1.0, &edge("404", "25.0"), &rates),
            Health::Failure
        );
        assert_eq!(
            health("http", 0.0, &edge("500", "99"), &rates),
            Health::Idle
        );
        let grpc = json!({ "grpcPercentErr": "12.0" });
        assert_eq!(health("grpc", 1.0, &json!({}), &grpc), Health::Failure);
    }
}
