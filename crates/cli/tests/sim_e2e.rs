//! `meshtrace sim` against `meshtrace store`, both the real binaries: the mesh the store ends
//! up holding has Bookinfo's services, well-formed traces, Istio's tags and the error rate asked
//! for.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::start_store;
use meshtrace_testkit::jaeger_json::{has_error, tag};
use serde_json::Value;

const ERROR_RATE: f64 = 0.2;

fn sim(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .arg("sim")
        .args(args)
        .output()
        .expect("meshtrace sim runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn get(url: &str) -> Value {
    reqwest::blocking::get(url).unwrap().json().unwrap()
}

#[test]
fn simulated_bookinfo_traffic_has_the_shape_of_an_istio_mesh() {
    let store = start_store(&["--memory".as_ref()]);
    let summary = sim(&[
        "--otlp-grpc",
        &format!("http://{}", store.otlp_grpc),
        "--rate",
        "250",
        "--duration",
        "3s",
        "--error-rate",
        &ERROR_RATE.to_string(),
        "--seed",
        "7",
    ]);
    assert!(summary.starts_with("requests "), "{summary}");
    assert!(summary.contains("spans rejected 0"), "{summary}");

    let query = |path: &str| get(&format!("http://{}{path}", store.query_http));
    let services = query("/api/services");
    for expected in [
        "istio-ingressgateway.istio-system",
        "productpage.bookinfo",
        "details.bookinfo",
        "reviews.bookinfo",
        "ratings.bookinfo",
        "travel-portal.travel",
        "travels.travel",
        "flights.travel",
        "hotels.travel",
    ] {
        assert!(
            services["data"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == expected),
            "{expected} missing: {services}"
        );
    }

    let mut traces = Vec::new();
    for entry in ["istio-ingressgateway.istio-system", "travel-portal.travel"] {
        let found = query(&format!(
            "/api/traces?service={entry}&limit=5000&lookback=1h"
        ));
        traces.extend(found["data"].as_array().unwrap().iter().cloned());
    }
    assert!(traces.len() > 300, "only {} traces", traces.len());

    let mut failed = 0;
    let mut reviews_versions = std::collections::BTreeSet::new();
    for trace in &traces {
        let spans = trace["spans"].as_array().unwrap();
        let by_id: HashMap<&str, &Value> = spans
            .iter()
            .map(|s| (s["spanID"].as_str().unwrap(), s))
            .collect();
        let roots: Vec<&Value> = spans
            .iter()
            .filter(|s| s["references"].as_array().unwrap().is_empty())
            .collect();
        assert_eq!(roots.len(), 1, "a trace has one root");
        assert_eq!(tag(roots[0], "span.kind"), Some("client"));
        if has_error(roots[0]) {
            failed += 1;
        }
        for span in spans {
            let process = &trace["processes"][span["processID"].as_str().unwrap()];
            let service = process["serviceName"].as_str().unwrap();
            let (app, namespace) = service.split_once('.').unwrap();
            // Istio's sidecar tags.
            assert_eq!(tag(span, "component"), Some("proxy"));
            assert_eq!(tag(span, "istio.canonical_service"), Some(app));
            assert_eq!(tag(span, "istio.namespace"), Some(namespace));
            assert_eq!(tag(span, "istio.mesh_id"), Some("cluster.local"));
            assert_eq!(tag(span, "istio.cluster_id"), Some("Kubernetes"));
            let node = tag(span, "node_id").unwrap();
            let parts: Vec<&str> = node.split('~').collect();
            assert_eq!(parts.len(), 4, "{node}");
            assert!(parts[0] == "sidecar" || parts[0] == "router", "{node}");
            assert!(parts[2].ends_with(&format!(".{namespace}")), "{node}");
            assert_eq!(parts[3], format!("{namespace}.svc.cluster.local"));
            for key in [
                "http.method",
                "http.url",
                "http.protocol",
                "http.status_code",
                "response_flags",
                "response_size",
                "request_size",
                "peer.address",
                "net.host.ip",
                "user_agent",
                "guid:x-request-id",
                "downstream_cluster",
            ] {
                assert!(tag(span, key).is_some(), "{key} missing on {span}");
            }
            let status: u16 = tag(span, "http.status_code").unwrap().parse().unwrap();
            assert_eq!(has_error(span), status >= 500, "{span}");
            let upstream = tag(span, "upstream_cluster").unwrap();
            assert_eq!(tag(span, "upstream_cluster.name"), Some(upstream));
            match tag(span, "span.kind").unwrap() {
                "client" => assert!(upstream.starts_with("outbound|"), "{upstream}"),
                "server" => {
                    assert!(upstream.starts_with("inbound|"), "{upstream}");
                    // A server span's parent is the client span of the same call.
                    let parent = by_id[span["references"][0]["spanID"].as_str().unwrap()];
                    assert_eq!(tag(parent, "span.kind"), Some("client"));
                    assert_eq!(parent["operationName"], span["operationName"]);
                    if app == "reviews" {
                        reviews_versions
                            .insert(tag(span, "istio.canonical_revision").unwrap().to_string());
                    }
                }
                other => panic!("unexpected span.kind {other}"),
            }
            if let Some(parent) = span["references"].as_array().unwrap().first() {
                let parent = by_id[parent["spanID"].as_str().unwrap()];
                let start = span["startTime"].as_u64().unwrap();
                let parent_start = parent["startTime"].as_u64().unwrap();
                assert!(start >= parent_start);
                assert!(
                    start + span["duration"].as_u64().unwrap()
                        <= parent_start + parent["duration"].as_u64().unwrap()
                );
            }
        }
    }
    assert_eq!(
        reviews_versions.into_iter().collect::<Vec<_>>(),
        ["v1", "v2", "v3"]
    );
    let measured = failed as f64 / traces.len() as f64;
    assert!(
        (measured - ERROR_RATE).abs() < 0.06,
        "error rate {measured:.3}, asked for {ERROR_RATE}"
    );
}

#[test]
fn zipkin_and_otlp_http_exporters_reach_the_store() {
    let store = start_store(&["--memory".as_ref()]);
    let zipkin = sim(&[
        "--zipkin",
        &format!("http://{}/api/v2/spans", store.zipkin),
        "--burst",
        "50",
        "--error-rate",
        "0",
    ]);
    assert!(zipkin.starts_with("requests 50 (0 failed)"), "{zipkin}");
    let http = sim(&[
        "--otlp-http",
        &format!("http://{}/v1/traces", store.otlp_http),
        "--burst",
        "50",
        "--seed",
        "8",
    ]);
    assert!(http.contains("spans rejected 0"), "{http}");
    let found = get(&format!(
        "http://{}/api/traces?service=productpage.bookinfo&limit=1000",
        store.query_http
    ));
    assert!(found["data"].as_array().unwrap().len() >= 60);
}
