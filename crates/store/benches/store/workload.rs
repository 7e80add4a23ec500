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

/// The pods of the mesh: per app, (pod name, IP, version). Bookinfo's deployments run two
/// replicas each (reviews in three versions), the ingress gateway two.
struct Pods(Vec<Vec<(String, String, &'static str)>>);

/// The apps of the mesh, in `HOPS` order of first appearance, and each hop's app.
const APPS: [&str; 5] = [
    "istio-ingressgateway",
    "productpage",
    "details",
    "reviews",
    "ratings",
];
const HOP_APP: [usize; 8] = [0, 1, 1, 2, 1, 3, 3, 4];

impl Pods {
    fn new() -> Pods {
        let mut ip = 10;
        let mut pods = Vec::new();
        for (a, app) in APPS.iter().enumerate() {
            let versions: &[&'static str] = match *app {
                "istio-ingressgateway" => &["latest"],
                "reviews" => &["v1", "v2", "v3"],
                _ => &["v1"],
            };
            let mut of_app = Vec::new();
            for (v, version) in versions.iter().enumerate() {
                for replica in 0..2 {
                    let deployment = if *version == "latest" {
                        app.to_string()
                    } else {
                        format!("{app}-{version}")
                    };
                    let name = format!("{deployment}-7d8f9c6b{a}{v}-x{replica}k4p");
                    of_app.push((name, format!("10.244.0.{ip}"), *version));
                    ip += 1;
                }
            }
            pods.push(of_app);
        }
        Pods(pods)
    }
}

/// One Bookinfo request: eight sidecar spans, ~20 attributes each; with `size` > 8, the
/// request's hops repeat (a page that calls the same services again) up to `size` spans.
///
/// As a mesh reports it: each app's pod is one of a few (the request goes through one pod of
/// each), a proxy's `node_id` names its pod and IP, `peer.address` the pod at the other end,
/// and the gateway's `x-request-id` travels with the whole request. With `random_pods` (the
/// workload before 2026-12-01, kept to compare with) every span claims a pod and IPs of its
/// own, and a request ID of its own.
fn trace(
    rng: &mut Rng,
    pods: &Pods,
    random_pods: bool,
    trace_id: u128,
    start_ns: u64,
    size: usize,
) -> Vec<(usize, Span)> {
    let mut spans = Vec::with_capacity(size);
    let mut ids = vec![0u64; size];
    let error = rng.next() % 20 == 0;
    let chosen: Vec<&(String, String, &str)> = pods
        .0
        .iter()
        .map(|of_app| &of_app[(rng.next() % of_app.len() as u64) as usize])
        .collect();
    let request_id = format!("{:016x}-{:08x}", rng.next(), rng.next() as u32);
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
        let duration = 200_000 + rng.next() % 20_000_000;
        let status = if error && i >= 4 { "503" } else { "200" };
        let server = i % 2 == 1;
        // The pod at the other end: the callee's for a client span, the caller's for a server one.
        let (own, peer) = if server {
            (chosen[HOP_APP[hop]], chosen[HOP_APP[hop - 1]])
        } else {
            (chosen[HOP_APP[hop]], chosen[HOP_APP[(hop + 1) % 8]])
        };
        let (pod, ip, version, peer_address, host_ip, request_id) = if random_pods {
            (
                format!(
                    "{app}-v{}-7d8f9c6b5-{:05x}",
                    1 + rng.next() % 3,
                    rng.next() % 0xfffff
                ),
                format!("10.244.0.{}", rng.next() % 250),
                "v1",
                format!("10.244.0.{}", rng.next() % 250),
                format!("10.244.0.{}", rng.next() % 250),
                format!("{:016x}-{:08x}", rng.next(), rng.next() as u32),
            )
        } else {
            let peer_address = if server {
                // A caller's connections come from a pool of ephemeral ports.
                format!("{}:{}", peer.1, 40_000 + rng.next() % 16)
            } else {
                format!("{}:9080", peer.1)
            };
            (
                own.0.clone(),
                own.1.clone(),
                own.2,
                peer_address,
                own.1.clone(),
                request_id.clone(),
            )
        };
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
                format!("{proxy}~{ip}~{pod}.{ns}~{ns}.svc.cluster.local"),
            ),
            attr("istio.canonical_service", app.to_string()),
            attr("istio.canonical_revision", version.into()),
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
            attr("peer.address", peer_address),
            attr("net.host.ip", host_ip),
            attr("user_agent", "Mozilla/5.0 (X11; Linux x86_64)".into()),
            attr("guid:x-request-id", request_id),
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
    let pods = Pods::new();
    let random_pods = std::env::var("WORKLOAD").is_ok_and(|w| w == "random-pods");
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
        for (hop, span) in trace(&mut rng, &pods, random_pods, trace_id, start, trace_size) {
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
