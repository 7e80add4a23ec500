//! Issue 13, defect 3: a service name that contains the byte the index keys used as a separator
//! (`"normal\0"` + 8 bytes) must not leak into another service's index — searches,
//! operations, dependencies and the retention pass of `normal` stay correct.

mod common;

use std::time::Duration;

use common::*;
use meshtrace_store::Store;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use serde_json::{Value, json};

/// A start time whose 8 big-endian bytes are all ASCII (so they fit in a UTF-8 service name):
/// 0x0006_4000_0000_0000 µs, 2025-09-30.
const T0: u64 = 0x0006_4000_0000_0000;
const DAY: u64 = 24 * 3600 * 1_000_000;
/// The bytes after the NUL of the hostile name read as this time in the old layout: 12.7 days
/// before T0, inside the window searched below and before the retention cutoff.
const FAKE: u64 = 0x0006_3f00_0000_0000;
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn hostile_service() -> String {
    let mut name = String::from("normal\0");
    name.push_str(std::str::from_utf8(&FAKE.to_be_bytes()).unwrap());
    name
}

fn span(trace: u128, id: u64, parent: u64, name: &str, start_us: u64) -> SpanSpec<'_> {
    SpanSpec {
        trace,
        span: id,
        parent,
        name,
        kind: 2, // server
        start_us,
        duration_us: 1000,
        attributes: vec![],
        error: false,
    }
}

async fn send(store: &TestStore) {
    let mut client = TraceServiceClient::connect(store.otlp_grpc())
        .await
        .unwrap();
    let batch = request(vec![
        resource_spans(
            "normal",
            vec![],
            vec![
                span(1, 11, 0, "GET /a", T0 - 30 * DAY).build(),
                span(2, 21, 0, "GET /a", T0).build(),
            ],
        ),
        resource_spans(
            "backend",
            vec![],
            vec![span(2, 22, 21, "GET /b", T0 + 10).build()],
        ),
        resource_spans(
            &hostile_service(),
            vec![],
            vec![
                span(3, 31, 0, "evil", T0).build(),
                span(4, 41, 0, "evil", T0 - 30 * DAY).build(),
            ],
        ),
    ]);
    let reply = client.export(batch).await.unwrap().into_inner();
    assert_eq!(reply.partial_success, None, "every span is stored");
}

fn trace_ids(body: &Value) -> Vec<String> {
    let mut ids: Vec<String> = body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("no data: {body}"))
        .iter()
        .map(|t| t["traceID"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn hex(trace: u128) -> String {
    format!("{trace:016x}") // Jaeger drops the high half when it is zero
}

async fn check(store: &TestStore) {
    let window = format!("start={}&end={}", T0 - 40 * DAY, T0 + DAY);
    let (status, body) = store
        .get_json(&format!("/api/traces?service=normal&{window}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(trace_ids(&body), [hex(1), hex(2)]);

    let hostile = hostile_service();
    let escaped: String = form_urlencoded::byte_serialize(hostile.as_bytes()).collect();
    let (status, body) = store
        .get_json(&format!("/api/traces?service={escaped}&{window}"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(trace_ids(&body), [hex(3), hex(4)]);

    let (status, body) = store.get_json("/api/services/normal/operations").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], json!(["GET /a"]));
    let (status, body) = store.get_json("/api/operations?service=normal").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!([{"name": "GET /a", "spanKind": "server"}])
    );

    let (status, body) = store
        .get_json(&format!(
            "/api/dependencies?endTs={}&lookback={}",
            (T0 + DAY) / 1000,
            41 * DAY / 1000
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!([{"parent": "normal", "child": "backend", "callCount": 1}])
    );
}

/// Runs a retention pass over what started before `T0 - DAY`; how many traces it removed.
async fn purge_before_the_day_before(store: &TestStore) -> usize {
    let purge = store.store.clone();
    tokio::task::spawn_blocking(move || purge.purge_before(T0 - DAY))
        .await
        .unwrap()
        .expect("the retention pass succeeds")
}

async fn odd_service_name_leaves_other_services_intact(store: Store) {
    let store = TestStore::start(store, 16 << 20).await;
    send(&store).await;
    check(&store).await;

    // A retention pass removes what started before the cutoff, for every service.
    let removed = purge_before_the_day_before(&store).await;
    assert_eq!(removed, 2);
    for (trace, kept) in [(1, false), (2, true), (3, true), (4, false)] {
        let (status, _) = store.get_json(&format!("/api/traces/{}", hex(trace))).await;
        assert_eq!(
            status == 200,
            kept,
            "trace {trace} after the retention pass"
        );
    }
    let (_, body) = store.get_json("/api/services").await;
    assert_eq!(body["total"], 3, "{body}");

    // Once everything has expired, the services and their operations are removed too.
    let purge = store.store.clone();
    let removed = tokio::task::spawn_blocking(move || purge.purge_before(T0 + DAY))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(removed, 3);
    let (_, body) = store.get_json("/api/services").await;
    assert_eq!(body["data"], json!([]), "{body}");
    let (_, body) = store.get_json("/api/operations?service=normal").await;
    assert_eq!(body["data"], json!([]), "{body}");
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_service_name_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    odd_service_name_leaves_other_services_intact(Store::open(dir.path(), FOREVER).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn odd_service_name_in_memory() {
    odd_service_name_leaves_other_services_intact(Store::in_memory(FOREVER)).await;
}

/// Keys no layout-2 write produces (damage, or a bug): each is skipped and counted, and the
/// searches, lists, dependencies and the retention pass go on.
#[tokio::test(flavor = "multi_thread")]
async fn odd_keys_are_skipped_and_counted_never_fatal() {
    use meshtrace_store::{Kv, MemoryKv, Op, Table};
    use std::sync::Arc;

    let kv = Arc::new(MemoryKv::new());
    // The prefix of `normal` (length 6, then the name) followed by a key of the wrong length,
    // inside the searched window and before the retention cutoff.
    let mut odd_index = b"\x06normal".to_vec();
    odd_index.extend_from_slice(&(T0 - 20 * DAY).to_be_bytes());
    odd_index.extend_from_slice(b"short");
    kv.write(vec![
        Op::put(Table::ByService, odd_index.clone(), vec![0]),
        Op::put(
            Table::Operations,
            b"\x06normal\xff\xff".to_vec(),
            vec![0; 8],
        ),
        Op::put(Table::Services, vec![0xc3, 0x28], vec![0; 8]),
        Op::put(Table::Dictionary, b"odd".to_vec(), b"x".to_vec()),
        Op::put(
            Table::Spans,
            [trace_id(2), vec![0; 4]].concat(),
            vec![1, 2, 3],
        ),
    ])
    .unwrap();
    let store = TestStore::start(Store::new(kv.clone(), FOREVER).unwrap(), 16 << 20).await;
    send(&store).await;
    check(&store).await;
    let (status, body) = store.get_json(&format!("/api/traces/{}", hex(2))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["spans"].as_array().unwrap().len(), 2);

    let count = store
        .metric("meshtrace_store_damaged_entries_total{kind=\"undecodable_key\"}")
        .await;
    assert!(count >= 4, "{count}");

    let removed = purge_before_the_day_before(&store).await;
    assert_eq!(removed, 2);
    assert_eq!(kv.get(Table::ByService, &odd_index).unwrap(), None);
    store.stop().await;
}
