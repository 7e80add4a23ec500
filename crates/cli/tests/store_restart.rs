//! Durability: every span the store acknowledged is there after the process is killed hard
//! (SIGKILL, no chance to flush) and started again on the same data directory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

struct Running {
    child: Child,
    otlp_http: String,
    query_http: String,
}

/// Starts `meshtrace store` on ephemeral ports and reads the bound addresses from its log.
fn start(data_dir: &std::path::Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .args(["--log-format", "json", "store", "--data-dir"])
        .arg(data_dir)
        .args(["--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0"])
        .args(["--zipkin", "127.0.0.1:0", "--query-http", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("meshtrace starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut otlp_http, mut query_http) = (None, None);
    while otlp_http.is_none() || query_http.is_none() {
        let line = lines.next().expect("the store logs its listeners").unwrap();
        let Ok(log) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let message = log["fields"]["message"].as_str().unwrap_or("");
        let addr = log["fields"]["addr"].as_str().map(str::to_string);
        if message.starts_with("OTLP/HTTP ingest ready") {
            otlp_http = addr;
        } else if message.starts_with("Jaeger query API ready") {
            query_http = addr;
        }
    }
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Running {
        child,
        otlp_http: otlp_http.unwrap(),
        query_http: query_http.unwrap(),
    }
}

fn batch(trace: u64, now_ns: u64) -> Value {
    let spans: Vec<Value> = (1..=3)
        .map(|i| {
            json!({
                "traceId": format!("{trace:032x}"), "spanId": format!("{:016x}", trace * 10 + i),
                "name": format!("op-{i}"), "kind": 2,
                "startTimeUnixNano": (now_ns + i * 1000).to_string(),
                "endTimeUnixNano": (now_ns + i * 1000 + 500_000).to_string(),
                "attributes": [{"key": "batch", "value": {"intValue": trace.to_string()}}]
            })
        })
        .collect();
    json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "restart-test"}}]},
        "scopeSpans": [{"spans": spans}]
    }]})
}

#[test]
fn acknowledged_spans_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let http = reqwest::blocking::Client::new();
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;

    let mut first = start(dir.path());
    let mut acknowledged = Vec::new();
    for trace in 1..=50u64 {
        let response = http
            .post(format!("http://{}/v1/traces", first.otlp_http))
            .json(&batch(trace, now_ns))
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
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
