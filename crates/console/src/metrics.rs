//! The console's own metrics (`/metrics`, OpenMetrics text by `prometheus-client`): requests
//! and their latency per route, and the latency of every backend call per `query_group` (as
//! Kiali's `kiali_tracing_processing_duration_seconds`); and [`observe`], the middleware that
//! counts and logs every request.
//!
//! Every label value comes from a closed set, never from the request's bytes: the route is the
//! matched route's template (or `unmatched`), the method one of HTTP's nine (or `other`), the
//! status the one the console answered. A client sending random methods or paths cannot add
//! series nor grow the console's memory.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::Console;

/// What `/metrics` answers with.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupLabels {
    query_group: &'static str,
}

/// Makes each new histogram with [`BUCKETS`].
#[derive(Clone, Copy, Debug)]
struct Buckets;

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(BUCKETS)
    }
}

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, Buckets>,
    backend: Family<GroupLabels, Histogram, Buckets>,
    backend_failures: Family<GroupLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::new_with_constructor(Buckets);
        let backend = Family::new_with_constructor(Buckets);
        let backend_failures = Family::<GroupLabels, Counter>::default();
        let mut registry = Registry::default();
        // Counters get their `_total` suffix from the encoder, help texts their final period.
        registry.register(
            "meshtrace_http_requests",
            "Requests answered by the console",
            requests.clone(),
        );
        registry.register(
            "meshtrace_http_request_duration_seconds",
            "Time to answer a request, per route",
            latency.clone(),
        );
        registry.register(
            "meshtrace_tracing_processing_duration_seconds",
            "Time of each call to the tracing backend, per query group",
            backend.clone(),
        );
        registry.register(
            "meshtrace_tracing_failures",
            "Calls to the tracing backend that failed",
            backend_failures.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            backend,
            backend_failures,
        }
    }
}

impl Metrics {
    /// A request answered: `route` is a route template of the console's router or `unmatched`.
    fn request(&self, route: &str, method: &'static str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                method,
                status,
            })
            .inc();
        self.latency
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// A backend call of `group` (`AppTraces`, `TraceDetail`, `ErrorTraces`, `ServiceStatus`,
    /// `Services`, `Inventory`).
    pub fn backend_call(&self, group: &'static str, took: Duration, ok: bool) {
        let labels = GroupLabels { query_group: group };
        self.backend
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if !ok {
            self.backend_failures.get_or_create(&labels).inc();
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(error) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            // Writing to a String only fails if an encoder says so; the scrape shows the rest.
            tracing::error!(%error, "the metrics could not be encoded");
        }
        out
    }
}

/// The method as a label: one of HTTP's methods, else `other` (a method is any token the
/// client likes, of any length).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Counts and times every request by its route, and logs it (with the same closed labels:
/// the log is not a way to write the client's bytes either).
pub async fn observe(
    State(console): State<Arc<Console>>,
    request: Request,
    next: Next,
) -> Response {
    let route = meshtrace_listen::route_label(&request);
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let took = started.elapsed();
    let status = response.status().as_u16();
    console.metrics.request(&route, method, status, took);
    tracing::info!(%method, %route, status, ms = took.as_secs_f64() * 1e3, "request");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let metrics = Metrics::default();
        metrics.backend_call("AppTraces", Duration::from_millis(3), true);
        metrics.backend_call("AppTraces", Duration::from_millis(30), false);
        let text = metrics.render();
        assert!(text.contains(
            "meshtrace_tracing_processing_duration_seconds_bucket{le=\"0.005\",query_group=\"AppTraces\"} 1\n"
        ), "{text}");
        assert!(text.contains(
            "meshtrace_tracing_processing_duration_seconds_bucket{le=\"0.05\",query_group=\"AppTraces\"} 2\n"
        ));
        assert!(text.contains(
            "meshtrace_tracing_processing_duration_seconds_count{query_group=\"AppTraces\"} 2\n"
        ));
        assert!(text.contains("meshtrace_tracing_failures_total{query_group=\"AppTraces\"} 1\n"));
        assert!(text.ends_with("# EOF\n"));
    }
}
