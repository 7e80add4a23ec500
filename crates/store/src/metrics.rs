//! `GET /metrics` on the query HTTP port: the store's own health in OpenMetrics text — the
//! dictionary's size against its bound, damaged data met while serving, and what the last
//! open found of the journal. Values are read from the store at each scrape.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::Store;
use crate::damage::DamageKind;
use crate::error::ErrorCode;

pub fn routes() -> Router<Arc<Store>> {
    Router::new().route("/metrics", get(metrics))
}

fn gauge(value: u64) -> ConstGauge<i64> {
    ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX))
}

/// The registry of one scrape.
pub fn registry(store: &Store) -> Registry {
    let mut registry = Registry::default();
    let dict = store.dictionary_stats();
    registry.register(
        "meshtrace_store_dictionary_entries",
        "Strings held in the dictionary (tag keys, repeated values, operation names)",
        gauge(dict.entries),
    );
    registry.register(
        "meshtrace_store_dictionary_bytes",
        "Bytes of text held in the dictionary",
        gauge(dict.bytes),
    );
    registry.register(
        "meshtrace_store_dictionary_max_entries",
        "The bound on the dictionary (--dictionary-max-entries)",
        gauge(u64::from(dict.max_entries)),
    );
    registry.register(
        "meshtrace_store_dictionary_full",
        "Strings stored inline in spans because the dictionary was full",
        ConstCounter::new(dict.refused),
    );
    let damage = Family::<[(&'static str, &'static str); 1], Counter>::default();
    for kind in DamageKind::ALL {
        damage
            .get_or_create(&[("kind", kind.label())])
            .inc_by(store.damage_count(kind));
    }
    registry.register(
        "meshtrace_store_damaged_entries",
        "Damaged stored entries met while serving (skipped or served with placeholders), by kind",
        damage,
    );
    registry.register(
        "meshtrace_store_journal_lost_batches",
        "Acknowledged write batches the journal no longer held when the store opened",
        gauge(store.recovery().lost_batches),
    );
    registry.register(
        "meshtrace_store_disk_bytes",
        "Bytes the store uses on disk",
        gauge(store.disk_bytes()),
    );
    if let Some(derive) = store.derivation() {
        register_derivation(&mut registry, &derive.stats());
    }
    registry
}

/// The metrics derived from spans: series held, values folded by the bounds, memory.
fn register_derivation(registry: &mut Registry, stats: &crate::derive::DerivationStats) {
    let sizes = Family::<[(&'static str, &'static str); 1], Gauge>::default();
    for (family, count) in &stats.series {
        sizes
            .get_or_create(&[("family", family.name())])
            .set(i64::try_from(*count).unwrap_or(i64::MAX));
    }
    registry.register(
        "meshtrace_store_metrics_series",
        "Label sets of the metrics derived from spans, by family (istio: Istio's request metrics; service: calls and latencies per service, operation, span kind and status)",
        sizes,
    );
    let folded = Family::<[(&'static str, &'static str); 2], Counter>::default();
    for (family, label, count) in &stats.folded {
        folded
            .get_or_create(&[("family", family.name()), ("label", label)])
            .inc_by(*count);
    }
    registry.register(
        "meshtrace_store_metrics_overflow",
        "Label values counted as __overflow__ because a label had --metrics-max-label-values distinct values (or the value was too long); label=\"series\": label sets folded because a family held --metrics-max-series",
        folded,
    );
    registry.register(
        "meshtrace_store_metrics_resident_cells",
        "Recent metric buckets held in memory",
        gauge(stats.resident_cells as u64),
    );
    registry.register(
        "meshtrace_store_metrics_spans_too_old",
        "Spans stored but not counted in the derived metrics: they ended before the retention window",
        ConstCounter::new(stats.too_old),
    );
}

async fn metrics(State(store): State<Arc<Store>>) -> Response {
    let mut text = String::new();
    match encode(&mut text, &registry(&store)) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (ErrorCode::Internal.http_status(), "cannot encode metrics\n").into_response(),
    }
}
