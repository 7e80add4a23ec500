//! The `securityPolicy` appender: `isMTLS` (the share of an edge's traffic over mutual TLS, in
//! %) and the principals of its ends, on the graph's edges.
//!
//! - Kiali's own appender tests (`security_policy_test.go`, its mocked queries and answers in
//!   `tests/fixtures/kiali_graph/security_policy_mocks.json`): the console sends exactly
//!   Kiali's two queries for each test's rates, and from Kiali's answers its edges carry the
//!   `IsMTLS` those tests assert.
//! - The store (which cannot tell TLS from spans and reports `unknown`): no edge has `isMTLS`.
//! - A real Prometheus scraping the simulator's Istio metrics (`mutual_tls` on the destination
//!   side): every Bookinfo edge has `isMTLS` 100.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use meshtrace_backend::prometheus::Labels;
use meshtrace_console::ConsoleOptions;
use meshtrace_console::graph::options::GraphOptions;
use meshtrace_console::graph::queries::{Purpose, REQUESTS};
use meshtrace_console::graph::{Samples, build, queries_of};
use meshtrace_sim::metrics::IstioMetrics;
use meshtrace_sim::{Generator, Mesh, Options, Topology};
use meshtrace_testkit::prometheus::RealPrometheus;
use serde_json::Value;

use crate::kiali_golden::{fixture, normalized, samples};

/// A query as compared: normalized by promql-parser, without the `query_scope` matcher
/// Kiali's tests add first (the console's client adds `query_scope` to every selector, last),
/// and without parentheses (Kiali's `(a) OR (b) OR (c)` and the console's `((a) or (b)) or
/// (c)` differ only in them; `or` is associative).
fn comparable(query: &str) -> String {
    normalized(&query.replace("mesh_id=\"mesh1\",", ""))
        .replace(['(', ')'], "")
        .to_lowercase()
}

/// The request Kiali's tests draw: the ingress gateway calling productpage-v1 (10 requests
/// per second), the traffic map those tests start from.
fn traffic() -> Samples {
    let labels: Labels = [
        ("source_cluster", "Kubernetes"),
        ("source_workload_namespace", "istio-system"),
        ("source_workload", "ingressgateway-unknown"),
        ("source_canonical_service", "ingressgateway"),
        ("source_canonical_revision", "unknown"),
        ("destination_cluster", "Kubernetes"),
        ("destination_service_namespace", "bookinfo"),
        (
            "destination_service",
            "productpage.bookinfo.svc.cluster.local",
        ),
        ("destination_service_name", "productpage"),
        ("destination_workload_namespace", "bookinfo"),
        ("destination_workload", "productpage-v1"),
        ("destination_canonical_service", "productpage"),
        ("destination_canonical_revision", "v1"),
        ("request_protocol", "http"),
        ("response_code", "200"),
        ("response_flags", "-"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    vec![(labels, 10.0)]
}

/// `app version` of an app node, the service of a service node.
fn name(node: &Value) -> String {
    let d = &node["data"];
    match d["nodeType"].as_str().unwrap() {
        "service" => d["service"].as_str().unwrap().to_string(),
        _ => match d["version"].as_str() {
            Some(v) if v != "unknown" => format!("{} {v}", d["app"].as_str().unwrap()),
            _ => d["app"].as_str().unwrap().to_string(),
        },
    }
}

/// The graph's edges as `source -> target` → edge data.
pub(crate) fn edges(graph: &Value, name: impl Fn(&Value) -> String) -> BTreeMap<String, Value> {
    let nodes: BTreeMap<&str, &Value> = graph["elements"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["data"]["id"].as_str().unwrap(), n))
        .collect();
    graph["elements"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let d = &e["data"];
            let end = |k: &str| name(nodes[d[k].as_str().unwrap()]);
            (format!("{} -> {}", end("source"), end("target")), d.clone())
        })
        .collect()
}

#[test]
fn kialis_appender_tests_give_their_is_mtls() {
    let tests = fixture("security_policy_mocks.json");
    for test in tests["tests"].as_array().unwrap() {
        let title = test["test"].as_str().unwrap();
        let query = format!(
            "namespaces=bookinfo&graphType=versionedApp&duration=60s&queryTime=1523364075\
             &appenders=securityPolicy&{}",
            test["params"].as_str().unwrap()
        );
        let o = GraphOptions::parse(Some(&query), None).unwrap();
        let mocks: BTreeMap<String, Samples> = test["mocks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    comparable(m["query"].as_str().unwrap()),
                    samples(&m["result"]),
                )
            })
            .collect();
        let mut asked = Vec::new();
        let answers: Vec<_> = queries_of(&o)
            .unwrap()
            .into_iter()
            .map(|q| {
                let samples = match q.purpose {
                    Purpose::SecurityPolicy => {
                        let text = comparable(&q.expr.to_string());
                        asked.push(text.clone());
                        mocks
                            .get(&text)
                            .unwrap_or_else(|| panic!("{title}: Kiali never sent {text}"))
                            .clone()
                    }
                    Purpose::Traffic(REQUESTS) => traffic(),
                    _ => Vec::new(),
                };
                (q, samples)
            })
            .collect();
        asked.sort();
        assert_eq!(
            asked,
            mocks.keys().cloned().collect::<Vec<_>>(),
            "{title}: the console's queries are not Kiali's two"
        );
        let graph = serde_json::to_value(build(&o, &answers, None).unwrap()).unwrap();
        let edges = edges(&graph, name);
        let expected: BTreeMap<String, String> = test["expectedIsMTLS"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        assert_eq!(
            edges.keys().collect::<Vec<_>>(),
            expected.keys().collect::<Vec<_>>(),
            "{title}"
        );
        for (edge, is_mtls) in &expected {
            let data = &edges[edge];
            assert_eq!(data["isMTLS"], is_mtls.as_str(), "{title} {edge}: {data}");
            // Kiali copies the first principals of the edge from the answer.
            assert_eq!(data["sourcePrincipal"], "source-principal-test", "{title}");
            assert_eq!(
                data["destPrincipal"], "destination-principal-test",
                "{title}"
            );
        }
    }
}

#[test]
fn without_the_appender_edges_carry_no_security() {
    let o = GraphOptions::parse(
        Some("namespaces=bookinfo&graphType=versionedApp&duration=60s&appenders=responseTime"),
        None,
    )
    .unwrap();
    let queries = queries_of(&o).unwrap();
    assert!(
        queries.iter().all(|q| q.purpose != Purpose::SecurityPolicy),
        "asked without being requested"
    );
    // Kiali's default (no `appenders` parameter) runs every appender.
    let all = GraphOptions::parse(Some("namespaces=bookinfo"), None).unwrap();
    let security: Vec<_> = queries_of(&all)
        .unwrap()
        .into_iter()
        .filter(|q| q.purpose == Purpose::SecurityPolicy)
        .collect();
    assert_eq!(security.len(), 2);
}

/// The workload graph's edges as [`crate::bookinfo::describe`] names their ends.
fn workload_edges(graph: &Value) -> BTreeMap<String, Value> {
    edges(graph, |n| crate::bookinfo::describe(&n["data"], "workload"))
}

/// The edges the simulator's requests made, as [`workload_edges`] names them.
fn expected_edges(hops: &[crate::bookinfo::Hop]) -> BTreeSet<String> {
    let roots = crate::bookinfo::roots(&Topology::bookinfo());
    hops.iter()
        .map(|h| {
            let (from, to) = crate::bookinfo::hop_edge(h, "workload", &roots);
            format!("{from} -> {to}")
        })
        .collect()
}

/// The Bookinfo namespaces' workload graph (`params` added): its edges, which must be those
/// of the simulator's `hops`.
async fn bookinfo_edges(
    console: std::net::SocketAddr,
    params: &str,
    hops: &[crate::bookinfo::Hop],
) -> BTreeMap<String, Value> {
    let (status, graph) = crate::bookinfo::get(
        console,
        &format!(
            "/api/namespaces/graph?namespaces={}&{params}",
            crate::bookinfo::NAMESPACES
        ),
    )
    .await;
    assert_eq!(status, 200, "{graph}");
    let edges = workload_edges(&graph);
    assert_eq!(
        edges.keys().cloned().collect::<BTreeSet<_>>(),
        expected_edges(hops),
        "{graph}"
    );
    edges
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_the_store_edges_carry_no_mtls_share() {
    let (store, hops, query_time) = crate::bookinfo::filled(300).await;
    let (console, _stop) =
        crate::bookinfo::console_over(&store, &crate::bookinfo::prometheus_url(&store)).await;
    // No `appenders` parameter: Kiali's default, every appender.
    let edges = bookinfo_edges(
        console,
        &format!("duration=120s&queryTime={query_time}"),
        &hops,
    )
    .await;
    for (name, data) in &edges {
        assert!(data.get("isMTLS").is_none(), "{name}: {data}");
        if name.contains("-> svc:") {
            // Requests no workload received: no destination reported them.
            assert!(data.get("sourcePrincipal").is_none(), "{name}: {data}");
        } else {
            // The store's principals: no span carries the peer's certificate.
            assert_eq!(data["sourcePrincipal"], "unknown", "{name}: {data}");
            assert_eq!(data["destPrincipal"], "unknown", "{name}: {data}");
        }
    }
}

/// The newest scrape of the job `sim`, in Unix seconds.
async fn last_scrape(prometheus: &RealPrometheus) -> f64 {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("query", "max(timestamp(up{job=\"sim\"}))")
        .finish();
    let url = format!("{}?{query}", prometheus.url("/api/v1/query"));
    let body: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
    body["data"]["result"][0]["value"][1]
        .as_str()
        .map_or(0.0, |v| v.parse().unwrap())
}

/// Waits until Prometheus has scraped after now.
async fn scraped(prometheus: &RealPrometheus) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    for _ in 0..600 {
        if last_scrape(prometheus).await > now {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "Prometheus did not scrape the simulator: {}",
        prometheus.log()
    );
}

/// A real Prometheus scraping the simulator's Istio metrics for Bookinfo over `clusters`
/// clusters (300 requests, 30 % failing); the hops of those requests and a query time after
/// Prometheus saw them.
pub(crate) async fn simulated(clusters: usize) -> (RealPrometheus, Vec<crate::bookinfo::Hop>, u64) {
    let mut generator = Generator::new(
        Mesh::new(Topology::bookinfo(), 5, clusters),
        7,
        Options {
            error_rate: 0.3,
            slow_rate: 0.0,
            ambient: false,
        },
    );
    // The simulator's metrics endpoint, as `meshtrace sim --metrics-listen` serves it.
    let metrics = Arc::new(IstioMetrics::new(generator.mesh()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap().to_string();
    tokio::spawn(meshtrace_sim::metrics::serve(
        listener,
        metrics.clone(),
        std::future::pending(),
    ));
    let prometheus = RealPrometheus::scraping("sim", &[&target], 1).await;

    let now_us = crate::bookinfo::now_secs() * 1_000_000;
    let requests: Vec<_> = (0..300).map(|i| generator.request(now_us + i)).collect();
    let spans: Vec<_> = requests.iter().flat_map(|r| r.spans.clone()).collect();
    let hops = crate::bookinfo::hops(&spans, &crate::bookinfo::pods(generator.mesh()));
    // Every series must be scraped before it grows for `rate` to see it grow: the same
    // requests are counted twice, a scrape between.
    for _ in 0..2 {
        for r in &requests {
            metrics.record(&r.reports);
        }
        scraped(&prometheus).await;
    }
    let query_time = crate::bookinfo::now_secs() + 1;
    while crate::bookinfo::now_secs() <= query_time {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (prometheus, hops, query_time)
}

/// A console whose metrics source is `prometheus` (and no tracing backend).
pub(crate) async fn console_of(
    prometheus: &RealPrometheus,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let yaml = format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: http://127.0.0.1:9\n    use_grpc: false\n  prometheus:\n    url: http://{}\n",
        prometheus.addr
    );
    crate::common::start_console(ConsoleOptions::default(), |_| yaml).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_a_real_prometheus_scraping_the_simulator_every_edge_is_mutual_tls() {
    let (prometheus, hops, query_time) = simulated(1).await;
    let (console, _stop) = console_of(&prometheus).await;
    let edges = bookinfo_edges(
        console,
        &format!("duration=60s&queryTime={query_time}&appenders=securityPolicy"),
        &hops,
    )
    .await;
    let to_services = hops.iter().filter(|h| h.callee_workload.is_none()).count();
    assert!(
        to_services > 0,
        "no request failed before reaching a workload"
    );
    for (name, data) in &edges {
        if name.contains("-> svc:") {
            // Requests no workload received: only their source reported them, and a source
            // does not know the connection's policy.
            assert!(data.get("isMTLS").is_none(), "{name}: {data}");
        } else {
            assert_eq!(data["isMTLS"], "100", "{name}: {data}");
            let principal = |k: &str| data[k].as_str().unwrap_or_default().to_string();
            assert!(
                principal("sourcePrincipal").starts_with("spiffe://")
                    && principal("destPrincipal").starts_with("spiffe://"),
                "{name}: {data}"
            );
        }
    }
}
