//! The traffic map as Kiali's Cytoscape JSON (`graph/config/common`): node and edge data with
//! Kiali's field names and order, empty fields left out, IDs the SHA-256 of Kiali's node keys,
//! rates as strings (`rateToString`), percentages with one decimal, box nodes per `boxBy`, and
//! Kiali's sort order.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::ends::UNKNOWN;
use super::options::{BoxBy, GraphType};
use super::rates::{Kind, PROTOCOLS, rate_string};
use super::traffic::{Edge, Node, TrafficMap};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Config {
    pub timestamp: i64,
    pub duration: u64,
    pub graph_type: &'static str,
    pub elements: Elements,
}

#[derive(Debug, Serialize)]
pub struct Elements {
    pub nodes: Vec<Wrapper<NodeData>>,
    pub edges: Vec<Wrapper<EdgeData>>,
}

#[derive(Debug, Serialize)]
pub struct Wrapper<T> {
    pub data: T,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ServiceName {
    pub cluster: String,
    pub namespace: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ResponseDetail {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub flags: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub hosts: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProtocolTraffic {
    #[serde(skip_serializing_if = "str::is_empty")]
    pub protocol: &'static str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rates: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub responses: BTreeMap<String, ResponseDetail>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeData {
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub parent: String,
    pub node_type: &'static str,
    pub cluster: String,
    pub namespace: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub workload: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub app: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub service: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dest_services: Vec<ServiceName>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub traffic: Vec<ProtocolTraffic>,
    /// Kiali's health appender fills it; always `null` here.
    pub health_data: Option<()>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub is_box: &'static str,
    #[serde(skip_serializing_if = "is_false")]
    pub is_inaccessible: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub is_injected: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub is_outside: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub is_root: bool,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EdgeData {
    pub id: String,
    pub source: String,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_principal: Option<String>,
    /// Kiali's `IsMTLS`, a string despite the capital letters.
    #[serde(rename = "isMTLS", skip_serializing_if = "Option::is_none")]
    pub is_mtls: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_principal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput: Option<String>,
    pub traffic: ProtocolTraffic,
}

/// Lowercase hex SHA-256.
pub fn hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

fn node_traffic(node: &Node) -> Vec<ProtocolTraffic> {
    let mut out = Vec::new();
    for p in &PROTOCOLS {
        let rates: BTreeMap<&'static str, String> = p
            .node
            .iter()
            .filter_map(|k| {
                let v = node.rates.get(k).copied().unwrap_or(0.0);
                (v > 0.0).then(|| (*k, rate_string(2, v)))
            })
            .collect();
        if !rates.is_empty() {
            out.push(ProtocolTraffic {
                protocol: p.name,
                rates,
                responses: BTreeMap::new(),
            });
        }
    }
    out
}

fn percent(value: f64, total: f64) -> String {
    format!("{:.1}", value / total * 100.0)
}

/// Kiali's `addEdgeTelemetry`.
fn edge_traffic(edge: &Edge, source: &Node) -> ProtocolTraffic {
    let mut traffic = ProtocolTraffic {
        protocol: edge.protocol,
        ..ProtocolTraffic::default()
    };
    for p in &PROTOCOLS {
        let mut rates = BTreeMap::new();
        let (mut total, mut errors) = (0.0, 0.0);
        for (key, kind) in p.edge {
            let v = edge.rates.get(key).copied().unwrap_or(0.0);
            match kind {
                Kind::Total => total = v,
                Kind::Error => errors += v,
                Kind::Plain => {}
            }
            if v > 0.0 {
                rates.insert(*key, rate_string(2, v));
            }
        }
        if rates.is_empty() {
            continue;
        }
        if total > 0.0 {
            if let Some(key) = p.percent_err
                && errors > 0.0
            {
                rates.insert(key, percent(errors, total));
            }
            let out = source.rates.get(p.node_out).copied().unwrap_or(0.0);
            if let Some(key) = p.percent_req
                && out > 0.0
            {
                rates.insert(key, percent(total, out));
            }
            let responses = edge
                .responses
                .0
                .iter()
                .map(|(code, (flags, hosts))| {
                    let shown = |m: &BTreeMap<String, f64>| {
                        m.iter()
                            .map(|(k, v)| (k.clone(), percent(*v, total)))
                            .collect()
                    };
                    (
                        code.clone(),
                        ResponseDetail {
                            flags: shown(flags),
                            hosts: shown(hosts),
                        },
                    )
                })
                .collect();
            traffic = ProtocolTraffic {
                protocol: p.name,
                rates,
                responses,
            };
        }
        break;
    }
    traffic
}

fn box_rank(is_box: &str) -> u8 {
    match is_box {
        "cluster" => 0,
        "namespace" => 1,
        "app" => 2,
        _ => 3,
    }
}

/// Box nodes of `kind` around the groups of two or more nodes `key` puts together (with
/// `needs_groups`, only when there are at least two groups).
fn add_boxes(
    nodes: &mut Vec<NodeData>,
    kind: &'static str,
    needs_groups: bool,
    key: impl Fn(&NodeData) -> Option<String>,
) {
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, n) in nodes.iter().enumerate() {
        if let Some(k) = key(n) {
            groups.entry(k).or_default().push(i);
        }
    }
    if needs_groups && groups.len() < 2 {
        return;
    }
    for (k, members) in groups {
        if members.len() < 2 {
            continue;
        }
        let id = hash(&k);
        let Some(first) = members.first().and_then(|i| nodes.get(*i)) else {
            continue;
        };
        let mut b = NodeData {
            id: id.clone(),
            node_type: "box",
            cluster: first.cluster.clone(),
            is_box: kind,
            ..NodeData::default()
        };
        if kind != "cluster" {
            b.namespace = first.namespace.clone();
        }
        if kind == "app" {
            b.app = first.app.clone();
        }
        for i in &members {
            if let Some(n) = nodes.get_mut(*i) {
                n.parent = id.clone();
                if kind == "app" {
                    b.is_inaccessible |= n.is_inaccessible;
                    b.is_outside |= n.is_outside;
                }
            }
        }
        nodes.push(b);
    }
}

/// The JSON of `map`.
pub fn config(
    map: &TrafficMap,
    graph_type: GraphType,
    box_by: BoxBy,
    query_time: i64,
    duration_secs: u64,
) -> Config {
    let ids: HashMap<&str, String> = map.nodes.keys().map(|id| (id.as_str(), hash(id))).collect();
    let id_of = |key: &str| ids.get(key).cloned().unwrap_or_else(|| hash(key));
    let mut nodes = Vec::with_capacity(map.nodes.len());
    let mut edges = Vec::with_capacity(map.len_edges());
    for n in map.nodes.values() {
        let source_id = id_of(&n.id);
        nodes.push(NodeData {
            id: source_id.clone(),
            node_type: n.node_type.as_str(),
            cluster: n.cluster.clone(),
            namespace: n.namespace.clone(),
            workload: n.workload.clone(),
            app: n.app.clone(),
            version: n.version.clone(),
            service: n.service.clone(),
            dest_services: n
                .dest_services
                .iter()
                .map(|(c, ns, name)| ServiceName {
                    cluster: c.clone(),
                    namespace: ns.clone(),
                    name: name.clone(),
                })
                .collect(),
            traffic: node_traffic(n),
            is_inaccessible: n.is_inaccessible,
            is_injected: n.is_injected,
            is_outside: n.is_outside,
            is_root: n.is_root,
            ..NodeData::default()
        });
        for e in &n.edges {
            let target = id_of(&e.dest);
            edges.push(EdgeData {
                id: hash(&format!("{source_id}.{target}.{}", e.protocol)),
                source: source_id.clone(),
                target,
                // Kiali writes an empty principal as none (`omitempty`).
                dest_principal: e.dest_principal.clone().filter(|p| !p.is_empty()),
                is_mtls: e.is_mtls.map(|v| format!("{v:.0}")),
                response_time: e.response_time.map(|v| format!("{v:.0}")),
                source_principal: e.source_principal.clone().filter(|p| !p.is_empty()),
                throughput: e.throughput.map(|v| format!("{v:.0}")),
                traffic: edge_traffic(e, n),
            });
        }
    }
    if box_by.app || graph_type.is_app() {
        add_boxes(&mut nodes, "app", false, |n| {
            (n.app != UNKNOWN && !n.app.is_empty())
                .then(|| format!("box_{}_{}_{}", n.cluster, n.namespace, n.app))
        });
    }
    if box_by.namespace {
        add_boxes(&mut nodes, "namespace", true, |n| {
            (n.parent.is_empty() && n.namespace != UNKNOWN)
                .then(|| format!("box_{}_{}", n.cluster, n.namespace))
        });
    }
    if box_by.cluster {
        add_boxes(&mut nodes, "cluster", true, |n| {
            (n.parent.is_empty() && n.cluster != UNKNOWN).then(|| format!("box_{}", n.cluster))
        });
    }
    nodes.sort_by(|a, b| {
        (
            box_rank(a.is_box),
            &a.cluster,
            &a.namespace,
            &a.app,
            &a.version,
            &a.service,
            &a.workload,
        )
            .cmp(&(
                box_rank(b.is_box),
                &b.cluster,
                &b.namespace,
                &b.app,
                &b.version,
                &b.service,
                &b.workload,
            ))
    });
    edges.sort_by(|a, b| {
        (&a.source, &a.target, a.traffic.protocol).cmp(&(&b.source, &b.target, b.traffic.protocol))
    });
    Config {
        timestamp: query_time,
        duration: duration_secs,
        graph_type: graph_type.as_str(),
        elements: Elements {
            nodes: nodes.into_iter().map(|data| Wrapper { data }).collect(),
            edges: edges.into_iter().map(|data| Wrapper { data }).collect(),
        },
    }
}
