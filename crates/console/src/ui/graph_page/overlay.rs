//! The trace overlay: which nodes and edges of a graph a trace passed through (Kiali's
//! "View on Graph", `traceId=`).
//!
//! Each span names the mesh entities it belongs to — the workload of the reporting pod (or,
//! for an ambient waypoint span, the workloads on both sides), that workload's app, and the
//! service called — and a node is in the trace when one of its spans names it. An edge is in
//! the trace when one span names its target and the same span or its parent names its source:
//! a sidecar's client span names the caller and the service it calls, the callee's server span
//! (its child) names the callee and the same service.
//!
//! One pass over the spans, then one over the nodes and edges: a trace of 100,000 spans and a
//! graph of 2,000 edges cost a few milliseconds.

use std::collections::{BTreeSet, HashMap, HashSet};

use meshtrace_mesh::{span_info, tag_str};
use meshtrace_model::{Span, SpanId, Trace};
use serde_json::Value;

use super::{elements, text};

/// A mesh entity a span or a node names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Entity {
    Workload { namespace: String, name: String },
    App { namespace: String, name: String },
    Service { namespace: String, name: String },
}

fn entity(kind: fn(String, String) -> Entity, namespace: &str, name: &str) -> Option<Entity> {
    (!namespace.is_empty() && !name.is_empty() && name != "unknown")
        .then(|| kind(namespace.to_string(), name.to_string()))
}

fn workload(namespace: String, name: String) -> Entity {
    Entity::Workload { namespace, name }
}
fn app(namespace: String, name: String) -> Entity {
    Entity::App { namespace, name }
}
fn service(namespace: String, name: String) -> Entity {
    Entity::Service { namespace, name }
}

/// The service a span calls or serves: Istio's canonical-service tags, else the Envoy
/// operation name or upstream cluster (`reviews.bookinfo.svc.cluster.local…`).
fn called_service(span: &Span, peer: &str) -> Option<Entity> {
    if let (Some(name), Some(ns)) = (
        tag_str(span, "istio.destination_canonical_service"),
        tag_str(span, "istio.destination_namespace"),
    ) {
        return entity(service, ns, name);
    }
    let fqdn = span
        .operation_name
        .split([':', '/'])
        .next()
        .filter(|op| op.contains(".svc."))
        .map(|op| op.trim_end_matches(".svc.cluster.local"))
        .or_else(|| (!peer.is_empty() && !peer.contains(':')).then_some(peer))?;
    let mut parts = fqdn.split('.');
    let (name, ns) = (parts.next()?, parts.next()?);
    entity(service, ns, name)
}

/// What a span names (see the module doc).
fn entities(span: &Span) -> Vec<Entity> {
    let info = span_info(span);
    let mut found = Vec::with_capacity(4);
    found.extend(entity(workload, &info.namespace, &info.workload));
    found.extend(entity(app, &info.namespace, &info.app));
    for side in ["source", "destination"] {
        let name = tag_str(span, &format!("istio.{side}_workload")).unwrap_or_default();
        let ns = tag_str(span, &format!("istio.{side}_namespace")).unwrap_or_default();
        found.extend(entity(workload, ns, name));
    }
    found.extend(called_service(span, &info.peer));
    found.sort();
    found.dedup();
    found
}

/// What a node of Kiali's graph JSON stands for.
fn node_entities(data: &Value) -> Vec<Entity> {
    let text = |key: &str| text(data, key);
    let ns = text("namespace");
    let mut found = Vec::new();
    match text("nodeType") {
        "workload" => found.extend(entity(workload, ns, text("workload"))),
        // A versioned app node names its workload; an app node, its app.
        "app" if !text("workload").is_empty() => {
            found.extend(entity(workload, ns, text("workload")));
        }
        "app" => found.extend(entity(app, ns, text("app"))),
        "service" => found.extend(entity(service, ns, text("service"))),
        _ => {}
    }
    found
}

/// The ids of the nodes and edges of `graph` that `trace` passed through.
pub fn marks(graph: &Value, trace: &Trace) -> BTreeSet<String> {
    let by_id: HashMap<SpanId, &Span> = trace.spans.iter().map(|s| (s.span_id, s)).collect();
    let mut named: HashSet<Entity> = HashSet::new();
    let mut hops: HashSet<(Entity, Entity)> = HashSet::new();
    let mut cache: HashMap<SpanId, Vec<Entity>> = HashMap::with_capacity(trace.spans.len());
    for span in &trace.spans {
        cache.insert(span.span_id, entities(span));
    }
    for span in &trace.spans {
        let own = cache
            .get(&span.span_id)
            .map(Vec::as_slice)
            .unwrap_or_default();
        named.extend(own.iter().cloned());
        let parent = span
            .parent_span_id()
            .filter(|id| by_id.contains_key(id))
            .and_then(|id| cache.get(&id))
            .map(Vec::as_slice)
            .unwrap_or_default();
        for to in own {
            for from in own.iter().chain(parent) {
                if from != to {
                    hops.insert((from.clone(), to.clone()));
                }
            }
        }
    }
    let mut node_of: HashMap<&str, Vec<Entity>> = HashMap::new();
    let mut marked = BTreeSet::new();
    for data in elements(graph, "nodes") {
        let id = data.get("id").and_then(Value::as_str).unwrap_or_default();
        let of = node_entities(data);
        if of.iter().any(|e| named.contains(e)) {
            marked.insert(id.to_string());
        }
        node_of.insert(id, of);
    }
    for data in elements(graph, "edges") {
        let end = |key: &str| {
            data.get(key)
                .and_then(Value::as_str)
                .and_then(|id| node_of.get(id))
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        let (sources, targets) = (end("source"), end("target"));
        let passed = sources.iter().any(|from| {
            targets
                .iter()
                .any(|to| hops.contains(&(from.clone(), to.clone())))
        });
        if passed {
            marked.extend(data.get("id").and_then(Value::as_str).map(str::to_string));
        }
    }
    marked
}
