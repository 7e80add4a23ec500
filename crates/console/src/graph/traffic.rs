//! The traffic map: nodes keyed by Kiali's node IDs (`graph.Id`) with their edges, filled from
//! the series of the graph queries as Kiali's `populateTrafficMap` fills it — series with
//! missing or bad labels skipped, the destination's fix-ups, response codes made readable,
//! service nodes injected, each request counted once though both proxies report it.
//!
//! Pure: series in, nodes and edges out. Bounded: at most [`MAX_NODES`] nodes and
//! [`MAX_EDGES`] edges; past them the map refuses with [`TooLarge`].

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;

use meshtrace_backend::prometheus::Labels;

use super::options::{GraphOptions, GraphType, Rate};
use super::queries::REQUESTS;
use super::rates;

/// Nodes one graph may hold.
pub const MAX_NODES: usize = 5_000;
/// Edges one graph may hold.
pub const MAX_EDGES: usize = 20_000;

pub const UNKNOWN: &str = "unknown";
const PASSTHROUGH: &str = "PassthroughCluster";
const BLACKHOLE: &str = "BlackHoleCluster";
const EGRESS_HOST: &str = "istio-egressgateway.istio-system.svc.cluster.local";

/// The graph outgrew its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeType {
    App,
    Service,
    Unknown,
    Workload,
}

impl NodeType {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::App => "app",
            NodeType::Service => "service",
            NodeType::Unknown => "unknown",
            NodeType::Workload => "workload",
        }
    }
}

/// Kiali's "ok": set and not `unknown`.
pub fn is_ok(value: &str) -> bool {
    !value.is_empty() && value != UNKNOWN
}

fn is_ok_version(value: &str) -> bool {
    is_ok(value) && value != "latest"
}

/// Response code, flags and host → the requests per second seen with them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Responses(pub BTreeMap<String, (BTreeMap<String, f64>, BTreeMap<String, f64>)>);

#[derive(Debug, Clone)]
pub struct Edge {
    pub dest: String,
    pub protocol: &'static str,
    pub rates: BTreeMap<&'static str, f64>,
    pub responses: Responses,
    pub response_time: Option<f64>,
    pub throughput: Option<f64>,
    /// The series already counted on this edge (the other proxy's report of the same
    /// requests is ignored).
    seen: HashSet<u64>,
}

impl Edge {
    fn new(dest: String, protocol: &'static str) -> Edge {
        Edge {
            dest,
            protocol,
            rates: BTreeMap::new(),
            responses: Responses::default(),
            response_time: None,
            throughput: None,
            seen: HashSet::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub node_type: NodeType,
    pub cluster: String,
    pub namespace: String,
    pub workload: String,
    pub app: String,
    pub version: String,
    pub service: String,
    pub rates: BTreeMap<&'static str, f64>,
    /// (cluster, namespace, name) of the services requests to this node were for.
    pub dest_services: BTreeSet<(String, String, String)>,
    pub is_injected: bool,
    pub is_root: bool,
    pub is_outside: bool,
    pub is_inaccessible: bool,
    pub is_egress_cluster: bool,
    pub edges: Vec<Edge>,
    /// (dest ID, protocol) → index in `edges`.
    edge_index: HashMap<(String, &'static str), usize>,
}

/// The ends of a request as the labels name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ends<'a> {
    pub cluster: &'a str,
    pub service_ns: &'a str,
    pub service: &'a str,
    pub workload_ns: &'a str,
    pub workload: &'a str,
    pub app: &'a str,
    pub version: &'a str,
}

/// Kiali's `graph.Id`: the node's key and type, or `None` when nothing names it.
pub fn node_id(e: &Ends<'_>, graph_type: GraphType) -> Option<(String, NodeType)> {
    let Ends {
        cluster,
        service_ns,
        service,
        workload_ns,
        workload,
        app,
        version,
    } = *e;
    let ns = if is_ok(workload_ns) {
        workload_ns
    } else {
        service_ns
    };
    if ns == UNKNOWN && workload == UNKNOWN && app == UNKNOWN && service.is_empty() {
        return Some((format!("{cluster}_unknown_source"), NodeType::Unknown));
    }
    if workload == UNKNOWN && app == UNKNOWN && service == UNKNOWN {
        return Some((format!("svc_{cluster}_{ns}_unknown"), NodeType::Service));
    }
    let (workload_ok, app_ok, service_ok) = (is_ok(workload), is_ok(app), is_ok(service));
    if !workload_ok && !app_ok && !service_ok {
        return None;
    }
    let svc = || {
        let name = if service_ok { service } else { UNKNOWN };
        (format!("svc_{cluster}_{ns}_{name}"), NodeType::Service)
    };
    if !graph_type.is_app() {
        return Some(if workload_ok {
            (format!("wl_{cluster}_{ns}_{workload}"), NodeType::Workload)
        } else {
            svc()
        });
    }
    if app_ok {
        if graph_type == GraphType::VersionedApp {
            if workload_ok {
                return Some((format!("vapp_{cluster}_{ns}_{workload}"), NodeType::App));
            }
            if is_ok_version(version) {
                return Some((
                    format!("vapp_{cluster}_{ns}_{app}_{version}"),
                    NodeType::App,
                ));
            }
        }
        return Some((format!("app_{cluster}_{ns}_{app}"), NodeType::App));
    }
    if workload_ok {
        return Some((format!("wl_{cluster}_{ns}_{workload}"), NodeType::Workload));
    }
    Some((format!("svc_{cluster}_{ns}_{service}"), NodeType::Service))
}

impl Node {
    /// Kiali's `NewNodeExplicit`: the fields a node of its type keeps.
    fn new(id: String, node_type: NodeType, e: &Ends<'_>, graph_type: GraphType) -> Node {
        let namespace = if is_ok(e.workload_ns) {
            e.workload_ns
        } else {
            e.service_ns
        };
        let (mut workload, mut app, mut version, mut service) =
            (e.workload, e.app, e.version, e.service);
        let mut is_egress_cluster = false;
        match node_type {
            NodeType::App => {
                if graph_type != GraphType::VersionedApp {
                    workload = "";
                    version = "";
                }
                service = "";
            }
            NodeType::Service => {
                app = "";
                workload = "";
                version = "";
                is_egress_cluster = service == PASSTHROUGH || service == BLACKHOLE;
            }
            NodeType::Workload => {
                if app == UNKNOWN {
                    app = "";
                }
                if version == UNKNOWN {
                    version = "";
                }
                service = "";
            }
            NodeType::Unknown => {}
        }
        Node {
            id,
            node_type,
            cluster: e.cluster.to_string(),
            namespace: namespace.to_string(),
            workload: workload.to_string(),
            app: app.to_string(),
            version: version.to_string(),
            service: service.to_string(),
            rates: BTreeMap::new(),
            dest_services: BTreeSet::new(),
            is_injected: false,
            is_root: false,
            is_outside: false,
            is_inaccessible: false,
            is_egress_cluster,
            edges: Vec::new(),
            edge_index: HashMap::new(),
        }
    }

    /// The node without its edges (a copy to hold the merged edges of two maps).
    pub(super) fn without_edges(&self) -> Node {
        Node {
            edges: Vec::new(),
            edge_index: HashMap::new(),
            ..self.clone()
        }
    }
}

#[derive(Debug, Clone)]
pub struct TrafficMap {
    pub nodes: HashMap<String, Node>,
    edges: usize,
    hasher: RandomState,
}

impl Default for TrafficMap {
    fn default() -> Self {
        TrafficMap {
            nodes: HashMap::new(),
            edges: 0,
            hasher: RandomState::new(),
        }
    }
}

/// One series' labels, read as `populateTrafficMap` reads them.
struct Labeled<'a>(&'a Labels);

impl<'a> Labeled<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.0.get(name).map(String::as_str)
    }
}

/// An IPv4 address with an optional port: a destination service Kiali does not draw.
fn looks_like_ip(text: &str) -> bool {
    let (address, port) = match text.split_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = address.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| digits(p)) && port.is_none_or(digits)
}

fn is_http_error(code: &str) -> bool {
    code.starts_with('4') || code.starts_with('5')
}

/// A series' two ends, read as Kiali reads them: `None` when a label is missing or the
/// telemetry is bad (a source with neither workload nor app, a cluster label set to
/// `unknown`, a destination that is an IP address).
pub struct Read<'a> {
    pub source: Ends<'a>,
    pub dest: Ends<'a>,
    /// `destination_service`: the host asked for.
    pub host: &'a str,
}

pub fn read_ends(labels: &Labels) -> Option<Read<'_>> {
    let m = Labeled(labels);
    let source_ns = m.get("source_workload_namespace")?;
    let source_wl = m.get("source_workload")?;
    let source_app = m.get("source_canonical_service")?;
    let source_ver = m.get("source_canonical_revision")?;
    let dest_svc_ns = m.get("destination_service_namespace")?;
    let host = m.get("destination_service")?;
    let dest_svc_name = m.get("destination_service_name")?;
    let dest_wl_ns = m.get("destination_workload_namespace")?;
    let dest_wl = m.get("destination_workload")?;
    let dest_app = m.get("destination_canonical_service")?;
    let dest_ver = m.get("destination_canonical_revision")?;
    let source_cluster_label = m.get("source_cluster");
    let dest_cluster_label = m.get("destination_cluster");
    let source_cluster = source_cluster_label.unwrap_or(UNKNOWN);
    if is_ok(source_ns) && !is_ok(source_wl) && !is_ok(source_app) {
        return None;
    }
    if is_ok(source_ns) && source_cluster_label.is_some() && !is_ok(source_cluster) {
        return None;
    }
    let mut dest = Ends {
        cluster: dest_cluster_label.unwrap_or(UNKNOWN),
        service_ns: dest_svc_ns,
        service: dest_svc_name,
        workload_ns: dest_wl_ns,
        workload: dest_wl,
        app: dest_app,
        version: dest_ver,
    };
    if host == EGRESS_HOST && host == dest_svc_name {
        dest = Ends {
            cluster: source_cluster,
            service_ns: "istio-system",
            service: "istio-egressgateway",
            workload_ns: "istio-system",
            workload: "istio-egressgateway",
            app: "istio-egressgateway",
            version: "latest",
        };
    } else if !is_ok(dest.cluster) && is_ok(source_cluster) && is_ok(dest_svc_ns) {
        // istio#29373: a destination without its cluster is in the source's.
        dest.cluster = source_cluster;
    }
    if !is_ok(dest.workload)
        && is_ok(host)
        && is_ok(dest.service)
        && host == dest.service
        && looks_like_ip(dest.service)
    {
        return None;
    }
    if is_ok(dest.service_ns) && dest_cluster_label.is_some() && !is_ok(dest.cluster) {
        return None;
    }
    let source = Ends {
        cluster: source_cluster,
        service_ns: source_ns,
        service: "",
        workload_ns: source_ns,
        workload: source_wl,
        app: source_app,
        version: source_ver,
    };
    Some(Read { source, dest, host })
}

impl TrafficMap {
    /// An empty map (hashing as this one does).
    pub(super) fn empty_like(&self) -> TrafficMap {
        TrafficMap {
            nodes: HashMap::new(),
            edges: 0,
            hasher: self.hasher.clone(),
        }
    }

    /// Adds a node made elsewhere (its edges counted).
    pub(super) fn insert(&mut self, node: Node) {
        self.edges = self.edges.saturating_add(node.edges.len());
        self.nodes.insert(node.id.clone(), node);
    }

    pub fn len_nodes(&self) -> usize {
        self.nodes.len()
    }

    pub fn len_edges(&self) -> usize {
        self.edges
    }

    /// Kiali's `addNode`: the node with this key, made if new.
    fn add_node(
        &mut self,
        e: &Ends<'_>,
        graph_type: GraphType,
    ) -> Result<Option<String>, TooLarge> {
        let Some((id, node_type)) = node_id(e, graph_type) else {
            return Ok(None);
        };
        if !self.nodes.contains_key(&id) {
            if self.nodes.len() >= MAX_NODES {
                return Err(TooLarge);
            }
            self.nodes
                .insert(id.clone(), Node::new(id.clone(), node_type, e, graph_type));
        }
        Ok(Some(id))
    }

    /// The edge source → dest of `protocol`, made if new.
    fn edge(
        &mut self,
        source: &str,
        dest: &str,
        protocol: &'static str,
    ) -> Result<Option<(&mut Node, usize)>, TooLarge> {
        let edges = self.edges;
        let Some(node) = self.nodes.get_mut(source) else {
            return Ok(None);
        };
        let key = (dest.to_string(), protocol);
        let index = match node.edge_index.get(&key) {
            Some(i) => *i,
            None => {
                if edges >= MAX_EDGES {
                    return Err(TooLarge);
                }
                self.edges = edges.saturating_add(1);
                node.edges.push(Edge::new(dest.to_string(), protocol));
                let i = node.edges.len().saturating_sub(1);
                node.edge_index.insert(key, i);
                i
            }
        };
        Ok(Some((node, index)))
    }

    /// Adds the samples of one traffic query (Kiali's `populateTrafficMap`).
    pub fn populate(
        &mut self,
        samples: &[(Labels, f64)],
        metric: &'static str,
        o: &GraphOptions,
    ) -> Result<(), TooLarge> {
        let is_requests = metric == REQUESTS;
        let fixed_protocol = if metric.starts_with("istio_tcp") {
            "tcp"
        } else {
            "grpc"
        };
        for (labels, value) in samples {
            let m = Labeled(labels);
            let Some(read) = read_ends(labels) else {
                continue;
            };
            let flags = if is_requests || fixed_protocol == "tcp" {
                match m.get("response_flags") {
                    Some(f) => f,
                    None => continue,
                }
            } else {
                ""
            };
            let Read { source, dest, host } = read;
            let (protocol, code) = if is_requests {
                let (Some(protocol), Some(code)) =
                    (m.get("request_protocol"), m.get("response_code"))
                else {
                    continue;
                };
                let Some(protocol) = rates::protocol(protocol) else {
                    continue;
                };
                if (protocol == "grpc" && o.rates.grpc != Rate::Requests)
                    || (protocol == "http" && o.rates.http != Rate::Requests)
                {
                    continue;
                }
                let grpc_status = m.get("grpc_response_status");
                let code = if code == "0" {
                    "-"
                } else if protocol != "grpc" || is_http_error(code) || grpc_status.is_none() {
                    code
                } else {
                    grpc_status.unwrap_or(code)
                };
                (protocol, code)
            } else {
                (fixed_protocol, "")
            };
            // Waypoints are not told apart here (that needs the Kubernetes workloads), so no
            // end is a waypoint and injection depends on the service alone.
            let inject = o.inject_service_nodes
                && is_ok(dest.service)
                && dest.service != PASSTHROUGH
                && match node_id(&dest, o.graph_type) {
                    Some((_, t)) => t != NodeType::Service,
                    None => continue,
                };
            self.add_traffic(
                metric,
                inject,
                *value,
                protocol,
                code,
                flags,
                host,
                &source,
                &dest,
                o.graph_type,
            )?;
        }
        Ok(())
    }

    /// Kiali's `addTraffic`.
    #[allow(clippy::too_many_arguments)]
    fn add_traffic(
        &mut self,
        metric: &str,
        inject: bool,
        value: f64,
        protocol: &'static str,
        code: &str,
        flags: &str,
        host: &str,
        source: &Ends<'_>,
        dest: &Ends<'_>,
        graph_type: GraphType,
    ) -> Result<(), TooLarge> {
        let Some(source_id) = self.add_node(source, graph_type)? else {
            return Ok(());
        };
        let Some(dest_id) = self.add_node(dest, graph_type)? else {
            return Ok(());
        };
        let hash =
            self.hasher
                .hash_one((metric, ends_key(source), ends_key(dest), code, flags, host));
        let service = (
            dest.cluster.to_string(),
            dest.service_ns.to_string(),
            dest.service.to_string(),
        );
        if inject {
            let injected = Ends {
                cluster: dest.cluster,
                service_ns: dest.service_ns,
                service: dest.service,
                ..Ends::default()
            };
            let Some(service_id) = self.add_node(&injected, graph_type)? else {
                return Ok(());
            };
            if let Some(n) = self.nodes.get_mut(&service_id) {
                n.is_injected = true;
            }
            if self.add_edge_traffic(
                &source_id,
                &service_id,
                protocol,
                value,
                code,
                flags,
                host,
                hash,
            )? {
                self.add_dest_service(&service_id, &service);
                self.add_edge_traffic(
                    &service_id,
                    &dest_id,
                    protocol,
                    value,
                    code,
                    flags,
                    host,
                    hash,
                )?;
                self.add_dest_service(&dest_id, &service);
            }
        } else if self.add_edge_traffic(
            &source_id, &dest_id, protocol, value, code, flags, host, hash,
        )? {
            self.add_dest_service(&dest_id, &service);
        }
        Ok(())
    }

    fn add_dest_service(&mut self, id: &str, service: &(String, String, String)) {
        if !is_ok(&service.2) {
            return;
        }
        if let Some(n) = self.nodes.get_mut(id) {
            n.dest_services.insert(service.clone());
        }
    }

    /// Kiali's `addEdgeTraffic`: false when this series was already counted on the edge.
    #[allow(clippy::too_many_arguments)]
    fn add_edge_traffic(
        &mut self,
        source: &str,
        dest: &str,
        protocol: &'static str,
        value: f64,
        code: &str,
        flags: &str,
        host: &str,
        hash: u64,
    ) -> Result<bool, TooLarge> {
        let Some((node, index)) = self.edge(source, dest, protocol)? else {
            return Ok(false);
        };
        let Some(edge) = node.edges.get_mut(index) else {
            return Ok(false);
        };
        if !edge.seen.insert(hash) {
            return Ok(false);
        }
        if value > 0.0 {
            rates::add_edge(edge, protocol, value, code, flags, host);
            rates::add_out(&mut node.rates, protocol, value);
            if let Some(d) = self.nodes.get_mut(dest) {
                rates::add_in(&mut d.rates, protocol, value, code);
            }
        }
        Ok(true)
    }

    /// Every edge with its source's ID.
    pub fn edges_mut(&mut self) -> impl Iterator<Item = (&str, &mut Edge)> {
        self.nodes
            .values_mut()
            .flat_map(|n| n.edges.iter_mut().map(|e| (n.id.as_str(), e)))
    }

    /// Kiali's `MergeTrafficMaps`: `other` is the map of namespace `ns`. A node in both keeps
    /// the fields of the one in `ns` and the edges of both (an edge in both once).
    pub fn merge(&mut self, other: TrafficMap, ns: &str) -> Result<(), TooLarge> {
        for (id, incoming) in other.nodes {
            let Some(existing) = self.nodes.remove(&id) else {
                if self.nodes.len() >= MAX_NODES {
                    return Err(TooLarge);
                }
                self.edges = self.edges.saturating_add(incoming.edges.len());
                self.nodes.insert(id, incoming);
                continue;
            };
            self.edges = self.edges.saturating_sub(existing.edges.len());
            let (mut kept, added) = if incoming.namespace == ns {
                (incoming, existing)
            } else {
                (existing, incoming)
            };
            let mut merged = kept.without_edges();
            for edge in std::mem::take(&mut kept.edges) {
                merged.push_edge(edge);
            }
            for edge in added.edges {
                if !merged
                    .edge_index
                    .contains_key(&(edge.dest.clone(), edge.protocol))
                {
                    rates::add_outgoing_edge(&mut merged.rates, &edge);
                    merged.push_edge(edge);
                }
            }
            self.edges = self.edges.saturating_add(merged.edges.len());
            if self.edges > MAX_EDGES {
                return Err(TooLarge);
            }
            self.nodes.insert(id, merged);
        }
        Ok(())
    }
}

impl Node {
    pub(super) fn push_edge(&mut self, edge: Edge) {
        self.edge_index
            .insert((edge.dest.clone(), edge.protocol), self.edges.len());
        self.edges.push(edge);
    }

    pub(super) fn edge_to(&mut self, dest: &str, protocol: &'static str) -> Option<&mut Edge> {
        let i = *self.edge_index.get(&(dest.to_string(), protocol))?;
        self.edges.get_mut(i)
    }
}

/// Kiali's `timeSeriesHash` fields of a node as a request's labels name it.
fn ends_key<'a>(e: &Ends<'a>) -> [&'a str; 7] {
    [
        e.cluster,
        e.service_ns,
        e.service,
        e.workload_ns,
        e.workload,
        e.app,
        e.version,
    ]
}
