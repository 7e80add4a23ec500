//! The graph of the simulator's Bookinfo mesh, end to end: the simulator's generator makes
//! requests spread over the last minute, its exporter sends their spans to a real store over
//! OTLP/gRPC, the store derives Istio's metrics, and the console — with `prometheus.url` at
//! the store's `/prometheus` — answers Kiali's graph routes from them.
//!
//! What is expected comes from the simulator, not from the graph code: the edges from the
//! topology's calls (a caller's workloads → a callee's workloads; a caller → the callee's
//! service for the hops the simulator failed with no healthy upstream, which never reach a
//! workload), and the counts and errors from the client spans the simulator generated. Rates
//! are requests per second over the 120 s asked for: within 10 % of the counts, error
//! percentages within 3 points.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshtrace_console::ConsoleOptions;
use meshtrace_model::Span;
use meshtrace_sim::export::{Exporter, Target};
use meshtrace_sim::{Generator, Mesh, Options, Topology};
use meshtrace_store::server::LoopbackServer;
use meshtrace_store::{MetricsOptions, Store, StoreOptions};
use serde_json::Value;

const WINDOW_SECS: f64 = 120.0;
pub(crate) const NAMESPACES: &str = "bookinfo,travel,istio-system";

/// One request between two workloads, as the simulator generated it.
#[derive(Debug, Clone)]
pub(crate) struct Hop {
    caller_service: String,
    caller_workload: String,
    callee_service: String,
    /// `None` when the request never reached a workload (no healthy upstream).
    pub(crate) callee_workload: Option<String>,
    error: bool,
}

fn tag(span: &Span, key: &str) -> String {
    span.tags
        .iter()
        .find(|t| t.key == key)
        .map(|t| t.value.as_text().into_owned())
        .unwrap_or_default()
}

/// Pod name → workload name, as the simulator laid its mesh out.
type Pods = HashMap<String, String>;

pub(crate) fn pods(mesh: &Mesh) -> Pods {
    let mut out = HashMap::new();
    for (service, workloads) in mesh.topology.services.iter().zip(&mesh.workloads) {
        for w in workloads {
            let name = if service.gateway {
                service.name.clone()
            } else {
                format!("{}-{}", service.name, w.version)
            };
            for pod in &w.pods {
                out.insert(pod.name.clone(), name.clone());
            }
        }
    }
    out
}

/// The workload of the pod a `node_id` (`sidecar~ip~<pod>.<ns>~…`) names.
fn node_workload(pods: &Pods, node_id: &str) -> String {
    let pod_dot_ns = node_id.split('~').nth(2).unwrap();
    pods[pod_dot_ns.rsplit_once('.').unwrap().0].clone()
}

pub(crate) fn hops(spans: &[Span], pods: &Pods) -> Vec<Hop> {
    let mut servers: HashMap<u64, &Span> = HashMap::new();
    for s in spans.iter().filter(|s| tag(s, "span.kind") == "server") {
        servers.insert(s.references.first().unwrap().span_id.0, s);
    }
    spans
        .iter()
        .filter(|s| tag(s, "span.kind") == "client")
        .map(|s| {
            let upstream = tag(s, "upstream_cluster");
            let host = upstream.rsplit('|').next().unwrap();
            Hop {
                caller_service: tag(s, "istio.canonical_service"),
                caller_workload: node_workload(pods, &tag(s, "node_id")),
                callee_service: host.split('.').next().unwrap().to_string(),
                callee_workload: servers
                    .get(&s.span_id.0)
                    .map(|server| node_workload(pods, &tag(server, "node_id"))),
                error: tag(s, "http.status_code").parse::<u16>().unwrap() >= 500,
            }
        })
        .collect()
}

/// The services nobody calls in the topology (the traffic's roots).
pub(crate) fn roots(topology: &Topology) -> BTreeSet<String> {
    let called: BTreeSet<&str> = topology
        .services
        .iter()
        .flat_map(|s| s.calls.iter().map(|c| c.service.as_str()))
        .collect();
    topology
        .services
        .iter()
        .filter(|s| !called.contains(s.name.as_str()))
        .map(|s| s.name.clone())
        .collect()
}

/// A node's name in a graph of `graph_type`, from its service and workload (`None`: the
/// service node a failed request stops at). Service graphs keep workloads only for roots.
fn node_name(graph_type: &str, service: &str, workload: Option<&str>, root: bool) -> String {
    match (graph_type, workload) {
        (_, None) => format!("svc:{service}"),
        ("workload", Some(w)) => format!("wl:{w}"),
        ("versionedApp", Some(w)) => format!("vapp:{w}"),
        ("app", Some(_)) => format!("app:{service}"),
        (_, Some(w)) if root => format!("wl:{w}"),
        _ => format!("svc:{service}"),
    }
}

/// The edges the topology allows, for a graph type, as [`describe`] names nodes: a caller's
/// workloads → the callee's workloads, and → the callee's service for failed requests.
fn allowed_edges(topology: &Topology, graph_type: &str) -> BTreeSet<(String, String)> {
    let workloads = |name: &str| -> Vec<String> {
        let s = topology.services.iter().find(|s| s.name == name).unwrap();
        if s.gateway {
            vec![s.name.clone()]
        } else {
            s.versions
                .iter()
                .map(|v| format!("{}-{}", s.name, v.version))
                .collect()
        }
    };
    let roots = roots(topology);
    let mut out = BTreeSet::new();
    for caller in &topology.services {
        let root = roots.contains(&caller.name);
        for call in &caller.calls {
            for from in workloads(&caller.name) {
                let source = node_name(graph_type, &caller.name, Some(&from), root);
                for to in workloads(&call.service) {
                    let target = node_name(graph_type, &call.service, Some(&to), false);
                    out.insert((source.clone(), target));
                }
                out.insert((source, node_name(graph_type, &call.service, None, false)));
            }
        }
    }
    out
}

/// A hop's edge in a graph of `graph_type`.
pub(crate) fn hop_edge(hop: &Hop, graph_type: &str, roots: &BTreeSet<String>) -> (String, String) {
    (
        node_name(
            graph_type,
            &hop.caller_service,
            Some(&hop.caller_workload),
            roots.contains(&hop.caller_service),
        ),
        node_name(
            graph_type,
            &hop.callee_service,
            hop.callee_workload.as_deref(),
            false,
        ),
    )
}

/// A node of the console's answer, named as [`allowed_edges`] names them.
pub(crate) fn describe(node: &Value, graph_type: &str) -> String {
    let f = |k: &str| node[k].as_str().unwrap_or("").to_string();
    match node["nodeType"].as_str().unwrap() {
        "workload" => format!("wl:{}", f("workload")),
        "service" => format!("svc:{}", f("service")),
        "app" if graph_type == "versionedApp" => format!("vapp:{}", f("workload")),
        "app" => format!("app:{}", f("app")),
        other => format!("{other}:{}", f("id")),
    }
}

struct Edge {
    rate: f64,
    percent_err: f64,
}

/// The graph's edges by (source, target), and its nodes by name.
fn edges_of(
    graph: &Value,
    graph_type: &str,
) -> (BTreeMap<(String, String), Edge>, BTreeMap<String, Value>) {
    let nodes: BTreeMap<String, Value> = graph["elements"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["data"]["nodeType"] != "box")
        .map(|n| {
            (
                n["data"]["id"].as_str().unwrap().to_string(),
                n["data"].clone(),
            )
        })
        .collect();
    let mut edges = BTreeMap::new();
    for e in graph["elements"]["edges"].as_array().unwrap() {
        let d = &e["data"];
        assert_eq!(d["traffic"]["protocol"], "http", "{d}");
        let name = |id: &Value| describe(&nodes[id.as_str().unwrap()], graph_type);
        let rates = &d["traffic"]["rates"];
        let number = |k: &str| rates[k].as_str().map_or(0.0, |v| v.parse::<f64>().unwrap());
        let key = (name(&d["source"]), name(&d["target"]));
        assert!(
            edges
                .insert(
                    key.clone(),
                    Edge {
                        rate: number("http"),
                        percent_err: number("httpPercentErr")
                    }
                )
                .is_none(),
            "{key:?} twice"
        );
    }
    let by_name = nodes
        .values()
        .map(|n| (describe(n, graph_type), n.clone()))
        .collect();
    (edges, by_name)
}

/// Every expected edge is there with its rate and error percentage, and no other.
fn check_edges(graph: &Value, graph_type: &str, hops: &[&Hop], topology: &Topology) {
    let roots = roots(topology);
    let mut expected: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for hop in hops {
        let counts = expected
            .entry(hop_edge(hop, graph_type, &roots))
            .or_default();
        counts.0 += 1;
        counts.1 += u64::from(hop.error);
    }
    let allowed = allowed_edges(topology, graph_type);
    for key in expected.keys() {
        assert!(
            allowed.contains(key),
            "{graph_type}: the simulator made {key:?}, which its topology has no call for"
        );
    }
    let (edges, _) = edges_of(graph, graph_type);
    assert_eq!(
        edges.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "{graph_type}: the graph's edges are not the simulator's"
    );
    for (key, (count, errors)) in &expected {
        let edge = &edges[key];
        let counted = edge.rate * WINDOW_SECS;
        assert!(
            (counted - *count as f64).abs() <= 0.1 * *count as f64,
            "{graph_type} {key:?}: rate {} × {WINDOW_SECS}s = {counted}, the simulator sent {count}",
            edge.rate
        );
        let percent = 100.0 * *errors as f64 / *count as f64;
        assert!(
            (edge.percent_err - percent).abs() <= 3.0,
            "{graph_type} {key:?}: {}% errors, the simulator failed {percent}%",
            edge.percent_err
        );
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A store holding `requests` simulated requests spread over [t0 − 50 s, t0 − 3 s]; it
/// returns the hops generated and a query time after all of them.
pub(crate) async fn filled(requests: usize) -> (LoopbackServer, Vec<Hop>, u64) {
    let options = StoreOptions {
        metrics: Some(MetricsOptions {
            // Samples every second: a query at a whole second sees every request before it.
            step: Duration::from_secs(1),
            ..MetricsOptions::default()
        }),
        ..StoreOptions::new(Duration::from_secs(3600))
    };
    let store = Arc::new(Store::in_memory_with(&options));
    let server = LoopbackServer::start(store, 16 << 20).await.unwrap();
    let t0 = now_secs();
    let mut generator = Generator::new(
        Mesh::new(Topology::bookinfo(), 5, 1),
        5,
        Options {
            error_rate: 0.3,
            slow_rate: 0.0,
            ambient: false,
        },
    );
    let traces: Vec<Vec<Span>> = (0..requests)
        .map(|i| {
            let start_us = (t0 - 50) * 1_000_000 + (i as u64 * 47_000_000 / requests as u64);
            generator.request(start_us).spans
        })
        .collect();
    let mut exporter = Exporter::new(Target::OtlpGrpc(format!(
        "http://{}",
        server.addresses.otlp_grpc
    )));
    // Whole traces per batch: the store pairs a client span with its server span within a
    // batch (or an earlier one), as a proxy's batch would hold them.
    for batch in traces.chunks(50) {
        let batch: Vec<Span> = batch.concat();
        let sent = exporter.send(&batch).await;
        assert_eq!(sent.accepted, batch.len(), "{sent:?}");
    }
    let spans: Vec<Span> = traces.concat();
    let hops = hops(&spans, &pods(generator.mesh()));
    let query_time = now_secs().max(t0) + 1;
    // The query time must have passed, and the store must count every client span by then.
    let client = reqwest::Client::new();
    for attempt in 0.. {
        if now_secs() > query_time {
            let body: Value = client
                .get(format!(
                    "http://{}/prometheus/api/v1/query",
                    server.addresses.query_http
                ))
                .query(&[
                    ("query", "sum(istio_requests_total{reporter=\"source\"})"),
                    ("time", &query_time.to_string()),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let counted = body["data"]["result"][0]["value"][1]
                .as_str()
                .map_or(0.0, |v| v.parse::<f64>().unwrap());
            if counted as usize == hops.len() {
                break;
            }
            assert!(
                attempt < 100,
                "the store counts {counted} of {} requests",
                hops.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (server, hops, query_time)
}

pub fn console_yaml(store: &LoopbackServer, prometheus_url: &str) -> String {
    format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: http://{}\n    use_grpc: false\n  prometheus:\n    url: {prometheus_url}\n",
        store.addresses.query_http
    )
}

/// A console over `store`'s Jaeger API, with `prometheus.url` at `prometheus_url`; the
/// console's address and what stops it.
pub async fn console_over(
    store: &LoopbackServer,
    prometheus_url: &str,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    crate::common::start_console(ConsoleOptions::default(), |_| {
        console_yaml(store, prometheus_url)
    })
    .await
}

/// The store's own Prometheus API, as a console's `prometheus.url`.
pub fn prometheus_url(store: &LoopbackServer) -> String {
    format!("http://{}/prometheus", store.addresses.query_http)
}

pub async fn get(console: SocketAddr, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("http://{console}{path}"))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(content_type.as_deref(), Some("application/json"), "{path}");
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookinfo_topology_rates_and_errors_for_every_graph_type() {
    let (store, hops, query_time) = filled(1200).await;
    let (console, _stop) = console_over(&store, &prometheus_url(&store)).await;
    let topology = Topology::bookinfo();
    let all: Vec<&Hop> = hops.iter().collect();
    for graph_type in ["workload", "app", "versionedApp", "service"] {
        let (status, graph) = get(
            console,
            &format!("/api/namespaces/graph?namespaces={NAMESPACES}&graphType={graph_type}&duration=120s&queryTime={query_time}"),
        )
        .await;
        assert_eq!(status, 200, "{graph}");
        assert_eq!(graph["graphType"], graph_type);
        assert_eq!(graph["timestamp"], query_time);
        assert_eq!(graph["duration"], 120);
        check_edges(&graph, graph_type, &all, &topology);
        // The roots: the ingress gateway and the travel portal send and receive nothing.
        let (_, nodes) = edges_of(&graph, graph_type);
        let roots: BTreeSet<&String> = nodes
            .iter()
            .filter(|(_, n)| n["isRoot"] == true)
            .map(|(name, _)| name)
            .collect();
        assert_eq!(roots.len(), 2, "{graph_type}: {roots:?}");
        assert!(
            roots
                .iter()
                .all(|r| r.contains("istio-ingressgateway") || r.contains("travel-portal")),
            "{roots:?}"
        );
    }

    // Injected service nodes: every request to a workload goes through its service node.
    let (_, graph) = get(
        console,
        &format!("/api/namespaces/graph?namespaces={NAMESPACES}&injectServiceNodes=true&duration=120s&queryTime={query_time}"),
    )
    .await;
    let (edges, nodes) = edges_of(&graph, "workload");
    assert_eq!(nodes["svc:reviews"]["isInjected"], true);
    let into_reviews: f64 = edges
        .iter()
        .filter(|((_, to), _)| to.starts_with("wl:reviews-"))
        .map(|(_, e)| e.rate)
        .sum();
    let reached = hops
        .iter()
        .filter(|h| {
            h.callee_workload
                .as_deref()
                .is_some_and(|w| w.starts_with("reviews-"))
        })
        .count() as f64;
    assert!((into_reviews * WINDOW_SECS - reached).abs() <= 0.1 * reached);
    assert!(edges.keys().all(|(from, to)| !(from.starts_with("wl:productpage") && to.starts_with("wl:reviews"))));

    // A node graph: what reviews-v2 received and what it sent.
    let (status, graph) = get(
        console,
        &format!("/api/namespaces/bookinfo/workloads/reviews-v2/graph?duration=120s&queryTime={query_time}"),
    )
    .await;
    assert_eq!(status, 200, "{graph}");
    let around: Vec<&Hop> = hops
        .iter()
        .filter(|h| {
            h.caller_workload == "reviews-v2" || h.callee_workload.as_deref() == Some("reviews-v2")
        })
        .collect();
    check_edges(&graph, "workload", &around, &topology);

    // Before the traffic, the namespace is known but its graph is empty.
    let (status, graph) = get(
        console,
        &format!(
            "/api/namespaces/graph?namespaces=bookinfo&duration=60s&queryTime={}",
            query_time - 600
        ),
    )
    .await;
    assert_eq!(status, 200, "{graph}");
    assert_eq!(
        graph["elements"],
        serde_json::json!({"nodes": [], "edges": []})
    );
}
