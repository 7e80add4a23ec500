//! Store benchmark: ingest over OTLP/gRPC into a durable store, disk per span, trace-by-ID and
//! search latency, each next to its limit measured in the same run.
//!
//! `cargo bench -p meshtrace-store --bench store` (env: SPANS, default 300000; CLIENTS, 4;
//! METRICS, `both` (default: every ingest figure with the metrics derivation off and on, in the
//! same run, alternating, ROUNDS times each — default 3, at most 2 for gRPC ingest — and the
//! best of each kept, as the machines are noisy), `on` or `off`).
//! Spans are Istio-shaped: eight per trace, twenty string attributes each, like the sidecar
//! spans of a Bookinfo request.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use meshtrace_metrics::{Matcher, SeriesSource};
use meshtrace_model::TraceId;
use meshtrace_model::otlp::spans_from_otlp;
use meshtrace_store::server::{Addresses, Listeners, LoopbackServer, ServeOptions, serve};
use meshtrace_store::{Store, StoreOptions, TraceQuery};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

#[path = "../tests/common/raw_codec.rs"]
mod raw_codec;
use raw_codec::RawCodec;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH: usize = 512;
const SPANS_PER_TRACE: usize = 8;
const HOPS: [(&str, &str, &str); 8] = [
    (
        "istio-ingressgateway.istio-system",
        "productpage.bookinfo.svc.cluster.local:9080/productpage",
        "router",
    ),
    (
        "productpage.bookinfo",
        "productpage.bookinfo.svc.cluster.local:9080/productpage",
        "sidecar",
    ),
    (
        "productpage.bookinfo",
        "details.bookinfo.svc.cluster.local:9080/*",
        "sidecar",
    ),
    (
        "details.bookinfo",
        "details.bookinfo.svc.cluster.local:9080/*",
        "sidecar",
    ),
    (
        "productpage.bookinfo",
        "reviews.bookinfo.svc.cluster.local:9080/*",
        "sidecar",
    ),
    (
        "reviews.bookinfo",
        "reviews.bookinfo.svc.cluster.local:9080/*",
        "sidecar",
    ),
    (
        "reviews.bookinfo",
        "ratings.bookinfo.svc.cluster.local:9080/*",
        "sidecar",
    ),
    (
        "ratings.bookinfo",
        "ratings.bookinfo.svc.cluster.local:9080/*",
        "sidecar",
    ),
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn attr(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// One Bookinfo request: eight sidecar spans, ~20 attributes each; with `size` > 8, the
/// request's hops repeat (a page that calls the same services again) up to `size` spans.
fn trace(rng: &mut Rng, trace_id: u128, start_ns: u64, size: usize) -> Vec<(usize, Span)> {
    let mut spans = Vec::with_capacity(size);
    let mut ids = vec![0u64; size];
    let error = rng.next() % 20 == 0;
    for i in 0..size {
        let hop = i % HOPS.len();
        let (service, op, proxy) = HOPS[hop];
        ids[i] = rng.next() | 1;
        let parent = match (i, hop) {
            (0, _) => 0,
            (_, 0) => ids[1],
            _ => ids[i - hop + [0, 0, 1, 2, 1, 4, 5, 6][hop]],
        };
        let app = service.split('.').next().unwrap();
        let ns = service.split('.').nth(1).unwrap();
        let pod = format!(
            "{app}-v{}-7d8f9c6b5-{:05x}",
            1 + rng.next() % 3,
            rng.next() % 0xfffff
        );
        let duration = 200_000 + rng.next() % 20_000_000;
        let status = if error && i >= 4 { "503" } else { "200" };
        let attributes = vec![
            attr(
                "node_id",
                format!(
                    "{proxy}~10.244.0.{}~{pod}.{ns}~{ns}.svc.cluster.local",
                    rng.next() % 250
                ),
            ),
            attr("istio.canonical_service", app.to_string()),
            attr("istio.canonical_revision", "v1".into()),
            attr("istio.namespace", ns.to_string()),
            attr("istio.mesh_id", "cluster.local".into()),
            attr("istio.cluster_id", "Kubernetes".into()),
            attr("component", "proxy".into()),
            attr(
                "upstream_cluster",
                format!("outbound|9080||{}", op.split(':').next().unwrap()),
            ),
            attr(
                "upstream_cluster.name",
                format!("outbound|9080||{}", op.split(':').next().unwrap()),
            ),
            attr("downstream_cluster", "-".into()),
            attr("http.method", "GET".into()),
            attr("http.url", format!("http://{}", op.replace(":9080", ""))),
            attr("http.protocol", "HTTP/1.1".into()),
            attr("http.status_code", status.into()),
            attr(
                "response_flags",
                if status == "503" {
                    "UH".into()
                } else {
                    "-".into()
                },
            ),
            attr("response_size", (1000 + rng.next() % 5000).to_string()),
            attr("request_size", "0".into()),
            attr("peer.address", format!("10.244.0.{}", rng.next() % 250)),
            attr("net.host.ip", format!("10.244.0.{}", rng.next() % 250)),
            attr("user_agent", "Mozilla/5.0 (X11; Linux x86_64)".into()),
            attr(
                "guid:x-request-id",
                format!("{:016x}-{:08x}", rng.next(), rng.next() as u32),
            ),
        ];
        let start = start_ns + i as u64 * 100_000;
        spans.push((
            hop,
            Span {
                trace_id: trace_id.to_be_bytes().to_vec(),
                span_id: ids[i].to_be_bytes().to_vec(),
                parent_span_id: if parent == 0 {
                    vec![]
                } else {
                    parent.to_be_bytes().to_vec()
                },
                name: op.to_string(),
                kind: if i % 2 == 0 { 3 } else { 2 },
                start_time_unix_nano: start,
                end_time_unix_nano: start + duration,
                attributes,
                status: (status == "503").then(|| Status {
                    code: 2,
                    message: String::new(),
                }),
                ..Default::default()
            },
        ));
    }
    spans
}

/// Batches of `BATCH` spans spread over the last hour, and the trace IDs written.
fn workload(total: usize) -> (Vec<ExportTraceServiceRequest>, Vec<TraceId>) {
    workload_of(total, SPANS_PER_TRACE, 0x9e37_79b9_7f4a_7c15)
}

fn workload_of(
    total: usize,
    trace_size: usize,
    seed: u64,
) -> (Vec<ExportTraceServiceRequest>, Vec<TraceId>) {
    let mut rng = Rng(seed);
    let now_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let traces = total / trace_size;
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); HOPS.len()];
    let mut batches = Vec::new();
    let mut ids = Vec::with_capacity(traces);
    let mut pending = 0;
    for t in 0..traces {
        let trace_id = ((rng.next() as u128) << 64) | rng.next() as u128;
        ids.push(TraceId(trace_id));
        let start = now_ns - 3_600_000_000_000 + (t as u64 * 3_600_000_000_000 / traces as u64);
        for (hop, span) in trace(&mut rng, trace_id, start, trace_size) {
            by_service[hop].push(span);
            pending += 1;
        }
        if pending >= BATCH || t + 1 == traces {
            let resource_spans = by_service
                .iter_mut()
                .enumerate()
                .filter(|(_, spans)| !spans.is_empty())
                .map(|(hop, spans)| ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![attr("service.name", HOPS[hop].0.to_string())],
                        ..Default::default()
                    }),
                    scope_spans: vec![ScopeSpans {
                        spans: std::mem::take(spans),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect();
            batches.push(ExportTraceServiceRequest { resource_spans });
            pending = 0;
        }
    }
    (batches, ids)
}

/// The derivation settings to measure (`METRICS`): off then on by default.
fn metrics_modes() -> Vec<bool> {
    match std::env::var("METRICS").as_deref() {
        Ok("on") => vec![true],
        Ok("off") => vec![false],
        _ => vec![false, true],
    }
}

fn store_options(metrics: bool) -> StoreOptions {
    let mut options = StoreOptions::new(Duration::from_secs(72 * 3600));
    if !metrics {
        options.metrics = None;
    }
    options
}

fn on_off(metrics: bool) -> &'static str {
    if metrics { "on" } else { "off" }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn main() {
    if std::env::var("MESHTRACE_BENCH_ROLE").as_deref() == Ok("server") {
        return server_role();
    }
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
    };
    quick();
    if let Some(seconds) = env("SUSTAIN_SECS").filter(|s| *s > 0) {
        sustained(seconds as u64);
    }
    if let Some(spans) = env("QUERY_SPANS").filter(|s| *s > 0) {
        at_scale(spans);
    }
}

/// The quick run: limits, engine alone, ingest over gRPC in-process, disk, reads.
fn quick() {
    let total: usize = std::env::var("SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let clients: usize = std::env::var("CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let (batches, trace_ids) = workload(total);
    let encoded: Vec<Vec<u8>> = batches.iter().map(|b| b.encode_to_vec()).collect();
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

    // The engine alone: converted spans written straight into a store, from 4 threads.
    let converted: Vec<Vec<meshtrace_model::Span>> = batches
        .iter()
        .map(|b| spans_from_otlp(&b.resource_spans).spans)
        .collect();
    let modes = metrics_modes();
    let rounds = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(3)
        .max(1);
    let mut engine_rates: Vec<(&str, bool, f64)> = Vec::new();
    let mut runs: Vec<(&str, bool)> = Vec::new();
    for label in ["memory", "durable"] {
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
    for label in ["memory", "durable"] {
        for metrics in &modes {
            println!(
                "engine write only ({label}, metrics {}): {:>12.0} spans/s (best of {rounds})",
                on_off(*metrics),
                best(&engine_rates, label, *metrics).unwrap_or(0.0)
            );
        }
    }
    for label in ["memory", "durable"] {
        report_cost(
            &format!("engine write only ({label})"),
            &engine_rates,
            label,
        );
    }
    drop(converted);

    let mut ingest_rates: Vec<(&str, bool, f64)> = Vec::new();
    let ingest_rounds = rounds.min(2);
    for round in 0..ingest_rounds {
        for (i, metrics) in modes.iter().enumerate() {
            // The reads are measured once, on the last store written.
            let report = round + 1 == ingest_rounds && i + 1 == modes.len();
            let rate = ingest(&encoded, &trace_ids, clients, *metrics, report);
            ingest_rates.push(("ingest", *metrics, rate));
        }
    }
    for metrics in &modes {
        let rate = best(&ingest_rates, "ingest", *metrics).unwrap_or(0.0);
        println!(
            "ingest, OTLP/gRPC, {clients} clients, durable, metrics {}: {rate:>8.0} spans/s, best of {ingest_rounds} ({:.0}% of decode-only); peak RSS {} MiB (server and clients in one process)",
            on_off(*metrics),
            100.0 * rate / decode_rate,
            rss_kib("VmHWM:") / 1024
        );
    }
    report_cost("ingest, OTLP/gRPC", &ingest_rates, "ingest");
}

/// The best rate measured for `label` with the derivation on or off.
fn best(rates: &[(&str, bool, f64)], label: &str, metrics: bool) -> Option<f64> {
    rates
        .iter()
        .filter(|(l, m, _)| *l == label && *m == metrics)
        .map(|(_, _, r)| *r)
        .reduce(f64::max)
}

/// The throughput the derivation costs, when both settings were measured.
fn report_cost(what: &str, rates: &[(&str, bool, f64)], label: &str) {
    if let (Some(off), Some(on)) = (best(rates, label, false), best(rates, label, true)) {
        println!(
            "{what}: the metrics derivation costs {:.1}% of throughput",
            100.0 * (off - on) / off
        );
    }
}

/// Ingest over OTLP/gRPC into a durable store served on loopback; then, with `report`, disk,
/// trace-by-ID and search figures of that store. Returns spans per second.
fn ingest(
    encoded: &[Vec<u8>],
    trace_ids: &[TraceId],
    clients: usize,
    metrics: bool,
    report: bool,
) -> f64 {
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
        let mut tasks = Vec::new();
        for client in 0..clients {
            let encoded = encoded.clone();
            tasks.push(tokio::spawn(async move {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                    .unwrap()
                    .connect()
                    .await
                    .unwrap();
                let mut grpc = tonic::client::Grpc::new(channel);
                for body in encoded.iter().skip(client).step_by(clients) {
                    grpc.ready().await.unwrap();
                    let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                        .parse()
                        .unwrap();
                    let reply: tonic::Response<ExportTraceServiceResponse> = grpc
                        .unary(tonic::Request::new(body.clone()), path, RawCodec)
                        .await
                        .unwrap();
                    assert!(reply.into_inner().partial_success.is_none());
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let rate = spans as f64 / started.elapsed().as_secs_f64();
        server.stop().await.unwrap();
        rate
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
    let mut rng = Rng(42);
    let mut times = Vec::new();
    for _ in 0..2000 {
        let id = trace_ids[(rng.next() % trace_ids.len() as u64) as usize];
        let started = Instant::now();
        let trace = store.get_trace(id).unwrap().unwrap();
        times.push(started.elapsed());
        assert_eq!(trace.spans.len(), SPANS_PER_TRACE);
    }
    times.sort();
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

/// The derived series as Kiali's namespace graph reads them over the hour written: the
/// selector of its requests query (`reporter="source"`, a namespace: every span of this
/// workload names an `outbound|` upstream, so all are source reports) and of its response time
/// query (the duration buckets), each over one hour and the 10-minute rate window.
fn report_series(store: &Store) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let selectors = [
        ("istio_requests_total", "requests"),
        (
            "istio_request_duration_milliseconds_bucket",
            "duration buckets",
        ),
    ];
    for (name, what) in selectors {
        let matchers = [
            Matcher::equal("__name__", name),
            Matcher::equal("reporter", "source"),
            Matcher::equal("source_workload_namespace", "bookinfo"),
        ];
        let mut times = Vec::new();
        let mut found = (0, 0);
        for _ in 0..20 {
            let started = Instant::now();
            let series = store.select(&matchers, now - 4_200_000, now).unwrap();
            times.push(started.elapsed());
            found = (series.len(), series.iter().map(|s| s.samples.len()).sum());
        }
        times.sort();
        println!(
            "derived series, graph selector ({what}) over 1 h: p50 {:>8.3} ms  p99 {:>8.3} ms ({} series, {} samples)",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3,
            found.0,
            found.1
        );
    }
}

/// Runs a durable store server in this process (the child of `sustained`), on loopback ports,
/// until its standard input closes; prints `ready <otlp-grpc address>`.
fn server_role() {
    let dir = std::env::var("MESHTRACE_BENCH_DIR").expect("MESHTRACE_BENCH_DIR");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Arc::new(
            Store::open(std::path::Path::new(&dir), Duration::from_secs(72 * 3600)).unwrap(),
        );
        let any = "127.0.0.1:0".parse().unwrap();
        let listeners = Listeners::bind(&Addresses {
            otlp_grpc: any,
            otlp_http: any,
            zipkin: any,
            query_http: any,
            query_grpc: any,
        })
        .await
        .unwrap();
        println!("ready {}", listeners.addresses().unwrap().otlp_grpc);
        let options = ServeOptions {
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
fn trace_id_offsets(bytes: &[u8], ids: &std::collections::HashSet<[u8; 16]>) -> Vec<usize> {
    (0..bytes.len().saturating_sub(18))
        .filter(|&i| {
            bytes[i] == 0x0a && bytes[i + 1] == 0x10 && ids.contains(&bytes[i + 2..i + 18])
        })
        .map(|i| i + 2)
        .collect()
}

/// Ingest over OTLP/gRPC into a server in its own process for `seconds`, from 4 clients that
/// replay a pool of encoded batches with fresh trace IDs on every pass; the server's resident
/// memory is sampled from /proc; disk is measured once the server has stopped.
fn sustained(seconds: u64) {
    let clients: usize = std::env::var("CLIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let (batches, trace_ids) = workload(200_000);
    let ids: std::collections::HashSet<[u8; 16]> =
        trace_ids.iter().map(|t| t.0.to_be_bytes()).collect();
    let pool: Vec<(Vec<u8>, Vec<usize>, usize)> = batches
        .iter()
        .map(|b| {
            let bytes = b.encode_to_vec();
            let offsets = trace_id_offsets(&bytes, &ids);
            let spans = b
                .resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len())
                .sum();
            (bytes, offsets, spans)
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
    let addr = line
        .trim()
        .strip_prefix("ready ")
        .expect("the server says where it listens")
        .to_string();
    let pid = child.id();
    let peak_rss = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let (peak_rss, sampling) = (peak_rss.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let status =
                    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kib) = status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                {
                    peak_rss.fetch_max(kib, std::sync::atomic::Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let pool = Arc::new(pool);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let sent: usize = runtime.block_on(async {
        let mut tasks = Vec::new();
        for client in 0..clients {
            let (pool, addr) = (pool.clone(), addr.clone());
            tasks.push(tokio::spawn(async move {
                let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                    .unwrap()
                    .connect()
                    .await
                    .unwrap();
                let mut grpc = tonic::client::Grpc::new(channel);
                let mut sent = 0;
                let mut pass: u64 = 0;
                'passes: loop {
                    for (bytes, offsets, spans) in pool.iter().skip(client).step_by(clients) {
                        if Instant::now() >= deadline {
                            break 'passes;
                        }
                        let mut body = bytes.clone();
                        for offset in offsets {
                            for (b, x) in body[*offset..*offset + 8]
                                .iter_mut()
                                .zip(pass.to_be_bytes())
                            {
                                *b ^= x;
                            }
                        }
                        grpc.ready().await.unwrap();
                        let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
                            .parse()
                            .unwrap();
                        let reply: tonic::Response<ExportTraceServiceResponse> = grpc
                            .unary(
                                tonic::Request::new(bytes::Bytes::from(body)),
                                path,
                                RawCodec,
                            )
                            .await
                            .unwrap();
                        assert!(reply.into_inner().partial_success.is_none());
                        sent += spans;
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
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    // Disk is not reported here: replayed batches differ only in their trace IDs and compress
    // far better than real traffic; the quick run's figure is the one that counts.
    println!(
        "sustained ingest, {seconds} s, OTLP/gRPC, {clients} clients, durable, server in its own process: {:.0} spans/s ({sent} spans); server peak RSS {} MiB",
        sent as f64 / elapsed,
        peak_rss.load(std::sync::atomic::Ordering::Relaxed) / 1024,
    );
}

/// Fills a durable store with `total` spans in 50-span traces over the last hour, through the
/// engine, then measures trace-by-ID and search latency.
fn at_scale(total: usize) {
    const TRACE_SIZE: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Duration::from_secs(72 * 3600)).unwrap();
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
    let mut rng = Rng(7);
    let mut times = Vec::new();
    for _ in 0..2000 {
        let id = trace_ids[(rng.next() % trace_ids.len() as u64) as usize];
        let started = Instant::now();
        let trace = store.get_trace(id).unwrap().unwrap();
        times.push(started.elapsed());
        assert_eq!(trace.spans.len(), TRACE_SIZE);
    }
    times.sort();
    println!(
        "at {written} spans: get trace (50 spans): p50 {:.3} ms  p99 {:.3} ms",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );
    report_search(&store, &format!("at {written} spans: "), 200);
}

/// Runs the benchmark's search — reviews spans with a 503 and at least 5 ms, limit 20, over the
/// last hour — `runs` times, and prints its latency next to reading the same traces by ID.
fn report_search(store: &Store, label: &str, runs: usize) {
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
    let mut search = Vec::new();
    let mut by_id = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        let traces = store.find_traces(&query).unwrap();
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
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{label}search svc+tag+minDuration, limit 20, 1h: p50 {:.2} ms  p99 {:.2} ms  (reading the 20 matched traces by ID: p50 {:.2} ms, ratio {:.1}x)",
        ms(percentile(&search, 0.5)),
        ms(percentile(&search, 0.99)),
        ms(percentile(&by_id, 0.5)),
        ms(percentile(&search, 0.5)) / ms(percentile(&by_id, 0.5)).max(1e-9)
    );
}
