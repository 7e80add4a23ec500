//! The console (`meshtrace serve`): one server for two surfaces on the same routes tree.
//! - The Kiali API: Kiali's tracing routes with their shapes and status codes
//!   ([`tracing_api`], [`params`]), the mesh inventory seen in traces, status, health and
//!   metrics; errors answer Kiali's JSON `{"error": ...}`.
//! - The HTML console (`ui`): server-rendered pages for the overview, the apps, workloads and
//!   services with their Traces tab, the trace timeline, the Jaeger UI's link routes
//!   (`/jaeger/...`, so `external_url` may point at the console itself) and the configuration
//!   tester; errors answer as HTML pages.
//!
//! Both surfaces take their statuses from one place (`error`). Everything goes through one
//! [`Console`]: the loaded configuration, the backend client built from it (or the reason
//! there is none), the Prometheus client (or the reason there is none), the inventory, version
//! and trace caches (`cache`), and the metrics.

// Every module answers strangers (requests, backend answers): no unwrap or expect, no indexing
// that can panic and no unchecked arithmetic, crate-wide. clippy.toml allows unwrap, expect and
// indexing in tests; test modules allow arithmetic themselves. Every other `#[allow]` says why.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

pub mod auth;
mod body;
mod cache;
mod check;
mod destination;
mod error;
pub mod graph;
mod inventory;
mod metrics_api;
mod ops;
pub mod params;
pub mod tracing_api;
mod ui;

mod metrics;
mod same_origin;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use meshtrace_backend::prometheus::{PrometheusClient, PrometheusOptions};
use meshtrace_backend::{BackendError, TracingBackend};
use meshtrace_config::Config;

pub use error::ApiError;
pub use metrics::Metrics;

/// Settings of the console that are not in Kiali's configuration.
#[derive(Debug, Clone)]
pub struct ConsoleOptions {
    pub backend: meshtrace_backend::Options,
    /// Lets `POST /api/tracing/check` reach any destination, not only the configured backend
    /// (the live secrets still go to the configured backend only).
    pub allow_check_any_host: bool,
    /// How far back the inventory looks, and how often it is refreshed.
    pub inventory_window: Duration,
    pub inventory_refresh: Duration,
    /// Traces sampled per backend service for the inventory.
    pub inventory_traces_per_service: usize,
    /// Refresh the inventory in the background (else only when a request needs it).
    pub background_inventory: bool,
    /// What the listener holds its clients to: header, body and idle timeouts, open connections.
    pub limits: meshtrace_listen::Limits,
    /// The Prometheus client's timeout, answer cap and service-account token.
    pub prometheus: PrometheusOptions,
    /// Authentication settings that are not in Kiali's configuration.
    pub auth: auth::AuthOptions,
}

impl Default for ConsoleOptions {
    fn default() -> Self {
        ConsoleOptions {
            backend: meshtrace_backend::Options::default(),
            allow_check_any_host: false,
            inventory_window: Duration::from_secs(10 * 60),
            inventory_refresh: Duration::from_secs(30),
            inventory_traces_per_service: 50,
            background_inventory: true,
            limits: meshtrace_listen::Limits::default(),
            prometheus: PrometheusOptions::default(),
            auth: auth::AuthOptions::default(),
        }
    }
}

pub struct Console {
    pub config: Config,
    backend: Result<Arc<dyn TracingBackend>, String>,
    pub options: ConsoleOptions,
    pub metrics: Metrics,
    inventory: inventory::Cache,
    version: ops::VersionCache,
    /// The client of `external_services.prometheus`, or why there is none.
    prometheus: Result<Arc<PrometheusClient>, String>,
    prometheus_status: ops::PrometheusStatusCache,
    /// The metrics API's answers, kept as Kiali's `cache_*` keys say.
    metrics_api: metrics_api::Caches,
    traces: ui::trace_cache::TraceCache,
    started: Instant,
    pub auth: auth::Auth,
}

impl Console {
    pub fn new(config: Config, options: ConsoleOptions) -> Arc<Console> {
        let backend = backend_for(&config, &options);
        if let Err(reason) = &backend {
            tracing::warn!(%reason, "no tracing backend: the traces routes answer 503");
        }
        let auth = auth::Auth::new(&config, &options.auth);
        if let Some(problem) = auth.problem() {
            tracing::error!(%problem, "authentication cannot work: protected routes answer 503");
        }
        let inventory = inventory::Cache::new(options.inventory_refresh);
        let prometheus = PrometheusClient::new(&config.prometheus, &options.prometheus)
            .map(Arc::new)
            .map_err(|e| e.to_string());
        let metrics_api = metrics_api::Caches::new(&config.prometheus);
        Arc::new(Console {
            auth,
            config,
            backend,
            options,
            metrics: Metrics::default(),
            inventory,
            version: ops::VersionCache::default(),
            prometheus,
            prometheus_status: ops::PrometheusStatusCache::default(),
            metrics_api,
            traces: ui::trace_cache::new(),
            started: Instant::now(),
        })
    }

    /// The backend, or the 503 that says why there is none.
    pub fn backend(&self) -> Result<&Arc<dyn TracingBackend>, ApiError> {
        self.backend
            .as_ref()
            .map_err(|reason| ApiError::unavailable(reason.clone()))
    }

    /// The Prometheus client, or the 503 that says why there is none (disabled, or a
    /// configuration it cannot be made from).
    pub fn prometheus(&self) -> Result<&Arc<PrometheusClient>, ApiError> {
        self.prometheus
            .as_ref()
            .map_err(|reason| ApiError::unavailable(reason.clone()))
    }

    /// Runs a backend call, timing it under `group`.
    pub async fn timed<T>(
        &self,
        group: &'static str,
        call: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        let started = Instant::now();
        let result = call.await;
        self.metrics
            .backend_call(group, started.elapsed(), result.is_ok());
        result
    }

    /// The routes, under `server.web_root`.
    pub fn router(self: &Arc<Console>) -> Router {
        let api = Router::new()
            .merge(tracing_api::routes())
            .merge(inventory::routes())
            .merge(graph::routes())
            .merge(ops::routes())
            .merge(metrics_api::routes())
            .merge(ui::routes())
            .merge(auth::routes())
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                auth::gate,
            ))
            .layer(axum::middleware::from_fn(same_origin::refuse_cross_origin))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                metrics::observe,
            ))
            .with_state(self.clone());
        let root = self.config.server.path_prefix();
        if root.is_empty() {
            api
        } else {
            // Probes and scrapers find health and metrics at the root as well.
            Router::new().nest(root, api).merge(
                ops::root_routes()
                    .layer(axum::middleware::from_fn_with_state(
                        self.clone(),
                        auth::gate,
                    ))
                    .with_state(self.clone()),
            )
        }
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight. The inventory
    /// is refreshed in the background meanwhile. Clients are held to `options.limits`
    /// (meshtrace-listen): slow or idle ones are disconnected, open connections capped.
    pub async fn serve(
        self: Arc<Console>,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let refresher = tokio::spawn(inventory::refresh_forever(self.clone()));
        let app = self.router();
        tracing::info!(addr = %listener.local_addr()?, web_root = %self.config.server.web_root, "console ready");
        let result = meshtrace_listen::serve(listener, app, self.options.limits, shutdown).await;
        refresher.abort();
        result
    }
}

fn backend_for(
    config: &Config,
    options: &ConsoleOptions,
) -> Result<Arc<dyn TracingBackend>, String> {
    let tracing = &config.tracing;
    if !tracing.enabled {
        return Err("tracing is not enabled (external_services.tracing.enabled: false)".into());
    }
    if tracing.internal_url.is_empty() {
        return Err(
            "tracing has no internal_url: only external links (external_url) are configured, \
             so there are no traces to show here"
                .into(),
        );
    }
    meshtrace_backend::connect(tracing, &options.backend)
        .map(Arc::from)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod test_support;
