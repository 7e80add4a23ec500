//! The derived series at scale, after the scale run's fill (through the engine, derivation on):
//! what they hold in memory (the store's own `/metrics` and the process's RSS), and Kiali's
//! namespace graph over one hour asked of the store's Prometheus API and of a real Prometheus
//! holding the same series (exported from the store, imported with `promtool`), side by side.

use std::sync::Arc;
use std::time::{Duration, Instant};

use meshtrace_metrics::{Matcher, SeriesSource};
use meshtrace_store::Store;
use meshtrace_store::server::LoopbackServer;
use meshtrace_testkit::prometheus::RealPrometheus;

use crate::measure::percentile;

/// Kiali's `L13` grouping labels (`buildNamespaceTrafficMap`).
const L13: &str = "source_cluster,source_workload_namespace,source_workload,source_canonical_service,source_canonical_revision,destination_cluster,destination_service_namespace,destination_service,destination_service_name,destination_workload_namespace,destination_workload,destination_canonical_service,destination_canonical_revision";

/// The requests queries Kiali sends for the namespace graph of `ns` over `seconds` (no
/// ambient, idle edges hidden), in the order it sends them.
fn namespace_graph(ns: &str, seconds: u64) -> Vec<String> {
    let selectors = [
        format!(
            r#"reporter="source",source_workload_namespace!="{ns}",destination_workload_namespace="unknown",destination_workload="unknown",destination_service=~"^.+\\.{ns}\\..+$""#
        ),
        format!(r#"reporter="destination",destination_workload_namespace="{ns}""#),
        format!(r#"reporter="source",source_workload_namespace="{ns}""#),
    ];
    selectors
        .iter()
        .map(|sel| {
            format!(
                "round(sum(rate(istio_requests_total{{{sel}}} [{seconds}s])) by ({L13},request_protocol,response_code,grpc_response_status,response_flags) > 0,0.001)"
            )
        })
        .collect()
}

/// The process's resident memory now and at its peak (kB), from `/proc/self/status`.
fn rss_kb() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `istio_requests_total` as the store holds it from `start_ms` to `end_ms`, as OpenMetrics
/// text; and the number of samples.
fn export(store: &Store, start_ms: i64, end_ms: i64) -> (String, usize) {
    let name = "istio_requests_total";
    let series = store
        .select(&[Matcher::equal("__name__", name)], start_ms, end_ms)
        .unwrap();
    let mut out = String::new();
    let mut samples = 0;
    for s in &series {
        let labels: Vec<String> = s
            .labels
            .iter()
            .filter(|(k, _)| *k != "__name__")
            .map(|(k, v)| {
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                format!("{k}=\"{v}\"")
            })
            .collect();
        let labels = labels.join(",");
        for sample in &s.samples {
            let (secs, ms) = (
                sample.timestamp_ms.div_euclid(1000),
                sample.timestamp_ms.rem_euclid(1000),
            );
            out.push_str(&format!(
                "{name}{{{labels}}} {} {secs}.{ms:03}\n",
                sample.value
            ));
            samples += 1;
        }
    }
    out.push_str("# EOF\n");
    (out, samples)
}

/// Asks `queries` in order at `time_s` of the Prometheus API at `base`; the number of series
/// answered and the sum of their values (to check both sides hold the same).
async fn graph(
    client: &reqwest::Client,
    base: &str,
    queries: &[String],
    time_s: u64,
) -> (usize, f64) {
    let mut found = (0, 0.0);
    for query in queries {
        let request = client
            .get(format!("{base}/api/v1/query"))
            .query(&[("query", query.as_str()), ("time", &time_s.to_string())]);
        let answer = meshtrace_testkit::http::json(request).await;
        assert_eq!(answer["status"], "success", "{query}: {answer}");
        for series in answer["data"]["result"].as_array().unwrap() {
            found.0 += 1;
            found.1 += series["value"][1].as_str().unwrap().parse::<f64>().unwrap();
        }
    }
    found
}

/// Times `rounds` namespace graphs (after 2 to warm up): p50, p90 (ms), and what the last found.
async fn time_graph(
    base: &str,
    queries: &[String],
    time_s: u64,
    rounds: usize,
) -> (f64, f64, (usize, f64)) {
    let client = reqwest::Client::new();
    let mut times = Vec::new();
    let mut found = (0, 0.0);
    for round in 0..rounds + 2 {
        let started = Instant::now();
        found = graph(&client, base, queries, time_s).await;
        if round >= 2 {
            times.push(started.elapsed());
        }
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        found,
    )
}

/// Reports memory and the namespace graph side by side (`GRAPH_ROUNDS`, default 20).
pub fn report(store: Arc<Store>, spans: usize) {
    let rounds = std::env::var("GRAPH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20usize)
        .max(1);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let server = LoopbackServer::start(Arc::clone(&store), 16 << 20).await.unwrap();
        let base = format!("http://{}", server.addresses.query_http);
        let exposition =
            meshtrace_testkit::http::text(reqwest::Client::new().get(format!("{base}/metrics")))
                .await;
        let (rss, peak) = rss_kb();
        println!("at {spans} spans: process RSS {} MB (peak {} MB)", rss / 1024, peak / 1024);
        for line in exposition.lines().filter(|l| {
            l.starts_with("meshtrace_store_metrics_series{")
                || l.starts_with("meshtrace_store_metrics_memory_bytes{")
                || l.starts_with("meshtrace_store_metrics_resident_cells")
                || l.starts_with("meshtrace_store_metrics_spans_waiting")
        }) {
            println!("at {spans} spans: {line}");
        }

        let now_ms = meshtrace_model::time::now_micros() as i64 / 1000;
        let now_s = (now_ms / 1000) as u64;
        let queries = namespace_graph("bookinfo", 3600);
        let (p50, p90, found) =
            time_graph(&format!("{base}/prometheus"), &queries, now_s, rounds).await;
        println!(
            "at {spans} spans: Kiali namespace graph (3 requests queries, 1 h), store:       p50 {p50:.1} ms  p90 {p90:.1} ms  ({} series, sum {:.3})",
            found.0, found.1
        );
        let started = Instant::now();
        let (text, samples) = export(&store, now_ms - 4_200_000, now_ms + 60_000);
        let prometheus = RealPrometheus::start(&text).await;
        drop(text);
        println!(
            "real Prometheus: {samples} samples of istio_requests_total imported in {:.0} s",
            started.elapsed().as_secs_f64()
        );
        let (prom_p50, prom_p90, prom_found) =
            time_graph(&prometheus.url(""), &queries, now_s, rounds).await;
        println!(
            "at {spans} spans: Kiali namespace graph (3 requests queries, 1 h), Prometheus:  p50 {prom_p50:.1} ms  p90 {prom_p90:.1} ms  ({} series, sum {:.3}); store / Prometheus p50 = {:.2}",
            prom_found.0,
            prom_found.1,
            p50 / prom_p50.max(1e-9)
        );
        drop(server);
    });
}
