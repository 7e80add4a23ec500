//! The quick run: the limits (decoding, converting, the engine alone), ingest over OTLP/gRPC
//! in-process, disk per span, trace-by-ID and search latency.

use std::sync::Arc;
use std::time::Instant;

use meshtrace_model::TraceId;
use meshtrace_model::otlp::spans_from_otlp;
use meshtrace_store::Store;
use meshtrace_store::server::LoopbackServer;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::at_scale::report_search;
use crate::derivation::{
    best, metrics_modes, on_off, report_cost, report_cost_of, report_series, rounds, store_options,
};
use crate::measure::{Exporter, cpu_seconds, percentile, status_kib, trace_latencies};
use crate::workload::{BATCH, SPANS_PER_TRACE, workload};

/// The quick run: limits, engine alone, ingest over gRPC in-process, disk, reads.
pub fn quick() {
    let total: usize = std::env::var("SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let clients: usize = std::env::var("CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let (batches, trace_ids) = workload(total);
    let encoded: Vec<Vec<u8>> = batches.iter().map(prost::Message::encode_to_vec).collect();
    let spans = trace_ids.len() * SPANS_PER_TRACE;
    let wire_bytes: usize = encoded.iter().map(Vec::len).sum();
    println!(
        "workload: {spans} spans in {} batches of ≤{BATCH}, {:.0} wire bytes/span",
        batches.len(),
        wire_bytes as f64 / spans as f64
    );

    // Limit: decoding the same batches, nothing else (second pass: the first warms caches).
    let mut decoded = 0;
    let mut started = Instant::now();
    for _pass in 0..2 {
        started = Instant::now();
        for bytes in &encoded {
            decoded += ExportTraceServiceRequest::decode(&bytes[..])
                .unwrap()
                .resource_spans
                .len();
        }
    }
    let decode_rate = spans as f64 / started.elapsed().as_secs_f64();
    assert!(decoded > 0);
    println!("decode only (prost):        {decode_rate:>12.0} spans/s");
    let started = Instant::now();
    for batch in &batches {
        std::hint::black_box(spans_from_otlp(&batch.resource_spans));
    }
    println!(
        "convert only (OTLP → model):{:>12.0} spans/s",
        spans as f64 / started.elapsed().as_secs_f64()
    );
    // As ingest converts: the decoded batch is given up and its strings moved (the copy made
    // here for it is not timed).
    let copies = batches.clone();
    let started = Instant::now();
    for batch in copies {
        std::hint::black_box(meshtrace_model::otlp::spans_from_otlp_owned(
            batch.resource_spans,
        ));
    }
    println!(
        "convert only, moving (ingest):{:>10.0} spans/s",
        spans as f64 / started.elapsed().as_secs_f64()
    );

    // The engine alone: converted spans written straight into a store, from 4 threads.
    let converted: Vec<Vec<meshtrace_model::Span>> = batches
        .iter()
        .map(|b| spans_from_otlp(&b.resource_spans).spans)
        .collect();
    let modes = metrics_modes();
    let rounds = rounds();
    // `ONLY` (memory, durable, engine, ingest) runs one part, e.g. under a profiler.
    let only = std::env::var("ONLY").unwrap_or_default();
    let runs_part =
        |part: &str| only.is_empty() || only == part || (only == "engine" && part != "ingest");
    let engines: Vec<&str> = ["memory", "durable"]
        .into_iter()
        .filter(|e| runs_part(e))
        .collect();
    let mut engine_rates: Vec<(&str, bool, f64)> = Vec::new();
    let mut runs: Vec<(&str, bool)> = Vec::new();
    for label in engines.iter().copied() {
        for _ in 0..rounds {
            runs.extend(modes.iter().map(|m| (label, *m)));
        }
    }
    for (label, metrics) in runs {
        // Declared before the store, so removed after it is closed.
        let dir = tempfile::tempdir().unwrap();
        let store = if label == "memory" {
            Store::in_memory_with(&store_options(metrics))
        } else {
            Store::open_with(dir.path(), &store_options(metrics)).unwrap()
        };
        let started = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..clients {
                let (store, converted) = (&store, &converted);
                scope.spawn(move || {
                    for batch in converted.iter().skip(t).step_by(clients) {
                        store.write(batch).unwrap();
                    }
                });
            }
        });
        let rate = spans as f64 / started.elapsed().as_secs_f64();
        engine_rates.push((label, metrics, rate));
    }
    for label in engines.iter().copied() {
        for metrics in &modes {
            println!(
                "engine write only ({label}, metrics {}): {:>12.0} spans/s (best of {rounds})",
                on_off(*metrics),
                best(&engine_rates, label, *metrics).unwrap_or(0.0)
            );
        }
    }
    for label in engines.iter().copied() {
        report_cost(
            &format!("engine write only ({label})"),
            &engine_rates,
            label,
        );
    }
    drop(converted);
    if !runs_part("ingest") {
        return;
    }

    let mut ingest_rates: Vec<(&str, bool, f64)> = Vec::new();
    let ingest_rounds = rounds;
    for round in 0..ingest_rounds {
        for (i, metrics) in modes.iter().enumerate() {
            // The reads are measured once, on the last store written.
            let report = round + 1 == ingest_rounds && i + 1 == modes.len();
            let (rate, per_cpu_second) = ingest(&encoded, &trace_ids, clients, *metrics, report);
            ingest_rates.push(("ingest", *metrics, rate));
            ingest_rates.push(("ingest cpu", *metrics, per_cpu_second));
        }
    }
    for metrics in &modes {
        let rate = best(&ingest_rates, "ingest", *metrics).unwrap_or(0.0);
        println!(
            "ingest, OTLP/gRPC, {clients} clients, durable, metrics {}: {rate:>8.0} spans/s, best of {ingest_rounds} ({:.0}% of decode-only); peak RSS {} MiB (server and clients in one process)",
            on_off(*metrics),
            100.0 * rate / decode_rate,
            status_kib("self", "VmHWM:") / 1024
        );
    }
    report_cost("ingest, OTLP/gRPC", &ingest_rates, "ingest");
    // The same runs' CPU (the whole process: server and clients): steadier than the rate on a
    // machine whose speed drifts, since it does not count the time the process waited.
    report_cost_of(
        "ingest, OTLP/gRPC",
        "spans per CPU second",
        &ingest_rates,
        "ingest cpu",
    );
}

/// Ingest over OTLP/gRPC into a durable store served on loopback; then, with `report`, disk,
/// trace-by-ID and search figures of that store. Returns spans per second, and per second of
/// the process's CPU time (user and system) over the same interval.
fn ingest(
    encoded: &[Vec<u8>],
    trace_ids: &[TraceId],
    clients: usize,
    metrics: bool,
    report: bool,
) -> (f64, f64) {
    let spans = trace_ids.len() * SPANS_PER_TRACE;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open_with(dir.path(), &store_options(metrics)).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let ingest_rate = runtime.block_on(async {
        let server = LoopbackServer::start(store.clone(), 64 << 20)
            .await
            .unwrap();
        let addr = server.addresses.otlp_grpc;
        // The clients send the batches already encoded, so that the measure is the server's.
        let encoded: Arc<Vec<bytes::Bytes>> = Arc::new(
            encoded
                .iter()
                .map(|b| bytes::Bytes::from(b.clone()))
                .collect(),
        );
        let started = Instant::now();
        let cpu_before = own_cpu_seconds();
        let mut tasks = Vec::new();
        for client in 0..clients {
            let encoded = encoded.clone();
            tasks.push(tokio::spawn(async move {
                let mut exporter = Exporter::connect(addr).await;
                for body in encoded.iter().skip(client).step_by(clients) {
                    exporter.export(body.clone()).await;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let rate = spans as f64 / started.elapsed().as_secs_f64();
        let per_cpu_second = spans as f64 / (own_cpu_seconds() - cpu_before).max(1e-3);
        server.stop().await.unwrap();
        (rate, per_cpu_second)
    });
    store.flush().unwrap();
    if !report {
        return ingest_rate;
    }
    store.compact().unwrap();
    let tables: Vec<String> = store
        .table_bytes()
        .iter()
        .map(|(name, bytes)| format!("{name} {:.0}", *bytes as f64 / spans as f64))
        .collect();
    println!(
        "disk by table, bytes/span after compaction: {}",
        tables.join(", ")
    );
    println!(
        "disk: {:.0} bytes/span ({} MiB for {spans} spans, before compaction settles)",
        store.disk_bytes() as f64 / spans as f64,
        store.disk_bytes() >> 20
    );

    // Trace by ID.
    let times = trace_latencies(&store, trace_ids, 42, SPANS_PER_TRACE);
    let get_p50 = percentile(&times, 0.5);
    println!(
        "get trace (8 spans):        p50 {:>8.3} ms  p99 {:>8.3} ms",
        get_p50.as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );

    report_search(&store, "", 50);
    if metrics {
        report_series(&store);
    }
    ingest_rate
}

/// This process's CPU time so far, user and system together, in seconds.
fn own_cpu_seconds() -> f64 {
    let (user, system) = cpu_seconds("self");
    user + system
}
