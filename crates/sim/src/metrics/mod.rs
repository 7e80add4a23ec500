//! The simulator's Istio metrics: what every simulated Envoy proxy would expose on its
//! Prometheus endpoint — `istio_requests_total` and the `istio_request_duration_milliseconds`,
//! `istio_request_bytes` and `istio_response_bytes` histograms, and for TCP services the
//! `istio_tcp_*` counters — counted from the generator's [`Report`]s, so each request is
//! counted exactly once per proxy that reports its spans.
//!
//! One endpoint stands for every proxy of the mesh: each series carries the reporting proxy's
//! `pod` and `namespace`, the labels a Prometheus's Kubernetes service discovery would add when
//! it scrapes each pod on its own. The label sets come from the topology, so their number is
//! bounded by it; [`IstioMetrics::new`] refuses a topology that could make more than
//! [`MAX_SERIES`].
//!
//! This is deliberately independent of the store's span-to-metrics derivation (crates/mesh):
//! the tests compare a Prometheus scraping this endpoint with the store's derived series, which
//! proves something only if the two are separate implementations.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod labels;
mod serve;

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub use labels::{IstioLabels, IstioTcpLabels};
pub use serve::{CONTENT_TYPE, serve};

use crate::report::{Protocol, Proxy, Report, Reporter};
use crate::topology::Mesh;

/// Istio sets no histogram buckets of its own (unless a pod asks with the
/// `sidecar.istio.io/statsHistogramBuckets` annotation), so its histograms have Envoy's default
/// bounds, the same for milliseconds and for bytes; `+Inf` follows the last.
pub const ENVOY_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// The most label sets a topology may give (each holds a counter and three histograms, a few
/// kilobytes): the built-in Bookinfo and travel mesh makes at most 90.
pub const MAX_SERIES: usize = 10_000;

type HistogramFamily = Family<IstioLabels, Histogram, fn() -> Histogram>;

fn envoy_histogram() -> Histogram {
    Histogram::new(ENVOY_BUCKETS)
}

/// The metrics of one label set, kept so that a repeated report costs no label building.
#[derive(Clone)]
enum Series {
    Http {
        requests: Counter,
        duration: Histogram,
        request_bytes: Histogram,
        response_bytes: Histogram,
    },
    Tcp {
        opened: Counter,
        closed: Counter,
        sent: Counter,
        received: Counter,
    },
}

/// What makes two reports fall in the same series: everything their labels are made of.
#[derive(Clone, PartialEq, Eq, Hash)]
struct SeriesKey {
    protocol: Protocol,
    reporter: Reporter,
    proxy: Proxy,
    source: (usize, usize),
    destination: Option<(usize, usize)>,
    service: usize,
    status: u16,
    flags: &'static str,
}

impl SeriesKey {
    fn of(report: &Report) -> SeriesKey {
        SeriesKey {
            protocol: report.protocol,
            reporter: report.reporter,
            // Only the reporting pod is a label; the pods of the ends are not.
            proxy: report.proxy.clone(),
            source: (report.source.service, report.source.workload),
            destination: report.destination.map(|d| (d.service, d.workload)),
            service: report.service,
            status: report.status,
            flags: report.flags,
        }
    }
}

pub struct IstioMetrics {
    mesh: Mesh,
    registry: Registry,
    requests: Family<IstioLabels, Counter>,
    duration: HistogramFamily,
    request_bytes: HistogramFamily,
    response_bytes: HistogramFamily,
    tcp_opened: Family<IstioTcpLabels, Counter>,
    tcp_closed: Family<IstioTcpLabels, Counter>,
    tcp_sent: Family<IstioTcpLabels, Counter>,
    tcp_received: Family<IstioTcpLabels, Counter>,
    series: Mutex<HashMap<SeriesKey, Series>>,
}

impl std::fmt::Debug for IstioMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IstioMetrics")
            .field("series", &self.series.lock().map_or(0, |s| s.len()))
            .finish_non_exhaustive()
    }
}

impl IstioMetrics {
    /// Metrics for the proxies of `mesh` (the generator's own, cloned); refused when its
    /// topology could make more than [`MAX_SERIES`] label sets.
    pub fn new(mesh: &Mesh) -> Result<IstioMetrics, String> {
        let bound = series_bound(mesh);
        if bound > MAX_SERIES {
            return Err(format!(
                "the topology could make up to {bound} Istio metric series (the limit is \
                 {MAX_SERIES}): give it fewer services, versions, pods or calls"
            ));
        }
        let mut registry = Registry::default();
        let requests = Family::<IstioLabels, Counter>::default();
        let new_family = || HistogramFamily::new_with_constructor(envoy_histogram as fn() -> _);
        let (duration, request_bytes, response_bytes) = (new_family(), new_family(), new_family());
        // prometheus-client adds `_total` to a counter's name.
        registry.register(
            "istio_requests",
            "Requests handled by an Istio proxy",
            requests.clone(),
        );
        registry.register(
            "istio_request_duration_milliseconds",
            "Duration of the requests an Istio proxy handled, in milliseconds",
            duration.clone(),
        );
        registry.register(
            "istio_request_bytes",
            "HTTP request body sizes, in bytes",
            request_bytes.clone(),
        );
        registry.register(
            "istio_response_bytes",
            "HTTP response body sizes, in bytes",
            response_bytes.clone(),
        );
        let tcp = [
            (
                "istio_tcp_connections_opened",
                "TCP connections opened through an Istio proxy",
            ),
            (
                "istio_tcp_connections_closed",
                "TCP connections closed through an Istio proxy",
            ),
            (
                "istio_tcp_sent_bytes",
                "Bytes sent during the response of a TCP connection",
            ),
            (
                "istio_tcp_received_bytes",
                "Bytes received during the request of a TCP connection",
            ),
        ]
        .map(|(name, help)| {
            let family = Family::<IstioTcpLabels, Counter>::default();
            registry.register(name, help, family.clone());
            family
        });
        let [tcp_opened, tcp_closed, tcp_sent, tcp_received] = tcp;
        Ok(IstioMetrics {
            mesh: mesh.clone(),
            registry,
            requests,
            duration,
            request_bytes,
            response_bytes,
            tcp_opened,
            tcp_closed,
            tcp_sent,
            tcp_received,
            series: Mutex::new(HashMap::new()),
        })
    }

    /// Counts what each proxy reported of one request.
    pub fn record(&self, reports: &[Report]) {
        let Ok(mut series) = self.series.lock() else {
            return;
        };
        for report in reports {
            let key = SeriesKey::of(report);
            let found = match series.get(&key) {
                Some(found) => found,
                None => {
                    let Some(labels) = labels::labels(&self.mesh, report) else {
                        tracing::warn!(?report, "a report names a pod outside the mesh");
                        continue;
                    };
                    series
                        .entry(key)
                        .or_insert(self.series_of(report.protocol, labels))
                }
            };
            match found {
                Series::Http {
                    requests,
                    duration,
                    request_bytes,
                    response_bytes,
                } => {
                    requests.inc();
                    // Microseconds to milliseconds, keeping the fraction as the spans'
                    // durations do (Envoy itself records whole milliseconds).
                    duration.observe(report.duration_us as f64 / 1000.0);
                    request_bytes.observe(report.request_bytes as f64);
                    response_bytes.observe(report.response_bytes as f64);
                }
                Series::Tcp {
                    opened,
                    closed,
                    sent,
                    received,
                } => {
                    opened.inc();
                    closed.inc();
                    sent.inc_by(report.response_bytes);
                    received.inc_by(report.request_bytes);
                }
            }
        }
    }

    fn series_of(&self, protocol: Protocol, labels: IstioLabels) -> Series {
        match protocol {
            Protocol::Http => Series::Http {
                requests: self.requests.get_or_create_owned(&labels),
                duration: self.duration.get_or_create_owned(&labels),
                request_bytes: self.request_bytes.get_or_create_owned(&labels),
                response_bytes: self.response_bytes.get_or_create_owned(&labels),
            },
            Protocol::Tcp => {
                let labels = labels.connection;
                Series::Tcp {
                    opened: self.tcp_opened.get_or_create_owned(&labels),
                    closed: self.tcp_closed.get_or_create_owned(&labels),
                    sent: self.tcp_sent.get_or_create_owned(&labels),
                    received: self.tcp_received.get_or_create_owned(&labels),
                }
            }
        }
    }

    /// The label sets made so far.
    pub fn series_count(&self) -> usize {
        self.series.lock().map_or(0, |s| s.len())
    }

    /// The exposition: OpenMetrics text, as a Prometheus scrape asks for it.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// The most label sets `mesh` can make: for every pair of services that call each other, the
/// caller's pods (as `source` reporters) times the callee's workloads times the two statuses a
/// reached callee answers (200, 500), plus the 503 of an unreached one; and the callee's pods
/// (as `destination` reporters) times the caller's workloads times two. A waypoint (one pod per
/// namespace) makes fewer than the sidecars would.
pub fn series_bound(mesh: &Mesh) -> usize {
    let topology = &mesh.topology;
    let index = |name: &str| topology.services.iter().position(|s| s.name == name);
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    for (caller, service) in topology.services.iter().enumerate() {
        for call in &service.calls {
            pairs.extend(index(&call.service).map(|callee| (caller, callee)));
        }
    }
    for entry in &topology.entries {
        if let (Some(caller), Some(callee)) = (index(&entry.from), index(&entry.call.service)) {
            pairs.push((caller, callee));
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    let workloads = |service: usize| mesh.workloads.get(service).map_or(0, Vec::len);
    let pods = |service: usize| {
        mesh.workloads
            .get(service)
            .map_or(0, |w| w.iter().map(|w| w.pods.len()).sum::<usize>())
    };
    pairs.iter().fold(0usize, |total, &(caller, callee)| {
        let source =
            pods(caller).saturating_mul(workloads(callee).saturating_mul(2).saturating_add(1));
        let destination = pods(callee).saturating_mul(workloads(caller).saturating_mul(2));
        total.saturating_add(source).saturating_add(destination)
    })
}
