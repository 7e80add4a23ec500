//! `meshtrace demo` starts, keeps traces flowing into its store, and stops cleanly.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn trace_count(query: &str) -> usize {
    let url =
        format!("http://{query}/api/traces?service=productpage.bookinfo&limit=10000&lookback=1h");
    let body: Value = reqwest::blocking::get(url).unwrap().json().unwrap();
    body["data"].as_array().map_or(0, Vec::len)
}

#[test]
fn the_demo_keeps_traces_flowing_and_stops_cleanly() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .args(["demo", "--rate", "40"])
        .args(common::STORE_LISTENERS)
        .args([
            "--console",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut console = None;
    let mut prometheus = None;
    let mut istio_metrics = None;
    let query = loop {
        let line = lines.next().expect("the demo prints its URLs").unwrap();
        if let Some(url) = line.trim().strip_prefix("console API       http://") {
            console = Some(url.trim_end_matches("/api/namespaces").to_string());
        }
        if let Some(url) = line.trim().strip_prefix("Prometheus API    http://") {
            prometheus = Some(url.to_string());
        }
        if let Some(url) = line.trim().strip_prefix("Istio metrics     ") {
            istio_metrics = Some(url.to_string());
        }
        if let Some(url) = line.trim().strip_prefix("Jaeger query API  http://") {
            break url.trim_end_matches("/api/services").to_string();
        }
    };
    let console = console.expect("the demo prints the console's address");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut first = 0;
    while first == 0 {
        assert!(Instant::now() < deadline, "no trace reached the store");
        std::thread::sleep(Duration::from_millis(200));
        first = trace_count(&query);
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(trace_count(&query) > first, "traces stopped flowing");

    // The console reads the store over gRPC, as Kiali reads Jaeger.
    let body: Value = reqwest::blocking::get(format!(
        "http://{console}/api/namespaces/bookinfo/apps/productpage/traces?limit=5"
    ))
    .unwrap()
    .json()
    .unwrap();
    assert_eq!(body["tracingServiceName"], "productpage.bookinfo");
    assert!(!body["data"].as_array().unwrap().is_empty(), "{body}");
    let tracing: Value = reqwest::blocking::get(format!("http://{console}/api/tracing"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(tracing["integration"], true);

    // The store's Prometheus API serves Istio's request counter derived from the spans.
    let prometheus = prometheus.expect("the demo prints the store's Prometheus API");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body: Value = reqwest::blocking::get(format!(
            "http://{prometheus}/api/v1/query?query=sum(istio_requests_total)&time={}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 60
        ))
        .unwrap()
        .json()
        .unwrap();
        assert_eq!(body["status"], "success", "{body}");
        if !body["data"]["result"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "no derived series: {body}");
        std::thread::sleep(Duration::from_millis(500));
    }

    // The console reads those metrics from the store's /prometheus (the demo's
    // prometheus.url): Kiali's metrics route answers with them once the store has written two
    // buckets of them (a rate needs two samples; a bucket's sample is stamped at its end).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let response = reqwest::blocking::get(format!(
            "http://{console}/api/namespaces/bookinfo/metrics?filters[]=request_count&rateInterval=30s"
        ))
        .unwrap();
        let status = response.status().as_u16();
        let body = response.json::<Value>().unwrap();
        assert_eq!(status, 200, "{body}");
        if body["request_count"].is_array() {
            break;
        }
        assert!(
            body["request_count"].is_null() && Instant::now() < deadline,
            "{body}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    // The simulator serves its proxies' Istio metrics.
    let istio_metrics = istio_metrics.expect("the demo prints the simulator's metrics URL");
    let text = reqwest::blocking::get(&istio_metrics)
        .unwrap()
        .text()
        .unwrap();
    assert!(
        text.lines().any(
            |l| l.starts_with("istio_requests_total{reporter=\"destination\"")
                && l.contains("destination_workload=\"productpage-v1\"")
        ),
        "{}",
        &text[..text.len().min(2000)]
    );

    let rest = common::terminate(&mut child, lines);
    assert!(
        rest.iter()
            .any(|l| l.starts_with("simulator stopped: requests ")),
        "{rest:?}"
    );
    assert!(rest.iter().any(|l| l == "console stopped"), "{rest:?}");
    assert!(rest.iter().any(|l| l == "store stopped"), "{rest:?}");
}
