//! The real `meshtrace store`, with few file descriptors (`ulimit -n 256`), crowded by far more
//! idle half-sent requests than it could hold open (issue 13, defect 5: 1,100 of them used to
//! exhaust its descriptors and every port stopped answering, gRPC ingest included). With a cap
//! per listener and short timeouts, gRPC ingest and queries keep being served.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::start_store_with;

/// Far longer than any configured timeout; only a store that stopped answering reaches it.
const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn idle_half_sent_requests_do_not_exhaust_the_stores_descriptors() {
    let store = start_store_with(
        &["--memory".as_ref()],
        &[
            "--header-timeout",
            "500ms",
            "--body-timeout",
            "500ms",
            "--idle-timeout",
            "1s",
            "--max-connections",
            "32",
        ],
        Some(256),
    );
    // 450 idle clients: more than the 256 descriptors the store has.
    let mut idle = Vec::new();
    for addr in [&store.otlp_http, &store.zipkin, &store.query_http] {
        for _ in 0..150 {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .write_all(b"GET /api/services HTTP/1.1\r\nho")
                .unwrap();
            idle.push(stream);
        }
    }

    // gRPC ingest, by the real simulator.
    let mut sim = Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .args(["sim", "--otlp-grpc", &format!("http://{}", store.otlp_grpc)])
        .args(["--burst", "5", "--seed", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = sim.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > PATIENCE {
            let _ = sim.kill();
            panic!("the store never took the simulator's spans over gRPC");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success());

    // A query on a crowded port, answered once the idle clients ahead of it time out.
    let client = reqwest::blocking::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let services: serde_json::Value = client
        .get(format!("http://{}/api/services", store.query_http))
        .send()
        .expect("the query was answered")
        .json()
        .unwrap();
    assert!(
        services["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap_or("").starts_with("productpage")),
        "{services}"
    );
    drop(idle);
}
