//! The ordered key-value tables the store is built on: fjall (an LSM-tree engine with a
//! write-ahead journal) on disk, or plain ordered maps in memory for `--memory`.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::RwLock;

use crate::StoreError;

/// The tables; each is its own keyspace (an LSM tree) on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// trace ID (16) | start µs (8, big-endian) | span ID (8) → span
    Spans,
    /// process hash (8) → process
    Processes,
    /// service | 0 | start µs (8) | trace ID (16) | span ID (8) → operation, duration
    ByService,
    /// service → last seen µs
    Services,
    /// service | 0 | span kind | 0 | operation → last seen µs
    Operations,
    /// string ID (4, big-endian) → string
    Dictionary,
}

impl Table {
    pub const ALL: [Table; 6] = [
        Table::Spans,
        Table::Processes,
        Table::ByService,
        Table::Services,
        Table::Operations,
        Table::Dictionary,
    ];

    fn name(self) -> &'static str {
        match self {
            Table::Spans => "spans",
            Table::Processes => "processes",
            Table::ByService => "by_service",
            Table::Services => "services",
            Table::Operations => "operations",
            Table::Dictionary => "dictionary",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

pub enum Op {
    Put(Table, Vec<u8>, Vec<u8>),
    Delete(Table, Vec<u8>),
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
    /// Makes everything written durable (used at shutdown).
    fn flush(&self) -> Result<(), StoreError>;
    /// Writes memtables out and compacts, so that disk use is what it settles to (benchmarks).
    fn compact(&self) -> Result<(), StoreError>;
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
}

impl FjallKv {
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        // Memory bounds (the store must stay within a few hundred MiB under full ingest), and a
        // compressed journal: it is written once per span and was the larger half of the I/O.
        let db = fjall::Database::builder(dir)
            .cache_size(32 << 20)
            .journal_compression(fjall::CompressionType::Lz4)
            .open()?;
        // Compress every level (the engine's default leaves the first two uncompressed) in
        // larger blocks: span tags repeat a lot, and bigger blocks give LZ4 more to work with.
        let options = || {
            fjall::KeyspaceCreateOptions::default()
                .data_block_compression_policy(fjall::config::CompressionPolicy::all(
                    fjall::CompressionType::Lz4,
                ))
                .data_block_size_policy(fjall::config::BlockSizePolicy::all(64 * 1024))
                .max_memtable_size(16 << 20)
        };
        let tables = Table::ALL
            .iter()
            .map(|t| db.keyspace(t.name(), options))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(FjallKv { db, tables })
    }

    fn table(&self, table: Table) -> &fjall::Keyspace {
        &self.tables[table.index()]
    }
}

impl Kv for FjallKv {
    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let mut batch = self
            .db
            .batch()
            .durability(Some(fjall::PersistMode::SyncData));
        for op in ops {
            match op {
                Op::Put(t, k, v) => batch.insert(self.table(t), k, v),
                Op::Delete(t, k) => batch.remove(self.table(t), k),
            }
        }
        batch.commit()?;
        Ok(())
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.table(table).get(key)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StoreError> {
        walk(self.table(table).range(from..to), reverse, |guard| {
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
            .map(|t| (t.name(), self.table(*t).disk_space()))
            .collect()
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
}

// ---- in memory ----------------------------------------------------------------------------

#[derive(Default)]
pub struct MemoryKv {
    tables: RwLock<Vec<BTreeMap<Vec<u8>, Vec<u8>>>>,
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
        let mut tables = self.tables.write().expect("lock poisoned");
        for op in ops {
            match op {
                Op::Put(t, k, v) => {
                    tables[t.index()].insert(k, v);
                }
                Op::Delete(t, k) => {
                    tables[t.index()].remove(&k);
                }
            }
        }
        Ok(())
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let tables = self.tables.read().expect("lock poisoned");
        Ok(tables[table.index()].get(key).cloned())
    }

    fn scan(
        &self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StoreError> {
        // BTreeMap::range panics on a range that ends before it starts: that range is empty.
        if from >= to {
            return Ok(());
        }
        let tables = self.tables.read().expect("lock poisoned");
        let range =
            tables[table.index()].range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)));
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
