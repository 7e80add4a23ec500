//! What the console's end-to-end tests share: a real store on loopback ports filled by the
//! simulator over OTLP/gRPC, and consoles started in front of it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use meshtrace_console::{Console, ConsoleOptions};
use meshtrace_model::Span;
use meshtrace_sim::export::Target;
use meshtrace_sim::run::{RunOptions, Stats, run};
use meshtrace_sim::{Generator, Mesh, Options, Topology};
use meshtrace_store::Store;
use meshtrace_store::server::LoopbackServer;
use serde_json::Value;

/// A store holding `extra` (written directly) and `requests` simulated Bookinfo requests over
/// `clusters` clusters with 30% errors, sent over OTLP/gRPC; it returns once every trace is
/// readable (the store commits in groups).
pub async fn filled_store(
    requests: usize,
    clusters: usize,
    seed: u64,
    extra: &[Span],
) -> LoopbackServer {
    let extra_traces: BTreeSet<_> = extra.iter().map(|s| s.trace_id).collect();
    let server = store_of(extra).await;
    let generator = Generator::new(
        Mesh::new(Topology::bookinfo(), seed, clusters),
        seed,
        Options {
            error_rate: 0.3,
            ..Options::default()
        },
    );
    let stats = Arc::new(Stats::default());
    let options = RunOptions {
        burst: Some(requests),
        ..RunOptions::default()
    };
    let target = Target::OtlpGrpc(format!("http://{}", server.addresses.otlp_grpc));
    run(
        generator,
        target,
        options,
        stats.clone(),
        std::future::pending(),
    )
    .await;
    let summary = stats.summary();
    assert!(summary.ends_with("spans rejected 0"), "{summary}");
    let expected = requests + extra_traces.len();
    let mut held = 0;
    for _ in 0..100 {
        held = traces_held(&server).await;
        if held == expected {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the store holds {held} of the {expected} traces written");
}

/// An in-memory store on loopback ports holding `spans`.
pub async fn store_of(spans: &[Span]) -> LoopbackServer {
    let store = Arc::new(Store::in_memory(Duration::from_secs(3600)));
    for chunk in spans.chunks(2000) {
        store.write(chunk).unwrap();
    }
    LoopbackServer::start(store, 16 << 20).await.unwrap()
}

/// The spans of `requests` simulated Bookinfo requests in one cluster, one a second, the last
/// starting 61 s ago (inside every rate window the pages ask, yet complete).
pub fn bookinfo_each_second(seed: u64, options: Options, requests: u64) -> Vec<Span> {
    let mut generator = Generator::new(Mesh::new(Topology::bookinfo(), seed, 1), seed, options);
    let now = meshtrace_testkit::now();
    (0..requests)
        .flat_map(|i| {
            generator
                .request(now - (requests + 60 - i) * 1_000_000)
                .spans
        })
        .collect()
}

/// Distinct traces in the store, over all its services (Jaeger HTTP API).
async fn traces_held(server: &LoopbackServer) -> usize {
    let client = reqwest::Client::new();
    let base = format!("http://{}/api", server.addresses.query_http);
    let services: Value =
        meshtrace_testkit::http::json(client.get(format!("{base}/services"))).await;
    let mut ids = BTreeSet::new();
    for service in services["data"].as_array().into_iter().flatten() {
        let url = format!(
            "{base}/traces?service={}&limit=100000&lookback=1h",
            service.as_str().unwrap()
        );
        let body: Value = meshtrace_testkit::http::json(client.get(url)).await;
        for trace in body["data"].as_array().into_iter().flatten() {
            ids.insert(trace["traceID"].as_str().unwrap().to_string());
        }
    }
    ids.len()
}

/// `POST /api/tracing/check` with `body`: the status and the JSON answer.
pub async fn post_check(console: SocketAddr, body: &Value) -> (u16, Value) {
    let request = reqwest::Client::new()
        .post(format!("http://{console}/api/tracing/check"))
        .json(body);
    let (status, _, text) = meshtrace_testkit::http::parts(request).await;
    (status, serde_json::from_str(&text).unwrap())
}

/// A console on a loopback port whose configuration may name its own address (an
/// `external_url` pointing at itself); it stops when the returned sender is dropped.
pub async fn start_console(
    options: ConsoleOptions,
    yaml: impl FnOnce(SocketAddr) -> String,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let config = meshtrace_config::load_str(&yaml(address))
        .unwrap_or_else(|e| panic!("{e:?}"))
        .config;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(Console::new(config, options).serve(listener, async {
        let _ = stopped.await;
    }));
    (address, stop)
}
