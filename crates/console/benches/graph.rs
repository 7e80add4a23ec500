//! The graph API's cost:
//! - the Bookinfo namespace graph served: a real store fed 1,200 simulated requests, the
//!   console asking the store's Prometheus API (every appender the console runs), timed at the
//!   client, per graph type;
//! - a synthetic graph of 500 workloads and 2,000 edges: building it from its query answers
//!   (the console's own work, no I/O) and writing its JSON;
//! - the same synthetic graph served, from meshtrace's PromQL engine over in-memory series;
//! - its graph page: served (timed at the client, and where the time went, from the page's
//!   `Server-Timing`: the graph API's answer, the drawing, the layout inside it, the HTML), and
//!   interactive in a real headless Chromium (navigation to the load event, every node drawn).
//!   chromedriver must be on the PATH, as in the browser tests.
//!
//! Run: `cargo bench -p meshtrace-console --bench graph` (`ROUNDS=N` to change the count).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use meshtrace_backend::prometheus::Labels;
use meshtrace_console::graph::options::GraphOptions;
use meshtrace_console::graph::queries::Purpose;
use meshtrace_console::graph::{Samples, build, queries_of};
use meshtrace_console::{Console, ConsoleOptions};
use meshtrace_metrics::MemorySource;
use meshtrace_metrics::http::{ApiOptions, router};
use meshtrace_sim::export::Target;
use meshtrace_sim::run::{RunOptions, Stats, run};
use meshtrace_sim::{Generator, Mesh, Options, Topology};
use meshtrace_store::Store;
use meshtrace_store::server::LoopbackServer;

#[path = "../tests/browser/driver.rs"]
mod driver;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NODES: usize = 500;
const EDGES: usize = 2_000;

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The labels of the synthetic mesh's edge `i` (workload `i % 500` → `(97·(i / 500) + i % 500
/// + 1) % 500`, each pair once), reported by `reporter`, answered with `code`. The synthetic
/// mesh is in `bookinfo`, a namespace the console knows from the store's traces.
fn edge_labels(i: usize, reporter: &str, code: &str) -> Vec<(String, String)> {
    let from = format!("wl-{}", i % NODES);
    let to_index = (i / NODES * 97 + i % NODES + 1) % NODES;
    let to = format!("wl-{to_index}");
    [
        ("reporter", reporter.to_string()),
        ("source_cluster", "Kubernetes".into()),
        ("source_workload_namespace", "bookinfo".into()),
        ("source_workload", from.clone()),
        ("source_canonical_service", from.clone()),
        ("source_canonical_revision", "v1".into()),
        ("destination_cluster", "Kubernetes".into()),
        ("destination_service_namespace", "bookinfo".into()),
        (
            "destination_service",
            format!("{to}.bookinfo.svc.cluster.local"),
        ),
        ("destination_service_name", to.clone()),
        ("destination_workload_namespace", "bookinfo".into()),
        ("destination_workload", to.clone()),
        ("destination_canonical_service", to),
        ("destination_canonical_revision", "v1".into()),
        ("request_protocol", "http".into()),
        ("response_code", code.to_string()),
        ("response_flags", "-".into()),
    ]
    .map(|(k, v)| (k.to_string(), v))
    .to_vec()
}

/// The synthetic graph's answers: every edge with 200s and 503s, reported by both ends.
fn synthetic_answers(o: &GraphOptions) -> Vec<(meshtrace_console::graph::queries::Query, Samples)> {
    let series = |reporter: &str| -> Samples {
        (0..EDGES)
            .flat_map(|i| {
                [("200", 3.5), ("503", 0.25)].map(|(code, v)| {
                    let labels: Labels = edge_labels(i, reporter, code)
                        .into_iter()
                        .filter(|(k, _)| k != "reporter")
                        .collect();
                    (labels, v)
                })
            })
            .collect()
    };
    let (dest, source) = (series("destination"), series("source"));
    let mut traffic = 0;
    queries_of(o)
        .unwrap()
        .into_iter()
        .map(|q| {
            let samples = match q.purpose {
                Purpose::Traffic("istio_requests_total") => {
                    traffic += 1;
                    match traffic {
                        2 => dest.clone(),
                        3 => source.clone(),
                        _ => Vec::new(),
                    }
                }
                _ => Vec::new(),
            };
            (q, samples)
        })
        .collect()
}

async fn get(client: &reqwest::Client, url: &str) -> Duration {
    let started = Instant::now();
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let _ = response.bytes().await.unwrap();
    started.elapsed()
}

async fn start_console(yaml: String) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let config = meshtrace_config::load_str(&yaml).unwrap().config;
    tokio::spawn(
        Console::new(config, ConsoleOptions::default()).serve(listener, std::future::pending()),
    );
    address
}

fn yaml(tracing: SocketAddr, prometheus: &str) -> String {
    format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: http://{tracing}\n    use_grpc: false\n  prometheus:\n    url: {prometheus}\n"
    )
}

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Arc::new(Store::in_memory(Duration::from_secs(3600)));
        let server = LoopbackServer::start(store, 16 << 20).await.unwrap();
        let generator = Generator::new(Mesh::new(Topology::bookinfo(), 9, 1), 9, Options::default());
        run(
            generator,
            Target::OtlpGrpc(format!("http://{}", server.addresses.otlp_grpc)),
            RunOptions { burst: Some(1200), ..RunOptions::default() },
            Arc::new(Stats::default()),
            std::future::pending(),
        )
        .await;
        let prometheus = format!("http://{}/prometheus", server.addresses.query_http);
        let console = start_console(yaml(server.addresses.query_http, &prometheus)).await;
        let client = reqwest::Client::new();
        println!("Bookinfo namespace graph served (median of {rounds}, every appender):");
        for graph_type in ["workload", "app", "versionedApp", "service"] {
            let url = format!("http://{console}/api/namespaces/graph?namespaces=bookinfo&graphType={graph_type}&duration=10m&injectServiceNodes=true");
            for _ in 0..3 {
                get(&client, &url).await;
            }
            let mut times = Vec::new();
            for _ in 0..rounds {
                times.push(get(&client, &url).await);
            }
            println!("  {graph_type:<13} {}", ms(median(times)));
        }

        let o = GraphOptions::parse(Some("namespaces=bookinfo&queryTime=1700000000"), None).unwrap();
        let answers = synthetic_answers(&o);
        let known: BTreeSet<String> = ["bookinfo".to_string()].into();
        let graph = build(&o, &answers, Some(&known)).unwrap();
        let (nodes, edges) = (graph.elements.nodes.len(), graph.elements.edges.len());
        assert_eq!((nodes, edges), (NODES, EDGES));
        let (mut built, mut written) = (Vec::new(), Vec::new());
        let mut bytes = 0;
        for _ in 0..rounds {
            let started = Instant::now();
            let graph = build(&o, &answers, Some(&known)).unwrap();
            built.push(started.elapsed());
            let started = Instant::now();
            bytes = serde_json::to_vec(&graph).unwrap().len();
            written.push(started.elapsed());
        }
        println!(
            "Synthetic graph, {nodes} nodes / {edges} edges ({} series):\n  built {}\n  JSON written {} ({:.1} MB)",
            answers.iter().map(|(_, s)| s.len()).sum::<usize>(),
            ms(median(built)),
            ms(median(written)),
            bytes as f64 / 1e6
        );

        // The same graph served from in-memory series through meshtrace's PromQL engine.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        let mut source = MemorySource::builder();
        for i in 0..EDGES {
            for reporter in ["source", "destination"] {
                for (code, per_second) in [("200", 3.5), ("503", 0.25)] {
                    let mut pairs = edge_labels(i, reporter, code);
                    pairs.push(("__name__".into(), "istio_requests_total".into()));
                    let labels = meshtrace_metrics::Labels::new(pairs);
                    // Two samples inside the 10-minute window (its start is exclusive),
                    // the first 5 minutes back: the window moves with the rounds.
                    source.push(&labels, now - 300_000, 0.0);
                    source.push(&labels, now - 1_000, per_second * 299.0);
                }
            }
        }
        let api = router(Arc::new(source.build()), ApiOptions::default());
        let app: axum::Router = axum::Router::new().nest("/prometheus", api);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let console = start_console(yaml(server.addresses.query_http, &format!("http://{address}/prometheus"))).await;
        // The synthetic mesh is in `bookinfo`, the namespace the console knows from the traces.
        let url = format!("http://{console}/api/namespaces/graph?namespaces=bookinfo&duration=10m");
        let response = client.get(&url).send().await.unwrap();
        if response.status() == 200 {
            let body: serde_json::Value = response.json().await.unwrap();
            let count = |k: &str| body["elements"][k].as_array().map_or(0, Vec::len);
            assert_eq!((count("nodes"), count("edges")), (NODES, EDGES));
            let mut times = Vec::new();
            for _ in 0..rounds.min(10) {
                times.push(get(&client, &url).await);
            }
            println!("  served from the PromQL engine {}", ms(median(times)));
            page(&client, console, rounds).await;
        } else {
            println!("  served: {} {}", response.status(), response.text().await.unwrap());
        }
    });
}

/// The page's `Server-Timing` durations (ms) by name.
fn server_timing(response: &reqwest::Response) -> Vec<(String, f64)> {
    let header = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    header
        .split(", ")
        .filter_map(|part| {
            let name = part.split(';').next()?.to_string();
            let dur = part.split(';').find_map(|p| p.strip_prefix("dur="))?;
            Some((name, dur.parse().ok()?))
        })
        .collect()
}

/// The synthetic graph's page: served, where its time went, and interactive in Chromium.
async fn page(client: &reqwest::Client, console: SocketAddr, rounds: usize) {
    let url = format!(
        "http://{console}/console/graph/namespaces?namespaces=bookinfo&duration=600&graphType=versionedApp"
    );
    let mut served = Vec::new();
    let mut parts: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut bytes = 0;
    for round in 0..rounds.min(10) + 2 {
        let started = Instant::now();
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let timing = server_timing(&response);
        let body = response.text().await.unwrap();
        assert!(body.contains("g class=\"node"), "no node drawn: {body}");
        bytes = body.len();
        // Two warm-up rounds.
        if round >= 2 {
            served.push(started.elapsed());
            for (name, dur) in timing {
                parts.entry(name).or_default().push(dur);
            }
        }
    }
    println!(
        "Its graph page ({:.1} MB of HTML):\n  served {}",
        bytes as f64 / 1e6,
        ms(median(served))
    );
    for (name, mut durations) in parts {
        durations.sort_by(f64::total_cmp);
        println!("    {name:<7} {:.2} ms", durations[durations.len() / 2]);
    }

    let browser = driver::browser().await;
    let mut interactive = Vec::new();
    let mut nodes = 0;
    for _ in 0..rounds.min(5) {
        browser.client.goto(&url).await.unwrap();
        // `goto` returns once the page has loaded: the navigation entry says how long it took.
        let load = browser
            .client
            .execute(
                "const n = performance.getEntriesByType('navigation')[0];
                 return [n.domInteractive, n.loadEventEnd, document.querySelectorAll('g.node').length];",
                vec![],
            )
            .await
            .unwrap();
        let load = load.as_array().unwrap();
        interactive.push(Duration::from_secs_f64(load[1].as_f64().unwrap() / 1e3));
        nodes = load[2].as_u64().unwrap() as usize;
    }
    // The page injects a service node in front of each workload.
    assert_eq!(nodes, 2 * NODES, "every node drawn");
    println!(
        "  interactive in Chromium (navigation to the load event, {nodes} nodes drawn) {}",
        ms(median(interactive))
    );
}
