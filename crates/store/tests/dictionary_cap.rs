//! Issue 13, defect 7: random tag keys no longer grow the dictionary (held whole in memory,
//! loaded whole at start) without limit. Past its bound, keys and values are stored inline, and
//! every span still reads back with every tag; `/metrics` shows the size and the bound.

mod common;

use std::time::Duration;

use common::*;
use meshtrace_model::time::now_micros;
use meshtrace_store::{Store, StoreOptions};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use serde_json::Value;

const MAX_ENTRIES: u32 = 50;
const SPANS: u64 = 20;
const KEYS_PER_SPAN: u64 = 25;

fn options() -> StoreOptions {
    StoreOptions {
        dictionary_max_entries: MAX_ENTRIES,
        ..StoreOptions::new(Duration::from_secs(24 * 3600))
    }
}

/// A pseudo-random key (xorshift), different for every span and position.
fn random_key(span: u64, i: u64) -> String {
    let mut x = (span << 32 | i).wrapping_add(0x9e37_79b9_7f4a_7c15);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    format!("attacker.{x:016x}")
}

async fn check_spans(store: &TestStore, start: u64) {
    for span in 1..=SPANS {
        let (status, body) = store.get_json(&format!("/api/traces/{span:016x}")).await;
        assert_eq!(status, 200, "{body}");
        let tags = body["data"][0]["spans"][0]["tags"].as_array().unwrap();
        for i in 0..KEYS_PER_SPAN {
            let key = random_key(span, i);
            let tag = tags
                .iter()
                .find(|t| t["key"] == key.as_str())
                .unwrap_or_else(|| panic!("span {span} lost {key}: {body}"));
            assert_eq!(tag["value"], Value::from(format!("v{i}")), "{tag}");
        }
        assert_eq!(
            body["data"][0]["spans"][0]["startTime"],
            Value::from(start + span)
        );
    }
    // A search by a tag stored inline finds its span.
    let key = random_key(SPANS, KEYS_PER_SPAN - 1);
    let tags: String = form_urlencoded::byte_serialize(
        format!("{{\"{key}\":\"v{}\"}}", KEYS_PER_SPAN - 1).as_bytes(),
    )
    .collect();
    let (status, body) = store
        .get_json(&format!(
            "/api/traces?service=svc&start={}&end={}&tags={tags}",
            start,
            start + SPANS + 1
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn random_keys_stop_at_the_bound_and_every_tag_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let start = now_micros() - 60_000_000;
    let store = TestStore::start(Store::open_with(dir.path(), &options()).unwrap(), 16 << 20).await;
    let mut client = TraceServiceClient::connect(store.otlp_grpc())
        .await
        .unwrap();
    for span in 1..=SPANS {
        let attributes = (0..KEYS_PER_SPAN)
            .map(|i| kv(&random_key(span, i), s(&format!("v{i}"))))
            .collect();
        let spec = SpanSpec {
            attributes,
            ..SpanSpec::server(u128::from(span), span, "GET /", start + span, 10)
        };
        let batch = request(vec![resource_spans("svc", vec![], vec![spec.build()])]);
        client.export(batch).await.unwrap();
    }
    assert_eq!(
        store.metric("meshtrace_store_dictionary_entries").await,
        u64::from(MAX_ENTRIES)
    );
    assert_eq!(
        store.metric("meshtrace_store_dictionary_max_entries").await,
        u64::from(MAX_ENTRIES)
    );
    assert!(store.metric("meshtrace_store_dictionary_full_total").await > 0);
    assert!(store.metric("meshtrace_store_dictionary_bytes").await > 0);
    check_spans(&store, start).await;
    store.stop().await;

    // After a restart the dictionary loads no more than its bound, and everything reads back.
    let store = TestStore::start(Store::open_with(dir.path(), &options()).unwrap(), 16 << 20).await;
    assert_eq!(
        store.metric("meshtrace_store_dictionary_entries").await,
        u64::from(MAX_ENTRIES)
    );
    check_spans(&store, start).await;
    store.stop().await;
}
