//! What each simulated proxy saw of a request, as the generator's own model tells it (which pod
//! called which, the status, the time and the body sizes): the facts the simulator's Istio
//! metrics count. They are recorded while the spans are rendered, from the same numbers, and
//! never read back from the spans.

/// Which proxy reports (Istio's `reporter` label): the mesh crate's, the same three a span
/// tells.
pub use meshtrace_mesh::telemetry::Reporter;

pub use crate::topology::Protocol;

/// One pod of one workload of one service, by index into the [`crate::Mesh`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub service: usize,
    pub workload: usize,
    pub pod: usize,
}

/// The proxy whose counters a report goes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Proxy {
    /// The sidecar (or gateway) of this pod.
    Sidecar(Endpoint),
    /// A waypoint pod, by name, in this namespace.
    Waypoint { pod: String, namespace: String },
}

/// One request (or, over TCP, one connection) as one proxy counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// HTTP: a request; TCP: a connection opened and closed, with its bytes each way.
    pub protocol: Protocol,
    pub reporter: Reporter,
    pub proxy: Proxy,
    /// The calling pod.
    pub source: Endpoint,
    /// The pod that served the request; `None` when it reached none (503 `UH`, no healthy
    /// upstream), so the proxy knows no destination workload.
    pub destination: Option<Endpoint>,
    /// The service called (its index): `destination_service` is known even without a pod.
    pub service: usize,
    pub status: u16,
    pub flags: &'static str,
    /// The duration of the span this proxy reported, in microseconds.
    pub duration_us: u64,
    /// The request body (TCP: the bytes received during the request).
    pub request_bytes: u64,
    /// The response body (TCP: the bytes sent during the response).
    pub response_bytes: u64,
}
