//! The mesh inventory the traces reveal: `GET /api/namespaces`, `/api/namespaces/{ns}/{kind}`
//! and `/api/namespaces/{ns}/{kind}/{name}`. A snapshot is built from the backend's services and
//! a sample of each one's recent traces, refreshed in the background and on demand when older
//! than the refresh interval; every answer says how old it is.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use meshtrace_backend::TraceQuery;
use meshtrace_mesh::{Inventory, Item, Kind, Target};
use meshtrace_model::time::now_micros;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::Console;
use crate::cache::TtlCache;
use crate::error::ApiError;

const EMPTY_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(2);

pub struct Snapshot {
    pub inventory: Inventory,
    pub taken: Instant,
    /// The window the traces were sampled from, µs since the epoch.
    pub start: u64,
    pub end: u64,
    /// Services whose traces could not be read (the snapshot lacks them).
    pub failed: Vec<String>,
}

pub struct Cache {
    /// The last snapshot taken (one entry), good for the refresh interval.
    snapshot: TtlCache<(), Snapshot>,
    refreshing: Mutex<()>,
    /// When a request last needed the inventory: the background refresh stops while nobody
    /// looks, so an idle console does not keep querying the backend.
    last_wanted: std::sync::Mutex<Option<Instant>>,
}

impl Cache {
    pub fn new(refresh: std::time::Duration) -> Cache {
        Cache {
            snapshot: TtlCache::new(1, refresh),
            refreshing: Mutex::new(()),
            last_wanted: std::sync::Mutex::new(None),
        }
    }
}

/// At most this many trace searches run at once while a snapshot is taken.
const PARALLEL_SEARCHES: usize = 4;
/// The background refresh runs while the inventory was wanted this recently.
const IDLE_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

impl Console {
    /// The inventory, refreshed first when it is missing or older than the refresh interval.
    pub async fn inventory(&self) -> Result<Arc<Snapshot>, ApiError> {
        *self
            .inventory
            .last_wanted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        self.refresh_inventory().await
    }

    /// The snapshot, taken again first when stale.
    async fn refresh_inventory(&self) -> Result<Arc<Snapshot>, ApiError> {
        if let Some(snapshot) = self.fresh_snapshot() {
            return Ok(snapshot);
        }
        let _one_at_a_time = self.inventory.refreshing.lock().await;
        if let Some(snapshot) = self.fresh_snapshot() {
            return Ok(snapshot);
        }
        let snapshot = self.take_snapshot().await?;
        Ok(self.inventory.snapshot.insert((), snapshot))
    }

    /// The last snapshot taken, if any, without refreshing it (the request still counts as
    /// using the inventory, so the background refresh goes on).
    fn snapshot_at_hand(&self) -> Option<Arc<Snapshot>> {
        *self
            .inventory
            .last_wanted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        self.inventory
            .snapshot
            .get_stale(&())
            .map(|(snapshot, _)| snapshot)
    }

    /// The snapshot while it is younger than the refresh interval; an empty one (traffic has
    /// not started, or the backend was just emptied) only for two seconds.
    fn fresh_snapshot(&self) -> Option<Arc<Snapshot>> {
        let (snapshot, age) = self.inventory.snapshot.get_stale(&())?;
        let max_age = if snapshot.inventory.traces == 0 {
            self.options.inventory_refresh.min(EMPTY_MAX_AGE)
        } else {
            self.options.inventory_refresh
        };
        (age < max_age).then_some(snapshot)
    }

    async fn take_snapshot(&self) -> Result<Snapshot, ApiError> {
        let backend = self.backend()?.clone();
        let services = self.timed("Services", backend.services()).await?;
        let end = now_micros();
        let start = end.saturating_sub(self.options.inventory_window.as_micros() as u64);
        let mut calls = tokio::task::JoinSet::new();
        let permits = Arc::new(tokio::sync::Semaphore::new(PARALLEL_SEARCHES));
        for service in services {
            let backend = backend.clone();
            let permits = permits.clone();
            let query = TraceQuery {
                service: service.clone(),
                // The inventory shows only what `query_scope` lets the console see.
                tags: self.config.tracing.query_scope.clone(),
                start,
                end,
                limit: self.options.inventory_traces_per_service,
                ..Default::default()
            };
            calls.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let started = Instant::now();
                let result = backend.find_traces(&query).await;
                (service, started.elapsed(), result)
            });
        }
        let mut inventory = Inventory::default();
        let mut seen = HashSet::new();
        let mut failed = Vec::new();
        while let Some(joined) = calls.join_next().await {
            let Ok((service, took, result)) = joined else {
                continue;
            };
            self.metrics.backend_call("Inventory", took, result.is_ok());
            match result {
                Ok(found) => {
                    for trace in &found.traces {
                        if trace.trace_id().is_some_and(|id| seen.insert(id)) {
                            inventory.add_trace(trace);
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(%service, %error, "inventory: traces not read");
                    failed.push(service);
                }
            }
        }
        failed.sort();
        Ok(Snapshot {
            inventory,
            taken: Instant::now(),
            start,
            end,
            failed,
        })
    }

    /// The app, workload or service as the backend is asked for it: a workload's and a
    /// service's app come from the inventory when it knows them.
    ///
    /// The snapshot at hand is used, however old (an app's workloads rarely change), so a
    /// traces request never waits for the inventory to be taken; the background refresh keeps
    /// it current.
    pub async fn target(&self, kind: Kind, namespace: String, name: String) -> Target {
        let known = match kind {
            Kind::App => None,
            _ => self.snapshot_at_hand().and_then(|snapshot| {
                snapshot
                    .inventory
                    .get(&namespace, kind, &name)
                    .map(|item| item.app.clone())
                    .filter(|app| !app.is_empty())
            }),
        };
        let app = known.unwrap_or_else(|| match kind {
            Kind::Workload => app_of_workload_name(&name).to_string(),
            _ => name.clone(),
        });
        Target {
            kind,
            namespace,
            name,
            app,
        }
    }
}

/// A workload's app when the inventory does not know it: the name without a version suffix
/// (`reviews-v2` → `reviews`), as Istio's canonical-service defaults go.
fn app_of_workload_name(workload: &str) -> &str {
    match workload.rsplit_once("-v") {
        Some((app, version))
            if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit()) =>
        {
            app
        }
        _ => workload,
    }
}

/// Refreshes the inventory every interval, so that requests are answered from the cache.
pub async fn refresh_forever(console: Arc<Console>) {
    if console.backend().is_err() || !console.options.background_inventory {
        return;
    }
    loop {
        let wanted = *console
            .inventory
            .last_wanted
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // At start (nobody asked yet) and while someone looks at the inventory.
        if wanted.is_none_or(|at| at.elapsed() < IDLE_AFTER)
            && let Err(error) = console.refresh_inventory().await
        {
            tracing::warn!(error = %error.error, "inventory refresh failed");
        }
        tokio::time::sleep(console.options.inventory_refresh).await;
    }
}

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/api/namespaces", get(namespaces))
        .route("/api/namespaces/{namespace}/{kind}", get(list))
        .route("/api/namespaces/{namespace}/{kind}/{name}", get(one))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct About {
    /// Seconds since the snapshot was taken.
    age_seconds: f64,
    start_micros: u64,
    end_micros: u64,
    traces: u64,
    spans: u64,
    failed_services: Vec<String>,
}

fn about(snapshot: &Snapshot) -> About {
    About {
        age_seconds: (snapshot.taken.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        start_micros: snapshot.start,
        end_micros: snapshot.end,
        traces: snapshot.inventory.traces,
        spans: snapshot.inventory.spans,
        failed_services: snapshot.failed.clone(),
    }
}

async fn namespaces(
    State(console): State<Arc<Console>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let snapshot = console.inventory().await?;
    Ok(Json(serde_json::json!({
        "namespaces": snapshot.inventory.namespaces(),
        "inventory": about(&snapshot),
    })))
}

fn kind(segment: &str) -> Result<Kind, ApiError> {
    Kind::from_plural(segment).ok_or_else(|| {
        ApiError::not_found(format!(
            "no such route: `{segment}` is not apps, workloads or services"
        ))
    })
}

/// The list's key, as Kiali names it: `applications`, `workloads`, `services`.
fn list_key(kind: Kind) -> &'static str {
    match kind {
        Kind::App => "applications",
        Kind::Workload => "workloads",
        Kind::Service => "services",
    }
}

async fn list(
    State(console): State<Arc<Console>>,
    Path((namespace, segment)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let kind = kind(&segment)?;
    let snapshot = console.inventory().await?;
    let items: Vec<&Item> = snapshot.inventory.list(&namespace, kind);
    let mut body = serde_json::json!({
        "namespace": { "name": namespace },
        "inventory": about(&snapshot),
    });
    if let Some(fields) = body.as_object_mut() {
        fields.insert(
            list_key(kind).to_string(),
            serde_json::to_value(items).unwrap_or_default(),
        );
    }
    Ok(Json(body))
}

async fn one(
    State(console): State<Arc<Console>>,
    Path((namespace, segment, name)): Path<(String, String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let kind = kind(&segment)?;
    let snapshot = console.inventory().await?;
    let item = snapshot.inventory.get(&namespace, kind, &name).ok_or_else(|| {
        ApiError::not_found(format!(
            "{} `{name}` was not seen in namespace `{namespace}` in the traces of the last {} minutes",
            match kind {
                Kind::App => "app",
                Kind::Workload => "workload",
                Kind::Service => "service",
            },
            console.options.inventory_window.as_secs() / 60
        ))
    })?;
    let mut body = serde_json::to_value(item).unwrap_or_default();
    if let Some(fields) = body.as_object_mut() {
        fields.insert(
            "inventory".to_string(),
            serde_json::to_value(about(&snapshot)).unwrap_or_default(),
        );
    }
    Ok(Json(body))
}

#[cfg(test)]
mod tests {
    #[test]
    fn workload_names_without_inventory() {
        assert_eq!(super::app_of_workload_name("reviews-v2"), "reviews");
        assert_eq!(
            super::app_of_workload_name("istio-ingressgateway"),
            "istio-ingressgateway"
        );
        assert_eq!(super::app_of_workload_name("svc-v"), "svc-v");
    }
}
