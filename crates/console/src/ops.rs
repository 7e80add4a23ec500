//! Operations: `/healthz`, `/readyz`, `/metrics`, and `GET /api/status` with the tracing
//! backend's version and Prometheus's version and state (each cached, and fetched in the
//! background with a short timeout, so a broken service never stalls the route).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use meshtrace_backend::prometheus::PrometheusClient;

use crate::Console;
use crate::cache::TtlCache;

/// How long a version read stays good, and how long `/api/status` waits for a first one.
const VERSION_TTL: Duration = Duration::from_secs(300);
const VERSION_WAIT: Duration = Duration::from_secs(1);
/// How long Prometheus's state stays good (it changes more than a version), and the longest a
/// read of it may take.
const PROMETHEUS_TTL: Duration = Duration::from_secs(60);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A value read from an external service, refreshed in the background: a read serves the
/// cached value, starts one fetch when it is stale, and waits (at most [`VERSION_WAIT`]) only
/// for the very first.
pub struct Refreshed<T> {
    /// The last value; empty until one came.
    value: TtlCache<(), T>,
    fetching: AtomicBool,
}

impl<T: Send + Sync + 'static> Refreshed<T> {
    pub fn new(ttl: Duration) -> Self {
        Refreshed {
            value: TtlCache::new(1, ttl),
            fetching: AtomicBool::new(false),
        }
    }
}

/// The value of `pick(console)`, fetched with `fetch` when stale.
async fn refreshed<T: Send + Sync + 'static>(
    console: &Arc<Console>,
    pick: fn(&Console) -> &Refreshed<T>,
    fetch: impl Future<Output = T> + Send + 'static,
) -> Option<Arc<T>> {
    let cache = pick(console);
    if let Some(fresh) = cache.value.get(&()) {
        return Some(fresh);
    }
    let current = cache.value.get_stale(&());
    if !cache.fetching.swap(true, Ordering::SeqCst) {
        let console = console.clone();
        tokio::spawn(async move {
            let value = fetch.await;
            let cache = pick(&console);
            cache.value.insert((), value);
            cache.fetching.store(false, Ordering::SeqCst);
        });
    }
    if let Some((value, _)) = current {
        return Some(value);
    }
    let started = Instant::now();
    while started.elapsed() < VERSION_WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Some((value, _)) = cache.value.get_stale(&()) {
            return Some(value);
        }
    }
    None
}

pub type VersionCache = Refreshed<Option<String>>;

impl Default for VersionCache {
    fn default() -> Self {
        Refreshed::new(VERSION_TTL)
    }
}

/// What `/api/status` says of Prometheus: its version when it answered, and what is wrong.
#[derive(Debug, Clone, Default)]
pub struct PrometheusStatus {
    version: Option<String>,
    warnings: Vec<String>,
}

pub type PrometheusStatusCache = Refreshed<PrometheusStatus>;

impl Default for PrometheusStatusCache {
    fn default() -> Self {
        Refreshed::new(PROMETHEUS_TTL)
    }
}

/// Prometheus's version (`/api/v1/status/buildinfo`, as Kiali reads it) and whether Istio's
/// metrics are there, asked at once, within [`FETCH_TIMEOUT`].
async fn prometheus_status(client: Arc<PrometheusClient>) -> PrometheusStatus {
    let asked = async { tokio::join!(client.buildinfo(), client.istio_series()) };
    let Ok((build, istio)) = tokio::time::timeout(FETCH_TIMEOUT, asked).await else {
        return PrometheusStatus {
            version: None,
            warnings: vec![format!(
                "{} did not answer within {}s: the metrics pages and the graph will fail or be \
                 slow; check that Prometheus is running and not overloaded",
                client.describe(),
                FETCH_TIMEOUT.as_secs()
            )],
        };
    };
    let mut status = PrometheusStatus::default();
    match build {
        // A version, not a page: one line, cut short.
        Ok(info) => {
            let version: String = info
                .version
                .chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect();
            status.version = Some(version);
            match istio {
                Ok(0) => status.warnings.push(format!(
                    "{} has no istio_requests_total series in the last 5 minutes: {}",
                    client.describe(),
                    meshtrace_backend::diagnose::no_istio_metrics(&client)
                )),
                Ok(_) => {}
                Err(e) => status.warnings.push(e.to_string()),
            }
        }
        Err(e) => status.warnings.push(e.to_string()),
    }
    status
}

pub fn routes() -> Router<Arc<Console>> {
    root_routes().route("/api/status", get(status))
}

pub fn root_routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
}

/// Ready once the configuration is loaded (it is, or the console would not run); the
/// backend's state is reported, not required.
async fn ready(State(console): State<Arc<Console>>) -> Json<serde_json::Value> {
    let backend = match console.backend() {
        Ok(backend) => backend.describe(),
        Err(error) => error.error,
    };
    Json(serde_json::json!({
        "ready": true,
        "backend": backend,
        "uptimeSeconds": console.started.elapsed().as_secs(),
    }))
}

async fn metrics(State(console): State<Arc<Console>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        console.metrics.render(),
    )
}

impl Console {
    /// The backend's version: the cached one; a fetch in the background when it is stale; a
    /// wait of at most one second for the very first.
    async fn backend_version(self: &Arc<Console>) -> Option<String> {
        let backend = self.backend().ok()?.clone();
        let console = self.clone();
        let fetch = async move {
            let started = Instant::now();
            let version = tokio::time::timeout(FETCH_TIMEOUT, backend.version())
                .await
                .ok()
                .flatten();
            console
                .metrics
                .backend_call("Version", started.elapsed(), version.is_some());
            version
        };
        refreshed(self, |c| &c.version, fetch)
            .await
            .and_then(|v| v.as_ref().clone())
    }

    /// Prometheus's status, as [`Console::backend_version`] reads the version; `None` when
    /// Prometheus is disabled.
    async fn prometheus_status(self: &Arc<Console>) -> Option<PrometheusStatus> {
        if !self.config.prometheus.enabled {
            return None;
        }
        let client = match &self.prometheus {
            Ok(client) => client.clone(),
            Err(reason) => {
                return Some(PrometheusStatus {
                    version: None,
                    warnings: vec![reason.clone()],
                });
            }
        };
        let fetch = prometheus_status(client);
        let status = refreshed(self, |c| &c.prometheus_status, fetch).await;
        Some(status.map(|s| s.as_ref().clone()).unwrap_or_default())
    }
}

/// `GET /api/status`: the console's version and the external services, as Kiali lists them.
async fn status(State(console): State<Arc<Console>>) -> Json<serde_json::Value> {
    let t = &console.config.tracing;
    let mut services = Vec::new();
    if t.enabled {
        let mut entry = serde_json::Map::new();
        entry.insert("name".into(), t.provider.as_str().into());
        entry.insert("url".into(), t.external_url.clone().into());
        if !t.disable_version_check
            && let Some(version) = console.backend_version().await
        {
            entry.insert("version".into(), version.into());
        }
        if t.provider == meshtrace_config::Provider::Tempo {
            let tempo = serde_json::json!({
                "orgID": t.tempo_config.org_id,
                "datasourceUID": t.tempo_config.datasource_uid,
                "urlFormat": t.tempo_config.url_format.as_str(),
            });
            entry.insert("tempoConfig".into(), tempo);
        }
        services.push(serde_json::Value::Object(entry));
    }
    // Kiali lists Prometheus with its version; what is wrong with it goes to the warnings.
    let mut warnings = Vec::new();
    if let Some(prometheus) = console.prometheus_status().await {
        let mut entry = serde_json::Map::new();
        entry.insert("name".into(), "Prometheus".into());
        if let Some(version) = prometheus.version {
            entry.insert("version".into(), version.into());
        }
        services.push(serde_json::Value::Object(entry));
        warnings = prometheus.warnings;
    }
    Json(serde_json::json!({
        "status": {
            "Kiali state": "running",
            "Kiali version": concat!("meshtrace ", env!("CARGO_PKG_VERSION")),
        },
        "externalServices": services,
        "warningMessages": warnings,
    }))
}
