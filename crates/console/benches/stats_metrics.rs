//! `POST /api/stats/metrics` as the trace heatmap asks it — the 8 Envoy spans (sidecars and
//! gateway) of a Bookinfo trace, each compared over 10m, 60m and 3h (avg, p50, p90, p99; spans
//! of one workload and direction share their stats key) — against
//! a meshtrace store holding 1 M spans spread over the last 3 hours (the console reading its
//! `/prometheus`), and the same call against a real Prometheus (Debian's package) holding the
//! store's `istio_request_duration_milliseconds` series. The console's cache is off, so every
//! call asks every query. Before each call to the store's console a few spans are written
//! (`WRITES=0`: none), as a live store takes them: the store reuses the windows it reduced
//! only while nothing was written, so without them every call after the first would be
//! answered from what the first reduced.
//!
//! Run: `cargo bench -p meshtrace-console --bench stats_metrics` (`SPANS=N`, `ROUNDS=N`,
//! `WRITES=0|1`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use meshtrace_console::{Console, ConsoleOptions};
use meshtrace_model::Span;
use meshtrace_sim::spread::bookinfo_last_3h;
use meshtrace_store::Store;
use meshtrace_store::server::LoopbackServer;
use meshtrace_testkit::prometheus::RealPrometheus;
use serde_json::{Value, json};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The heatmap's queries for a trace: per Envoy span, its workload and direction (from the
/// pod in `node_id` and `upstream_cluster`), over the three intervals.
fn heatmap_queries(trace: &[Span], query_time: u64) -> Value {
    let mut queries = Vec::new();
    for span in trace.iter().take(8) {
        // The workload of the pod in `node_id` and the direction of `upstream_cluster`, as the
        // console's span enrichment reads them.
        let info = meshtrace_mesh::span_info(span);
        let (ns, workload, direction) = (info.namespace, info.workload, info.direction);
        for interval in ["10m", "60m", "3h"] {
            queries.push(json!({
                "target": {"namespace": ns, "name": workload, "kind": "workload"},
                "queryTime": query_time, "interval": interval, "direction": direction,
                "avg": true, "quantiles": ["0.5", "0.9", "0.99"],
            }));
        }
    }
    json!({ "queries": queries })
}

async fn console(prometheus_url: &str, tracing: &str) -> std::net::SocketAddr {
    let yaml = format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: {tracing}\n    use_grpc: false\n  prometheus:\n    url: {prometheus_url}\n    cache_enabled: false\n"
    );
    let config = meshtrace_config::load_str(&yaml).unwrap().config;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Console::new(config, ConsoleOptions::default()).serve(listener, std::future::pending()),
    );
    addr
}

/// The stats keys `body` asks for: spans of one workload and direction share theirs.
fn distinct_keys(body: &Value) -> usize {
    let queries = body["queries"].as_array().unwrap();
    let keys: std::collections::BTreeSet<String> = queries
        .iter()
        .map(|q| format!("{}/{}/{}", q["target"], q["direction"], q["interval"]))
        .collect();
    keys.len()
}

/// p50 and p90 of `rounds` calls, after 3 to warm up; checks every answer has a stat for
/// each key asked, each with its 4 values.
/// `before` runs ahead of each call, untimed.
async fn measure(
    console: std::net::SocketAddr,
    body: &Value,
    rounds: usize,
    mut before: impl FnMut(),
) -> (f64, f64) {
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    for round in 0..rounds + 3 {
        before();
        let started = Instant::now();
        let response = client
            .post(format!("http://{console}/api/stats/metrics"))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        let elapsed = started.elapsed().as_secs_f64() * 1000.0;
        assert!(status.is_success(), "{answer}");
        let stats = answer["stats"].as_object().unwrap();
        assert_eq!(stats.len(), distinct_keys(body), "{answer}");
        assert!(
            stats
                .values()
                .all(|s| s["responseTimes"].as_array().unwrap().len() == 4),
            "{answer}"
        );
        if round >= 3 {
            times.push(elapsed);
        }
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() * 9 / 10])
}

/// The store's duration histogram series over the last 3h10m, every minute, as OpenMetrics
/// text for `promtool`.
async fn export(query_http: std::net::SocketAddr, end: u64) -> (String, usize) {
    let client = reqwest::Client::new();
    let mut out = String::from("# TYPE istio_request_duration_milliseconds histogram\n");
    let mut samples = 0;
    for suffix in ["_bucket", "_sum", "_count"] {
        let name = format!("istio_request_duration_milliseconds{suffix}");
        let start = (end - 3 * 3600 - 600).to_string();
        let form = [
            ("query", name.as_str()),
            ("start", &start),
            ("end", &end.to_string()),
            ("step", "60"),
        ];
        let url = format!("http://{query_http}/prometheus/api/v1/query_range");
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = client
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded");
        let response = request.body(body).send().await.unwrap();
        let answer: Value = response.json().await.unwrap();
        for series in answer["data"]["result"].as_array().unwrap() {
            let labels: Vec<String> = series["metric"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| *k != "__name__")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let labels = labels.join(",");
            for point in series["values"].as_array().unwrap() {
                out.push_str(&format!(
                    "{name}{{{labels}}} {} {}\n",
                    point[1].as_str().unwrap(),
                    point[0]
                ));
                samples += 1;
            }
        }
    }
    out.push_str("# EOF\n");
    (out, samples)
}

fn main() {
    let spans_wanted = env("SPANS", 1_000_000);
    let rounds = env("ROUNDS", 30);
    let writes = env("WRITES", 1) != 0;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let now = now_s();
        let store = Arc::new(Store::in_memory(Duration::from_secs(4 * 3600)));
        let started = Instant::now();
        let mut written = 0;
        let trace = bookinfo_last_3h(spans_wanted, now, |batch| {
            store.write(batch).unwrap();
            written += batch.len();
        });
        println!("store: {written} spans written in {:.1}s", started.elapsed().as_secs_f64());
        let server = LoopbackServer::start(store.clone(), 16 << 20).await.unwrap();
        let query_http = server.addresses.query_http;
        let body = heatmap_queries(&trace, now);
        let tracing = format!("http://{query_http}");

        let store_console = console(&format!("http://{query_http}/prometheus"), &tracing).await;
        let write = || {
            if writes {
                bookinfo_last_3h(20, now, |batch| store.write(batch).unwrap());
            }
        };
        let (p50, p90) = measure(store_console, &body, rounds, write).await;
        let between = if writes { "spans written before each call" } else { "nothing written between calls" };
        println!("stats/metrics, 8 spans x 3 intervals, store at {written} spans: p50 {p50:.1} ms, p90 {p90:.1} ms ({rounds} rounds, {between})");

        let (text, samples) = export(query_http, now).await;
        let prometheus = RealPrometheus::start(&text).await;
        let prom_console = console(&format!("http://{}", prometheus.addr), &tracing).await;
        let (p50, p90) = measure(prom_console, &body, rounds, || {}).await;
        println!("stats/metrics, same call, real Prometheus ({samples} samples imported): p50 {p50:.1} ms, p90 {p90:.1} ms ({rounds} rounds)");
    });
}
