//! The store's derived Istio series read through meshtrace's PromQL engine, as the trace
//! heatmap's `POST /api/stats/metrics` asks them — without the console or HTTP, so a change to
//! the store's series source or the evaluator rebuilds only those two crates.
//!
//! A store holds the simulator's Bookinfo requests spread evenly over the last 3 hours (`SPANS`,
//! default 1 M). A call is the 96 instant queries of 8 Envoy workload/direction pairs × 10m, 60m
//! and 3h × (avg, p50, p90, p99), 10 in flight (the console's limit); `ROUNDS` calls (default 20)
//! after 3 to warm up, p50 and p90 printed, plus the time each query shape takes alone.
//! Before each call a few spans are written (`WRITES=0`: none), as a live store takes them:
//! the store reuses the windows it reduced only while nothing was written, so without them
//! every call after the first would be answered from what the first reduced.
//!
//! Run: `cargo bench -p meshtrace-store --bench derived_queries` (`SPANS=N`, `ROUNDS=N`,
//! `WRITES=0|1`).

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use meshtrace_metrics::promql::{EngineOptions, QueryValue, instant_query};
use meshtrace_sim::spread::bookinfo_last_3h;
use meshtrace_store::Store;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HISTOGRAM: &str = "istio_request_duration_milliseconds";
const IN_FLIGHT: usize = 10;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The label matchers the console writes for a workload seen from one side.
fn selector(workload: &str, namespace: &str, inbound: bool) -> String {
    let (reporter, side) = if inbound {
        ("destination", "destination")
    } else {
        ("source", "source")
    };
    format!(
        r#"{{reporter="{reporter}",{side}_workload_namespace="{namespace}",{side}_workload="{workload}"}}"#
    )
}

/// The 4 queries of one stats key (avg, p50, p90, p99) over `window`.
fn stats_queries(labels: &str, window: &str) -> Vec<String> {
    let mut out = vec![format!(
        "sum (rate({HISTOGRAM}_sum{labels}[{window}])) / sum (rate({HISTOGRAM}_count{labels}[{window}]))"
    )];
    for q in ["0.5", "0.9", "0.99"] {
        out.push(format!(
            "histogram_quantile({q}, sum by (le) (rate({HISTOGRAM}_bucket{labels}[{window}])))"
        ));
    }
    out
}

/// Workload and direction of each of a trace's Envoy spans (from `node_id`, `upstream_cluster`).
fn envoy_keys(trace: &[meshtrace_model::Span]) -> Vec<(String, String, bool)> {
    trace
        .iter()
        .take(8)
        .map(|span| {
            let text = |k: &str| {
                span.tag(k)
                    .map(|v| v.as_text().to_string())
                    .unwrap_or_default()
            };
            let node = text("node_id");
            let pod_ns = node.split('~').nth(2).unwrap_or_default().to_string();
            let (pod, ns) = pod_ns.split_once('.').unwrap_or((&pod_ns, ""));
            let parts: Vec<&str> = pod.split('-').collect();
            let workload = parts[..parts.len().saturating_sub(2).max(1)].join("-");
            let inbound = text("upstream_cluster").starts_with("inbound");
            (workload, ns.to_string(), inbound)
        })
        .collect()
}

/// Runs `queries` with `IN_FLIGHT` workers; the number of non-empty answers.
fn call(store: &Store, queries: &[String], time_ms: i64) -> usize {
    let next = Mutex::new(0usize);
    let answered = Mutex::new(0usize);
    let options = EngineOptions::default();
    std::thread::scope(|scope| {
        for _ in 0..IN_FLIGHT {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut next = next.lock().unwrap();
                        *next += 1;
                        *next - 1
                    };
                    let Some(query) = queries.get(i) else { break };
                    let deadline = Instant::now() + Duration::from_secs(60);
                    let answer = instant_query(store, query, time_ms, &options, deadline).unwrap();
                    if let QueryValue::Vector(v) = answer
                        && v.iter().any(|s| !s.value.is_nan())
                    {
                        *answered.lock().unwrap() += 1;
                    }
                }
            });
        }
    });
    answered.into_inner().unwrap()
}

/// The CPU time this process has used (user + system, every thread), from /proc, in ms; 0
/// where there is no /proc. Less sensitive than wall time to what else the machine runs.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces), from the third: utime is the 14th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) * 10.0
}

fn percentile(times: &mut [f64], p: f64) -> f64 {
    times.sort_by(f64::total_cmp);
    times[((times.len() as f64 * p) as usize).min(times.len() - 1)]
}

fn main() {
    let spans_wanted = env("SPANS", 1_000_000);
    let rounds = env("ROUNDS", 20).max(1);
    let writes = env("WRITES", 1) != 0;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let store = Store::in_memory(Duration::from_secs(4 * 3600));
    let started = Instant::now();
    let mut written = 0;
    let trace = bookinfo_last_3h(spans_wanted, now, |batch| {
        store.write(batch).unwrap();
        written += batch.len();
    });
    println!(
        "store: {written} spans written in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let mut queries = Vec::new();
    for (workload, ns, inbound) in envoy_keys(&trace) {
        for window in ["10m", "60m", "3h"] {
            queries.extend(stats_queries(&selector(&workload, &ns, inbound), window));
        }
    }
    let time_ms = now as i64 * 1000;
    let mut times = Vec::new();
    let mut answered = 0;
    let mut cpu_started = 0.0;
    for round in 0..rounds + 3 {
        if writes {
            bookinfo_last_3h(20, now, |batch| store.write(batch).unwrap());
        }
        if round == 3 {
            cpu_started = cpu_ms();
        }
        let started = Instant::now();
        answered = call(&store, &queries, time_ms);
        if round >= 3 {
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let cpu = (cpu_ms() - cpu_started) / rounds as f64;
    let p50 = percentile(&mut times, 0.5);
    let p90 = percentile(&mut times, 0.9);
    println!(
        "{} queries ({answered} answered), {IN_FLIGHT} in flight, store at {written} spans: p50 {p50:.1} ms, p90 {p90:.1} ms, CPU {cpu:.0} ms a call ({rounds} rounds, {})",
        queries.len(),
        if writes {
            "spans written before each call"
        } else {
            "nothing written between calls"
        }
    );
    // One query of each shape alone, over 3h (the largest): where a call's time goes.
    let options = EngineOptions::default();
    for (name, query) in [("avg 3h", &queries[8]), ("p99 3h", &queries[11])] {
        let mut alone = Vec::new();
        for _ in 0..rounds {
            if writes {
                bookinfo_last_3h(20, now, |batch| store.write(batch).unwrap());
            }
            let started = Instant::now();
            let deadline = started + Duration::from_secs(60);
            instant_query(&store, query, time_ms, &options, deadline).unwrap();
            alone.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        println!("  {name} alone: p50 {:.2} ms", percentile(&mut alone, 0.5));
    }
}
