//! Operations: `/healthz`, `/readyz`, `/metrics`, and `GET /api/status` with the backend's
//! version (cached; fetched with a short timeout so a broken backend never stalls the route).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::Console;
use crate::cache::TtlCache;

/// How long a version read stays good, and how long `/api/status` waits for a first one.
const VERSION_TTL: Duration = Duration::from_secs(300);
const VERSION_WAIT: Duration = Duration::from_secs(1);

pub struct VersionCache {
    /// The last answer (`None` inside when the backend cannot tell); empty until one came.
    value: TtlCache<(), Option<String>>,
    fetching: std::sync::atomic::AtomicBool,
}

impl Default for VersionCache {
    fn default() -> Self {
        VersionCache {
            value: TtlCache::new(1, VERSION_TTL),
            fetching: std::sync::atomic::AtomicBool::new(false),
        }
    }
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
        let cache = &self.version;
        let current = cache.value.get_stale(&());
        if let Some((version, age)) = &current
            && *age < VERSION_TTL
        {
            return version.as_ref().clone();
        }
        if !cache
            .fetching
            .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            let console = self.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let version = tokio::time::timeout(Duration::from_secs(5), backend.version())
                    .await
                    .ok()
                    .flatten();
                console
                    .metrics
                    .backend_call("Version", started.elapsed(), version.is_some());
                console.version.value.insert((), version);
                console
                    .version
                    .fetching
                    .store(false, std::sync::atomic::Ordering::SeqCst);
            });
        }
        if let Some((version, _)) = current {
            return version.as_ref().clone();
        }
        let deadline = Instant::now() + VERSION_WAIT;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if let Some((version, _)) = cache.value.get_stale(&()) {
                return version.as_ref().clone();
            }
        }
        None
    }
}

/// `GET /api/status`: the console's version and the external services, as Kiali lists them.
async fn status(State(console): State<Arc<Console>>) -> Json<serde_json::Value> {
    let t = &console.config.tracing;
    let mut services = Vec::new();
    if t.enabled {
        let mut entry = serde_json::json!({
            "name": t.provider.as_str(),
            "url": t.external_url,
        });
        if !t.disable_version_check
            && let Some(version) = console.backend_version().await
        {
            entry["version"] = version.into();
        }
        if t.provider == meshtrace_config::Provider::Tempo {
            entry["tempoConfig"] = serde_json::json!({
                "orgID": t.tempo_config.org_id,
                "datasourceUID": t.tempo_config.datasource_uid,
                "urlFormat": t.tempo_config.url_format.as_str(),
            });
        }
        services.push(entry);
    }
    Json(serde_json::json!({
        "status": {
            "Kiali state": "running",
            "Kiali version": concat!("meshtrace ", env!("CARGO_PKG_VERSION")),
        },
        "externalServices": services,
        "warningMessages": [],
    }))
}
