//! Durability of the derived metrics: what a batch adds to them is written in the same batch as
//! its spans (a delta record, replayed at open when no checkpoint took it in yet), so
//! after the store is killed hard (SIGKILL) and started again, the metrics count exactly the
//! spans that are there — every acknowledged one, and none that was lost.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{RunningStore, now_ns, start_store_with, three_span_batch};
use serde_json::{Value, json};

fn start(dir: &std::path::Path) -> RunningStore {
    start_store_with(
        &["--data-dir".as_ref(), dir.as_os_str()],
        &["--metrics-step", "1s"],
        None,
    )
}

fn batch(trace: u64) -> Value {
    three_span_batch(
        trace,
        now_ns(),
        "restart-test",
        json!({"key": "batch", "value": {"intValue": trace.to_string()}}),
    )
}

/// The spans of `restart-test` stored, and the calls the metrics API counts for them (server
/// spans over the last hour).
fn stored_and_counted(store: &RunningStore) -> (u64, u64) {
    let http = reqwest::blocking::Client::new();
    let traces: Value = http
        .get(format!(
            "http://{}/api/traces?service=restart-test&limit=1000000&lookback=1h",
            store.query_http
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let spans: u64 = traces["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["spans"].as_array().unwrap().len() as u64)
        .sum();
    let end = now_ns() / 1_000_000 + 60_000;
    let calls: Value = http
        .get(format!(
            "http://{}/api/metrics/calls?service=restart-test&endTs={end}&lookback=0&ratePer=3600000",
            store.query_http
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let rate = calls["metrics"][0]["metricPoints"][0]["gaugeValue"]["doubleValue"]
        .as_f64()
        .unwrap_or(0.0);
    (spans, (rate * 3600.0).round() as u64)
}

#[test]
fn acknowledged_spans_keep_their_metrics_after_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::blocking::Client::new();
    let mut first = start(dir.path());
    for trace in 1..=40u64 {
        let response = http
            .post(format!("http://{}/v1/traces", first.otlp_http))
            .json(&batch(trace))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
    }
    assert_eq!(stored_and_counted(&first), (120, 120));
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();

    let second = start(dir.path());
    assert_eq!(stored_and_counted(&second), (120, 120));
}

/// Killed while four clients send as fast as the store takes them: whatever is stored after the
/// restart — every acknowledged batch, perhaps some in flight — the metrics count exactly it.
#[test]
fn metrics_match_the_stored_spans_after_sigkill_mid_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = start(dir.path());
    let url = format!("http://{}/v1/traces", first.otlp_http);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4u64)
        .map(|client| {
            let (url, stop) = (url.clone(), stop.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                let mut acknowledged = 0u64;
                for n in 0..100_000u64 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    match http
                        .post(&url)
                        .json(&batch(1_000 + client * 100_000 + n))
                        .send()
                    {
                        Ok(r) if r.status().as_u16() == 200 => acknowledged += 1,
                        _ => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let acknowledged: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert!(
        acknowledged >= 20,
        "too few batches before the kill: {acknowledged}"
    );

    let second = start(dir.path());
    let (spans, calls) = stored_and_counted(&second);
    assert!(
        spans >= acknowledged * 3,
        "{spans} spans stored, {acknowledged} batches acknowledged"
    );
    assert_eq!(calls, spans, "the metrics count exactly the spans stored");
}
