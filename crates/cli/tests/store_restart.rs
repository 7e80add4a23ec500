//! Durability: every span the store acknowledged is there after the process is killed hard
//! (SIGKILL, no chance to flush) and started again on the same data directory — killed while
//! idle, and killed in the middle of concurrent ingest.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{now_ns, post_batch, start_store_at as start, three_span_batch};
use serde_json::{Value, json};

fn batch(trace: u64, now_ns: u64) -> Value {
    three_span_batch(
        trace,
        now_ns,
        "restart-test",
        json!({"key": "batch", "value": {"intValue": trace.to_string()}}),
    )
}

#[test]
fn acknowledged_spans_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::blocking::Client::new();
    let now_ns = now_ns();

    let mut first = start(dir.path());
    let mut acknowledged = Vec::new();
    for trace in 1..=50u64 {
        post_batch(&http, &first.otlp_http, &batch(trace, now_ns));
        acknowledged.push(trace);
    }
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();

    let mut second = start(dir.path());
    for trace in &acknowledged {
        let url = format!("http://{}/api/traces/{trace:016x}", second.query_http);
        let body: Value = http.get(&url).send().unwrap().json().unwrap();
        let spans = body["data"][0]["spans"].as_array().map_or(0, Vec::len);
        assert_eq!(spans, 3, "trace {trace} lost spans after SIGKILL: {body}");
    }
    let services: Value = http
        .get(format!("http://{}/api/services", second.query_http))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(services["data"], json!(["restart-test"]));

    // A clean stop (SIGTERM) exits 0 after flushing.
    let pid = second.child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = second.child.try_wait().unwrap() {
            assert!(
                status.success(),
                "SIGTERM should stop the store cleanly: {status}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the store did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Four clients send batches as fast as the store takes them; the store is killed while they
/// do. Every batch acknowledged before the kill is there, whole, after the restart; batches in
/// flight at the kill may be there or not, but never in part (a batch is one atomic write).
#[test]
fn acknowledged_spans_survive_sigkill_mid_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let now_ns = now_ns();
    let mut first = start(dir.path());
    let url = format!("http://{}/v1/traces", first.otlp_http);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4u64)
        .map(|client| {
            let url = url.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                let mut acknowledged = Vec::new();
                let mut sent = Vec::new();
                for n in 0..100_000u64 {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let trace = 1_000 + client * 100_000 + n;
                    sent.push(trace);
                    match http.post(&url).json(&batch(trace, now_ns)).send() {
                        Ok(response) if response.status().as_u16() == 200 => {
                            acknowledged.push(trace);
                        }
                        _ => break, // the store is gone
                    }
                }
                (acknowledged, sent)
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    first.child.kill().unwrap(); // SIGKILL, with requests in flight
    first.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    let mut sent = Vec::new();
    for client in clients {
        let (acked, all) = client.join().unwrap();
        acknowledged.extend(acked);
        sent.extend(all);
    }
    assert!(
        acknowledged.len() >= 20,
        "too few batches acknowledged before the kill to mean anything: {}",
        acknowledged.len()
    );

    let second = start(dir.path());
    let http = reqwest::blocking::Client::new();
    for trace in &sent {
        let url = format!("http://{}/api/traces/{trace:016x}", second.query_http);
        let response = http.get(&url).send().unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap();
        let spans = body["data"][0]["spans"].as_array().map_or(0, Vec::len);
        if acknowledged.contains(trace) {
            assert_eq!(
                spans, 3,
                "acknowledged trace {trace} lost spans after SIGKILL: {body}"
            );
        } else {
            assert!(
                spans == 0 || spans == 3,
                "trace {trace}, in flight at the kill, is there in part ({spans} spans, {status})"
            );
        }
    }
}
