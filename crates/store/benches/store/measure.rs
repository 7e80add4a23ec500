//! What the runs share: latency percentiles, a process's memory and CPU time, reading traces by
//! ID, and an OTLP/gRPC client that sends batches encoded beforehand.

use std::time::{Duration, Instant};

use bytes::Bytes;
use meshtrace_model::TraceId;
use meshtrace_store::Store;
use meshtrace_store::raw_codec::ClientCodec;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;

use crate::workload::Rng;

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A `/proc/<process>/status` field in KiB (`process` is `self` or a pid; 0 when unreadable).
pub fn status_kib(process: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// Clock ticks per second in `/proc` times (Linux's USER_HZ, 100 on every architecture it
/// exports to user space).
const TICKS_PER_SECOND: f64 = 100.0;

/// The CPU seconds a process has used, user and system (`process` is `self` or a pid).
pub fn cpu_seconds(process: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{process}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) start at the state, field 3;
    // utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) / TICKS_PER_SECOND, ticks(12) / TICKS_PER_SECOND)
}

/// The bytes a process has caused to be written to storage so far (`/proc/<process>/io`'s
/// `write_bytes`: the journal, and every table the engine writes out or merges).
pub fn written_bytes(process: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{process}/io"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The machine's CPU seconds so far, all cores: (busy, stolen by the hypervisor, total).
pub fn machine_cpu_seconds() -> (f64, f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let ticks: Vec<f64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let field = |i: usize| ticks.get(i).copied().unwrap_or(0.0) / TICKS_PER_SECOND;
    // user nice system idle iowait irq softirq steal (guest times are inside user).
    let total: f64 = (0..8).map(field).sum();
    let idle = field(3) + field(4);
    let steal = field(7);
    (total - idle - steal, steal, total)
}

/// Reads 2,000 of `ids`, picked from `seed`, by ID, checking that each has `spans` spans; the
/// latencies, sorted.
pub fn trace_latencies(store: &Store, ids: &[TraceId], seed: u64, spans: usize) -> Vec<Duration> {
    let mut rng = Rng(seed);
    let mut times = Vec::new();
    for _ in 0..2000 {
        let id = ids[(rng.next() % ids.len() as u64) as usize];
        let started = Instant::now();
        let trace = store.get_trace(id).unwrap().unwrap();
        times.push(started.elapsed());
        assert_eq!(trace.spans.len(), spans);
    }
    times.sort();
    times
}

/// One OTLP/gRPC connection that sends export requests as they were encoded, so that what is
/// measured is the server.
pub struct Exporter(tonic::client::Grpc<tonic::transport::Channel>);

impl Exporter {
    pub async fn connect(addr: impl std::fmt::Display) -> Exporter {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Exporter(tonic::client::Grpc::new(channel))
    }

    /// Sends one batch; every span must be accepted.
    pub async fn export(&mut self, body: Bytes) {
        self.0.ready().await.unwrap();
        let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
            .parse()
            .unwrap();
        let reply: tonic::Response<ExportTraceServiceResponse> = self
            .0
            .unary(tonic::Request::new(body), path, ClientCodec::default())
            .await
            .unwrap();
        assert!(reply.into_inner().partial_success.is_none());
    }
}
