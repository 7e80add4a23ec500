//! Issue 13, defect 11: spans whose process or dictionary strings were lost (a journal emptied
//! after the spans themselves reached the engine's tables) are served with placeholders and
//! warnings, searches still find them, `/metrics` counts the damage, and the data check names
//! it. Before, every search of the service failed with "a span refers to a missing process".

mod common;

use std::time::Duration;

use common::*;
use meshtrace_model::time::now_micros;
use meshtrace_store::{FjallKv, Kv, Op, Store, Table};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use serde_json::Value;

const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

async fn write_traces(store: &TestStore, start: u64) {
    let mut client = TraceServiceClient::connect(store.otlp_grpc())
        .await
        .unwrap();
    for trace in 1..=3u128 {
        let span = SpanSpec {
            attributes: vec![kv("http.status_code", s("503"))],
            ..SpanSpec::server(trace, trace as u64, "GET /lost", start + trace as u64, 10)
        };
        let batch = request(vec![resource_spans(
            "svc",
            vec![kv("pod", s("svc-1"))],
            vec![span.build()],
        )]);
        client.export(batch).await.unwrap();
    }
}

/// A data directory holding [`write_traces`]' three traces, written a minute ago by a store
/// that has stopped; and when they start.
async fn stored_traces() -> (tempfile::TempDir, u64) {
    let dir = tempfile::tempdir().unwrap();
    let start = now_micros() - 60_000_000;
    let store = TestStore::start(Store::open(dir.path(), FOREVER).unwrap(), 16 << 20).await;
    write_traces(&store, start).await;
    store.stop().await;
    (dir, start)
}

fn delete_all(kv: &FjallKv, table: Table) {
    let mut keys = Vec::new();
    kv.scan(table, &[], &[0xff; 9], false, &mut |k, _| {
        keys.push(k.to_vec());
        Ok(true)
    })
    .unwrap();
    assert!(!keys.is_empty());
    kv.write(keys.into_iter().map(|k| Op::delete(table, k)).collect())
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_with_lost_processes_and_strings_are_served_and_reported() {
    let (dir, start) = stored_traces().await;
    // What an emptied journal leaves when the span tables had been flushed but the small
    // tables of processes and strings had not.
    {
        let kv = FjallKv::open(dir.path()).unwrap();
        delete_all(&kv, Table::Processes);
        delete_all(&kv, Table::Dictionary);
        kv.flush().unwrap();
    }

    let report = meshtrace_store::check::check(dir.path()).unwrap();
    assert!(report.is_damaged());
    let text = report.to_string();
    assert!(
        text.contains("spans_by_arrival: process missing: 3"),
        "{text}"
    );
    assert!(
        text.contains("spans_by_arrival: dictionary entries missing: 3"),
        "{text}"
    );

    let store = TestStore::start(Store::open(dir.path(), FOREVER).unwrap(), 16 << 20).await;
    let window = format!("start={}&end={}", start - 1, start + 10);
    let (status, body) = store
        .get_json(&format!("/api/traces?service=svc&{window}"))
        .await;
    assert_eq!(status, 200, "{body}");
    let traces = body["data"].as_array().unwrap();
    assert_eq!(traces.len(), 3, "{body}");
    let trace = &traces[0];
    let process = trace["processes"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert!(
        process["serviceName"]
            .as_str()
            .unwrap()
            .starts_with("<lost process "),
        "{process}"
    );
    let span = &trace["spans"][0];
    let warnings: Vec<&str> = span["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("process of this span was lost")),
        "{span}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("lost from the store's dictionary")),
        "{span}"
    );
    // The operation name was a dictionary string; the tag key too.
    assert!(
        span["operationName"]
            .as_str()
            .unwrap()
            .starts_with("<lost dictionary entry "),
        "{span}"
    );

    // Searches by tag still run (the lost key cannot match), and the lists still answer.
    let (status, body) = store
        .get_json(&format!(
            "/api/traces?service=svc&{window}&tags=%7B%22http.status_code%22%3A%22503%22%7D"
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = store.get_json("/api/services/svc/operations").await;
    assert_eq!(status, 200);

    for kind in ["missing_process", "missing_dictionary_entry"] {
        let series = format!("meshtrace_store_damaged_entries_total{{kind=\"{kind}\"}}");
        assert!(store.metric(&series).await > 0, "{kind}");
    }

    // New spans of the same service write the process again, and they read back whole; new
    // strings never take the IDs of the lost ones.
    write_traces(&store, start + 100).await;
    let (status, body) = store.get_json(&format!("/api/traces/{:016x}", 1)).await;
    assert_eq!(status, 200);
    let names: Vec<Value> = body["data"][0]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["operationName"].clone())
        .collect();
    assert!(names.contains(&Value::from("GET /lost")), "{body}");
    assert!(
        names
            .iter()
            .any(|n| n.as_str().unwrap().starts_with("<lost dictionary entry ")),
        "old spans must not read a new string under a lost ID: {body}"
    );
    store.stop().await;
}

/// Found by the `stored_data` fuzz target: a dictionary entry whose ID is far beyond the
/// dictionary's size (one damaged or hostile key in the data directory) made the store size its
/// in-memory table by that ID at start — 1.9 billion slots, tens of GB, and the process died.
/// Now the entry is skipped and counted, and the store opens and serves.
#[tokio::test(flavor = "multi_thread")]
async fn a_dictionary_id_far_beyond_its_size_is_skipped_not_believed() {
    let (dir, _) = stored_traces().await;
    {
        let kv = FjallKv::open(dir.path()).unwrap();
        kv.write(vec![Op::put(
            Table::Dictionary,
            0x72e5_011a_u32.to_be_bytes().to_vec(),
            b"planted".to_vec(),
        )])
        .unwrap();
        kv.flush().unwrap();
    }
    let store = TestStore::start(Store::open(dir.path(), FOREVER).unwrap(), 16 << 20).await;
    let (status, body) = store.get_json(&format!("/api/traces/{:016x}", 1)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"][0]["spans"].as_array().unwrap().len(), 1);
    let count = store
        .metric("meshtrace_store_damaged_entries_total{kind=\"undecodable_key\"}")
        .await;
    assert_eq!(count, 1);
}
