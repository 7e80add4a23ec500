//! `meshtrace sim --metrics-listen`: the Istio metrics of the simulated proxies, checked against
//! real parts. Their text passes `promtool check metrics`, and its counts, durations and sizes
//! are exactly those of the spans a real `meshtrace store` received (worked out here from the
//! spans themselves, per reporting pod, edge, response code and flags); a real Prometheus
//! scraping the endpoint answers Kiali's request-rate query with the simulator's configured
//! rates.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::{start_sim, start_store};
use meshtrace_testkit::prometheus::{RealPrometheus, promtool_check_metrics};
use serde_json::Value;

/// One sample line of the exposition: `name{labels} value`.
fn parse_sample(line: &str) -> Option<(&str, HashMap<String, String>, f64)> {
    let (name, rest) = line.split_once('{')?;
    let (labels, value) = rest.rsplit_once("} ")?;
    let mut map = HashMap::new();
    let mut rest = labels;
    while !rest.is_empty() {
        let (key, after) = rest.split_once("=\"")?;
        // Values here never hold a quote; an escaped one would be `\"`.
        let end = after.find('"')?;
        map.insert(key.to_string(), after[..end].to_string());
        rest = after[end + 1..].trim_start_matches(',');
    }
    Some((name, map, value.trim().parse().ok()?))
}

/// What one proxy counted: (reporter, pod, source workload, destination workload, destination
/// service name, response code, response flags).
type Edge = (String, String, String, String, String, String, String);

#[derive(Debug, Default, PartialEq)]
struct Totals {
    requests: u64,
    duration_ms: f64,
    response_bytes: f64,
}

fn edge_of(labels: &HashMap<String, String>) -> Edge {
    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
    (
        get("reporter"),
        get("pod"),
        get("source_workload"),
        get("destination_workload"),
        get("destination_service_name"),
        get("response_code"),
        get("response_flags"),
    )
}

/// The exposition's requests, durations and response sizes per edge.
fn from_metrics(text: &str) -> BTreeMap<Edge, Totals> {
    let mut totals: BTreeMap<Edge, Totals> = BTreeMap::new();
    for (name, labels, value) in text.lines().filter_map(parse_sample) {
        let entry = totals.entry(edge_of(&labels)).or_default();
        match name {
            "istio_requests_total" => entry.requests += value as u64,
            "istio_request_duration_milliseconds_sum" => entry.duration_ms += value,
            "istio_response_bytes_sum" => entry.response_bytes += value,
            _ => {}
        }
    }
    totals
}

/// A string tag of `span`; empty when it has none.
fn tag<'a>(span: &'a Value, key: &str) -> &'a str {
    meshtrace_testkit::jaeger_json::tag(span, key).unwrap_or("")
}

/// The reporting pod of an Envoy span, from its `node_id` (`sidecar~ip~pod.ns~...`).
fn pod_of(span: &Value) -> String {
    let node = tag(span, "node_id");
    let pod_ns = node.split('~').nth(2).unwrap_or_default();
    pod_ns.rsplit_once('.').unwrap().0.to_string()
}

/// A Kubernetes pod's workload: its name without the ReplicaSet hash and the pod suffix.
fn workload_of(pod: &str) -> String {
    let parts: Vec<&str> = pod.split('-').collect();
    parts[..parts.len() - 2].join("-")
}

/// The same totals, worked out from the spans the store holds: a client span is its proxy's
/// `source` report, a server span its proxy's `destination` report; the other end is the
/// server span under the client span, or the client span above the server span.
fn from_spans(traces: &[Value]) -> (BTreeMap<Edge, Totals>, usize) {
    let mut totals: BTreeMap<Edge, Totals> = BTreeMap::new();
    let mut count = 0;
    for trace in traces {
        let spans = trace["spans"].as_array().unwrap();
        count += spans.len();
        let by_id: HashMap<&str, &Value> = spans
            .iter()
            .map(|s| (s["spanID"].as_str().unwrap(), s))
            .collect();
        let parent_of = |span: &Value| {
            span["references"]
                .as_array()
                .and_then(|r| r.first())
                .and_then(|r| by_id.get(r["spanID"].as_str().unwrap()).copied())
        };
        for span in spans {
            let kind = tag(span, "span.kind");
            let own = workload_of(&pod_of(span));
            let (reporter, source, destination) = match kind {
                "client" => {
                    let server = spans.iter().find(|s| {
                        tag(s, "span.kind") == "server"
                            && parent_of(s).is_some_and(|p| p["spanID"] == span["spanID"])
                    });
                    let destination =
                        server.map_or("unknown".to_string(), |s| workload_of(&pod_of(s)));
                    ("source", own, destination)
                }
                "server" => {
                    let client = parent_of(span).expect("a server span's parent is in its trace");
                    ("destination", workload_of(&pod_of(client)), own)
                }
                other => panic!("a sidecar span of kind {other:?}"),
            };
            let service = span["operationName"]
                .as_str()
                .unwrap()
                .split('.')
                .next()
                .unwrap()
                .to_string();
            let edge = (
                reporter.to_string(),
                pod_of(span),
                source,
                destination,
                service,
                tag(span, "http.status_code").to_string(),
                tag(span, "response_flags").to_string(),
            );
            let entry = totals.entry(edge).or_default();
            entry.requests += 1;
            entry.duration_ms += span["duration"].as_u64().unwrap() as f64 / 1000.0;
            entry.response_bytes += tag(span, "response_size").parse::<f64>().unwrap();
        }
    }
    (totals, count)
}

/// Every trace in the store, read back over the Jaeger HTTP API (each service's, deduplicated).
fn all_traces(query: &str) -> Vec<Value> {
    let get = |path: &str| -> Value {
        reqwest::blocking::get(format!("http://{query}{path}"))
            .unwrap()
            .json()
            .unwrap()
    };
    let mut traces: BTreeMap<String, Value> = BTreeMap::new();
    for service in get("/api/services")["data"].as_array().unwrap() {
        let found = get(&format!(
            "/api/traces?service={}&limit=100000&lookback=1h",
            service.as_str().unwrap()
        ));
        for trace in found["data"].as_array().unwrap() {
            traces.insert(
                trace["traceID"].as_str().unwrap().to_string(),
                trace.clone(),
            );
        }
    }
    traces.into_values().collect()
}

#[test]
fn the_istio_metrics_count_exactly_the_spans_the_store_received() {
    let store = start_store(&["--memory".as_ref()]);
    let sim = start_sim(
        &store,
        &["--burst", "400", "--error-rate", "0.25", "--seed", "11"],
    );
    let summary = sim
        .stdout
        .recv_timeout(Duration::from_secs(120))
        .expect("the simulator prints its summary when the burst is sent");
    assert!(summary.contains("spans rejected 0"), "{summary}");
    let sent: usize = summary
        .split("spans sent ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no span count in {summary:?}"));

    // The traffic has ended; the endpoint still serves the final counts.
    let response = reqwest::blocking::get(format!("http://{}/metrics", sim.metrics)).unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text"),
    );
    let text = response.text().unwrap();
    let missing = reqwest::blocking::get(format!("http://{}/other", sim.metrics)).unwrap();
    assert_eq!(missing.status(), 404);

    // promtool parses it. What it still says are lint notes, not errors: Istio's own name for
    // the duration (not in seconds), and OpenMetrics' counter family name (`istio_requests`,
    // whose HELP the classic-format linter does not match with `istio_requests_total`).
    let (code, problems) = promtool_check_metrics(&text);
    assert_eq!(
        problems,
        [
            "istio_request_duration_milliseconds use base unit \"seconds\" instead of \"milliseconds\"",
            "istio_requests_total no help text",
        ],
        "exit code {code:?}"
    );
    assert_eq!(
        code,
        Some(3),
        "3 is promtool's exit code for lint notes only"
    );

    // Every histogram has Envoy's default buckets.
    let bounds: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("istio_request_duration_milliseconds_bucket{"))
        .take(20)
        .map(|l| l.split("le=\"").nth(1).unwrap().split('"').next().unwrap())
        .collect();
    assert_eq!(
        bounds,
        [
            "0.5",
            "1.0",
            "5.0",
            "10.0",
            "25.0",
            "50.0",
            "100.0",
            "250.0",
            "500.0",
            "1000.0",
            "2500.0",
            "5000.0",
            "10000.0",
            "30000.0",
            "60000.0",
            "300000.0",
            "600000.0",
            "1800000.0",
            "3600000.0",
            "+Inf"
        ]
    );

    // The store commits in groups: wait until every span sent is readable.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (expected, stored) = loop {
        let (totals, count) = from_spans(&all_traces(&store.query_http));
        if count >= sent {
            break (totals, count);
        }
        assert!(Instant::now() < deadline, "{count} of {sent} spans stored");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(stored, sent);
    let got = from_metrics(&text);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (edge, want) in &expected {
        let have = &got[edge];
        assert_eq!(have.requests, want.requests, "{edge:?}");
        assert_eq!(have.response_bytes, want.response_bytes, "{edge:?}");
        assert!(
            (have.duration_ms - want.duration_ms).abs() <= 1e-6 * want.duration_ms.max(1.0),
            "{edge:?}: {} ms in the metrics, {} ms in the spans",
            have.duration_ms,
            want.duration_ms
        );
    }
    // The faults asked for are there: 503 UH with no destination workload, and 500s.
    let codes: Vec<&str> = expected.keys().map(|e| e.5.as_str()).collect();
    assert!(
        codes.contains(&"500") && codes.contains(&"503"),
        "{codes:?}"
    );
    assert!(
        expected
            .keys()
            .any(|e| e.5 == "503" && e.6 == "UH" && e.3 == "unknown")
    );
}

/// Kiali's request rate per Bookinfo workload, from a real Prometheus scraping the simulator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scraping_the_simulator_sees_the_configured_rates() {
    const RATE: f64 = 100.0;
    let store = start_store(&["--memory".as_ref()]);
    let rate = RATE.to_string();
    let sim = start_sim(
        &store,
        &["--rate", &rate, "--error-rate", "0", "--seed", "5"],
    );
    let started = Instant::now();
    // Every 5 s, with as long to answer: a scrape is a few MB of text (Istio's labels are long),
    // and the machine is shared with the store and the other tests.
    let prometheus = RealPrometheus::scraping("meshtrace-sim", &[&sim.metrics], 5).await;
    let client = reqwest::Client::new();
    let query = |promql: &'static str| {
        let client = client.clone();
        let url = prometheus.url("/api/v1/query");
        async move {
            let body: Value =
                meshtrace_testkit::http::json(client.get(url).query(&[("query", promql)])).await;
            assert_eq!(body["status"], "success", "{body}");
            body["data"]["result"].as_array().unwrap().clone()
        }
    };
    // rate() over a minute needs a minute of samples.
    tokio::time::sleep(Duration::from_secs(70).saturating_sub(started.elapsed())).await;
    // Most scrapes of the last minute succeeded.
    let up = query("avg_over_time(up{job=\"meshtrace-sim\"}[1m])").await;
    assert_eq!(up.len(), 1, "{up:?}");
    let scraped: f64 = up[0]["value"][1].as_str().unwrap().parse().unwrap();
    let took = query("max_over_time(scrape_duration_seconds{job=\"meshtrace-sim\"}[1m])").await;
    assert!(
        scraped >= 0.8,
        "{scraped} of the scrapes succeeded (the longest took {:?} s): {}",
        took.first().map(|t| t["value"][1].clone()),
        prometheus.log()
    );
    eprintln!("scrapes: {scraped} succeeded, the longest took {took:?}");

    let result = query(
        "sum(rate(istio_requests_total{reporter=\"destination\",\
         destination_workload_namespace=\"bookinfo\"}[1m])) by (destination_workload)",
    )
    .await;
    let rates: BTreeMap<String, f64> = result
        .iter()
        .map(|r| {
            (
                r["metric"]["destination_workload"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                r["value"][1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    // Three requests in four enter through the gateway to productpage, which calls details and
    // reviews (one of its three versions at random), which calls ratings.
    let bookinfo = RATE * 3.0 / 4.0;
    let expected = [
        ("details-v1", bookinfo),
        ("productpage-v1", bookinfo),
        ("ratings-v1", bookinfo),
        ("reviews-v1", bookinfo / 3.0),
        ("reviews-v2", bookinfo / 3.0),
        ("reviews-v3", bookinfo / 3.0),
    ];
    assert_eq!(
        rates.keys().map(String::as_str).collect::<Vec<_>>(),
        expected.iter().map(|(w, _)| *w).collect::<Vec<_>>()
    );
    eprintln!("rates: {rates:?}");
    for (workload, want) in expected {
        let have = rates[workload];
        assert!(
            (have - want).abs() <= want * 0.10,
            "{workload}: {have:.2}/s, configured {want:.2}/s ({rates:?})"
        );
    }
    drop(sim);
}
