//! A producer that sends endless label values cannot grow the derived metrics without bound:
//! 10,000 distinct workloads (and apps, and operations) fold into `__overflow__` past the
//! per-label bound, label sets past the series bound go to the all-`__overflow__` series, the
//! folds are counted on `/metrics`, and every span is still stored.

mod common;

use std::time::Duration;

use common::*;
use meshtrace_metrics::{Matcher, SeriesSource};
use meshtrace_store::{MetricsOptions, Store, StoreOptions};
use prost::Message;

const WORKLOADS: u64 = 10_000;
const BATCH: u64 = 500;

/// A sidecar's server span of workload `i`: its own pod, app and operation.
fn span(i: u64, start_us: u64) -> opentelemetry_proto::tonic::trace::v1::Span {
    let node = format!(
        "sidecar~10.{}.{}.{}~wl-{i}-7d8f9c6b5-x2kqp.hostile~hostile.svc.cluster.local",
        i >> 16,
        (i >> 8) & 0xff,
        i & 0xff
    );
    let name = format!("wl-{i}.hostile.svc.cluster.local:9080/op-{i}");
    SpanSpec {
        attributes: vec![
            kv("node_id", s(&node)),
            kv("istio.canonical_service", s(&format!("app-{i}"))),
            kv("upstream_cluster", s("inbound|9080||")),
            kv("http.status_code", s("200")),
        ],
        ..SpanSpec::server(u128::from(i) + 1, i + 1, &name, start_us, 1000 + i)
    }
    .build()
}

async fn send_all(store: &TestStore) {
    let start = meshtrace_testkit::now() - 60_000_000;
    for first in (0..WORKLOADS).step_by(BATCH as usize) {
        let spans = (first..first + BATCH).map(|i| span(i, start + i)).collect();
        let body = request(vec![resource_spans("hostile", vec![], spans)]).encode_to_vec();
        store.export("application/x-protobuf", body).await;
    }
}

fn overflow_requests(store: &Store, label: &str) -> f64 {
    let now = (meshtrace_testkit::now() / 1000) as i64;
    store
        .select(
            &[
                Matcher::equal("__name__", "istio_requests_total"),
                Matcher::equal(label, "__overflow__"),
            ],
            now - 3_600_000,
            now + 60_000,
        )
        .unwrap()
        .iter()
        .map(|s| s.samples.last().unwrap().value)
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_workloads_fold_into_overflow() {
    let store = TestStore::in_memory_with(&StoreOptions::new(Duration::from_secs(3600))).await;
    send_all(&store).await;

    // Every span is stored.
    let (_, traces) = store
        .get_json("/api/traces?service=hostile&limit=100000&lookback=1h")
        .await;
    assert_eq!(traces["data"].as_array().unwrap().len() as u64, WORKLOADS);

    // 1000 distinct workloads (the default bound) have their own series; the other 9000
    // requests are counted under __overflow__, and each fold is counted.
    let istio = store
        .metric("meshtrace_store_metrics_series{family=\"istio\"}")
        .await;
    assert!(istio <= 1001, "{istio} Istio series");
    for label in ["destination_workload", "destination_canonical_service"] {
        let folded = store
            .metric(&format!(
                "meshtrace_store_metrics_overflow_total{{family=\"istio\",label=\"{label}\"}}"
            ))
            .await;
        assert_eq!(folded, WORKLOADS - 1000, "{label}");
        assert_eq!(
            overflow_requests(&store.store, label),
            (WORKLOADS - 1000) as f64
        );
    }
    let service = store
        .metric("meshtrace_store_metrics_series{family=\"service\"}")
        .await;
    assert!(service <= 1001, "{service} per-service series");
    let resident = store.metric("meshtrace_store_metrics_resident_cells").await;
    assert!(resident <= 16_384, "{resident} cells in memory");

    // The Monitor API still answers, with the operations folded.
    let (status, body) = store
        .get_json(
            "/api/metrics/calls?service=hostile&groupByOperation=true&ratePer=3600000&lookback=0",
        )
        .await;
    assert_eq!(status, 200);
    assert!(body["metrics"].as_array().unwrap().len() <= 1001);
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn label_sets_past_the_series_bound_go_to_one_series() {
    let options = StoreOptions {
        metrics: Some(MetricsOptions {
            max_series: 50,
            max_label_values: 1_000_000,
            ..MetricsOptions::default()
        }),
        ..StoreOptions::new(Duration::from_secs(3600))
    };
    let store = TestStore::in_memory_with(&options).await;
    send_all(&store).await;
    assert!(
        store
            .metric("meshtrace_store_metrics_series{family=\"istio\"}")
            .await
            <= 51
    );
    let folded = store
        .metric("meshtrace_store_metrics_overflow_total{family=\"istio\",label=\"series\"}")
        .await;
    assert_eq!(folded, WORKLOADS - 50);
    // In the all-overflow series, even the reporter.
    assert_eq!(
        overflow_requests(&store.store, "reporter"),
        (WORKLOADS - 50) as f64
    );
    store.stop().await;
}
