//! The trace store: writes spans with their indexes and reads traces by ID; `search.rs`
//! searches and lists, `retention.rs` removes expired data.
//!
//! Reads never fail on one damaged entry: a key or value that does not decode is skipped, a
//! span whose process or dictionary strings are lost is served with placeholders and a
//! warning, and each is counted (`damage.rs`, shown on `/metrics`).
//!
//! Every method blocks (the engine does file I/O); async callers use `spawn_blocking`.

mod archive;
mod listed;
mod read;
mod retention;
mod search;

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use foldhash::fast::RandomState;
use meshtrace_model::time::now_micros;
use meshtrace_model::{Process, Span, TraceId};

use crate::StoreError;
use crate::codec;
use crate::codec::SpanGroup;
use crate::damage::{Damage, DamageKind};
use crate::derive::{Derivation, MetricsOptions, Prepared};
use crate::dict::{Dictionary, DictionaryStats, Pending};
use crate::group::GroupWriter;
use crate::keys::{
    SpanAt, arrival_group_key, operation_key, put_slice_key, service_slice_key, slice_of,
    trace_arrival_key,
};
use crate::kv::{Bytes, EngineMemory, Kv, Op, Recovery, Table};
use crate::stats::Stats;

pub use crate::dict::DEFAULT_MAX_ENTRIES as DEFAULT_DICTIONARY_MAX_ENTRIES;
pub use archive::{ARCHIVE_MAX_TRACE_BYTES, ARCHIVE_MAX_TRACES, ArchiveError};
pub(crate) use read::stored_span;

/// How a store is set up.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long spans are kept.
    pub retention: Duration,
    /// The most strings the dictionary holds (`--dictionary-max-entries`).
    pub dictionary_max_entries: u32,
    /// Metrics derived from the spans at ingest; None writes spans only.
    pub metrics: Option<MetricsOptions>,
}

impl StoreOptions {
    pub fn new(retention: Duration) -> Self {
        StoreOptions {
            retention,
            dictionary_max_entries: DEFAULT_DICTIONARY_MAX_ENTRIES,
            metrics: Some(MetricsOptions::default()),
        }
    }
}

pub struct Store {
    kv: Arc<dyn Kv>,
    writer: GroupWriter,
    dict: Dictionary,
    retention: Duration,
    /// The service index's slices already listed in `service_slices`.
    listed: listed::ListedSlices,
    /// Processes already written (they are stored once, by hash).
    written_processes: Mutex<HashSet<u64>>,
    /// Processes already read.
    process_cache: Mutex<HashMap<u64, Arc<Process>>>,
    damage: Damage,
    recovery: Recovery,
    derive: Option<Derivation>,
    /// What `/metrics` shows of ingest, writes, retention and queries.
    stats: Stats,
    /// The ID of the next group of spans (layout 7). It starts at a random point, so a
    /// restarted store does not name groups as the last run did.
    group_ids: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Store {
    pub fn new(kv: Arc<dyn Kv>, retention: Duration) -> Result<Self, StoreError> {
        Store::with_options(kv, &StoreOptions::new(retention))
    }

    pub fn with_options(kv: Arc<dyn Kv>, options: &StoreOptions) -> Result<Self, StoreError> {
        let damage = Damage::default();
        let recovery = kv.recovery();
        report_recovery(&recovery);
        let mut entries = Vec::new();
        kv.scan(Table::Dictionary, &[], &[0xff; 5], false, &mut |k, v| {
            let id = <[u8; 4]>::try_from(k).map(u32::from_be_bytes);
            match (id, std::str::from_utf8(v)) {
                (Ok(id), Ok(text)) => entries.push((id, text.to_string())),
                _ => damage.record(
                    DamageKind::UndecodableKey,
                    "dictionary",
                    &"an entry is not a 4-byte ID and UTF-8 text",
                ),
            }
            Ok(true)
        })?;
        // IDs are handed out densely from 0, so a real dictionary's highest ID is near its
        // number of entries (or below a cap in force when it was written). An ID far beyond
        // both is damage, and believing it would size the in-memory table by it.
        let plausible =
            crate::dict::plausible_id_bound(entries.len(), options.dictionary_max_entries);
        entries.retain(|&(id, _)| {
            let kept = id < plausible;
            if !kept {
                damage.record(
                    DamageKind::UndecodableKey,
                    "dictionary",
                    &format_args!("the ID {id} is far beyond the dictionary's size"),
                );
            }
            kept
        });
        let derive = match &options.metrics {
            Some(metrics) => Some(Derivation::open(&*kv, metrics, &damage)?),
            None => None,
        };
        Ok(Store {
            derive,
            writer: GroupWriter::new(kv.clone()),
            dict: Dictionary::from_entries(
                entries,
                recovery.dictionary_next,
                options.dictionary_max_entries,
            ),
            kv,
            retention: options.retention,
            listed: listed::ListedSlices::default(),
            written_processes: Mutex::new(HashSet::new()),
            process_cache: Mutex::new(HashMap::new()),
            damage,
            recovery,
            stats: Stats::default(),
            group_ids: AtomicU64::new(RandomState::default().hash_one(now_micros())),
        })
    }

    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// The metrics derived at ingest, when they are on.
    pub(crate) fn derivation(&self) -> Option<&Derivation> {
        self.derive.as_ref()
    }

    pub(crate) fn kv(&self) -> &dyn Kv {
        &*self.kv
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    pub(crate) fn damage(&self) -> &Damage {
        &self.damage
    }

    pub fn disk_bytes(&self) -> u64 {
        self.kv.disk_bytes()
    }

    /// Writes memtables out and compacts (benchmarks measure settled disk use after it).
    pub fn compact(&self) -> Result<(), StoreError> {
        self.kv.compact()
    }

    /// Per-table disk use, for benchmarks.
    pub fn table_bytes(&self) -> Vec<(&'static str, u64)> {
        self.kv.table_bytes()
    }

    /// What the engine holds in memory and on its journal.
    pub fn engine_memory(&self) -> EngineMemory {
        self.kv.engine_memory()
    }

    /// What the open found of the journal.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    pub fn dictionary_stats(&self) -> DictionaryStats {
        self.dict.stats()
    }

    /// Damaged entries met since the start, by kind.
    pub fn damage_count(&self, kind: DamageKind) -> u64 {
        self.damage.count(kind)
    }

    /// Counts the requests of client spans still waiting for their server span (with what is
    /// known of them), finishes the writes queued, then makes everything durable.
    pub fn flush(&self) -> Result<(), StoreError> {
        if let Err(error) = self.derive_waiting(true) {
            tracing::error!(%error, "the metrics of client spans waiting for their server span could not be written");
        }
        if let Some(derive) = &self.derive {
            derive.checkpoint_now(&self.writer);
        }
        self.writer.close();
        self.kv.flush()
    }

    /// Writes spans and their index entries in one atomic, durable batch.
    pub fn write(&self, spans: &[Span]) -> Result<(), StoreError> {
        if spans.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let result = self.write_batch(spans);
        self.stats.write_took(started.elapsed());
        result
    }

    /// Counts the requests of client spans whose wait for their server span is over
    /// (`everything`: every one, at a clean close), with `unknown` callees where none came, in
    /// a write of their own. Returns how many were counted.
    pub fn derive_waiting(&self, everything: bool) -> Result<usize, StoreError> {
        let Some(derive) = &self.derive else {
            return Ok(0);
        };
        let ends = derive.released(everything);
        let count = ends.late_count();
        if count == 0 {
            return Ok(0);
        }
        let now_ms = now_micros() / 1000;
        let oldest_ms = self.oldest_visible() / 1000;
        let prepared = derive.prepare(&[], &ends, now_ms, oldest_ms);
        let result = self.write_derived(derive, prepared, Vec::new());
        if result.is_err() {
            derive.undo(&[], ends);
        }
        result.map(|()| count)
    }

    /// Whether a client span's wait for its server span is over.
    pub(crate) fn waiting_due(&self) -> bool {
        self.derive.as_ref().is_some_and(Derivation::any_due)
    }

    /// Writes `ops` with the derived cells `prepared` changes; on failure the derivation is
    /// taken back (the caller puts the requests it took from the wait back).
    fn write_derived(
        &self,
        derive: &Derivation,
        prepared: Prepared<'_>,
        ops: Vec<Op>,
    ) -> Result<(), StoreError> {
        derive
            .apply(&*self.kv, &self.damage, prepared, ops, &self.writer)
            .and_then(|(ticket, applied)| {
                let result = ticket.wait();
                derive.finish(
                    applied,
                    result.is_ok(),
                    &*self.kv,
                    &self.damage,
                    &self.writer,
                );
                result
            })
    }

    /// Opens a group for the trace of `span`, which starts it, filed under `second`, with a
    /// new ID; returns its place in `groups`.
    fn open_group(
        &self,
        groups: &mut Vec<OpenGroup>,
        second: u32,
        span: &Span,
        span_bytes: usize,
    ) -> usize {
        groups.push(OpenGroup {
            id: self.group_ids.fetch_add(1, Ordering::Relaxed),
            second,
            trace_id: span.trace_id,
            spans: SpanGroup::new(
                span.start_time,
                span_bytes.saturating_mul(8).min(MAX_GROUP_BYTES),
            ),
        });
        groups.len().saturating_sub(1)
    }

    fn write_batch(&self, spans: &[Span]) -> Result<(), StoreError> {
        // The metrics' share is worked out before anything is locked.
        let now_ms = now_micros() / 1000;
        let oldest_ms = self.oldest_visible() / 1000;
        let ends = self
            .derive
            .as_ref()
            .map(|derive| derive.find_ends(spans, now_ms, oldest_ms));
        let derived = self
            .derive
            .as_ref()
            .zip(ends.as_ref())
            .map(|(derive, ends)| (derive, derive.prepare(spans, ends, now_ms, oldest_ms)));
        let mut ops = Vec::with_capacity(spans.len().saturating_mul(3).saturating_add(8));
        let mut new_processes: Vec<u64> = Vec::new();
        // Looked up once or twice per span: foldhash, not the standard library's SipHash
        // (the keys come from clients, and the hasher is seeded per process all the same).
        let mut process_hashes: HashMap<*const Process, u64, RandomState> = HashMap::default();
        let mut services: HashMap<&str, u64, RandomState> = HashMap::default();
        let mut operations: HashMap<(&str, &str, &str), u64, RandomState> = HashMap::default();
        {
            let written = lock(&self.written_processes);
            for span in spans {
                let ptr = Arc::as_ptr(&span.process);
                if process_hashes.contains_key(&ptr) {
                    continue;
                }
                let mut encoded = Vec::new();
                codec::encode_process(&span.process, &mut encoded);
                let hash = codec::process_hash(&encoded);
                process_hashes.insert(ptr, hash);
                if !written.contains(&hash) && !new_processes.contains(&hash) {
                    new_processes.push(hash);
                    ops.push(Op::put(Table::Processes, hash.to_be_bytes(), encoded));
                }
            }
        }
        let mut pending = Pending::default();
        // From the first look at the listed slices until the batch is committed: the slices
        // it skips listing stay listed.
        let _writing = self.listed.writing();
        // Spans are filed under the second they arrive in (`keys.rs`, layout 5), or their
        // start's when it is later (a client clock ahead: retention relies on no span starting
        // after the second it is filed under), and each trace is noted under its seconds so
        // that `get_trace` finds them.
        let arrived = arrival_second(now_micros());
        // The spans of one trace filed under one second are written as one group (layout 7,
        // `codec/span_group.rs`), or several past `MAX_GROUP_BYTES`: the place in `groups` of
        // the one being filled, by trace and second.
        let mut grouped: HashMap<(TraceId, u32), usize, RandomState> = HashMap::default();
        let mut groups: Vec<OpenGroup> = Vec::new();
        // The slices of `by_slice` each service gets entries in (`keys.rs`, layout 6), and those
        // of them this batch lists.
        let mut slices: HashSet<(&str, u32), RandomState> = HashSet::default();
        let mut listing: Vec<(&str, u32)> = Vec::new();
        let mut strings = self.dict.interner(&mut pending);
        // A span is encoded into `value`, then appended to its group; its index entry's key and
        // value are encoded into these, then copied once into the form the engine holds
        // (`kv::Bytes`).
        let mut value = Vec::with_capacity(256);
        let mut key = Vec::with_capacity(64);
        for span in spans {
            let Some(&hash) = process_hashes.get(&Arc::as_ptr(&span.process)) else {
                continue; // every span's process was hashed above
            };
            let service = span.process.service_name.as_str();
            value.clear();
            codec::encode_span(span, hash, &mut strings, &mut value);
            let filed = arrived.max(arrival_second(span.start_time));
            let at = match grouped.entry((span.trace_id, filed)) {
                Entry::Occupied(mut filling) => {
                    let full = groups
                        .get(*filling.get())
                        .is_none_or(|open| open.spans.len() >= MAX_GROUP_BYTES);
                    if full {
                        filling.insert(self.open_group(&mut groups, filed, span, value.len()));
                    }
                    *filling.get()
                }
                Entry::Vacant(first) => {
                    // The trace's first span in this second: the trace is noted under it.
                    ops.push(Op::put(
                        Table::TraceArrivals,
                        trace_arrival_key(span.trace_id, filed),
                        Bytes::default(),
                    ));
                    *first.insert(self.open_group(&mut groups, filed, span, value.len()))
                }
            };
            let Some(open) = groups.get_mut(at) else {
                continue; // `at` was just given by `open_group`
            };
            open.spans.push(span.start_time, span.span_id, &value);
            let group = open.id;
            value.clear();
            codec::encode_summary(span, &mut strings, &mut value);
            strings.release();
            key.clear();
            put_slice_key(
                &mut key,
                service,
                span.start_time,
                span.trace_id,
                span.span_id,
                SpanAt::InGroup {
                    second: filed,
                    group,
                },
            );
            ops.push(Op::put(
                Table::BySlice,
                Bytes::new(&key),
                Bytes::new(&value),
            ));
            let slice = slice_of(span.start_time);
            if slices.insert((service, slice)) && !self.listed.is_known(service, slice) {
                listing.push((service, slice));
                ops.push(Op::put(
                    Table::ServiceSlices,
                    service_slice_key(service, slice),
                    Bytes::default(),
                ));
            }
            let seen = services.entry(service).or_default();
            *seen = (*seen).max(span.start_time);
            let seen = operations
                .entry((service, span.kind(), &span.operation_name))
                .or_default();
            *seen = (*seen).max(span.start_time);
        }
        for open in groups {
            ops.push(Op::put(
                Table::SpansByArrival,
                arrival_group_key(open.second, open.trace_id, open.id),
                open.spans.into_bytes(),
            ));
        }
        for (service, seen) in services {
            ops.push(Op::put(
                Table::Services,
                service.as_bytes(),
                seen.to_be_bytes(),
            ));
        }
        for ((service, kind, operation), seen) in operations {
            ops.push(Op::put(
                Table::Operations,
                operation_key(service, kind, operation),
                seen.to_be_bytes(),
            ));
        }
        drop(strings);
        let entries = self.dict.entries_to_write(&pending);
        for (id, text) in &entries {
            ops.push(Op::put(
                Table::Dictionary,
                id.to_be_bytes(),
                text.as_bytes(),
            ));
        }
        match derived {
            Some((derive, prepared)) => {
                let result = self.write_derived(derive, prepared, ops);
                if result.is_err()
                    && let Some(ends) = ends
                {
                    derive.undo(spans, ends);
                }
                result?;
            }
            None => self.writer.write(ops)?,
        }
        let written: Vec<u32> = entries.iter().map(|(id, _)| *id).collect();
        self.dict.mark_committed(&written);
        lock(&self.written_processes).extend(new_processes);
        self.listed.remember(listing);
        Ok(())
    }

    fn oldest_visible(&self) -> u64 {
        let retention = u64::try_from(self.retention.as_micros()).unwrap_or(u64::MAX);
        now_micros().saturating_sub(retention)
    }
}

/// Logs what the open found of the journal.
fn report_recovery(recovery: &Recovery) {
    use crate::layout::AckRecord;
    if recovery.lost_batches > 0 {
        tracing::error!(
            lost_batches = recovery.lost_batches,
            recovered_batch = recovery.recovered_batch,
            "the journal lost acknowledged writes: it was truncated or emptied after batch {} was acknowledged, and the store recovered only up to batch {}; the spans of the lost batches are gone, and spans written before them may have lost their process or dictionary strings (run `meshtrace store --check`)",
            recovery
                .recovered_batch
                .saturating_add(recovery.lost_batches),
            recovery.recovered_batch,
        );
    }
    if recovery.record == Some(AckRecord::Damaged) {
        tracing::warn!(
            "the acknowledgement record is damaged: this start cannot tell whether the journal lost writes"
        );
    }
}

/// The size past which a group of spans takes no more (a new one is opened for the trace): a
/// search that reads one span of a group reads the whole group, so a batch holding a huge
/// trace must not make every candidate read of it cost megabytes. Istio's 8-span traces take
/// about 1 KiB.
const MAX_GROUP_BYTES: usize = 16 * 1024;

/// A group of spans a write is filling.
struct OpenGroup {
    id: u64,
    second: u32,
    trace_id: TraceId,
    spans: SpanGroup,
}

/// The second (Unix time) of `micros`, as spans are filed under it.
fn arrival_second(micros: u64) -> u32 {
    u32::try_from(micros / 1_000_000).unwrap_or(u32::MAX)
}

fn last_seen(value: &[u8]) -> u64 {
    <[u8; 8]>::try_from(value).map_or(u64::MAX, u64::from_be_bytes)
}
