//! Istio's request metrics derived from the simulator's Bookinfo traffic: the simulator sends
//! its sidecar (and, in ambient mode, waypoint) spans to a real store over OTLP/gRPC; the spans
//! are read back through `/api/traces`, and the requests Istio would have counted are worked
//! out from them here — from each span's `node_id`, its parent or child in the trace, and its
//! status code — and compared with the store's `istio_requests_total` series, count for count.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::TestStore;
use meshtrace_metrics::{Matcher, Series, SeriesSource};
use meshtrace_sim::export::Target;
use meshtrace_sim::run::{RunOptions, Stats, run};
use meshtrace_sim::{Generator, Mesh, Options, Topology};
use meshtrace_store::{Store, StoreOptions};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A span read back, with what this test needs of it.
struct Read {
    trace: String,
    id: String,
    parent: Option<String>,
    kind: String,
    tags: HashMap<String, String>,
    end_ms: u64,
    duration_us: u64,
}

async fn simulate(store: &TestStore, ambient: bool, requests: usize) -> Vec<Read> {
    let mesh = Mesh::new(Topology::bookinfo(), 11, 1);
    let options = Options {
        error_rate: 0.05,
        ambient,
        ..Options::default()
    };
    let generator = Generator::new(mesh, 11, options);
    let stats = Arc::new(Stats::default());
    run(
        generator,
        Target::OtlpGrpc(store.otlp_grpc()),
        RunOptions {
            burst: Some(requests),
            batch_size: 256,
            ..RunOptions::default()
        },
        stats.clone(),
        std::future::pending(),
    )
    .await;
    assert_eq!(
        stats
            .spans_rejected
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );

    let (_, services) = store.get_json("/api/services").await;
    let mut spans: BTreeMap<(String, String), Read> = BTreeMap::new();
    for service in services["data"].as_array().unwrap() {
        let service = service.as_str().unwrap();
        let (status, body) = store
            .get_json(&format!(
                "/api/traces?service={service}&limit=100000&lookback=1h"
            ))
            .await;
        assert_eq!(status, 200);
        for trace in body["data"].as_array().unwrap() {
            for span in trace["spans"].as_array().unwrap() {
                let tags: HashMap<String, String> = span["tags"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|t| {
                        Some((
                            t["key"].as_str()?.to_string(),
                            t["value"].as_str()?.to_string(),
                        ))
                    })
                    .collect();
                let parent = span["references"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["refType"] == "CHILD_OF")
                    .map(|r| r["spanID"].as_str().unwrap().to_string());
                let start = span["startTime"].as_u64().unwrap();
                let duration = span["duration"].as_u64().unwrap();
                let read = Read {
                    trace: span["traceID"].as_str().unwrap().to_string(),
                    id: span["spanID"].as_str().unwrap().to_string(),
                    parent,
                    kind: tags.get("span.kind").cloned().unwrap_or_default(),
                    tags,
                    end_ms: (start + duration) / 1000,
                    duration_us: duration,
                };
                spans.insert((read.trace.clone(), read.id.clone()), read);
            }
        }
    }
    let spans: Vec<Read> = spans.into_values().collect();
    // Every span has ended (and its bucket is the one in progress, or closed) before reading.
    let last_end = spans.iter().map(|s| s.end_ms).max().unwrap();
    while now_ms() <= last_end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    spans
}

/// The workload of a `node_id` (`sidecar~ip~<pod>.<ns>~…`): the simulator names pods
/// `<workload>-<replica set>-<suffix>`.
fn node_workload(node_id: &str) -> String {
    let pod = node_id
        .split('~')
        .nth(2)
        .unwrap()
        .rsplit_once('.')
        .unwrap()
        .0;
    pod.rsplitn(3, '-').last().unwrap().to_string()
}

/// (reporter, source workload, destination workload, response code) → requests, as Istio
/// counts them: a client (or gateway) span is the source's report, its child server span the
/// destination's; without a child (no healthy upstream) the destination is unknown.
fn expected_sidecar_counts(spans: &[Read]) -> BTreeMap<(String, String, String, String), u64> {
    let by_id: HashMap<(&str, &str), &Read> = spans
        .iter()
        .map(|s| ((s.trace.as_str(), s.id.as_str()), s))
        .collect();
    let mut child_of: HashMap<(&str, &str), &Read> = HashMap::new();
    for s in spans {
        if let Some(parent) = &s.parent
            && s.kind == "server"
        {
            child_of.insert((s.trace.as_str(), parent.as_str()), s);
        }
    }
    let mut counts = BTreeMap::new();
    for s in spans {
        let node = &s.tags["node_id"];
        let own = node_workload(node);
        let (reporter, source, destination) = if s.kind == "server" {
            let parent = by_id[&(s.trace.as_str(), s.parent.as_deref().unwrap())];
            ("destination", node_workload(&parent.tags["node_id"]), own)
        } else {
            let child = child_of.get(&(s.trace.as_str(), s.id.as_str()));
            let destination =
                child.map_or("unknown".to_string(), |c| node_workload(&c.tags["node_id"]));
            ("source", own, destination)
        };
        *counts
            .entry((
                reporter.to_string(),
                source,
                destination,
                s.tags["http.status_code"].clone(),
            ))
            .or_insert(0) += 1;
    }
    counts
}

fn select(store: &Store, name: &str) -> Vec<Series> {
    let now = now_ms() as i64;
    store
        .select(
            &[Matcher::equal("__name__", name)],
            now - 3_600_000,
            now + 60_000,
        )
        .unwrap()
}

/// The latest value of each series, by the four labels compared.
fn observed(series: &[Series]) -> BTreeMap<(String, String, String, String), u64> {
    let mut out = BTreeMap::new();
    for s in series {
        let l = |name: &str| s.labels.get(name).unwrap_or("").to_string();
        let last = s.samples.last().unwrap().value as u64;
        *out.entry((
            l("reporter"),
            l("source_workload"),
            l("destination_workload"),
            l("response_code"),
        ))
        .or_insert(0) += last;
    }
    out
}

fn store_options() -> StoreOptions {
    StoreOptions::new(Duration::from_secs(24 * 3600))
}

#[tokio::test(flavor = "multi_thread")]
async fn bookinfo_sidecar_traffic_gives_istios_request_series() {
    let store = TestStore::in_memory_with(&store_options()).await;
    let spans = simulate(&store, false, 400).await;
    let expected = expected_sidecar_counts(&spans);
    let requests = select(&store.store, "istio_requests_total");
    assert_eq!(observed(&requests), expected);

    // The Bookinfo edges, each reported by both ends.
    for (source, destination) in [
        ("istio-ingressgateway", "productpage-v1"),
        ("productpage-v1", "details-v1"),
        ("reviews-v2", "ratings-v1"),
        ("reviews-v3", "ratings-v1"),
    ] {
        for reporter in ["source", "destination"] {
            assert!(
                expected
                    .keys()
                    .any(|k| k.0 == reporter && k.1 == source && k.2 == destination),
                "no {reporter} report of {source} → {destination}"
            );
        }
    }
    assert!(
        expected.keys().any(|k| k.2 == "unknown" && k.3 == "503"),
        "the faults show"
    );

    // Every label a Kiali graph query groups by is there, as Istio writes it.
    let edge = requests
        .iter()
        .find(|s| {
            s.labels.get("reporter") == Some("destination")
                && s.labels.get("destination_workload") == Some("reviews-v2")
                && s.labels.get("response_code") == Some("200")
        })
        .unwrap();
    for (label, value) in [
        ("source_workload", "productpage-v1"),
        ("source_workload_namespace", "bookinfo"),
        ("source_canonical_service", "productpage"),
        ("source_canonical_revision", "v1"),
        ("source_cluster", "Kubernetes"),
        ("destination_workload_namespace", "bookinfo"),
        ("destination_canonical_service", "reviews"),
        ("destination_canonical_revision", "v2"),
        ("destination_service", "reviews.bookinfo.svc.cluster.local"),
        ("destination_service_name", "reviews"),
        ("destination_service_namespace", "bookinfo"),
        ("request_protocol", "http"),
        ("response_flags", "-"),
        ("source_principal", "unknown"),
        ("connection_security_policy", "unknown"),
    ] {
        assert_eq!(
            edge.labels.get(label),
            Some(value),
            "{label} of {:?}",
            edge.labels
        );
    }
    assert_eq!(
        edge.labels.get("grpc_response_status"),
        None,
        "absent for HTTP"
    );

    // The histograms agree with the counter and with the spans' durations.
    let count = select(&store.store, "istio_request_duration_milliseconds_count");
    let sums = select(&store.store, "istio_request_duration_milliseconds_sum");
    let infinite: Vec<Series> = store
        .store
        .select(
            &[
                Matcher::equal("__name__", "istio_request_duration_milliseconds_bucket"),
                Matcher::equal("le", "+Inf"),
            ],
            now_ms() as i64 - 3_600_000,
            now_ms() as i64 + 60_000,
        )
        .unwrap();
    assert_eq!(observed(&count), expected);
    assert_eq!(observed(&infinite), expected);
    let total_ms: f64 = sums.iter().map(|s| s.samples.last().unwrap().value).sum();
    let spans_ms: f64 = spans.iter().map(|s| s.duration_us as f64 / 1000.0).sum();
    assert!(
        (total_ms - spans_ms).abs() < 1e-6 * spans_ms,
        "{total_ms} vs {spans_ms}"
    );

    // One workload over the last minutes: a read that looks its few buckets up among the
    // cells in memory rather than walking them all, with the same counts.
    let now = now_ms() as i64;
    let narrow = store
        .store
        .select(
            &[
                Matcher::equal("__name__", "istio_requests_total"),
                Matcher::equal("reporter", "destination"),
                Matcher::equal("destination_workload", "reviews-v2"),
            ],
            now - 120_000,
            now + 60_000,
        )
        .unwrap();
    let reviews: BTreeMap<_, _> = expected
        .iter()
        .filter(|(k, _)| k.0 == "destination" && k.2 == "reviews-v2")
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    assert!(!reviews.is_empty());
    assert_eq!(observed(&narrow), reviews);

    // Counters never decrease, and the buckets are cumulative in `le`.
    for s in &requests {
        assert!(s.samples.windows(2).all(|w| w[0].value <= w[1].value));
        assert!(
            s.samples
                .windows(2)
                .all(|w| w[0].timestamp_ms < w[1].timestamp_ms)
        );
    }
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ambient_traffic_is_reported_by_the_waypoint() {
    let store = TestStore::in_memory_with(&store_options()).await;
    let spans = simulate(&store, true, 150).await;
    let mut expected = BTreeMap::new();
    for s in &spans {
        *expected
            .entry((
                "waypoint".to_string(),
                s.tags["istio.source_workload"].clone(),
                s.tags["istio.destination_workload"].clone(),
                s.tags["http.status_code"].clone(),
            ))
            .or_insert(0u64) += 1;
    }
    let requests = select(&store.store, "istio_requests_total");
    assert_eq!(observed(&requests), expected);
    // The waypoint names both ends' canonical service and revision.
    let edge = requests
        .iter()
        .find(|s| s.labels.get("destination_workload") == Some("ratings-v1"))
        .unwrap();
    for (label, value) in [
        ("destination_canonical_service", "ratings"),
        ("destination_canonical_revision", "v1"),
        ("destination_service", "ratings.bookinfo.svc.cluster.local"),
        ("source_canonical_service", "reviews"),
    ] {
        assert_eq!(
            edge.labels.get(label),
            Some(value),
            "{label} of {:?}",
            edge.labels
        );
    }
    store.stop().await;
}

#[test]
fn a_workload_from_a_node_id() {
    assert_eq!(
        node_workload(
            "sidecar~10.244.0.5~reviews-v2-7d8f9c6b5-x2kqp.bookinfo~bookinfo.svc.cluster.local"
        ),
        "reviews-v2"
    );
}

/// Kiali's query shapes, sent over the wire to the store's Prometheus-compatible API, see the
/// same Bookinfo requests: the counters' sums are the counts worked out from the spans, and the
/// graph's rate query (Kiali's namespace graph, reporter="source") finds every edge.
#[tokio::test(flavor = "multi_thread")]
async fn kiali_queries_over_the_prometheus_api_see_the_bookinfo_requests() {
    let store = TestStore::in_memory_with(&store_options()).await;
    let spans = simulate(&store, false, 200).await;
    let expected = expected_sidecar_counts(&spans);
    // A bucket's sample is stamped with the bucket's end, as a scrape at that moment would be:
    // ask a minute ahead so that the bucket still open is seen.
    let at = now_ms() / 1000 + 60;

    let query = "sum(istio_requests_total) by (reporter,source_workload,destination_workload,response_code)";
    let body = store.prometheus_query(query, at).await;
    assert_eq!(body["data"]["resultType"], "vector");
    let mut observed = BTreeMap::new();
    for sample in body["data"]["result"].as_array().unwrap() {
        let l = |name: &str| sample["metric"][name].as_str().unwrap_or("").to_string();
        let value: f64 = sample["value"][1].as_str().unwrap().parse().unwrap();
        observed.insert(
            (
                l("reporter"),
                l("source_workload"),
                l("destination_workload"),
                l("response_code"),
            ),
            value as u64,
        );
    }
    assert_eq!(observed, expected);

    let graph = "sum(rate(istio_requests_total{reporter=\"source\"}[1h])) by (source_workload_namespace,source_workload,source_canonical_service,source_canonical_revision,destination_service_namespace,destination_service,destination_service_name,destination_workload_namespace,destination_workload,destination_canonical_service,destination_canonical_revision,request_protocol,response_code,grpc_response_status,response_flags) > 0";
    let body = store.prometheus_query(graph, at).await;
    let edges: BTreeSet<(String, String)> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let l = |name: &str| s["metric"][name].as_str().unwrap_or("").to_string();
            (l("source_workload"), l("destination_workload"))
        })
        .collect();
    let expected_edges: BTreeSet<(String, String)> = expected
        .keys()
        .filter(|k| k.0 == "source")
        .map(|k| (k.1.clone(), k.2.clone()))
        .collect();
    assert_eq!(edges, expected_edges);
}
