//! `GET /metrics` on the query HTTP port: the store's own health in OpenMetrics text — spans
//! and bytes in by protocol, refusals by reason, batch sizes, write and query latency
//! (`stats.rs` gathers them), disk use by table, retention passes, the dictionary's size
//! against its bound, damaged data met while serving, what the last open found of the journal,
//! and the derived series. Values are read from the store at each scrape.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

use crate::Store;
use crate::damage::DamageKind;
use crate::error::ErrorCode;
use crate::stats::{HistogramSnapshot, ProtocolSnapshot};

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
    let tables = Family::<[(&'static str, &'static str); 1], Gauge>::default();
    for (table, bytes) in store.table_bytes() {
        tables
            .get_or_create(&[("table", table)])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
    registry.register(
        "meshtrace_store_table_disk_bytes",
        "Bytes each table of the engine uses on disk (its written-out segments; none in memory)",
        tables,
    );
    let engine = store.engine_memory();
    let memory = Family::<[(&'static str, &'static str); 1], Gauge>::default();
    for (part, bytes) in [
        ("memtables", engine.memtable_bytes),
        ("block_cache", engine.cache_bytes),
    ] {
        memory
            .get_or_create(&[("part", part)])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
    registry.register(
        "meshtrace_store_engine_memory_bytes",
        "Bytes the storage engine holds in memory, by part (memtables: written and not yet flushed to segments; block_cache: segment blocks kept for reads)",
        memory,
    );
    registry.register(
        "meshtrace_store_engine_journal_bytes",
        "Bytes of the engine's journal on disk (replayed at the next open if the store stops now)",
        gauge(engine.journal_bytes),
    );
    registry.register(
        "meshtrace_store_engine_pending_flushes",
        "Full memtables waiting to be written out as segments",
        gauge(engine.pending_flushes),
    );
    registry.register(
        "meshtrace_store_engine_write_stall_seconds",
        "Time writes waited for the engine to write its memtables out (backpressure when ingest outruns it)",
        ConstCounter::new(engine.stalled_micros as f64 / 1e6),
    );
    register_ingest(&mut registry, store);
    if let Some(derive) = store.derivation() {
        register_derivation(&mut registry, &derive.stats());
    }
    registry
}

/// Ingest, writes, retention and queries (`stats.rs`).
fn register_ingest(registry: &mut Registry, store: &Store) {
    let stats = store.stats();
    let protocols = stats.protocols();
    let per_protocol = |value: fn(&ProtocolSnapshot) -> u64| {
        let family = Family::<[(&'static str, &'static str); 1], Counter>::default();
        for p in &protocols {
            family
                .get_or_create(&[("protocol", p.protocol.label())])
                .inc_by(value(p));
        }
        family
    };
    registry.register(
        "meshtrace_store_spans_received",
        "Spans in the batches decoded, by protocol (stored or not)",
        per_protocol(|p| p.received),
    );
    registry.register(
        "meshtrace_store_spans_stored",
        "Spans written durably, by protocol",
        per_protocol(|p| p.stored),
    );
    registry.register(
        "meshtrace_store_received_bytes",
        "Bytes of the request bodies read (after inflating gzip), by protocol",
        per_protocol(|p| p.bytes),
    );
    let spans = Family::<[(&'static str, &'static str); 2], Counter>::default();
    let batches = Family::<[(&'static str, &'static str); 2], Counter>::default();
    for p in &protocols {
        for (reason, n) in &p.rejected_spans {
            spans
                .get_or_create(&[("protocol", p.protocol.label()), ("reason", reason.label())])
                .inc_by(*n);
        }
        for (reason, n) in &p.rejected_batches {
            batches
                .get_or_create(&[("protocol", p.protocol.label()), ("reason", reason.label())])
                .inc_by(*n);
        }
    }
    registry.register(
        "meshtrace_store_spans_rejected",
        "Spans of decoded batches not stored, by protocol and reason (invalid_span: refused alone, the rest of its batch stored; storage_failure: its batch's write failed)",
        spans,
    );
    registry.register(
        "meshtrace_store_batches_rejected",
        "Batches refused whole, by protocol and reason (undecodable, too_large, unsupported_media_type, unreadable, storage_failure)",
        batches,
    );
    registry.register_collector(Box::new(Histograms {
        batch_spans: protocols
            .iter()
            .map(|p| (p.protocol.label(), p.batch_spans.clone()))
            .collect(),
        write_seconds: stats.write_seconds(),
    }));
    let retention = stats.retention();
    registry.register(
        "meshtrace_store_retention_passes",
        "Retention passes run (failed ones included)",
        ConstCounter::new(retention.passes),
    );
    registry.register(
        "meshtrace_store_retention_failures",
        "Retention passes that failed",
        ConstCounter::new(retention.failures),
    );
    registry.register(
        "meshtrace_store_retention_removed_spans",
        "Expired spans removed by the retention passes",
        ConstCounter::new(retention.removed),
    );
    registry.register(
        "meshtrace_store_retention_last_duration_seconds",
        "How long the last retention pass took (0 before the first)",
        ConstGauge::new(retention.last_seconds),
    );
    registry.register(
        "meshtrace_store_query_duration_seconds",
        "Time to answer a request of the query HTTP port until its response starts, by route template (`unmatched` when no route matched)",
        stats.query_seconds(),
    );
}

/// The atomic histograms of a scrape, encoded as OpenMetrics histograms.
#[derive(Debug)]
struct Histograms {
    batch_spans: Vec<(&'static str, HistogramSnapshot)>,
    write_seconds: HistogramSnapshot,
}

impl Collector for Histograms {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(
            "meshtrace_store_batch_spans",
            "Spans per decoded batch, by protocol",
            None,
            MetricType::Histogram,
        )?;
        for (protocol, hist) in &self.batch_spans {
            let labels = [("protocol", *protocol)];
            let family = metric.encode_family(&labels)?;
            encode_histogram(family, hist)?;
        }
        let metric = encoder.encode_descriptor(
            "meshtrace_store_write_duration_seconds",
            "Time to write a batch of spans (with its index entries and derived metrics) until it is durable",
            None,
            MetricType::Histogram,
        )?;
        encode_histogram(metric, &self.write_seconds)
    }
}

fn encode_histogram(
    mut encoder: prometheus_client::encoding::MetricEncoder<'_>,
    hist: &HistogramSnapshot,
) -> Result<(), std::fmt::Error> {
    encoder.encode_histogram::<NoLabelSet>(hist.sum, hist.count, &hist.buckets, None)
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
    let memory = Family::<[(&'static str, &'static str); 1], Gauge>::default();
    for (part, bytes) in &stats.memory {
        memory
            .get_or_create(&[("part", part)])
            .set(i64::try_from(*bytes).unwrap_or(i64::MAX));
    }
    registry.register(
        "meshtrace_store_metrics_memory_bytes",
        "About how many bytes the metrics derived from spans hold in memory, by part (series: label sets; cells: recent buckets; totals: Istio series' totals; waiting: client spans waiting for their server span)",
        memory,
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
    registry.register(
        "meshtrace_store_metrics_spans_waiting",
        "Client spans whose Istio request waits for its server span to name the callee",
        gauge(stats.waiting as u64),
    );
    registry.register(
        "meshtrace_store_metrics_spans_paired_late",
        "Waiting client spans counted with the callee their server span named",
        ConstCounter::new(stats.paired_late),
    );
    registry.register(
        "meshtrace_store_metrics_spans_unpaired",
        "Waiting client spans counted with an unknown callee: no server span came within --metrics-pair-wait",
        ConstCounter::new(stats.unpaired),
    );
    registry.register(
        "meshtrace_store_metrics_spans_wait_overflow",
        "Client spans counted at once with an unknown callee because the spans waiting for their server span were at the cap",
        ConstCounter::new(stats.wait_overflow),
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
