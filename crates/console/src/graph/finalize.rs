//! What runs over a built traffic map: the `responseTime` and `throughput` appenders (their
//! answers keyed by edge, applied where the edge exists), Kiali's `outsider` and
//! `trafficGenerator` finalizers, and the reduction of a workload graph with injected service
//! nodes to a service graph (`ReduceToServiceGraph`).

use std::collections::{BTreeSet, HashMap, HashSet};

use meshtrace_backend::prometheus::Labels;

use super::ends::{Ends, NodeType, PASSTHROUGH, Read, UNKNOWN, is_ok, node_id, read_ends};
use super::options::{GraphOptions, Rate};
use super::rates;
use super::traffic::{MAX_EDGES, TooLarge, TrafficMap};

/// Edge key → value, as the appenders gather them.
#[derive(Debug, Default)]
pub struct EdgeValues(HashMap<(String, String, &'static str), f64>);

/// The IDs of a series' edge as the appenders see it: with injection, the service node → the
/// destination (that edge carries the value), else source → destination.
fn edge_ids(read: &Read<'_>, o: &GraphOptions) -> Option<(String, String)> {
    let dest = &read.dest;
    let (dest_id, dest_type) = node_id(dest, o.graph_type)?;
    let inject = o.inject_service_nodes
        && is_ok(dest.service)
        && dest.service != PASSTHROUGH
        && dest_type != NodeType::Service;
    let source = if inject {
        Ends {
            cluster: dest.cluster,
            service_ns: dest.service_ns,
            service: dest.service,
            workload_ns: dest.service_ns,
            ..Ends::default()
        }
    } else {
        read.source.clone()
    };
    let (source_id, _) = node_id(&source, o.graph_type)?;
    Some((source_id, dest_id))
}

impl EdgeValues {
    /// The `responseTime` appender's answer: the first value of an edge wins.
    pub fn add_response_times(&mut self, samples: &[(Labels, f64)], o: &GraphOptions) {
        for (labels, value) in samples {
            if value.is_nan() {
                continue;
            }
            let Some(protocol) = labels
                .get("request_protocol")
                .and_then(|p| rates::protocol(p))
            else {
                continue;
            };
            if (protocol == "http" && o.rates.http != Rate::Requests)
                || (protocol == "grpc" && o.rates.grpc != Rate::Requests)
            {
                continue;
            }
            let Some(read) = read_ends(labels) else {
                continue;
            };
            if let Some((s, d)) = edge_ids(&read, o) {
                self.0.entry((s, d, protocol)).or_insert(*value);
            }
        }
    }

    /// The `throughput` appender's answer: the values of an HTTP edge add up.
    pub fn add_throughput(&mut self, samples: &[(Labels, f64)], o: &GraphOptions) {
        for (labels, value) in samples {
            if value.is_nan() {
                continue;
            }
            let Some(read) = read_ends(labels) else {
                continue;
            };
            if let Some((s, d)) = edge_ids(&read, o) {
                *self.0.entry((s, d, "http")).or_insert(0.0) += value;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Sets each edge's response time and throughput from the appenders' answers.
pub fn apply(map: &mut TrafficMap, response_times: &EdgeValues, throughputs: &EdgeValues) {
    if response_times.is_empty() && throughputs.is_empty() {
        return;
    }
    for (source, edge) in map.edges_mut() {
        let key = (source.to_string(), edge.dest.clone(), edge.protocol);
        if let Some(v) = response_times.0.get(&key) {
            edge.response_time = Some(*v);
        }
        if let Some(v) = throughputs.0.get(&key) {
            edge.throughput = Some(*v);
        }
    }
}

/// Kiali's `outsider` (nodes outside the requested namespaces, nodes the user cannot see:
/// here, namespaces the console does not know, when it knows any) and `trafficGenerator`
/// (nodes with outgoing traffic and none incoming are roots).
pub fn finalize(map: &mut TrafficMap, requested: &[String], known: Option<&BTreeSet<String>>) {
    let outside = |ns: &str| ns != UNKNOWN && !requested.iter().any(|r| r == ns);
    let dests: HashSet<String> = map
        .nodes
        .values()
        .flat_map(|n| n.edges.iter().map(|e| e.dest.clone()))
        .collect();
    for node in map.nodes.values_mut() {
        match node.node_type {
            NodeType::Unknown => node.is_inaccessible = true,
            NodeType::Service if node.namespace == UNKNOWN || node.is_egress_cluster => {
                node.is_inaccessible = true;
            }
            _ => node.is_outside = outside(&node.namespace),
        }
        if !node.is_inaccessible && known.is_some_and(|k| !k.contains(&node.namespace)) {
            node.is_inaccessible = true;
        }
        node.is_root = !node.edges.is_empty() && !dests.contains(&node.id);
    }
}

/// Kiali's `ReduceToServiceGraph`: service nodes, with service → service edges through the
/// workloads between them, and the roots that call services.
pub fn reduce_to_service_graph(map: &TrafficMap) -> Result<TrafficMap, TooLarge> {
    let mut out = map.empty_like();
    let mut edges = 0usize;
    let is_service = |id: &str| {
        map.nodes
            .get(id)
            .is_some_and(|n| n.node_type == NodeType::Service)
    };
    for node in map.nodes.values() {
        if node.node_type != NodeType::Service {
            if !node.is_root {
                continue;
            }
            let mut kept = node.without_edges();
            for edge in node.edges.iter().filter(|e| is_service(&e.dest)) {
                kept.push_edge(edge.clone());
            }
            if kept.edges.is_empty() {
                continue;
            }
            rates::reset_out(&mut kept.rates);
            for edge in &kept.edges {
                rates::add_outgoing_edge(&mut kept.rates, edge);
            }
            edges = edges.saturating_add(kept.edges.len());
            out.insert(kept);
            continue;
        }
        let mut service = node.without_edges();
        rates::reset_out(&mut service.rates);
        for to_workload in &node.edges {
            let Some(workload) = map.nodes.get(&to_workload.dest) else {
                continue;
            };
            if workload.node_type != NodeType::Workload {
                continue;
            }
            for to_service in workload.edges.iter().filter(|e| is_service(&e.dest)) {
                rates::add_outgoing_edge(&mut service.rates, to_service);
                match service.edge_to(&to_service.dest, to_service.protocol) {
                    Some(existing) => rates::aggregate_edge(to_service, existing),
                    None => {
                        edges = edges.saturating_add(1);
                        if edges > MAX_EDGES {
                            return Err(TooLarge);
                        }
                        service.push_edge(to_service.clone());
                    }
                }
            }
        }
        out.insert(service);
    }
    Ok(out)
}
