//! What the runs share: latency percentiles, a process's memory, reading traces by ID, and an
//! OTLP/gRPC client that sends batches encoded beforehand.

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
