//! The run at scale: a durable store filled through the engine with millions of spans (metrics
//! derived), then trace-by-ID and search latency, and the derived series' memory and Kiali's
//! namespace graph beside a real Prometheus (`derived_scale.rs`); and the search report every
//! run prints.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use meshtrace_model::TraceId;
use meshtrace_model::otlp::spans_from_otlp;
use meshtrace_store::{Store, TraceQuery};

use crate::measure::{percentile, trace_latencies};
use crate::workload::workload_of;

/// Fills a durable store with `total` spans in 50-span traces over the last hour, through the
/// engine, then measures trace-by-ID and search latency.
pub fn at_scale(total: usize) {
    const TRACE_SIZE: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    // SCALE_MEMORY=1: the engine in memory (when the disk cannot hold the run).
    let retention = Duration::from_secs(72 * 3600);
    let store = Arc::new(if std::env::var("SCALE_MEMORY").as_deref() == Ok("1") {
        Store::in_memory(retention)
    } else {
        Store::open(dir.path(), retention).unwrap()
    });
    let chunk = 200_000;
    let started = Instant::now();
    let mut trace_ids: Vec<TraceId> = Vec::new();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<meshtrace_model::Span>>(8);
    let generator = std::thread::spawn(move || {
        let mut ids = Vec::new();
        for (round, start) in (0..total).step_by(chunk).enumerate() {
            let (batches, round_ids) =
                workload_of(chunk.min(total - start), TRACE_SIZE, 0x5eed + round as u64);
            ids.extend(round_ids);
            for batch in batches {
                tx.send(spans_from_otlp(&batch.resource_spans).spans)
                    .unwrap();
            }
        }
        ids
    });
    let mut written = 0;
    for spans in rx {
        written += spans.len();
        store.write(&spans).unwrap();
    }
    trace_ids.extend(generator.join().unwrap());
    println!(
        "filled {written} spans in {} traces of {TRACE_SIZE} in {:.0} s",
        trace_ids.len(),
        started.elapsed().as_secs_f64()
    );
    let times = trace_latencies(&store, &trace_ids, 7, TRACE_SIZE);
    println!(
        "at {written} spans: get trace (50 spans): p50 {:.3} ms  p99 {:.3} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );
    report_search(&store, &format!("at {written} spans: "), 200);
    crate::derived_scale::report(store, written);
}

/// Runs the benchmark's search — reviews spans with a 503 and at least 5 ms, limit 20, over the
/// last hour — `runs` times, and prints its latency next to reading the same traces by ID; then
/// the same search with a tag the index does not hold (`http.method=GET`, on every span), which
/// reads each candidate span.
pub fn report_search(store: &Store, label: &str, runs: usize) {
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let query = TraceQuery {
        service: Some("reviews.bookinfo".into()),
        operation: None,
        tags: vec![("http.status_code".into(), "503".into())],
        start_min: now_us - 3_600_000_000,
        start_max: now_us,
        duration_min: Some(5_000),
        duration_max: None,
        limit: 20,
    };
    let (search, by_id) = search_latencies(store, &query, runs);
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{label}search svc+tag+minDuration, limit 20, 1h: p50 {:.2} ms  p99 {:.2} ms  (reading the 20 matched traces by ID: p50 {:.2} ms, ratio {:.1}x)",
        ms(percentile(&search, 0.5)),
        ms(percentile(&search, 0.99)),
        ms(percentile(&by_id, 0.5)),
        ms(percentile(&search, 0.5)) / ms(percentile(&by_id, 0.5)).max(1e-9)
    );
    let unindexed = TraceQuery {
        tags: vec![
            ("http.status_code".into(), "503".into()),
            ("http.method".into(), "GET".into()),
        ],
        ..query
    };
    let (search, _) = search_latencies(store, &unindexed, runs);
    println!(
        "{label}the same search with a tag outside the index (http.method=GET): p50 {:.2} ms  p99 {:.2} ms",
        ms(percentile(&search, 0.5)),
        ms(percentile(&search, 0.99)),
    );
}

/// `runs` times: the search `query` (which must find 20 traces), then reading the traces it
/// found by ID. Both latencies, sorted.
fn search_latencies(
    store: &Store,
    query: &TraceQuery,
    runs: usize,
) -> (Vec<Duration>, Vec<Duration>) {
    let mut search = Vec::new();
    let mut by_id = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let traces = store.find_traces(query).unwrap();
        search.push(started.elapsed());
        assert_eq!(traces.len(), 20);
        let started = Instant::now();
        for trace in &traces {
            std::hint::black_box(store.get_trace(trace.trace_id().unwrap()).unwrap());
        }
        by_id.push(started.elapsed());
    }
    search.sort();
    by_id.sort();
    (search, by_id)
}
