//! Metrics derived from spans at ingest: for every stored span, its per-service key's calls and
//! latency, and for an Istio proxy's span the request Istio's telemetry would have counted
//! (`meshtrace_mesh::telemetry`), summed in time buckets of `step` per label set.
//!
//! Durability: what a batch adds to the cells is written as one delta record in the same
//! engine batch as its spans (one journal, one acknowledgement), and a checkpoint now and then
//! writes the changed cells whole (`deltas.rs`), so after an acknowledged write and a crash the
//! metrics of those spans are there. The state lock is held from adding a batch's deltas to
//! queueing its write, so writes and checkpoints land in the order they changed the cells. A
//! write that fails is taken back out of the cells (and the corrected cells written again).
//!
//! A client span whose callee is not known yet is counted later (`pairing.rs`): with the batch
//! that brings its server span, when its wait is over, or at a clean close ([`crate::Store::flush`]);
//! a crash loses the Istio request of the client spans waiting then (their spans are stored).
//!
//! Memory: the label sets (bounded, `series.rs`), each Istio series' total since the oldest
//! bucket kept (cumulative counters need it), and a bounded set of recent cells
//! ([`MAX_RESIDENT`]); older cells are read from the engine when a late span touches them.
//!
//! Layout: `metric_series` holds family | id → label values; `metric_cells` holds
//! family | id (4) | bucket end ms (8) → cell. Cells are kept under the spans' retention.

pub mod cell;
mod cells;
mod deltas;
mod pairing;
mod peers;
mod prepare;
mod purge;
pub mod read;
pub mod series;
pub mod sketch;
pub mod source;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use cells::{Checkpoint, Resident};
pub use cells::{cell_key, decode_cell, parse_cell_key};
pub(crate) use cells::{empty, stored_cell};
use deltas::RecordWriter;

use foldhash::fast::RandomState;
use meshtrace_model::Span;

use crate::StoreError;
use crate::damage::{Damage, DamageKind};
use crate::group::{GroupWriter, Ticket};
use crate::kv::{Kv, Op, Table};
use cell::{Cell, IstioCell};
use pairing::{Release, Waiting};
use peers::Peers;
pub use prepare::{Ends, Prepared};
use series::{Family, Registry, decode_entry, parse_entry_key};

/// Recent cells kept in memory; past it, cells already on disk are let go.
pub const MAX_RESIDENT: usize = 16_384;

/// How metrics are derived (`--metrics-*` flags).
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    /// The width of a time bucket (`--metrics-step`).
    pub step: Duration,
    /// Distinct values per label before `__overflow__` (`--metrics-max-label-values`).
    pub max_label_values: usize,
    /// Label sets per family before the all-`__overflow__` series (`--metrics-max-series`).
    pub max_series: usize,
    /// How long a client span whose callee is not known yet waits for its server span
    /// (`--metrics-pair-wait`); zero counts it at once, with `unknown`.
    pub pair_wait: Duration,
    /// Client spans that may wait at once; past it they are counted at once, with `unknown`.
    pub max_waiting: usize,
}

pub const DEFAULT_STEP: Duration = Duration::from_secs(15);
pub const DEFAULT_MAX_LABEL_VALUES: usize = 1000;
pub const DEFAULT_MAX_SERIES: usize = 20_000;
/// Two export intervals of 5 s (Envoy's and the OpenTelemetry SDK's batch delay), one on each
/// side of a request, with room for a collector between.
pub const DEFAULT_PAIR_WAIT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_WAITING: usize = 131_072;

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            step: DEFAULT_STEP,
            max_label_values: DEFAULT_MAX_LABEL_VALUES,
            max_series: DEFAULT_MAX_SERIES,
            pair_wait: DEFAULT_PAIR_WAIT,
            max_waiting: DEFAULT_MAX_WAITING,
        }
    }
}

type CellKey = (Family, u32, u64);

struct State {
    registry: Registry,
    resident: HashMap<CellKey, Resident, RandomState>,
    /// The newest bucket end ever resident and whether every one was a multiple of the step:
    /// a read looks its few buckets up instead of walking every resident cell.
    resident_newest: u64,
    resident_aligned: bool,
    step_ms: u64,
    /// Every Istio series' sum over the buckets kept.
    totals: HashMap<u32, IstioCell, RandomState>,
    next_seq: u64,
    /// The delta records written since the last checkpoint, by write number.
    records: Vec<u64>,
    /// The last checkpoint's number, and when it was taken.
    checkpoints: u64,
    checkpointed_at: Instant,
}

pub struct Derivation {
    step_ms: u64,
    /// Label hashes: batches are prepared with the registry's hasher.
    hasher: RandomState,
    peers: Mutex<Peers>,
    /// Client spans waiting for their server span (locked after `peers` when both are).
    waiting: Mutex<Waiting>,
    pair_wait: Duration,
    state: Mutex<State>,
    /// Every checkpoint numbered up to here has finished (committed, or failed and its cells
    /// marked changed again): a cell it wrote may be let go.
    checkpoints_resolved: AtomicU64,
    too_old: AtomicU64,
    /// Counts the changes to the series, cells and totals (raised under the state lock before
    /// each one): a reduced read is reused only while it has not moved.
    changes: AtomicU64,
    /// Reduced windows reused by the selections that ask them again (see `source::cache`).
    windows: source::cache::WindowCache,
}

/// What `/metrics` shows of the derivation.
pub struct DerivationStats {
    /// Label sets per family.
    pub series: Vec<(Family, usize)>,
    /// Values folded into `__overflow__` per family and label (`series`: by the series bound).
    pub folded: Vec<(Family, &'static str, u64)>,
    pub resident_cells: usize,
    /// Spans not counted: they ended before the retention window.
    pub too_old: u64,
    /// Client spans waiting for their server span.
    pub waiting: usize,
    /// Waiting client spans whose server span came.
    pub paired_late: u64,
    /// Waiting client spans counted with `unknown`: no server span came in time.
    pub unpaired: u64,
    /// Client spans counted at once with `unknown`: the wait was full.
    pub wait_overflow: u64,
    /// About how many bytes the derivation holds in memory, by part: `series` (the label
    /// sets), `cells` (the resident cells), `totals` (the Istio series' totals), `waiting` (the
    /// client spans waiting, their label text and entries).
    pub memory: [(&'static str, usize); 4],
}

/// What one write added, to take back if it fails, and the checkpoint queued after it.
pub struct Applied {
    deltas: Vec<(CellKey, Cell)>,
    new_series: Vec<(Family, u32)>,
    checkpoint: Option<Checkpoint>,
}

impl Derivation {
    /// Reads the label sets and the Istio totals back from `kv`.
    pub fn open(
        kv: &dyn Kv,
        options: &MetricsOptions,
        damage: &Damage,
    ) -> Result<Self, StoreError> {
        let step_ms = u64::try_from(options.step.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let hasher = RandomState::default();
        let mut registry =
            Registry::new(options.max_label_values, options.max_series, hasher.clone());
        kv.scan(Table::MetricSeries, &[], &[0xff], false, &mut |k, v| {
            let decoded = parse_entry_key(k)
                .ok_or(crate::codec::CorruptError(
                    "a series key of the wrong shape",
                ))
                .and_then(|(family, id)| Ok((family, id, decode_entry(family, v)?)));
            match decoded {
                Ok((family, id, labels)) => registry.load(family, id, &labels),
                Err(error) => damage.record(DamageKind::UndecodableValue, "metric_series", &error),
            }
            Ok(true)
        })?;
        let mut totals: HashMap<u32, IstioCell, RandomState> = HashMap::default();
        kv.scan(Table::MetricCells, &[], &[0xff], false, &mut |k, v| {
            let Some((family, id, bucket)) = parse_cell_key(k) else {
                damage.record(
                    DamageKind::UndecodableKey,
                    "metric_cells",
                    &"a cell key of the wrong shape",
                );
                return Ok(true);
            };
            if registry.get(family, id).is_none() {
                damage.record(
                    DamageKind::DanglingIndexEntry,
                    "metric_cells",
                    &format_args!("a cell of series {id}, which is not stored"),
                );
                return Ok(true);
            }
            registry.saw_bucket(family, id, bucket);
            if family == Family::Istio {
                match IstioCell::decode(v) {
                    Ok(cell) => totals.entry(id).or_default().add(&cell),
                    Err(error) => {
                        damage.record(DamageKind::UndecodableValue, "metric_cells", &error);
                    }
                }
            }
            Ok(true)
        })?;
        deltas::recover(kv, &mut registry, &mut totals, damage)?;
        Ok(Derivation {
            step_ms,
            hasher,
            peers: Mutex::new(Peers::default()),
            waiting: Mutex::new(Waiting::new(options.max_waiting)),
            pair_wait: options.pair_wait,
            state: Mutex::new(State {
                registry,
                resident: HashMap::default(),
                resident_newest: 0,
                resident_aligned: true,
                step_ms,
                totals,
                next_seq: 1,
                records: Vec::new(),
                checkpoints: 0,
                checkpointed_at: Instant::now(),
            }),
            checkpoints_resolved: AtomicU64::new(0),
            too_old: AtomicU64::new(0),
            changes: AtomicU64::new(0),
            windows: source::cache::WindowCache::default(),
        })
    }

    pub fn step_ms(&self) -> u64 {
        self.step_ms
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The state locked to change what a read returns: the change count is raised first.
    fn changing(&self) -> MutexGuard<'_, State> {
        let state = self.lock();
        self.changes.fetch_add(1, Ordering::AcqRel);
        state
    }

    /// How many changes were made so far (see `changing`).
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// The reduced windows kept for reuse.
    pub(crate) fn windows(&self) -> &source::cache::WindowCache {
        &self.windows
    }

    /// What each span says and where the other end of its request is (first half of the
    /// work done without the state lock); client spans without a callee start waiting, and
    /// the requests answered by the batch or done waiting are taken to be counted with it.
    pub fn find_ends<'a>(&self, spans: &'a [Span], now_ms: u64, oldest_ms: u64) -> Ends<'a> {
        let deadline = Instant::now()
            .checked_add(self.pair_wait)
            .filter(|_| !self.pair_wait.is_zero());
        let hold = deadline.map(|deadline| prepare::Hold {
            waiting: &self.waiting,
            deadline,
            step_ms: self.step_ms,
            now_ms,
            oldest_ms,
        });
        prepare::find_ends(spans, &self.peers, hold)
    }

    /// The requests whose wait is over (`everything`: all, at a clean close), to be counted in
    /// a write of their own.
    pub fn released(&self, everything: bool) -> Ends<'static> {
        let which = if everything {
            Release::All
        } else {
            Release::Due
        };
        Ends::released(&self.waiting, which)
    }

    /// Whether a waiting request's wait is over.
    pub fn any_due(&self) -> bool {
        self.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .any_due(Instant::now())
    }

    /// After a failed write: see [`Ends::undo`].
    pub fn undo(&self, spans: &[Span], ends: Ends<'_>) {
        ends.undo(spans, &self.waiting);
    }

    /// The batch's deltas (second half).
    pub fn prepare<'a>(
        &self,
        spans: &'a [Span],
        ends: &'a Ends<'a>,
        now_ms: u64,
        oldest_ms: u64,
    ) -> Prepared<'a> {
        let prepared =
            prepare::aggregate(spans, ends, &self.hasher, self.step_ms, (now_ms, oldest_ms));
        if prepared.too_old > 0 {
            self.too_old.fetch_add(prepared.too_old, Ordering::Relaxed);
        }
        prepared
    }

    /// Adds the deltas to the cells, appends the changed cells (and new series) to `ops`, and
    /// queues the write, all under the state lock.
    pub fn apply(
        &self,
        kv: &dyn Kv,
        damage: &Damage,
        prepared: Prepared<'_>,
        mut ops: Vec<Op>,
        writer: &GroupWriter,
    ) -> Result<(Ticket, Applied), StoreError> {
        let mut state = self.changing();
        let seq = state.next_seq;
        state.next_seq = seq.saturating_add(1);
        let mut applied = Applied {
            deltas: Vec::with_capacity(prepared.items.len()),
            new_series: Vec::new(),
            checkpoint: None,
        };
        let mut record = RecordWriter::new();
        for item in prepared.items {
            let labels = item.labels.as_strs();
            let resolved = state
                .registry
                .resolve(item.family, &labels, item.hash, item.bucket);
            if let Some((key, value)) = resolved.new_entry {
                ops.push(Op::put(Table::MetricSeries, key, value));
                applied.new_series.push((item.family, resolved.id));
            }
            let key = (item.family, resolved.id, item.bucket);
            // A bucket past what may be on disk alone: nothing to read first.
            if item.bucket > resolved.disk_max {
                state
                    .resident
                    .entry(key)
                    .or_insert_with(|| Resident::new(empty(item.family)));
            }
            let resident = state.resident_mut(kv, damage, key)?;
            resident.cell.add(&item.delta);
            resident.dirty = true;
            if let Cell::Istio(delta) = &item.delta {
                state.totals.entry(resolved.id).or_default().add(delta);
            }
            record.push(key, &item.delta);
            applied.deltas.push((key, item.delta));
        }
        if !applied.deltas.is_empty() {
            ops.push(Op::put(
                Table::MetricDeltas,
                deltas::record_key(seq),
                record.finish(),
            ));
            state.records.push(seq);
        }
        let ticket = writer.submit(ops)?;
        if state.records.len() >= deltas::CHECKPOINT_RECORDS
            || state.checkpointed_at.elapsed() >= deltas::CHECKPOINT_INTERVAL
        {
            applied.checkpoint = state.checkpoint(writer);
        }
        self.evict(&mut state);
        Ok((ticket, applied))
    }

    /// Writes every changed cell whole now, and waits for it (before a retention pass, and
    /// at a clean close).
    pub fn checkpoint_now(&self, writer: &GroupWriter) {
        let checkpoint = self.lock().checkpoint(writer);
        if let Some(checkpoint) = checkpoint {
            self.checkpoint_done(checkpoint);
        }
    }

    /// Waits for a checkpoint; when it failed, its cells count as changed again and its
    /// records are kept for the next one.
    fn checkpoint_done(&self, checkpoint: Checkpoint) {
        let Checkpoint {
            number,
            ticket,
            records,
        } = checkpoint;
        if let Err(error) = ticket.wait() {
            tracing::error!(%error, "a checkpoint of the derived metrics failed; it is retried with the next one");
            let mut state = self.lock();
            for resident in state.resident.values_mut() {
                if resident.saved == number {
                    resident.dirty = true;
                }
            }
            state.records.extend(records);
        }
        self.checkpoints_resolved
            .fetch_max(number, Ordering::AcqRel);
    }

    /// After the write: on success its series entries are known to be on disk; on failure its
    /// deltas are taken back out, and the corrected cells are written again.
    pub fn finish(
        &self,
        mut applied: Applied,
        committed: bool,
        kv: &dyn Kv,
        damage: &Damage,
        writer: &GroupWriter,
    ) {
        if let Some(checkpoint) = applied.checkpoint.take() {
            self.checkpoint_done(checkpoint);
        }
        let mut state = if committed {
            self.lock()
        } else {
            self.changing()
        };
        if committed {
            for (family, id) in &applied.new_series {
                state.registry.mark_committed(*family, *id);
            }
        } else {
            let mut ops = Vec::with_capacity(applied.deltas.len());
            for (key, delta) in &applied.deltas {
                if let Cell::Istio(delta) = delta
                    && let Some(total) = state.totals.get_mut(&key.1)
                {
                    total.subtract(delta);
                }
                match state.resident_mut(kv, damage, *key) {
                    Ok(resident) => {
                        resident.cell.subtract(delta);
                        resident.dirty = true;
                        let (family, id, bucket) = *key;
                        ops.push(Op::put(
                            Table::MetricCells,
                            cell_key(family, id, bucket),
                            resident.cell.encode(),
                        ));
                    }
                    Err(error) => {
                        tracing::error!(%error, "cannot take a failed write back out of the derived metrics");
                    }
                }
            }
            let corrected = writer.submit(ops);
            drop(state);
            if let Err(error) = corrected.and_then(Ticket::wait) {
                tracing::error!(%error, "the derived metrics of a failed write could not be corrected on disk");
            }
        }
    }

    /// Lets go of cells that are on disk whole, oldest buckets first, down to 3/4 of the bound.
    fn evict(&self, state: &mut State) {
        if state.resident.len() <= MAX_RESIDENT {
            return;
        }
        let resolved = self.checkpoints_resolved.load(Ordering::Acquire);
        let mut evictable: Vec<(u64, CellKey)> = state
            .resident
            .iter()
            .filter(|(_, r)| !r.dirty && r.saved <= resolved)
            .map(|(key, _)| (key.2, *key))
            .collect();
        let excess = state
            .resident
            .len()
            .saturating_sub(MAX_RESIDENT / 4 * 3)
            .min(evictable.len());
        if excess == 0 {
            return;
        }
        if excess < evictable.len() {
            evictable.select_nth_unstable(excess);
        }
        for (_, key) in evictable.iter().take(excess) {
            state.resident.remove(key);
            state.registry.evicted(key.0, key.1, key.2);
        }
    }

    /// The earliest bucket (end, ms) any series of `family` may have a cell in.
    pub fn earliest_bucket(&self, family: Family) -> Option<u64> {
        self.lock().registry.earliest_bucket(family)
    }

    /// Spans not counted because they ended before the retention window.
    pub fn too_old(&self) -> u64 {
        self.too_old.load(Ordering::Relaxed)
    }

    /// What `/metrics` shows of the derivation.
    pub fn stats(&self) -> DerivationStats {
        let (waiting, paired_late, unpaired, wait_overflow, waiting_bytes) = {
            let w = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
            (w.len(), w.paired, w.unpaired, w.overflow, w.bytes())
        };
        let state = self.lock();
        let memory = [
            ("series", state.registry.approx_bytes()),
            ("cells", state.resident_bytes()),
            (
                "totals",
                slot_bytes::<u32, IstioCell>(state.totals.capacity()),
            ),
            ("waiting", waiting_bytes),
        ];
        DerivationStats {
            memory,
            waiting,
            paired_late,
            unpaired,
            wait_overflow,
            series: Family::ALL
                .iter()
                .map(|f| (*f, state.registry.len(*f)))
                .collect(),
            folded: state.registry.folded(),
            resident_cells: state.resident.len(),
            too_old: self.too_old(),
        }
    }
}

/// Bytes of a hash table's slots: the pair and one control byte each.
fn slot_bytes<K, V>(capacity: usize) -> usize {
    capacity.saturating_mul(std::mem::size_of::<(K, V)>().saturating_add(1))
}
