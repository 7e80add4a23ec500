//! Kiali's golden graphs: the Prometheus answers Kiali's `graph/api/api_test.go` mocks
//! (`tests/fixtures/kiali_graph/namespace_mocks.json`, converted from its Go literals) are
//! given to the graph builder for the queries the console would send, and the JSON must equal
//! Kiali's expected files for the same request (`graph/api/testdata/*.expected`, copied).
//!
//! The console's queries are matched to Kiali's by their meaning: both are parsed by
//! promql-parser and compared as printed by it, so spacing and `sum by` placement do not
//! matter but every matcher, label and number does. A query Kiali never sent fails the test.

use std::collections::{BTreeSet, HashMap};

use meshtrace_backend::prometheus::Labels;
use meshtrace_console::graph::options::GraphOptions;
use meshtrace_console::graph::{Samples, build, queries_of};
use serde_json::Value;

pub(crate) fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/kiali_graph/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub(crate) fn normalized(query: &str) -> String {
    promql_parser::parser::parse(query)
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .to_string()
}

/// A mocked answer (`[{metric: {…}, value}]`) as the builder takes it.
pub(crate) fn samples(result: &Value) -> Samples {
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

/// Kiali's mocked answers, by normalized query.
fn mocks() -> HashMap<String, Samples> {
    let mut out = HashMap::new();
    for mock in fixture("namespace_mocks.json").as_array().unwrap() {
        let samples = samples(&mock["result"]);
        out.insert(normalized(mock["query"].as_str().unwrap()), samples);
    }
    out
}

/// The console's graph for `query` (Kiali's test URL; its tests also set `ambientTraffic`
/// to none), with Kiali's test namespaces accessible.
fn graph(query: &str) -> Value {
    let o = GraphOptions::parse(Some(&format!("{query}&ambientTraffic=none")), None).unwrap();
    let mocks = mocks();
    let answers: Vec<_> = queries_of(&o)
        .unwrap()
        .into_iter()
        .map(|q| {
            let text = normalized(&q.expr.to_string());
            let samples = mocks
                .get(&text)
                .unwrap_or_else(|| panic!("Kiali never sent {text}"))
                .clone();
            (q, samples)
        })
        .collect();
    let known: BTreeSet<String> = ["bookinfo", "tutorial"].map(String::from).into();
    serde_json::to_value(build(&o, &answers, Some(&known)).unwrap()).unwrap()
}

fn check(query: &str, expected: &str) {
    let actual = graph(query);
    let expected = fixture(expected);
    if actual != expected {
        panic!(
            "{query} differs from Kiali's {expected}\nactual:\n{}",
            serde_json::to_string_pretty(&actual).unwrap()
        );
    }
}

const BASE: &str = "namespaces=bookinfo&appenders&queryTime=1523364075";

#[test]
fn workload_graph() {
    check(&format!("{BASE}&graphType=workload"), "workload_graph.json");
}

#[test]
fn app_graph() {
    check(&format!("{BASE}&graphType=app"), "app_graph.json");
}

#[test]
fn versioned_app_graph() {
    check(
        &format!("{BASE}&graphType=versionedApp"),
        "versioned_app_graph.json",
    );
}

#[test]
fn service_graph() {
    check(&format!("{BASE}&graphType=service"), "service_graph.json");
}

#[test]
fn rates_graphs() {
    for (rates, expected) in [
        (
            "rateGrpc=sent&rateHttp=requests&rateTcp=sent",
            "rates_sent_graph.json",
        ),
        (
            "rateGrpc=total&rateHttp=requests&rateTcp=total",
            "rates_total_graph.json",
        ),
        (
            "rateGrpc=total&rateHttp=none&rateTcp=total",
            "rates_none_graph.json",
        ),
        (
            "rateGrpc=received&rateHttp=requests&rateTcp=received",
            "rates_received_graph.json",
        ),
    ] {
        check(&format!("{BASE}&graphType=workload&{rates}"), expected);
    }
}
