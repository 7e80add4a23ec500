//! Requests through the simulated mesh, as the spans Istio's proxies report for them.
//!
//! With sidecars every hop gives two spans: a client span on the caller's proxy and a server
//! span on the callee's proxy, with the tags Envoy sets (`node_id`, `istio.*`,
//! `upstream_cluster`, `http.*`, `response_flags`, ...). In ambient mode every hop gives one
//! span, on the waypoint of the callee's namespace, with `istio.source_*` and
//! `istio.destination_*` tags. A request is built as a tree of hops first, then faults and slow
//! outliers are placed in it, then it is rendered with its timing.

use std::collections::HashMap;
use std::sync::Arc;

use meshtrace_model::{KeyValue, Process, RefType, Span, SpanId, SpanRef, TraceId};

use crate::report::{Endpoint, Proxy, Report, Reporter};
use crate::rng::Rng;
use crate::topology::{Mesh, Pod, Protocol};

mod ambient;
mod tcp;

#[derive(Debug, Clone)]
pub struct Options {
    /// Share of requests that fail: one hop answers 503 (`response_flags=UH`, no healthy
    /// upstream) or 500, and every caller above it answers 500.
    pub error_rate: f64,
    /// Share of requests with one hop 10–30 times slower than usual.
    pub slow_rate: f64,
    /// Waypoint spans (ambient mesh) instead of sidecar spans.
    pub ambient: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            error_rate: 0.02,
            slow_rate: 0.01,
            ambient: false,
        }
    }
}

/// The spans of one request, whether it failed at its entry, and what each proxy on its way
/// counted of it (the simulated Istio metrics).
#[derive(Debug)]
pub struct Request {
    pub spans: Vec<Span>,
    pub failed: bool,
    pub reports: Vec<Report>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// No healthy upstream: the caller's proxy answers 503 UH; the callee never sees it.
    Unhealthy,
    /// The callee answers 500 without calling anything.
    ServerError,
}

/// Where a proxy runs: service, workload and pod indexes.
#[derive(Debug, Clone, Copy)]
struct At {
    service: usize,
    workload: usize,
    pod: usize,
}

impl At {
    fn endpoint(self) -> Endpoint {
        Endpoint {
            service: self.service,
            workload: self.workload,
            pod: self.pod,
        }
    }
}

struct Hop {
    caller: At,
    callee: At,
    /// A connection to a TCP service: counted, never traced, never faulted.
    tcp: bool,
    path: String,
    self_latency_us: f64,
    fault: Fault,
    children: Vec<Hop>,
}

pub struct Generator {
    mesh: Mesh,
    rng: Rng,
    options: Options,
    processes: HashMap<String, Arc<Process>>,
    waypoints: HashMap<String, Pod>,
}

impl Generator {
    pub fn new(mesh: Mesh, seed: u64, options: Options) -> Generator {
        Generator {
            mesh,
            rng: Rng::new(seed),
            options,
            processes: HashMap::new(),
            waypoints: HashMap::new(),
        }
    }

    pub fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    /// One request starting at `start_us` (µs since the epoch).
    pub fn request(&mut self, start_us: u64) -> Request {
        let total: f64 = self.mesh.topology.entries.iter().map(|e| e.weight).sum();
        let mut pick = self.rng.unit() * total;
        let entry = self
            .mesh
            .topology
            .entries
            .iter()
            .find(|e| {
                pick -= e.weight;
                pick < 0.0
            })
            .unwrap_or(&self.mesh.topology.entries[0])
            .clone();
        let from = self.mesh.service_index(&entry.from);
        let caller = self.place(from);
        let mut root = self.hop(caller, &entry.call.service, &entry.call.path);

        let mut hops = 0;
        count(&root, &mut hops);
        if self.rng.chance(self.options.error_rate) {
            let target = self.rng.below(hops);
            let fault = if self.rng.chance(0.5) {
                Fault::Unhealthy
            } else {
                Fault::ServerError
            };
            with_hop(&mut root, target, &mut 0, &mut |hop| hop.fault = fault);
        }
        if self.rng.chance(self.options.slow_rate) {
            let target = self.rng.below(hops);
            let factor = 10.0 + self.rng.unit() * 20.0;
            with_hop(&mut root, target, &mut 0, &mut |hop| {
                hop.self_latency_us *= factor;
            });
        }

        let trace_id = TraceId(((self.rng.next_u64() as u128) << 64) | self.rng.next_u64() as u128);
        let request_id = format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            self.rng.next_u64() as u32,
            self.rng.next_u64() as u16,
            self.rng.next_u64() as u16,
            self.rng.next_u64() as u16,
            self.rng.next_u64() & 0xffff_ffff_ffff
        );
        let mut render = Render {
            trace_id,
            request_id,
            spans: Vec::new(),
            reports: Vec::new(),
        };
        let (_, status) = self.render(&root, start_us, None, &mut render);
        // Children are rendered before their parents finish; report in start order, root first.
        render.spans.sort_by_key(|s| s.start_time);
        Request {
            spans: render.spans,
            failed: status >= 500,
            reports: render.reports,
        }
    }

    /// A random pod of a random workload of a service.
    fn place(&mut self, service: usize) -> At {
        let workload = self.rng.below(self.mesh.workloads[service].len());
        let pod = self
            .rng
            .below(self.mesh.workloads[service][workload].pods.len());
        At {
            service,
            workload,
            pod,
        }
    }

    fn hop(&mut self, caller: At, callee_name: &str, path: &str) -> Hop {
        let service = self.mesh.service_index(callee_name);
        let callee = self.place(service);
        let workload = &self.mesh.workloads[service][callee.workload];
        let self_latency_us = self.rng.log_normal(workload.latency_ms, workload.sigma) * 1000.0;
        let calls = self.mesh.topology.services[service].calls.clone();
        let children = calls
            .iter()
            .map(|call| self.hop(callee, &call.service, &call.path))
            .collect();
        Hop {
            caller,
            callee,
            tcp: self.mesh.topology.services[service].protocol == Protocol::Tcp,
            path: path.to_string(),
            self_latency_us,
            fault: Fault::None,
            children,
        }
    }

    /// Renders a hop starting at `start`; returns its end (µs) and the status the caller saw.
    fn render(
        &mut self,
        hop: &Hop,
        start: u64,
        parent: Option<SpanId>,
        out: &mut Render,
    ) -> (u64, u16) {
        let network = 50 + self.rng.below(250) as u64;
        if hop.tcp {
            return self.render_tcp(hop, start, network, out);
        }
        if self.options.ambient {
            return self.render_waypoint(hop, start + network, parent, out);
        }
        let client_id = self.span_id();
        if hop.fault == Fault::Unhealthy {
            let end = start + 200 + self.rng.below(800) as u64;
            // No upstream was reached: only the caller's proxy counts the request.
            self.sidecar(
                hop,
                Side::Client,
                client_id,
                parent,
                (start, end),
                (503, "UH"),
                false,
                out,
            );
            return (end, 503);
        }
        let server_id = self.span_id();
        let server_start = start + network;
        let half = (hop.self_latency_us / 2.0) as u64;
        let mut cursor = server_start + half;
        let mut status = if hop.fault == Fault::ServerError {
            500
        } else {
            200
        };
        if hop.fault == Fault::None && self.render_calls(hop, &mut cursor, server_id, out) {
            status = 500;
        }
        let server_end = cursor + half;
        let client_end = server_end + network;
        self.sidecar(
            hop,
            Side::Client,
            client_id,
            parent,
            (start, client_end),
            (status, "-"),
            true,
            out,
        );
        self.sidecar(
            hop,
            Side::Server,
            server_id,
            Some(client_id),
            (server_start, server_end),
            (status, "-"),
            true,
            out,
        );
        (client_end, status)
    }

    /// Renders the calls a hop's callee makes, one after the other from `cursor` (moved to the
    /// end of the last); returns whether one of them failed.
    fn render_calls(
        &mut self,
        hop: &Hop,
        cursor: &mut u64,
        parent: SpanId,
        out: &mut Render,
    ) -> bool {
        let mut failed = false;
        for child in &hop.children {
            let (end, status) = self.render(child, *cursor + 20, Some(parent), out);
            *cursor = end + 20;
            failed |= status >= 500;
        }
        failed
    }

    /// One sidecar's view of a hop, added to `out`: its span over `(start, end)` answering
    /// `(status, flags)` with a body of [`Self::response_size`], and what its proxy counted
    /// (`reached`: whether the callee's pod served the request).
    #[allow(clippy::too_many_arguments)]
    fn sidecar(
        &mut self,
        hop: &Hop,
        side: Side,
        id: SpanId,
        parent: Option<SpanId>,
        (start, end): (u64, u64),
        (status, flags): (u16, &'static str),
        reached: bool,
        out: &mut Render,
    ) {
        let response_size = self.response_size(status);
        let topology = &self.mesh.topology;
        let callee = &topology.services[hop.callee.service];
        let caller_is_gateway = topology.services[hop.caller.service].gateway;
        let at = match side {
            Side::Client => hop.caller,
            Side::Server => hop.callee,
        };
        let service = &topology.services[at.service];
        let workload = &self.mesh.workloads[at.service][at.workload];
        let pod = &workload.pods[at.pod];
        let caller_pod =
            &self.mesh.workloads[hop.caller.service][hop.caller.workload].pods[hop.caller.pod];
        let ns = &service.namespace;
        let fqdn = format!("{}.{}.svc.cluster.local", callee.name, callee.namespace);
        // The gateway's hop is named after the request path; inner hops after the service.
        let operation = if caller_is_gateway {
            format!("{fqdn}:{}{}", callee.port, hop.path)
        } else {
            format!("{fqdn}:{}/*", callee.port)
        };
        let proxy = if service.gateway { "router" } else { "sidecar" };
        let (upstream, peer) = match side {
            Side::Client => (format!("outbound|{}||{fqdn}", callee.port), pod.ip.clone()),
            Side::Server => (format!("inbound|{}||", callee.port), caller_pod.ip.clone()),
        };
        let url = if caller_is_gateway {
            format!("http://bookinfo.example.com{}", hop.path)
        } else {
            format!("http://{}:{}{}", callee.name, callee.port, hop.path)
        };
        let mut tags = vec![
            KeyValue::string(
                "node_id",
                format!(
                    "{proxy}~{}~{}.{ns}~{ns}.svc.cluster.local",
                    pod.ip, pod.name
                ),
            ),
            KeyValue::string("istio.canonical_service", service.name.clone()),
            KeyValue::string("istio.canonical_revision", workload.version.clone()),
            KeyValue::string("istio.namespace", ns.clone()),
            KeyValue::string("istio.mesh_id", topology.mesh_id.clone()),
            KeyValue::string("istio.cluster_id", pod.cluster.clone()),
            KeyValue::string("component", "proxy"),
            KeyValue::string("upstream_cluster", upstream.clone()),
            KeyValue::string("upstream_cluster.name", upstream),
            KeyValue::string("downstream_cluster", "-"),
            KeyValue::string("http.method", "GET"),
            KeyValue::string("http.url", url),
        ];
        tags.extend(answer_tags(status, flags, response_size));
        tags.push(KeyValue::string("peer.address", peer));
        tags.push(KeyValue::string("net.host.ip", pod.ip.clone()));
        push_closing_tags(&mut tags, &out.request_id, side.kind(), status);
        let process_name = format!("{}.{}", service.name, ns);
        let process = self.process(&process_name);
        let span = proxy_span(
            out.trace_id,
            id,
            parent,
            operation,
            (start, end),
            tags,
            process,
        );
        out.spans.push(span);
        let reporter = match side {
            Side::Client => Reporter::Source,
            Side::Server => Reporter::Destination,
        };
        out.reports.push(report(
            hop,
            reporter,
            reached,
            end - start,
            (status, flags, response_size),
        ));
    }

    /// The response body size in bytes: Envoy's own `no healthy upstream` text for a 503, an
    /// empty body for a 500.
    fn response_size(&mut self, status: u16) -> u64 {
        match status {
            503 => 19,
            500 => 0,
            _ => 40 + self.rng.below(5000) as u64,
        }
    }

    fn workload_name(&self, at: At) -> String {
        let service = &self.mesh.topology.services[at.service];
        if service.gateway {
            service.name.clone()
        } else {
            format!(
                "{}-{}",
                service.name, self.mesh.workloads[at.service][at.workload].version
            )
        }
    }

    fn process(&mut self, service_name: &str) -> Arc<Process> {
        self.processes
            .entry(service_name.to_string())
            .or_insert_with(|| {
                Arc::new(Process {
                    service_name: service_name.to_string(),
                    tags: Vec::new(),
                })
            })
            .clone()
    }

    fn span_id(&mut self) -> SpanId {
        SpanId(self.rng.next_u64() | 1)
    }
}

const USER_AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)";

#[derive(Clone, Copy)]
enum Side {
    Client,
    Server,
}

impl Side {
    fn kind(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
}

struct Render {
    trace_id: TraceId,
    request_id: String,
    spans: Vec<Span>,
    reports: Vec<Report>,
}

/// What a sidecar (`reporter` source or destination) counted of a hop; `reached` says whether
/// the callee's pod served it.
fn report(
    hop: &Hop,
    reporter: Reporter,
    reached: bool,
    duration_us: u64,
    (status, flags, response_bytes): (u16, &'static str, u64),
) -> Report {
    let proxy = match reporter {
        Reporter::Destination => hop.callee,
        _ => hop.caller,
    };
    Report {
        protocol: Protocol::Http,
        reporter,
        proxy: Proxy::Sidecar(proxy.endpoint()),
        source: hop.caller.endpoint(),
        destination: reached.then(|| hop.callee.endpoint()),
        service: hop.callee.service,
        status,
        flags,
        duration_us,
        // The simulated requests are GETs without a body, as the spans' `request_size` says.
        request_bytes: 0,
        response_bytes,
    }
}

/// The tags Envoy sets on a span for the answer: `(status, flags, response body size)` of a
/// request without a body.
fn answer_tags(status: u16, flags: &str, response_size: u64) -> [KeyValue; 5] {
    [
        KeyValue::string("http.protocol", "HTTP/1.1"),
        KeyValue::string("http.status_code", status.to_string()),
        KeyValue::string("response_flags", flags),
        KeyValue::string("response_size", response_size.to_string()),
        KeyValue::string("request_size", "0"),
    ]
}

/// The last tags of every proxy span: the user agent, the request id, the span kind and, on a
/// 5xx answer, `error=true`.
fn push_closing_tags(tags: &mut Vec<KeyValue>, request_id: &str, kind: &str, status: u16) {
    tags.push(KeyValue::string("user_agent", USER_AGENT));
    tags.push(KeyValue::string("guid:x-request-id", request_id));
    tags.push(KeyValue::string("span.kind", kind));
    if status >= 500 {
        tags.push(KeyValue::string("error", "true"));
    }
}

/// A proxy's span of trace `trace_id` over `(start, end)`: sampled, a child of `parent` when it
/// has one, without logs.
fn proxy_span(
    trace_id: TraceId,
    id: SpanId,
    parent: Option<SpanId>,
    operation: String,
    (start, end): (u64, u64),
    tags: Vec<KeyValue>,
    process: Arc<Process>,
) -> Span {
    Span {
        trace_id,
        span_id: id,
        operation_name: operation,
        references: parent
            .map(|p| SpanRef {
                ref_type: RefType::ChildOf,
                trace_id,
                span_id: p,
            })
            .into_iter()
            .collect(),
        flags: 1,
        start_time: start,
        duration: end - start,
        tags,
        logs: Vec::new(),
        process,
        warnings: Vec::new(),
    }
}

/// Counts the HTTP hops (the ones faults and slowness are placed on).
fn count(hop: &Hop, total: &mut usize) {
    if !hop.tcp {
        *total += 1;
    }
    for child in &hop.children {
        count(child, total);
    }
}

/// Applies `change` to the HTTP hop at `target` in depth-first order.
fn with_hop(hop: &mut Hop, target: usize, index: &mut usize, change: &mut dyn FnMut(&mut Hop)) {
    if !hop.tcp {
        if *index == target {
            change(hop);
        }
        *index += 1;
    }
    for child in &mut hop.children {
        with_hop(child, target, index, change);
    }
}

#[cfg(test)]
mod tests;
