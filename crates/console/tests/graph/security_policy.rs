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

use std::collections::BTreeMap;

use meshtrace_backend::prometheus::Labels;
use meshtrace_console::graph::options::GraphOptions;
use meshtrace_console::graph::queries::{Purpose, REQUESTS};
use meshtrace_console::graph::{Samples, build, queries_of};
use serde_json::Value;

use crate::kiali_golden::{fixture, normalized};

/// A query as compared: normalized by promql-parser, without the `query_scope` matcher
/// Kiali's tests add first (the console's client adds `query_scope` to every selector, last),
/// and without parentheses (Kiali's `(a) OR (b) OR (c)` and the console's `((a) or (b)) or
/// (c)` differ only in them; `or` is associative).
fn comparable(query: &str) -> String {
    normalized(&query.replace("mesh_id=\"mesh1\",", ""))
        .replace(['(', ')'], "")
        .to_lowercase()
}

fn samples(result: &Value) -> Samples {
    result
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let labels: Labels = s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (labels, s["value"].as_f64().unwrap())
        })
        .collect()
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
