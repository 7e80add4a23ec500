//! The benchmark's spans: Bookinfo requests as Istio's sidecars report them, in OTLP batches,
//! from a fixed seed so that every run writes the same data.

use std::time::{SystemTime, UNIX_EPOCH};

use meshtrace_model::TraceId;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

pub const BATCH: usize = 512;
pub const SPANS_PER_TRACE: usize = 8;
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

pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
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
        let server = i % 2 == 1;
        // As Istio's proxies report it (the Tempo trace of Bookinfo in tests/fixtures/tempo): a sidecar's
        // span of a request it received names its inbound cluster, with neither subset nor
        // host; the caller's span names the outbound cluster of the callee's service.
        let upstream = if server {
            "inbound|9080||".to_string()
        } else {
            format!("outbound|9080||{}", op.split(':').next().unwrap())
        };
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
            attr("upstream_cluster", upstream.clone()),
            attr("upstream_cluster.name", upstream),
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
                kind: if server { 2 } else { 3 },
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
pub fn workload(total: usize) -> (Vec<ExportTraceServiceRequest>, Vec<TraceId>) {
    workload_of(total, SPANS_PER_TRACE, 0x9e37_79b9_7f4a_7c15)
}

pub fn workload_of(
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
