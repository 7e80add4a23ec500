//! A sidecar's client span learns its callee from its server span, whichever batch either comes
//! in: Bookinfo requests whose client and server spans are exported in separate OTLP/gRPC
//! batches (as each proxy exports its own), in either order, are counted by the store's
//! `/prometheus` under `reporter="source"` with the workload that answered; a client span whose
//! server span never comes is counted with `unknown` once its wait is over (or at a clean
//! close); and a flood of such client spans waits only up to the cap.
//!
//! The expected counts are written out here from the requests sent, not computed by the store's
//! logic.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{SpanSpec, TestStore, kv, request, resource_spans, s};
use meshtrace_store::{MetricsOptions, Store, StoreOptions};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;

const CLIENT: i32 = 3;
const SERVER: i32 = 2;

fn options(pair_wait: Duration, max_waiting: usize) -> StoreOptions {
    StoreOptions {
        metrics: Some(MetricsOptions {
            pair_wait,
            max_waiting,
            ..MetricsOptions::default()
        }),
        ..StoreOptions::new(Duration::from_secs(3600))
    }
}

/// One Bookinfo pod's sidecar.
struct Pod {
    ip: &'static str,
    pod: &'static str,
    app: &'static str,
    version: &'static str,
}

const fn pod(ip: &'static str, pod: &'static str, app: &'static str, version: &'static str) -> Pod {
    Pod {
        ip,
        pod,
        app,
        version,
    }
}

const PRODUCTPAGE: Pod = pod(
    "10.244.0.11",
    "productpage-v1-6b746f74dc-9stvs",
    "productpage",
    "v1",
);
const REVIEWS_V2: Pod = pod("10.244.0.12", "reviews-v2-7d8f9c6b5-x2kqp", "reviews", "v2");
const DETAILS: Pod = pod(
    "10.244.0.13",
    "details-v1-5f4d584748-bz42z",
    "details",
    "v1",
);
const RATINGS: Pod = pod(
    "10.244.0.14",
    "ratings-v1-85c74b6cb4-6xkfw",
    "ratings",
    "v1",
);

/// A sidecar span of `pod`: the client side of a call to `callee`'s service, or the server
/// side of it.
fn sidecar_span(
    pod: &Pod,
    callee: &str,
    (trace, span, parent): (u128, u64, u64),
    kind: i32,
) -> SpanSpec<'static> {
    let upstream = if kind == CLIENT {
        format!("outbound|9080||{callee}.bookinfo.svc.cluster.local")
    } else {
        "inbound|9080||".to_string()
    };
    let start_us = meshtrace_testkit::now().saturating_sub(2_000_000);
    SpanSpec {
        trace,
        span,
        parent,
        name: "",
        kind,
        start_us,
        duration_us: 12_000,
        attributes: vec![
            kv(
                "node_id",
                s(&format!(
                    "sidecar~{}~{}.bookinfo~bookinfo.svc.cluster.local",
                    pod.ip, pod.pod
                )),
            ),
            kv("istio.canonical_service", s(pod.app)),
            kv("istio.canonical_revision", s(pod.version)),
            kv("upstream_cluster", s(&upstream)),
            kv("http.status_code", s("200")),
        ],
        error: false,
    }
}

/// The spans of `pod`'s proxy, as that proxy exports them.
fn proxy_batch(pod: &Pod, spans: Vec<SpanSpec<'static>>) -> ResourceSpans {
    let service = format!("{}.bookinfo", pod.app);
    resource_spans(
        &service,
        vec![],
        spans.iter().map(SpanSpec::build).collect(),
    )
}

/// Requests from productpage: `calls` of (callee pod, service name, trace number).
struct Calls {
    clients: Vec<ResourceSpans>,
    servers: Vec<ResourceSpans>,
}

fn calls(list: &[(&Pod, &str, u128)]) -> Calls {
    let mut clients = Vec::new();
    let mut servers: BTreeMap<&str, (&Pod, Vec<SpanSpec<'static>>)> = BTreeMap::new();
    for (callee, service, trace) in list {
        let client_id = (*trace as u64) * 16 + 1;
        clients.push(sidecar_span(
            &PRODUCTPAGE,
            service,
            (*trace, client_id, 0),
            CLIENT,
        ));
        let server = sidecar_span(callee, service, (*trace, client_id + 1, client_id), SERVER);
        servers
            .entry(callee.pod)
            .or_insert_with(|| (callee, Vec::new()))
            .1
            .push(server);
    }
    Calls {
        clients: vec![proxy_batch(&PRODUCTPAGE, clients)],
        servers: servers
            .into_values()
            .map(|(pod, spans)| proxy_batch(pod, spans))
            .collect(),
    }
}

/// 7 requests to reviews-v2 and 3 to details-v1, traces from `first` on.
fn bookinfo(first: u128) -> Calls {
    let list: Vec<(&Pod, &str, u128)> = (0..10)
        .map(|i| {
            if i % 10 < 7 {
                (&REVIEWS_V2, "reviews", first + i)
            } else {
                (&DETAILS, "details", first + i)
            }
        })
        .collect();
    calls(&list)
}

async fn export(store: &TestStore, batch: Vec<ResourceSpans>) {
    let mut client = TraceServiceClient::connect(store.otlp_grpc())
        .await
        .unwrap();
    let reply = client.export(request(batch)).await.unwrap().into_inner();
    assert!(
        reply
            .partial_success
            .as_ref()
            .is_none_or(|p| p.rejected_spans == 0 && p.error_message.is_empty()),
        "{reply:?}"
    );
}

/// `sum by (destination_workload, destination_version, destination_canonical_service)` of
/// `istio_requests_total{reporter="source"}` now: the count per callee.
async fn source_counts(store: &TestStore) -> BTreeMap<String, u64> {
    let query = "sum by (destination_workload, destination_version, destination_canonical_service) (istio_requests_total{reporter=\"source\"})";
    // A minute ahead: the sample of the bucket still open is seen (as a later scrape would).
    let body = store
        .prometheus_query(query, meshtrace_testkit::now() / 1_000_000 + 60)
        .await;
    body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let m = &r["metric"];
            let key = format!(
                "{}/{}/{}",
                m["destination_workload"].as_str().unwrap(),
                m["destination_version"].as_str().unwrap(),
                m["destination_canonical_service"].as_str().unwrap()
            );
            (key, r["value"][1].as_str().unwrap().parse::<u64>().unwrap())
        })
        .collect()
}

fn expected(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// What [`bookinfo`] sends, by callee.
const BOOKINFO: [(&str, u64); 2] = [("details-v1/v1/details", 3), ("reviews-v2/v2/reviews", 7)];

async fn memory_store(pair_wait: Duration, max_waiting: usize) -> TestStore {
    let store = Store::in_memory_with(&options(pair_wait, max_waiting));
    TestStore::start(store, 16 << 20).await
}

/// The store's `/metrics` of the wait: spans waiting, paired late, unpaired, over the cap.
async fn wait_metrics(store: &TestStore) -> [u64; 4] {
    [
        store.metric("meshtrace_store_metrics_spans_waiting").await,
        store
            .metric("meshtrace_store_metrics_spans_paired_late_total")
            .await,
        store
            .metric("meshtrace_store_metrics_spans_unpaired_total")
            .await,
        store
            .metric("meshtrace_store_metrics_spans_wait_overflow_total")
            .await,
    ]
}

/// Polls `/metrics` until `series` reads `value` (at most 30 s: a bound, not a timing).
async fn until_metric(store: &TestStore, series: &str, value: u64) {
    let give_up = Instant::now() + Duration::from_secs(30);
    while store.metric(series).await != value {
        assert!(
            Instant::now() < give_up,
            "{series} never reached {value}: {}",
            store.metric(series).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_spans_first_are_counted_with_the_callee_their_server_spans_name() {
    // A wait far longer than the test: only the server spans can end it.
    let store = memory_store(Duration::from_secs(600), 1000).await;
    let calls = bookinfo(1);
    export(&store, calls.clients).await;
    assert_eq!(wait_metrics(&store).await, [10, 0, 0, 0]);
    assert_eq!(source_counts(&store).await, expected(&[]));

    for batch in calls.servers {
        export(&store, vec![batch]).await;
    }
    assert_eq!(source_counts(&store).await, expected(&BOOKINFO));
    assert_eq!(wait_metrics(&store).await, [0, 10, 0, 0]);
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_spans_first_name_the_callee_at_once() {
    let store = memory_store(Duration::from_secs(600), 1000).await;
    let calls = bookinfo(100);
    export(&store, calls.servers).await;
    export(&store, calls.clients).await;
    assert_eq!(wait_metrics(&store).await, [0, 0, 0, 0]);
    assert_eq!(source_counts(&store).await, expected(&BOOKINFO));
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn client_spans_never_answered_are_counted_unknown_after_the_wait() {
    let store = memory_store(Duration::from_millis(500), 1000).await;
    // Ten requests whose server spans came first (whatever the machine's speed, they cannot
    // miss the short wait) and four to ratings whose server spans never come.
    let paired = bookinfo(200);
    let lost = calls(&[
        (&RATINGS, "ratings", 300),
        (&RATINGS, "ratings", 301),
        (&RATINGS, "ratings", 302),
        (&RATINGS, "ratings", 303),
    ]);
    export(&store, paired.servers).await;
    let mut clients = paired.clients;
    clients.extend(lost.clients);
    export(&store, clients).await;
    // No batch comes after: the store's own task ends the wait.
    until_metric(&store, "meshtrace_store_metrics_spans_waiting", 0).await;
    assert_eq!(
        source_counts(&store).await,
        expected(&[
            ("details-v1/v1/details", 3),
            ("reviews-v2/v2/reviews", 7),
            ("unknown/unknown/unknown", 4)
        ])
    );
    assert_eq!(wait_metrics(&store).await, [0, 0, 4, 0]);
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_waiting_at_a_clean_close_are_counted_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let opts = options(Duration::from_secs(600), 1000);
    let store = TestStore::start(Store::open_with(dir.path(), &opts).unwrap(), 16 << 20).await;
    let calls = bookinfo(400);
    export(&store, calls.clients).await;
    assert_eq!(wait_metrics(&store).await, [10, 0, 0, 0]);
    // A clean close counts them, with what is known of them, in the store on disk.
    store.stop().await;

    let store = TestStore::start(Store::open_with(dir.path(), &opts).unwrap(), 16 << 20).await;
    assert_eq!(
        source_counts(&store).await,
        expected(&[("unknown/unknown/unknown", 10)])
    );
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_unanswered_client_spans_waits_only_up_to_the_cap() {
    let store = memory_store(Duration::from_secs(600), 100).await;
    for round in 0..10u128 {
        let list: Vec<(&Pod, &str, u128)> = (0..100)
            .map(|i| (&RATINGS, "ratings", 1000 + round * 100 + i))
            .collect();
        export(&store, calls(&list).clients).await;
        assert!(store.metric("meshtrace_store_metrics_spans_waiting").await <= 100);
    }
    assert_eq!(wait_metrics(&store).await, [100, 0, 0, 900]);
    // Those past the cap are counted at once, with `unknown`; the hundred still wait.
    assert_eq!(
        source_counts(&store).await,
        expected(&[("unknown/unknown/unknown", 900)])
    );
    store.stop().await;
}
