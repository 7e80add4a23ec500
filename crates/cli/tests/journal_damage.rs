//! Issue 13, defect 11: journal damage is detected and reported, never silent. The real binary
//! writes acknowledged batches, is killed hard (SIGKILL), its journal is truncated or emptied,
//! then `meshtrace store --check` reports the damage and a restarted store warns, counts it on
//! `/metrics`, and serves what is intact.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{now_ns, post_batch, start_store_at as start, three_span_batch};
use serde_json::{Value, json};

const TRACES: u64 = 40;

fn batch(trace: u64, now_ns: u64) -> Value {
    three_span_batch(
        trace,
        now_ns,
        "damage-test",
        json!({"key": format!("key-{trace}"), "value": {"stringValue": format!("value-{trace}")}}),
    )
}

/// Writes TRACES acknowledged traces, one batch each, then kills the store with SIGKILL.
fn write_and_kill(dir: &Path, http: &reqwest::blocking::Client) {
    let now_ns = now_ns();
    let mut store = start(dir);
    for trace in 1..=TRACES {
        post_batch(http, &store.otlp_http, &batch(trace, now_ns));
    }
    store.child.kill().unwrap(); // SIGKILL
    store.child.wait().unwrap();
}

fn journals(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jnl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no journal in {}", dir.display());
    files
}

fn run_check(dir: &Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .args(["store", "--check", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text)
}

fn metric(http: &reqwest::blocking::Client, store: &common::RunningStore, name: &str) -> u64 {
    let text = http
        .get(format!("http://{}/metrics", store.query_http))
        .send()
        .unwrap()
        .text()
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .parse()
        .unwrap()
}

/// How many of the traces are served whole; panics on a partial trace (batches are atomic).
fn traces_served(http: &reqwest::blocking::Client, store: &common::RunningStore) -> u64 {
    let mut served = 0;
    for trace in 1..=TRACES {
        let url = format!("http://{}/api/traces/{trace:016x}", store.query_http);
        let response = http.get(&url).send().unwrap();
        match response.status().as_u16() {
            200 => {
                let body: Value = response.json().unwrap();
                let spans = body["data"][0]["spans"].as_array().map_or(0, Vec::len);
                assert_eq!(spans, 3, "trace {trace} is partial: {body}");
                served += 1;
            }
            404 => {}
            other => panic!("trace {trace}: status {other}"),
        }
    }
    served
}

fn warned(store: &common::RunningStore) -> bool {
    store.log.lock().unwrap().iter().any(|line| {
        line.contains("\"level\":\"ERROR\"")
            && line.contains("the journal lost acknowledged writes")
    })
}

#[test]
fn a_journal_truncated_to_half_is_reported_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::blocking::Client::new();
    write_and_kill(dir.path(), &http);

    let (code, report) = run_check(dir.path());
    assert_eq!(code, 0, "an intact directory checks clean: {report}");
    assert!(report.contains("no damage found"), "{report}");

    let journal = journals(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&journal).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&journal)
        .unwrap();
    file.set_len(len / 2).unwrap();
    drop(file);

    let (code, report) = run_check(dir.path());
    assert_eq!(code, 1, "{report}");
    assert!(
        report.contains("journal: acknowledged batches lost"),
        "{report}"
    );

    let store = start(dir.path());
    assert!(
        warned(&store),
        "no error logged: {:?}",
        store.log.lock().unwrap()
    );
    let lost = metric(&http, &store, "meshtrace_store_journal_lost_batches");
    let served = traces_served(&http, &store);
    assert!(
        lost > 0 && served > 0 && served < TRACES,
        "lost {lost}, served {served}"
    );
    // Searches answer with what is intact.
    let body: Value = http
        .get(format!(
            "http://{}/api/traces?service=damage-test&limit=100",
            store.query_http
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        body["data"].as_array().map(Vec::len),
        Some(served as usize),
        "{body}"
    );
}

#[test]
fn an_emptied_journal_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::blocking::Client::new();
    write_and_kill(dir.path(), &http);
    for journal in journals(dir.path()) {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&journal)
            .unwrap()
            .set_len(0)
            .unwrap();
    }

    let (code, report) = run_check(dir.path());
    assert_eq!(code, 1, "{report}");
    // Every trace was a batch of its own; the derived metrics' checkpoints are batches too,
    // as many as the seconds the writes took.
    let acknowledged: u64 = report
        .split_once("batches 1..=")
        .and_then(|(_, rest)| rest.split_once(" were acknowledged"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no acknowledged batches in {report}"));
    assert!(acknowledged >= TRACES, "{report}");

    let store = start(dir.path());
    assert!(warned(&store));
    assert_eq!(
        metric(&http, &store, "meshtrace_store_journal_lost_batches"),
        acknowledged
    );
    let response = http
        .get(format!(
            "http://{}/api/traces?service=damage-test",
            store.query_http
        ))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    // New writes go on.
    post_batch(&http, &store.otlp_http, &batch(99, now_ns()));
}

#[test]
fn check_refuses_a_running_store_and_a_directory_that_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    let (code, text) = run_check(&dir.path().join("nothing"));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("is not a meshtrace data directory"), "{text}");

    let _store = start(dir.path());
    let (code, text) = run_check(dir.path());
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("in use by a running store"), "{text}");
}
