//! The derived cells, in memory and in the engine: a cell's key and stored form, the cells
//! kept resident (each marked changed or written by a checkpoint), and the checkpoint that
//! writes the changed ones whole and deletes the delta records they now include (`deltas.rs`).

use std::time::Instant;

use super::cell::{Cell, IstioCell, ServiceCell};
use super::series::{self, Family, parse_entry_key};
use super::{CellKey, State, deltas, slot_bytes};
use crate::StoreError;
use crate::damage::{Damage, DamageKind};
use crate::group::{GroupWriter, Ticket};
use crate::kv::{Kv, Op, Table};

pub(super) struct Resident {
    pub(super) cell: Cell,
    /// Changed since the checkpoint that last wrote it whole (or since it was read).
    pub(super) dirty: bool,
    /// The checkpoint that last wrote it whole; 0 when its value is the engine's since it
    /// was read or made.
    pub(super) saved: u64,
}

impl Resident {
    pub(super) fn new(cell: Cell) -> Resident {
        Resident {
            cell,
            dirty: false,
            saved: 0,
        }
    }
}

/// A checkpoint queued: which records it deletes, to keep them if it fails.
pub(super) struct Checkpoint {
    pub(super) number: u64,
    pub(super) ticket: Ticket,
    pub(super) records: Vec<u64>,
}

/// family | id (4) | bucket end ms (8)
pub fn cell_key(family: Family, id: u32, bucket: u64) -> Vec<u8> {
    let mut key = series::entry_key(family, id);
    key.extend_from_slice(&bucket.to_be_bytes());
    key
}

pub fn parse_cell_key(key: &[u8]) -> Option<(Family, u32, u64)> {
    let (head, bucket) = key.split_first_chunk::<5>()?;
    let (family, id) = parse_entry_key(head)?;
    Some((
        family,
        id,
        u64::from_be_bytes(<[u8; 8]>::try_from(bucket).ok()?),
    ))
}

pub fn decode_cell(family: Family, value: &[u8]) -> Result<Cell, crate::codec::CorruptError> {
    match family {
        Family::Istio => IstioCell::decode(value).map(|c| Cell::Istio(Box::new(c))),
        Family::Service => ServiceCell::decode(value).map(Cell::Service),
    }
}

pub(crate) fn empty(family: Family) -> Cell {
    match family {
        Family::Istio => Cell::Istio(Box::default()),
        Family::Service => Cell::Service(ServiceCell::default()),
    }
}

/// The cell stored at `key`; an empty one when none is stored or the stored one is damaged
/// (counted, so that a damaged cell costs its counts, never the write).
pub(crate) fn stored_cell(kv: &dyn Kv, damage: &Damage, key: CellKey) -> Result<Cell, StoreError> {
    let (family, id, bucket) = key;
    let stored = kv.get(Table::MetricCells, &cell_key(family, id, bucket))?;
    Ok(match stored.map(|v| decode_cell(family, &v)) {
        Some(Ok(cell)) => cell,
        Some(Err(error)) => {
            damage.record(DamageKind::UndecodableValue, "metric_cells", &error);
            empty(family)
        }
        None => empty(family),
    })
}

impl State {
    /// Queues the write of every changed cell, whole, with the deletion of the records they
    /// now include; None when nothing changed or the writer is gone (the cells stay changed).
    pub(super) fn checkpoint(&mut self, writer: &GroupWriter) -> Option<Checkpoint> {
        self.checkpointed_at = Instant::now();
        if self.records.is_empty() {
            return None;
        }
        let number = self.checkpoints.saturating_add(1);
        let records = std::mem::take(&mut self.records);
        let mut ops: Vec<Op> = records
            .iter()
            .map(|seq| Op::delete(Table::MetricDeltas, deltas::record_key(*seq)))
            .collect();
        let mut written = Vec::new();
        for (&(family, id, bucket), resident) in &mut self.resident {
            if resident.dirty {
                ops.push(Op::put(
                    Table::MetricCells,
                    cell_key(family, id, bucket),
                    resident.cell.encode(),
                ));
                written.push((family, id, bucket));
                resident.dirty = false;
                resident.saved = number;
            }
        }
        match writer.submit(ops) {
            Ok(ticket) => {
                self.checkpoints = number;
                Some(Checkpoint {
                    number,
                    ticket,
                    records,
                })
            }
            Err(error) => {
                tracing::error!(%error, "a checkpoint of the derived metrics could not be queued");
                for key in written {
                    if let Some(resident) = self.resident.get_mut(&key) {
                        resident.dirty = true;
                    }
                }
                self.records = records;
                None
            }
        }
    }

    /// About how many bytes the resident cells take: their slots and what they point to.
    pub(super) fn resident_bytes(&self) -> usize {
        let heap = self.resident.values().fold(0usize, |bytes, r| {
            bytes.saturating_add(match &r.cell {
                Cell::Istio(_) => std::mem::size_of::<IstioCell>(),
                Cell::Service(cell) => cell.latency.heap_bytes(),
            })
        });
        slot_bytes::<CellKey, Resident>(self.resident.capacity()).saturating_add(heap)
    }

    /// The cell in memory, read from the engine first when it is not.
    pub(super) fn resident_mut(
        &mut self,
        kv: &dyn Kv,
        damage: &Damage,
        key: CellKey,
    ) -> Result<&mut Resident, StoreError> {
        let (_, _, bucket) = key;
        // Every cell made resident passes here (a new bucket is inserted just before).
        self.resident_newest = self.resident_newest.max(bucket);
        if bucket.checked_rem(self.step_ms) != Some(0) {
            self.resident_aligned = false;
        }
        match self.resident.entry(key) {
            std::collections::hash_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let cell = stored_cell(kv, damage, key)?;
                Ok(entry.insert(Resident::new(cell)))
            }
        }
    }
}
