//! The ordered key-value tables the store is built on: fjall (an LSM-tree engine with a
//! write-ahead journal) on disk, or plain ordered maps in memory for `--memory`.
//!
//! On disk, every write batch also records its number in the `meta` table and, once committed,
//! in the acknowledgement record beside the journal (`layout.rs`), so that an open can tell
//! whether the journal lost acknowledged batches (see [`Recovery`]).

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::StoreError;
use crate::layout::{self, AckRecord, AckWriter};

/// The key of the batch number in the `meta` table.
const BATCH_KEY: &[u8] = b"batch";
/// The size the engine cuts its tables at when it merges them (see `open_engine`).
const TABLE_TARGET_SIZE: u64 = 4 << 20;
/// The memtables a write waits below: the engine seals full memtables on its background
/// workers, between their merges, and nothing in it bounds how far the memtables grow meanwhile.
/// Above the sum of the tables' memtable sizes (`Table::memtable_size`, 84 MiB), so that only an
/// engine behind its work makes a write wait.
const MAX_MEMTABLE_BYTES: u64 = 96 << 20;
/// The longest a write waits for the memtables to shrink (if the workers are stuck, the write
/// goes ahead and the engine reports its own error).
const MAX_MEMTABLE_WAIT: Duration = Duration::from_secs(10);

/// The tables; each is its own keyspace (an LSM tree) on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// Layouts 2 to 4: trace ID (16) | start µs (8, big-endian) | span ID (8) → span; read until
    /// its spans expire, never written by layout 5 (`keys.rs`)
    Spans,
    /// process hash (8) → process
    Processes,
    /// Layouts 2 to 5: part(service) | start µs (8) | trace ID (16) | span ID (8) | arrival
    /// second (4, layout 5) → operation, duration, indexed tags (`codec/summary.rs`); read until
    /// its entries expire, never written by layouts 6 and 7
    ByService,
    /// service → last seen µs
    Services,
    /// service | 0 | span kind | 0 | operation → last seen µs
    Operations,
    /// string ID (4, big-endian) → string
    Dictionary,
    /// `batch` → the number of the last write batch (8, big-endian)
    Meta,
    /// trace ID (16) → the trace as Jaeger UI JSON; kept outside retention (`engine/archive.rs`)
    Archive,
    /// family (1) | series ID (4) → the label values of a derived series
    MetricSeries,
    /// family (1) | series ID (4) | bucket end ms (8) → what the series gathered in the bucket
    MetricCells,
    /// write number (8, big-endian) → what the write added to the cells it touched, until a
    /// checkpoint writes them whole (`derive/deltas.rs`)
    MetricDeltas,
    /// Layouts 5 and 6: arrival second (4) | trace ID (16) | start µs (8) | span ID (8) → span;
    /// layout 7: arrival second (4) | trace ID (16) | group ID (8) | format (1) → spans of the
    /// trace that one write filed under the second (`keys.rs`, `codec/span_group.rs`)
    SpansByArrival,
    /// Layout 5: trace ID (16) | arrival second (4) → nothing: the seconds a trace's spans
    /// arrived in
    TraceArrivals,
    /// Layout 6: slice of the start (4) | part(service) | start µs (8) | trace ID (16) | span
    /// ID (8) | arrival second (4) | group ID (8, layout 7) → what `by_service` holds
    /// (`keys.rs`)
    BySlice,
    /// Layout 6: part(service) | slice (4) → nothing: the slices a service has entries in
    ServiceSlices,
}

impl Table {
    pub const ALL: [Table; 15] = [
        Table::Spans,
        Table::Processes,
        Table::ByService,
        Table::Services,
        Table::Operations,
        Table::Dictionary,
        Table::Meta,
        Table::Archive,
        Table::MetricSeries,
        Table::MetricCells,
        Table::MetricDeltas,
        Table::SpansByArrival,
        Table::TraceArrivals,
        Table::BySlice,
        Table::ServiceSlices,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Spans => "spans",
            Table::Processes => "processes",
            Table::ByService => "by_service",
            Table::Services => "services",
            Table::Operations => "operations",
            Table::Dictionary => "dictionary",
            Table::Meta => "meta",
            Table::Archive => "archive",
            Table::MetricSeries => "metric_series",
            Table::MetricCells => "metric_cells",
            Table::MetricDeltas => "metric_deltas",
            Table::SpansByArrival => "spans_by_arrival",
            Table::TraceArrivals => "trace_arrivals",
            Table::BySlice => "by_slice",
            Table::ServiceSlices => "service_slices",
        }
    }

    /// The size at which the engine seals the table's memtable to write it out: larger for the
    /// two tables every span writes to (fewer, larger tables written out), small for the rest,
    /// so that the memtables of all tables together stay under `MAX_MEMTABLE_BYTES` unless the
    /// engine is behind (then a write waits for it: see `FjallKv::wait_for_memtables`).
    fn memtable_size(self) -> u64 {
        match self {
            Table::SpansByArrival | Table::BySlice => 16 << 20,
            _ => 4 << 20,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A key or a value in the form the engine holds it (`fjall::Slice`): an operation is built
/// with its bytes in that form on the thread that encodes it, so the writer thread hands them
/// to the engine without allocating and copying them again (a slice of up to 20 bytes needs
/// no allocation at all).
pub use fjall::Slice as Bytes;

pub enum Op {
    Put(Table, Bytes, Bytes),
    Delete(Table, Bytes),
}

impl Op {
    pub fn put(table: Table, key: impl Into<Bytes>, value: impl Into<Bytes>) -> Op {
        Op::Put(table, key.into(), value.into())
    }

    pub fn delete(table: Table, key: impl Into<Bytes>) -> Op {
        Op::Delete(table, key.into())
    }
}

/// Scans visit entries in key order (or reverse) until the visitor returns false.
pub type Visitor<'a> = dyn FnMut(&[u8], &[u8]) -> Result<bool, StoreError> + 'a;

pub trait Kv: Send + Sync {
    /// Applies the operations atomically; on disk, they are in the fsync'ed journal when this
    /// returns.
    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError>;
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Visits keys in `[from, to)`.
    fn scan(
        &self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StoreError>;
    /// Bytes used on disk (0 in memory).
    fn disk_bytes(&self) -> u64;
    /// Bytes used on disk by each table.
    fn table_bytes(&self) -> Vec<(&'static str, u64)>;
    /// What the engine holds in memory and on its journal (all zero in memory).
    fn engine_memory(&self) -> EngineMemory {
        EngineMemory::default()
    }
    /// Makes everything written durable (used at shutdown).
    fn flush(&self) -> Result<(), StoreError>;
    /// Writes memtables out and compacts, so that disk use is what it settles to (benchmarks).
    fn compact(&self) -> Result<(), StoreError>;
    /// What the open found of the journal (nothing to report in memory).
    fn recovery(&self) -> Recovery {
        Recovery::default()
    }
}

/// The engine's own use of memory and journal, for the store's `/metrics`: what lets an operator
/// tell the engine's share of the resident memory from the rest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineMemory {
    /// Bytes in memtables (the active and the sealed ones waiting to be written out).
    pub memtable_bytes: u64,
    /// Bytes in the block cache.
    pub cache_bytes: u64,
    /// Bytes of journal on disk not yet superseded by written-out segments.
    pub journal_bytes: u64,
    /// Sealed memtables waiting to be written out.
    pub pending_flushes: u64,
    /// How long writes have waited for the memtables to be written out, in µs.
    pub stalled_micros: u64,
}

/// What opening a data directory found: whether the engine's journal still holds every batch
/// that was acknowledged before the last stop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The number of the last batch the engine recovered.
    pub recovered_batch: u64,
    /// The acknowledgement record (None in memory).
    pub record: Option<AckRecord>,
    /// Acknowledged batches the engine did not recover: the journal was truncated or emptied.
    pub lost_batches: u64,
    /// The lowest dictionary ID never handed out before.
    pub dictionary_next: u32,
}

/// Runs `step` over the items in order (or in reverse) until it returns false.
fn walk<I: DoubleEndedIterator>(
    items: I,
    reverse: bool,
    mut step: impl FnMut(I::Item) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    if reverse {
        for item in items.rev() {
            if !step(item)? {
                break;
            }
        }
    } else {
        for item in items {
            if !step(item)? {
                break;
            }
        }
    }
    Ok(())
}

// ---- on disk ------------------------------------------------------------------------------

pub struct FjallKv {
    db: fjall::Database,
    tables: Vec<fjall::Keyspace>,
    /// The last batch number and the acknowledgement record; held across a commit, so that
    /// numbers are committed in order.
    batches: Mutex<Batches>,
    recovery: Recovery,
    /// How long writes waited for the memtables, in µs.
    stalled_micros: AtomicU64,
}

struct Batches {
    last: u64,
    dictionary_next: u32,
    ack: AckWriter,
}

impl FjallKv {
    /// Opens (or creates) the store in `dir`. Refuses a directory of another layout.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        layout::check_or_mark(dir)?;
        // Read before the engine opens: the record says what was acknowledged before the stop.
        let record = layout::read_ack(dir)?;
        let (db, tables) = Self::open_engine(dir)?;
        let meta = tables
            .get(Table::Meta.index())
            .ok_or(StoreError::Corrupt("no meta table"))?;
        let recovered_batch = match meta.get(BATCH_KEY)? {
            Some(value) => <[u8; 8]>::try_from(value.as_ref())
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt("the batch number is not 8 bytes"))?,
            None => 0,
        };
        let (acknowledged, dictionary_next) = match record {
            AckRecord::Found {
                batch,
                dictionary_next,
            } => (batch, dictionary_next),
            AckRecord::Missing | AckRecord::Damaged => (0, 0),
        };
        let recovery = Recovery {
            recovered_batch,
            record: Some(record),
            lost_batches: acknowledged.saturating_sub(recovered_batch),
            dictionary_next,
        };
        Ok(FjallKv {
            db,
            tables,
            batches: Mutex::new(Batches {
                last: recovered_batch.max(acknowledged),
                dictionary_next,
                ack: AckWriter::new(dir),
            }),
            recovery,
            stalled_micros: AtomicU64::new(0),
        })
    }

    /// Waits while the memtables hold more than `MAX_MEMTABLE_BYTES`: the backpressure that
    /// keeps ingest from outrunning the engine's workers and memory from growing without bound.
    fn wait_for_memtables(&self) {
        if self.db.write_buffer_size() <= MAX_MEMTABLE_BYTES {
            return;
        }
        let started = Instant::now();
        while self.db.write_buffer_size() > MAX_MEMTABLE_BYTES
            && started.elapsed() < MAX_MEMTABLE_WAIT
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        let waited = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.stalled_micros.fetch_add(waited, Ordering::Relaxed);
    }

    fn open_engine(dir: &Path) -> Result<(fjall::Database, Vec<fjall::Keyspace>), StoreError> {
        // Memory bounds (the store must stay within a few hundred MiB under full ingest), and a
        // compressed journal: it is written once per span and was the larger half of the I/O.
        let db = fjall::Database::builder(dir)
            .cache_size(32 << 20)
            // The engine's default of one worker per core is kept: with one worker, a memtable
            // is only sealed when that worker is between compactions, and the memtables grew to
            // 1.1 GB in a sustained ingest (docs/PERFORMANCE.md, 2026-12-01).
            .journal_compression(fjall::CompressionType::Lz4)
            .open()?;
        // Compress every level (the engine's default leaves the first two uncompressed) in
        // larger blocks: span tags repeat a lot, and bigger blocks give LZ4 more to work with.
        // Small tables: the big tables' keys follow time (arrival second, start slice), so a
        // table written out overlaps only the newest tables below it, and each merge rewrites
        // those whole. With the engine's 64 MiB, every merge rewrote a 64 MiB table to add a
        // few MiB (`by_slice` wrote 84 tables to keep 10 in 95 s of ingest); with 4 MiB it
        // rewrites little more than it adds (docs/PERFORMANCE.md, 2026-12-01 15:20–17:30). The
        // engine keeps a table's settings in its directory: tables created before keep theirs.
        let options = |table: Table| {
            fjall::KeyspaceCreateOptions::default()
                .data_block_compression_policy(fjall::config::CompressionPolicy::all(
                    fjall::CompressionType::Lz4,
                ))
                .data_block_size_policy(fjall::config::BlockSizePolicy::all(64 * 1024))
                .max_memtable_size(table.memtable_size())
                .compaction_strategy(Arc::new(
                    fjall::compaction::Leveled::default().with_table_target_size(TABLE_TARGET_SIZE),
                ))
        };
        let tables = Table::ALL
            .iter()
            .map(|&t| db.keyspace(t.name(), || options(t)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((db, tables))
    }

    fn table(&self, table: Table) -> Result<&fjall::Keyspace, StoreError> {
        self.tables
            .get(table.index())
            .ok_or(StoreError::Corrupt("a table is missing"))
    }
}

impl Kv for FjallKv {
    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.wait_for_memtables();
        let mut batches = self.batches.lock().unwrap_or_else(PoisonError::into_inner);
        let number = batches.last.saturating_add(1);
        let mut dictionary_next = batches.dictionary_next;
        let mut batch = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncData));
        for op in ops {
            match op {
                Op::Put(t, k, v) => {
                    if t == Table::Dictionary {
                        if let Ok(id) = <[u8; 4]>::try_from(&k[..]) {
                            let next = u32::from_be_bytes(id).saturating_add(1);
                            dictionary_next = dictionary_next.max(next);
                        }
                    }
                    batch.insert(self.table(t)?, k, v);
                }
                Op::Delete(t, k) => batch.remove(self.table(t)?, k),
            }
        }
        batch.insert(self.table(Table::Meta)?, BATCH_KEY, number.to_be_bytes());
        batch.commit()?;
        batches.last = number;
        batches.dictionary_next = dictionary_next;
        batches.ack.write(number, dictionary_next);
        Ok(())
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.table(table)?.get(key)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StoreError> {
        walk(self.table(table)?.range(from..to), reverse, |guard| {
            let (key, value) = guard.into_inner()?;
            visit(&key, &value)
        })
    }

    fn disk_bytes(&self) -> u64 {
        self.db.disk_space().unwrap_or(0)
    }

    fn table_bytes(&self) -> Vec<(&'static str, u64)> {
        Table::ALL
            .iter()
            .zip(&self.tables)
            .map(|(t, keyspace)| (t.name(), keyspace.disk_space()))
            .collect()
    }

    fn engine_memory(&self) -> EngineMemory {
        EngineMemory {
            memtable_bytes: self.db.write_buffer_size(),
            cache_bytes: self.db.cache_size(),
            journal_bytes: self.db.journal_disk_space().unwrap_or(0),
            pending_flushes: self.db.outstanding_flushes() as u64,
            stalled_micros: self.stalled_micros.load(Ordering::Relaxed),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }

    fn compact(&self) -> Result<(), StoreError> {
        for table in &self.tables {
            table.rotate_memtable_and_wait()?;
            table.major_compact()?;
        }
        self.db.persist(fjall::PersistMode::SyncAll)?;
        Ok(())
    }

    fn recovery(&self) -> Recovery {
        self.recovery
    }
}

// ---- in memory ----------------------------------------------------------------------------

type MemoryTable = BTreeMap<Vec<u8>, Vec<u8>>;

fn memory_table(tables: &mut [MemoryTable], table: Table) -> Result<&mut MemoryTable, StoreError> {
    tables.get_mut(table.index()).ok_or(MISSING_TABLE)
}

fn memory_table_ref(tables: &[MemoryTable], table: Table) -> Result<&MemoryTable, StoreError> {
    tables.get(table.index()).ok_or(MISSING_TABLE)
}

const MISSING_TABLE: StoreError = StoreError::Corrupt("a table is missing");

pub struct MemoryKv {
    tables: RwLock<Vec<BTreeMap<Vec<u8>, Vec<u8>>>>,
}

/// The same as `new`: a derived default would hold no tables at all.
impl Default for MemoryKv {
    fn default() -> Self {
        MemoryKv::new()
    }
}

impl MemoryKv {
    pub fn new() -> Self {
        MemoryKv {
            tables: RwLock::new(vec![BTreeMap::new(); Table::ALL.len()]),
        }
    }
}

impl Kv for MemoryKv {
    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let mut tables = self.tables.write().unwrap_or_else(PoisonError::into_inner);
        for op in ops {
            match op {
                Op::Put(t, k, v) => {
                    memory_table(&mut tables, t)?.insert(k.to_vec(), v.to_vec());
                }
                Op::Delete(t, k) => {
                    memory_table(&mut tables, t)?.remove(&k[..]);
                }
            }
        }
        Ok(())
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        Ok(memory_table_ref(&tables, table)?.get(key).cloned())
    }

    fn scan(
        &self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StoreError> {
        let tables = self.tables.read().unwrap_or_else(PoisonError::into_inner);
        let table = memory_table_ref(&tables, table)?;
        if from >= to {
            // BTreeMap::range panics on an empty or inverted range; fjall returns nothing.
            return Ok(());
        }
        let range = table.range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)));
        walk(range, reverse, |(k, v)| visit(k, v))
    }

    fn disk_bytes(&self) -> u64 {
        0
    }

    fn table_bytes(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn compact(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memtables_of_every_table_fit_under_the_size_writes_wait_at() {
        // Else a write could wait with no memtable due to be written out, for nothing.
        let all: u64 = Table::ALL.iter().map(|t| t.memtable_size()).sum();
        assert!(all < MAX_MEMTABLE_BYTES, "{all} ≥ {MAX_MEMTABLE_BYTES}");
    }
}
