//! The traffic map: nodes keyed by Kiali's node IDs (`graph.Id`) with their edges, filled from
//! the series of the graph queries as Kiali's `populateTrafficMap` fills it — series with
//! missing or bad labels skipped, the destination's fix-ups, response codes made readable,
//! service nodes injected, each request counted once though both proxies report it.
//!
//! Pure: series in, nodes and edges out. Bounded: at most [`MAX_NODES`] nodes and
//! [`MAX_EDGES`] edges; past them the map refuses with [`TooLarge`].

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::BuildHasher;

/// The maps a graph is built in, keyed by node IDs and series hashes: foldhash, seeded per
/// map (SipHash's resistance is not needed for keys of a bounded map, and it was a tenth of
/// the build).
pub type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

use meshtrace_backend::prometheus::Labels;

use super::ends::{
    BLACKHOLE, Ends, Labeled, NodeType, PASSTHROUGH, Read, UNKNOWN, ends_key, is_http_error, is_ok,
    node_id, read_ends,
};
use super::options::{GraphOptions, GraphType, Rate};
use super::queries::REQUESTS;
use super::rates;

/// Nodes one graph may hold.
pub const MAX_NODES: usize = 5_000;
/// Edges one graph may hold.
pub const MAX_EDGES: usize = 20_000;

/// The graph outgrew its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

/// Response code, flags and host → the requests per second seen with them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Responses(pub BTreeMap<String, (ByKey, ByKey)>);

/// Requests per second by response flags, or by host.
pub type ByKey = BTreeMap<String, f64>;

#[derive(Debug, Clone)]
pub struct Edge {
    pub dest: String,
    pub protocol: &'static str,
    pub rates: BTreeMap<&'static str, f64>,
    pub responses: Responses,
    pub response_time: Option<f64>,
    pub throughput: Option<f64>,
    /// The share of the traffic over mutual TLS, in % (the `securityPolicy` appender).
    pub is_mtls: Option<f64>,
    pub source_principal: Option<String>,
    pub dest_principal: Option<String>,
    /// The series already counted on this edge (the other proxy's report of the same
    /// requests is ignored).
    seen: FastSet<u64>,
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
            is_mtls: None,
            source_principal: None,
            dest_principal: None,
            seen: FastSet::default(),
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
    /// dest ID → (protocol, index in `edges`) of the edges to it: looked up by the borrowed
    /// ID, without building a key per lookup.
    edge_index: FastMap<String, Vec<(&'static str, usize)>>,
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
            edge_index: FastMap::default(),
        }
    }

    /// The node without its edges (a copy to hold the merged edges of two maps).
    pub(super) fn without_edges(&self) -> Node {
        Node {
            edges: Vec::new(),
            edge_index: FastMap::default(),
            ..self.clone()
        }
    }
}

/// One series' traffic, as it is added to an edge and its nodes.
struct Traffic<'a> {
    metric: &'a str,
    inject: bool,
    value: f64,
    protocol: &'static str,
    code: &'a str,
    flags: &'a str,
    host: &'a str,
}

#[derive(Debug, Clone)]
pub struct TrafficMap {
    pub nodes: FastMap<String, Node>,
    edges: usize,
    hasher: RandomState,
}

impl Default for TrafficMap {
    fn default() -> Self {
        TrafficMap {
            nodes: FastMap::default(),
            edges: 0,
            hasher: RandomState::new(),
        }
    }
}

impl TrafficMap {
    /// An empty map (hashing as this one does).
    pub(super) fn empty_like(&self) -> TrafficMap {
        TrafficMap {
            nodes: FastMap::default(),
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
        let id = node_id(e, graph_type);
        self.add_node_of(e, id, graph_type)
    }

    /// [`TrafficMap::add_node`] with the node's key already found.
    fn add_node_of(
        &mut self,
        e: &Ends<'_>,
        id: Option<(String, NodeType)>,
        graph_type: GraphType,
    ) -> Result<Option<String>, TooLarge> {
        let Some((id, node_type)) = id else {
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
        let index = match node.edge_at(dest, protocol) {
            Some(i) => i,
            None => {
                if edges >= MAX_EDGES {
                    return Err(TooLarge);
                }
                self.edges = edges.saturating_add(1);
                let i = node.edges.len();
                node.push_edge(Edge::new(dest.to_string(), protocol));
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
            // The destination's key, found once: it decides injection and names the node.
            let dest_id = node_id(&dest, o.graph_type);
            let inject = o.inject_service_nodes
                && is_ok(dest.service)
                && dest.service != PASSTHROUGH
                && match &dest_id {
                    Some((_, t)) => *t != NodeType::Service,
                    None => continue,
                };
            let t = Traffic {
                metric,
                inject,
                value: *value,
                protocol,
                code,
                flags,
                host,
            };
            self.add_traffic(&t, &source, &dest, dest_id, o.graph_type)?;
        }
        Ok(())
    }

    /// Kiali's `addTraffic`.
    fn add_traffic(
        &mut self,
        t: &Traffic<'_>,
        source: &Ends<'_>,
        dest: &Ends<'_>,
        dest_id: Option<(String, NodeType)>,
        graph_type: GraphType,
    ) -> Result<(), TooLarge> {
        let Some(source_id) = self.add_node(source, graph_type)? else {
            return Ok(());
        };
        let Some(dest_id) = self.add_node_of(dest, dest_id, graph_type)? else {
            return Ok(());
        };
        let hash = self.hasher.hash_one((
            t.metric,
            ends_key(source),
            ends_key(dest),
            t.code,
            t.flags,
            t.host,
        ));
        let service = (dest.cluster, dest.service_ns, dest.service);
        if t.inject {
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
            if self.add_edge_traffic(&source_id, &service_id, t, hash)? {
                self.add_dest_service(&service_id, &service);
                self.add_edge_traffic(&service_id, &dest_id, t, hash)?;
                self.add_dest_service(&dest_id, &service);
            }
        } else if self.add_edge_traffic(&source_id, &dest_id, t, hash)? {
            self.add_dest_service(&dest_id, &service);
        }
        Ok(())
    }

    fn add_dest_service(&mut self, id: &str, service: &(&str, &str, &str)) {
        let (cluster, namespace, name) = *service;
        if !is_ok(name) {
            return;
        }
        if let Some(n) = self.nodes.get_mut(id) {
            // A node is asked for by a few services: the owned key is built only for a new one.
            let known = |(c, ns, s): &(String, String, String)| {
                c == cluster && ns == namespace && s == name
            };
            if n.dest_services.len() <= 8 && n.dest_services.iter().any(known) {
                return;
            }
            n.dest_services
                .insert((cluster.to_string(), namespace.to_string(), name.to_string()));
        }
    }

    /// Kiali's `addEdgeTraffic`: false when this series was already counted on the edge.
    fn add_edge_traffic(
        &mut self,
        source: &str,
        dest: &str,
        t: &Traffic<'_>,
        hash: u64,
    ) -> Result<bool, TooLarge> {
        let Some((node, index)) = self.edge(source, dest, t.protocol)? else {
            return Ok(false);
        };
        let Some(edge) = node.edges.get_mut(index) else {
            return Ok(false);
        };
        if !edge.seen.insert(hash) {
            return Ok(false);
        }
        if t.value > 0.0 {
            rates::add_edge(edge, t.protocol, t.value, t.code, t.flags, t.host);
            rates::add_out(&mut node.rates, t.protocol, t.value);
            if let Some(d) = self.nodes.get_mut(dest) {
                rates::add_in(&mut d.rates, t.protocol, t.value, t.code);
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
                if merged.edge_at(&edge.dest, edge.protocol).is_none() {
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
    /// Adds an edge; an edge to the same node over the same protocol is replaced in the
    /// index by the new one.
    pub(super) fn push_edge(&mut self, edge: Edge) {
        let at = self.edges.len();
        let to = match self.edge_index.get_mut(edge.dest.as_str()) {
            Some(to) => to,
            None => self.edge_index.entry(edge.dest.clone()).or_default(),
        };
        match to.iter_mut().find(|(p, _)| *p == edge.protocol) {
            Some(slot) => slot.1 = at,
            None => to.push((edge.protocol, at)),
        }
        self.edges.push(edge);
    }

    /// The index of the edge to `dest` over `protocol`.
    fn edge_at(&self, dest: &str, protocol: &str) -> Option<usize> {
        let to = self.edge_index.get(dest)?;
        to.iter().find(|(p, _)| *p == protocol).map(|(_, i)| *i)
    }

    pub(super) fn edge_to(&mut self, dest: &str, protocol: &'static str) -> Option<&mut Edge> {
        let i = self.edge_at(dest, protocol)?;
        self.edges.get_mut(i)
    }
}
