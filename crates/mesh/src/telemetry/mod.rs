//! Istio's standard metrics, as one span tells them: for a span an Istio proxy reported, the
//! label set Istio's telemetry gives the request (`reporter`, both ends' workload, namespace,
//! app, version, principal, cluster, canonical service and revision, the destination service,
//! protocol, response code and flags...), its duration and its body sizes — `unknown` where
//! the span cannot tell, as Istio writes it. And, for every span, the per-service key of
//! OpenTelemetry's span metrics ([`ServiceKey`]).
//!
//! The other end of a sidecar's request (the caller of a server span, the callee of a client
//! span) is not in the span: whoever holds more than one span (the store) finds it and passes
//! it in.

mod proxy;
mod service;
mod tags;

use std::borrow::Cow;

use meshtrace_model::{Span, Value};

pub use proxy::{Proxy, ProxyKind, UNKNOWN, Workload, proxy, proxy_of, waypoint_ends};
pub use service::{ServiceKey, SpanKind, StatusCode};
pub use tags::SpanTags;

pub const ISTIO_REQUESTS_TOTAL: &str = "istio_requests_total";
pub const ISTIO_REQUEST_DURATION: &str = "istio_request_duration_milliseconds";
pub const ISTIO_REQUEST_BYTES: &str = "istio_request_bytes";
pub const ISTIO_RESPONSE_BYTES: &str = "istio_response_bytes";

/// The upper bounds of Istio's histogram buckets (milliseconds and bytes alike): Istio sets
/// none of its own, so these are Envoy's defaults; `+Inf` follows the last.
pub const ISTIO_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// The labels of Istio's HTTP/gRPC request metrics, in the order of [`IstioRequest::labels`].
pub const ISTIO_LABELS: [&str; 25] = [
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_app",
    "source_version",
    "source_principal",
    "source_cluster",
    "source_canonical_service",
    "source_canonical_revision",
    "destination_workload",
    "destination_workload_namespace",
    "destination_app",
    "destination_version",
    "destination_principal",
    "destination_cluster",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
];

/// Who reports a request's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reporter {
    /// The caller's proxy (a sidecar's client span, and every gateway span).
    Source,
    /// The callee's sidecar (a server span).
    Destination,
    /// An ambient waypoint.
    Waypoint,
}

impl Reporter {
    pub fn label(self) -> &'static str {
        match self {
            Reporter::Source => "source",
            Reporter::Destination => "destination",
            Reporter::Waypoint => "waypoint",
        }
    }
}

/// One request as Istio's metrics count it.
#[derive(Debug, Clone, PartialEq)]
pub struct IstioRequest<'a> {
    /// The values of [`ISTIO_LABELS`], in that order; `grpc_response_status` is empty for a
    /// request that is not gRPC (the label is then absent, as in Prometheus).
    pub labels: [Cow<'a, str>; 25],
    pub numbers: RequestNumbers,
}

/// What one request adds to its label set's histograms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestNumbers {
    pub duration_ms: f64,
    pub request_bytes: u64,
    pub response_bytes: u64,
}

impl RequestNumbers {
    pub fn of(span: &Span, tags: &SpanTags<'_>) -> RequestNumbers {
        RequestNumbers {
            // µs to ms, keeping the fraction (Envoy rounds down to whole milliseconds).
            duration_ms: span.duration as f64 / 1000.0,
            request_bytes: size(tags.request_size),
            response_bytes: size(tags.response_size),
        }
    }
}

/// Everything a request's label set is made from, borrowed from its span: equal inputs give
/// equal labels, so whoever counts many spans can sum them per input and write the 25 labels
/// once per distinct input ([`RequestInputs::labels`]) instead of once per span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestInputs<'a> {
    reporter: Reporter,
    source: Workload<'a>,
    destination: Workload<'a>,
    /// `destination_service`, `_name`, `_namespace`.
    service: (&'a str, &'a str, &'a str),
    /// None when the span has none, or one that is not a 1–3 digit code.
    response_code: Option<Code<'a>>,
    grpc_status: Option<Code<'a>>,
    flags: &'a str,
}

/// A status code tag's value, as the span wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Code<'a> {
    Text(&'a str),
    Number(i64),
}

impl<'a> Code<'a> {
    fn of(value: &'a Value) -> Option<Code<'a>> {
        match value {
            Value::Str(s) => Some(Code::Text(s.as_str())),
            Value::I64(i) => Some(Code::Number(*i)),
            _ => None,
        }
    }

    fn text(self) -> Cow<'a, str> {
        match self {
            Code::Text(s) => Cow::Borrowed(s),
            Code::Number(i) => Cow::Owned(i.to_string()),
        }
    }

    /// An HTTP status as Istio writes it: one to three digits.
    fn is_http_status(self) -> bool {
        match self {
            Code::Text(s) => (1..=3).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()),
            Code::Number(i) => (0..=999).contains(&i),
        }
    }
}

/// Which end of the request the span's own proxy is, when it is an Istio proxy's span of a
/// request: its proxy and who reports.
pub fn reporter(span: &Span) -> Option<(Reporter, Proxy<'_>)> {
    reporter_of(&SpanTags::of(span))
}

/// [`reporter`] from the span's tags, already read.
pub fn reporter_of<'a>(tags: &SpanTags<'a>) -> Option<(Reporter, Proxy<'a>)> {
    let own = proxy_of(tags)?;
    let reporter = match own.kind {
        ProxyKind::Waypoint => Reporter::Waypoint,
        // A gateway in sidecar mode reports as the source of what it forwards.
        ProxyKind::Gateway => Reporter::Source,
        ProxyKind::Sidecar => {
            let upstream = tags.upstream_cluster.unwrap_or("");
            if upstream.starts_with("inbound|") {
                Reporter::Destination
            } else if upstream.starts_with("outbound|") {
                Reporter::Source
            } else {
                match tags.span_kind {
                    Some("server" | "consumer") => Reporter::Destination,
                    Some("client" | "producer") => Reporter::Source,
                    _ => return None,
                }
            }
        }
    };
    Some((reporter, own))
}

/// The request an Istio proxy's span reports, with `remote` the other end of a sidecar's or a
/// gateway's request when the caller knows it (`unknown` labels otherwise); a waypoint's span
/// names both ends itself. None for a span that is not an Istio proxy's.
pub fn istio_request<'a>(span: &'a Span, remote: Option<Workload<'a>>) -> Option<IstioRequest<'a>> {
    let tags = SpanTags::of(span);
    let (reporter, own) = reporter_of(&tags)?;
    Some(istio_request_with(span, &tags, (reporter, own), remote))
}

/// [`istio_request`] with the span's tags and reporter already worked out.
pub fn istio_request_with<'a>(
    span: &'a Span,
    tags: &SpanTags<'a>,
    report: (Reporter, Proxy<'a>),
    remote: Option<Workload<'a>>,
) -> IstioRequest<'a> {
    IstioRequest {
        labels: RequestInputs::of(span, tags, report, remote).labels(),
        numbers: RequestNumbers::of(span, tags),
    }
}

impl<'a> RequestInputs<'a> {
    /// The inputs of the request an Istio proxy's span reports (see [`istio_request`]).
    pub fn of(
        span: &'a Span,
        tags: &SpanTags<'a>,
        (reporter, own): (Reporter, Proxy<'a>),
        remote: Option<Workload<'a>>,
    ) -> RequestInputs<'a> {
        let other = remote.unwrap_or(Workload::UNKNOWN);
        let (source, destination) = match reporter {
            Reporter::Source => (own.workload, other),
            Reporter::Destination => (other, own.workload),
            Reporter::Waypoint => waypoint_ends(span),
        };
        RequestInputs {
            reporter,
            source,
            destination,
            service: destination_service(span, tags),
            response_code: tags
                .http_status_code
                .and_then(Code::of)
                .filter(|code| code.is_http_status()),
            grpc_status: tags.grpc_status_code.and_then(Code::of),
            flags: tags.response_flags.filter(|f| !f.is_empty()).unwrap_or("-"),
        }
    }

    /// The values of [`ISTIO_LABELS`], in that order.
    pub fn labels(&self) -> [Cow<'a, str>; 25] {
        let RequestInputs {
            reporter,
            source,
            destination,
            service: (service, service_name, service_namespace),
            response_code,
            grpc_status,
            flags,
        } = *self;
        let protocol = if grpc_status.is_some() {
            "grpc"
        } else {
            "http"
        };
        [
            Cow::Borrowed(reporter.label()),
            Cow::Borrowed(source.name),
            Cow::Borrowed(source.namespace),
            Cow::Borrowed(source.app),
            Cow::Borrowed(source.version),
            // Principals need the peer's certificate, which no span carries.
            Cow::Borrowed(UNKNOWN),
            Cow::Borrowed(source.cluster),
            Cow::Borrowed(source.canonical_service),
            Cow::Borrowed(source.canonical_revision),
            Cow::Borrowed(destination.name),
            Cow::Borrowed(destination.namespace),
            Cow::Borrowed(destination.app),
            Cow::Borrowed(destination.version),
            Cow::Borrowed(UNKNOWN),
            Cow::Borrowed(destination.cluster),
            Cow::Borrowed(destination.canonical_service),
            Cow::Borrowed(destination.canonical_revision),
            Cow::Borrowed(service),
            Cow::Borrowed(service_name),
            Cow::Borrowed(service_namespace),
            Cow::Borrowed(protocol),
            response_code.map_or(Cow::Borrowed("0"), Code::text),
            grpc_status.map_or(Cow::Borrowed(""), Code::text),
            Cow::Borrowed(flags),
            // Istio writes `unknown` for the source reporter; a destination's TLS mode is not in
            // its span either.
            Cow::Borrowed(UNKNOWN),
        ]
    }
}

/// `destination_service` (the FQDN), `destination_service_name`, `destination_service_namespace`:
/// from the upstream cluster (`outbound|9080||reviews.bookinfo.svc.cluster.local`, a waypoint's
/// `inbound-vip|9080|http|…`), else the operation name Envoy gives the request
/// (`reviews.bookinfo.svc.cluster.local:9080/*`), else the request's host, else `unknown`.
fn destination_service<'a>(span: &'a Span, tags: &SpanTags<'a>) -> (&'a str, &'a str, &'a str) {
    let upstream = tags.upstream_cluster.unwrap_or("");
    if matches!(upstream, "PassthroughCluster" | "BlackHoleCluster") {
        let host = url_host(tags.http_url).unwrap_or(UNKNOWN);
        return (host, upstream, UNKNOWN);
    }
    let mut parts = upstream.split('|');
    let from_cluster = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("outbound" | "inbound-vip"), Some(_port), Some(_subset), Some(host))
            if !host.is_empty() && parts.next().is_none() =>
        {
            Some(host)
        }
        _ => None,
    };
    let from_operation = || {
        let op = span.operation_name.as_str();
        let host = op.split([':', '/']).next().unwrap_or("");
        (op.contains(':') && host.contains('.')).then_some(host)
    };
    let host = from_cluster
        .or_else(from_operation)
        .or_else(|| url_host(tags.http_url))
        .filter(|h| !h.is_empty());
    let Some(host) = host else {
        return (UNKNOWN, UNKNOWN, UNKNOWN);
    };
    // <name>.<namespace>.svc.<domain> names a Kubernetes service.
    let mut parts = host.split('.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(name), Some(namespace), Some("svc")) if !name.is_empty() && !namespace.is_empty() => {
            (host, name, namespace)
        }
        _ => (host, host, UNKNOWN),
    }
}

/// The host of `http.url` (the request's Host header), without port.
fn url_host(url: Option<&str>) -> Option<&str> {
    let url = url?;
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host.split(':').next()?;
    (!host.is_empty()).then_some(host)
}

/// A body size tag in bytes (0 when absent or not a number).
fn size(value: Option<&Value>) -> u64 {
    match value {
        Some(Value::Str(s)) => s.trim().parse().unwrap_or(0),
        Some(Value::I64(i)) => u64::try_from(*i).unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests;
