//! Runs the real `meshtrace store` binary on ephemeral ports.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Lines};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};

use serde_json::Value;

/// The store's five listeners, each on a port the kernel picks.
pub const STORE_LISTENERS: [&str; 10] = [
    "--otlp-grpc",
    "127.0.0.1:0",
    "--otlp-http",
    "127.0.0.1:0",
    "--zipkin",
    "127.0.0.1:0",
    "--query-http",
    "127.0.0.1:0",
    "--query-grpc",
    "127.0.0.1:0",
];

/// Stops `child` with SIGTERM, as a user would: what it still wrote to `lines`, once it has
/// exited successfully.
pub fn terminate(
    child: &mut Child,
    lines: impl Iterator<Item = std::io::Result<String>>,
) -> Vec<String> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(child.wait().unwrap().success());
    rest
}

pub struct RunningStore {
    pub child: Child,
    pub otlp_grpc: String,
    pub otlp_http: String,
    pub zipkin: String,
    pub query_http: String,
    pub query_grpc: String,
    /// Every log line so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Drop for RunningStore {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `meshtrace store` with `storage` (`--memory`, or `--data-dir DIR`) and reads the bound
/// addresses from its JSON log.
pub fn start_store(storage: &[&std::ffi::OsStr]) -> RunningStore {
    start_store_with(storage, &[], None)
}

/// [`start_store`] with more flags, and optionally at most `max_open_files` file descriptors
/// (`ulimit -n`, set by a shell that then becomes the store).
pub fn start_store_with(
    storage: &[&std::ffi::OsStr],
    flags: &[&str],
    max_open_files: Option<u32>,
) -> RunningStore {
    let binary = env!("CARGO_BIN_EXE_meshtrace");
    let mut command = match max_open_files {
        Some(n) => {
            let mut shell = Command::new("bash");
            shell.args([
                "-c",
                &format!("ulimit -n {n} && exec \"$0\" \"$@\""),
                binary,
            ]);
            shell
        }
        None => Command::new(binary),
    };
    let mut child = command
        .args(["--log-format", "json", "store"])
        .args(flags)
        .args(storage)
        .args(STORE_LISTENERS)
        .stderr(Stdio::piped())
        .spawn()
        .expect("meshtrace starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut found: [Option<String>; 5] = Default::default();
    let log = Arc::new(Mutex::new(Vec::new()));
    let names = [
        "OTLP/gRPC ingest ready",
        "OTLP/HTTP ingest ready",
        "Zipkin ingest ready",
        "Jaeger query API ready",
        "Jaeger gRPC query API ready",
    ];
    while found.iter().any(Option::is_none) {
        let line = lines.next().expect("the store logs its listeners").unwrap();
        log.lock().unwrap().push(line.clone());
        let Ok(json) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let message = json["fields"]["message"].as_str().unwrap_or("");
        if let Some(i) = names.iter().position(|n| message.starts_with(n)) {
            found[i] = json["fields"]["addr"].as_str().map(str::to_string);
        }
    }
    // Keep draining the log so the child never blocks on a full pipe.
    let kept = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    let [otlp_grpc, otlp_http, zipkin, query_http, query_grpc] = found.map(Option::unwrap);
    RunningStore {
        child,
        otlp_grpc,
        otlp_http,
        zipkin,
        query_http,
        query_grpc,
        log,
    }
}

/// ns since the Unix epoch, from the test clock (µs precision is all the store keeps).
pub fn now_ns() -> u64 {
    meshtrace_testkit::now() * 1000
}

/// `text` written to the file `name` of a fresh temporary directory, which lives as long as the
/// returned guard.
pub fn temp_file(name: &str, text: impl AsRef<[u8]>) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

/// POSTs the OTLP/JSON `batch` to the store's OTLP/HTTP listener `otlp_http`; the store must
/// acknowledge it (200).
pub fn post_batch(http: &reqwest::blocking::Client, otlp_http: &str, batch: &Value) {
    let response = http
        .post(format!("http://{otlp_http}/v1/traces"))
        .json(batch)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// A durable store on `data_dir`, on ephemeral loopback ports.
pub fn start_store_at(data_dir: &std::path::Path) -> RunningStore {
    start_store(&["--data-dir".as_ref(), data_dir.as_os_str()])
}

/// One OTLP/JSON batch: trace `trace` of three spans of `service`, starting at `now_ns`, each
/// carrying `attribute`.
pub fn three_span_batch(trace: u64, now_ns: u64, service: &str, attribute: Value) -> Value {
    let spans: Vec<Value> = (1..=3)
        .map(|i| {
            serde_json::json!({
                "traceId": format!("{trace:032x}"), "spanId": format!("{:016x}", trace * 10 + i),
                "name": format!("op-{i}"), "kind": 2,
                "startTimeUnixNano": (now_ns + i * 1000).to_string(),
                "endTimeUnixNano": (now_ns + i * 1000 + 500_000).to_string(),
                "attributes": [attribute.clone()]
            })
        })
        .collect();
    serde_json::json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
        "scopeSpans": [{"spans": spans}]
    }]})
}

/// A running `meshtrace sim` with its metrics endpoint; killed when dropped.
pub struct Sim {
    child: Child,
    /// `host:port` of its `/metrics`.
    pub metrics: String,
    /// Its stdout, a line at a time (the summary when the traffic ends).
    pub stdout: mpsc::Receiver<String>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `meshtrace sim` sending its spans to `store` over OTLP/gRPC, with `args` and
/// `--metrics-listen 127.0.0.1:0`, and reads the metrics address from its JSON log.
pub fn start_sim(store: &RunningStore, args: &[&str]) -> Sim {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .args(["--log-format", "json", "sim"])
        .args(["--otlp-grpc", &format!("http://{}", store.otlp_grpc)])
        .args(args)
        .args(["--metrics-listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("meshtrace sim starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let metrics = loop {
        let line = lines
            .next()
            .expect("the simulator logs its metrics address")
            .unwrap();
        let Ok(json) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if json["fields"]["message"] == "Istio metrics ready" {
            break json["fields"]["addr"].as_str().unwrap().to_string();
        }
    };
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    let (tx, stdout) = mpsc::channel();
    let out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in out.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    Sim {
        child,
        metrics,
        stdout,
    }
}

/// A running `meshtrace serve`; killed when dropped.
pub struct Console {
    child: Child,
    /// `http://host:port`, the console's root.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Console {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `meshtrace serve` on a free loopback port over the Kiali configuration file `config`, and
/// its stdout a line at a time (the console's address first).
pub fn spawn_serve(config: &std::path::Path) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("meshtrace serve starts");
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Starts `meshtrace serve` on a free loopback port over the Kiali configuration `yaml`.
pub fn start_console(yaml: &str) -> Console {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kiali.yaml");
    std::fs::write(&config, yaml).unwrap();
    let (child, mut lines) = spawn_serve(&config);
    let first = lines
        .next()
        .expect("the console prints its address")
        .unwrap();
    let url = first
        .strip_prefix("meshtrace console: ")
        .and_then(|u| u.strip_suffix("/api/tracing"))
        .unwrap_or_else(|| panic!("no console address in {first:?}"))
        .to_string();
    std::thread::spawn(move || lines.map_while(Result::ok).for_each(drop));
    Console {
        child,
        url,
        _dir: dir,
    }
}
