//! The sustained run: ingest over OTLP/gRPC for a while into a server in its own process (this
//! benchmark started again in the server role), whose resident memory is sampled from /proc.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use meshtrace_store::Store;
use meshtrace_store::server::{Addresses, Listeners, ServeOptions, serve};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use crate::measure::{Exporter, cpu_seconds, machine_cpu_seconds, status_kib, written_bytes};
use crate::workload::workload;

/// One batch of the replayed pool, encoded, with where its trace IDs and times are.
struct Replayed {
    bytes: Vec<u8>,
    /// Where each trace ID is (changed on every pass).
    offsets: Vec<usize>,
    /// Where each start and end time is, with the time (empty with `TIMES=replayed`).
    times: Vec<(usize, u64)>,
    latest_end: u64,
    spans: usize,
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Runs a durable store server in this process (the child of `sustained`), on loopback ports,
/// until its standard input closes; prints `ready <otlp-grpc address> <query-http address>`.
pub fn server_role() {
    let dir = std::env::var("MESHTRACE_BENCH_DIR").expect("MESHTRACE_BENCH_DIR");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Arc::new(
            Store::open(std::path::Path::new(&dir), Duration::from_secs(72 * 3600)).unwrap(),
        );
        let listeners = Listeners::bind(&Addresses::ephemeral_loopback())
            .await
            .unwrap();
        let addresses = listeners.addresses().unwrap();
        println!("ready {} {}", addresses.otlp_grpc, addresses.query_http);
        let options = ServeOptions {
            jaeger_ui: None,
            max_body: 64 << 20,
            retention_interval: Duration::from_secs(3600),
            limits: meshtrace_store::server::Limits::default(),
        };
        let stdin_closed = async {
            tokio::task::spawn_blocking(|| {
                let mut sink = Vec::new();
                let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
            })
            .await
            .unwrap();
        };
        serve(store, listeners, options, stdin_closed)
            .await
            .unwrap();
    });
}

/// Offsets of the trace IDs in an encoded batch: the 16 bytes after an OTLP span's field-1
/// header (0x0a 0x10) that are one of the batch's trace IDs.
fn trace_id_offsets(bytes: &[u8], ids: &HashSet<[u8; 16]>) -> Vec<usize> {
    (0..bytes.len().saturating_sub(18))
        .filter(|&i| {
            bytes[i] == 0x0a && bytes[i + 1] == 0x10 && ids.contains(&bytes[i + 2..i + 18])
        })
        .map(|i| i + 2)
        .collect()
}

/// Offsets of the span start and end times in an encoded batch (the 8 bytes after an OTLP
/// span's field-7 or field-8 header, 0x39 or 0x41, that hold one of the batch's times), with
/// the time each holds; and the batch's latest end.
fn time_offsets(bytes: &[u8], batch: &ExportTraceServiceRequest) -> (Vec<(usize, u64)>, u64) {
    let spans = || {
        batch
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
    };
    let starts: HashSet<u64> = spans().map(|s| s.start_time_unix_nano).collect();
    let ends: HashSet<u64> = spans().map(|s| s.end_time_unix_nano).collect();
    let latest = ends.iter().copied().max().unwrap_or(0);
    let offsets = (0..bytes.len().saturating_sub(9))
        .filter_map(|i| {
            let value = u64::from_le_bytes(bytes[i + 1..i + 9].try_into().unwrap());
            let time = match bytes[i] {
                0x39 => starts.contains(&value),
                0x41 => ends.contains(&value),
                _ => false,
            };
            time.then_some((i + 1, value))
        })
        .collect();
    (offsets, latest)
}

/// Ingest over OTLP/gRPC into a server in its own process for `seconds`, from 4 clients that
/// replay a pool of encoded batches with fresh trace IDs on every pass; the server's resident
/// memory is sampled from /proc; disk is measured once the server has stopped.
///
/// Each batch is sent as a mesh sends it, its spans ending when it is sent: its times are moved
/// so that its latest end is the moment of sending (its spans keep the ~9 s they cover between
/// them). `TIMES=replayed` sends the times as generated, spread over the hour before the run
/// started, on every pass (the workload before 2026-12-01 13:00, kept to compare with).
pub fn sustained(seconds: u64) {
    let clients: usize = std::env::var("CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let (batches, trace_ids) = workload(200_000);
    let ids: HashSet<[u8; 16]> = trace_ids.iter().map(|t| t.0.to_be_bytes()).collect();
    let current_times = std::env::var("TIMES").as_deref() != Ok("replayed");
    let pool: Vec<Replayed> = batches
        .iter()
        .map(|b| {
            let bytes = b.encode_to_vec();
            let offsets = trace_id_offsets(&bytes, &ids);
            let (times, latest_end) = if current_times {
                time_offsets(&bytes, b)
            } else {
                (Vec::new(), 0)
            };
            let spans = b
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            // Every span's start and end found, nothing else.
            assert!(!current_times || times.len() == 2 * spans);
            Replayed {
                bytes,
                offsets,
                times,
                latest_end,
                spans,
            }
        })
        .collect();
    drop(batches);
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .env("MESHTRACE_BENCH_ROLE", "server")
        .env("MESHTRACE_BENCH_DIR", dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let (addr, query_http) = line
        .trim()
        .strip_prefix("ready ")
        .and_then(|rest| rest.split_once(' '))
        .expect("the server says where it listens");
    let (addr, query_http) = (addr.to_string(), query_http.to_string());
    let pid = child.id();
    let peak_rss = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak_rss, sampling) = (peak_rss.clone(), sampling.clone());
        std::thread::spawn(move || {
            // The peak, and the resident memory every 30 s: growth and plateau tell apart a
            // bound being reached from memory that keeps growing.
            let mut every_30s = Vec::new();
            let started = Instant::now();
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let kib = status_kib(&pid.to_string(), "VmRSS:");
                peak_rss.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
                if started.elapsed() >= Duration::from_secs(30 * (every_30s.len() as u64 + 1)) {
                    every_30s.push(kib / 1024);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            every_30s
        })
    };
    let pool = Arc::new(pool);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let server = pid.to_string();
    let server_cpu_before = cpu_seconds(&server);
    let clients_cpu_before = cpu_seconds("self");
    let machine_before = machine_cpu_seconds();
    let written_before = written_bytes(&server);
    let deadline = started + Duration::from_secs(seconds);
    let sent: usize = runtime.block_on(async {
        let mut tasks = Vec::new();
        for client in 0..clients {
            let (pool, addr) = (pool.clone(), addr.clone());
            tasks.push(tokio::spawn(async move {
                let mut exporter = Exporter::connect(addr).await;
                let mut sent = 0;
                let mut pass: u64 = 0;
                'passes: loop {
                    for batch in pool.iter().skip(client).step_by(clients) {
                        if Instant::now() >= deadline {
                            break 'passes;
                        }
                        let mut body = batch.bytes.clone();
                        let shift = now_ns().saturating_sub(batch.latest_end);
                        for &(offset, time) in &batch.times {
                            body[offset..offset + 8].copy_from_slice(&(time + shift).to_le_bytes());
                        }
                        for offset in &batch.offsets {
                            for (b, x) in body[*offset..*offset + 8]
                                .iter_mut()
                                .zip(pass.to_be_bytes())
                            {
                                *b ^= x;
                            }
                        }
                        exporter.export(bytes::Bytes::from(body)).await;
                        sent += batch.spans;
                    }
                    pass += 1;
                }
                sent
            }));
        }
        let mut total = 0;
        for task in tasks {
            total += task.await.unwrap();
        }
        total
    });
    let elapsed = started.elapsed().as_secs_f64();
    let server_cpu = cpu_seconds(&server);
    let clients_cpu = cpu_seconds("self");
    let machine = machine_cpu_seconds();
    let written = written_bytes(&server).saturating_sub(written_before);
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let every_30s = sampler.join().unwrap();
    let memory = runtime.block_on(server_memory(&query_http));
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    // Disk is not reported here: replayed batches differ only in their trace IDs and compress
    // far better than real traffic; the quick run's figure is the one that counts.
    println!(
        "sustained ingest, {seconds} s, OTLP/gRPC, {clients} clients, durable, server in its own process: {:.0} spans/s ({sent} spans); server peak RSS {} MiB",
        sent as f64 / elapsed,
        peak_rss.load(std::sync::atomic::Ordering::Relaxed) / 1024,
    );
    println!("  server RSS every 30 s (MiB): {every_30s:?}");
    // CPU per span tells builds apart on a machine whose throughput varies with its neighbours.
    let (user, system) = (
        server_cpu.0 - server_cpu_before.0,
        server_cpu.1 - server_cpu_before.1,
    );
    let clients = (clients_cpu.0 + clients_cpu.1) - (clients_cpu_before.0 + clients_cpu_before.1);
    let (busy, stolen, total) = (
        machine.0 - machine_before.0,
        machine.1 - machine_before.1,
        machine.2 - machine_before.2,
    );
    println!(
        "  server CPU: {:.2} µs per span ({user:.1} s user, {system:.1} s system, {:.2} cores); clients {clients:.1} s; machine busy {:.0} %, stolen by the hypervisor {:.1} %",
        (user + system) * 1e6 / sent.max(1) as f64,
        (user + system) / elapsed,
        100.0 * busy / total.max(f64::MIN_POSITIVE),
        100.0 * stolen / total.max(f64::MIN_POSITIVE),
    );
    // What the engine wrote (journal, tables written out, merges) against what it kept: the
    // write amplification that merging adds, in bytes per span.
    println!(
        "  server wrote {:.0} bytes per span to storage ({:.1} GiB)",
        written as f64 / sent.max(1) as f64,
        written as f64 / f64::from(1u32 << 30),
    );
    println!("  at the end, the server's /metrics on memory:\n{memory}");
}

/// The lines of the server's `/metrics` about memory and the engine's journal.
async fn server_memory(query_http: &str) -> String {
    let text = reqwest::get(format!("http://{query_http}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            !l.starts_with('#')
                && (l.contains("memory_bytes")
                    || l.contains("engine_")
                    || l.contains("resident_cells")
                    || l.contains("dictionary_bytes"))
        })
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
