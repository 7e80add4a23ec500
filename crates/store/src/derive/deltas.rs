//! How the derived cells are made durable without rewriting them with every batch.
//!
//! A write batch carries one *delta record* (`metric_deltas`: write number → what the batch
//! added to each cell it touched), in the same atomic engine batch as its spans. Now and then
//! (every [`CHECKPOINT_RECORDS`] records or [`CHECKPOINT_INTERVAL`]) a *checkpoint* writes the
//! cells changed since the last one, whole, and deletes the records they now include, in one
//! atomic batch queued after them. A cell is therefore on disk as its last checkpointed value
//! plus the records written since; an open adds those records in ([`recover`]) before anything
//! reads the cells.
//!
//! Why: a batch of 512 spans touches about 60 cells, and a service cell's latency sketch is a
//! few hundred bytes; writing them whole with every batch cost as much engine work (journal,
//! memtable, flushes) as deriving them. A record is one key, and a batch's delta of a sketch
//! holds only the bins its spans fell in.

use std::collections::HashMap;
use std::time::Duration;

use super::cell::Cell;
use super::series::{Family, Registry};
use super::{CellKey, cell_key, decode_cell};
use crate::StoreError;
use crate::codec::CorruptError;
use crate::codec::reader::{Reader, put_varint};
use crate::damage::{Damage, DamageKind};
use crate::kv::{Kv, Op, Table};

use super::cell::IstioCell;

/// Records written before the cells are checkpointed (a bound on what an open replays).
pub const CHECKPOINT_RECORDS: usize = 512;
/// The longest a changed cell waits for its checkpoint.
pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// The stored form's version (the first byte of a record).
const RECORD_V1: u8 = 1;

/// A record's key: the write's number.
pub fn record_key(seq: u64) -> Vec<u8> {
    seq.to_be_bytes().to_vec()
}

/// A delta record being built: the version, then per cell its family's tag, series ID,
/// bucket end and the delta's stored form (length-prefixed).
pub struct RecordWriter(Vec<u8>);

impl RecordWriter {
    pub fn new() -> RecordWriter {
        RecordWriter(vec![RECORD_V1])
    }

    pub fn push(&mut self, (family, id, bucket): CellKey, delta: &Cell) {
        self.0.push(family.tag());
        put_varint(&mut self.0, u64::from(id));
        put_varint(&mut self.0, bucket);
        let encoded = delta.encode();
        put_varint(&mut self.0, encoded.len() as u64);
        self.0.extend_from_slice(&encoded);
    }

    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// What one record added: a delta per cell.
type Record = Vec<(CellKey, Cell)>;

/// The cells and deltas of a stored record.
pub fn decode_record(value: &[u8]) -> Result<Record, CorruptError> {
    let mut reader = Reader::new(value);
    if reader.byte()? != RECORD_V1 {
        return Err(CorruptError("unknown delta record version"));
    }
    let mut out = Vec::new();
    while !reader.is_empty() {
        let family = Family::from_tag(reader.byte()?)
            .ok_or(CorruptError("a delta record names no known family"))?;
        let id = reader.varint32()?;
        let bucket = reader.varint()?;
        let len = usize::try_from(reader.varint()?).unwrap_or(usize::MAX);
        let delta = decode_cell(family, reader.take(len)?)?;
        out.push(((family, id, bucket), delta));
    }
    Ok(out)
}

/// At open, after the cells and label sets are read: adds the records a crash left (written
/// after the last checkpoint) to their cells, the registry's buckets and the Istio totals,
/// then writes those cells whole and deletes the records, in one batch. Returns how many
/// records were replayed.
pub fn recover(
    kv: &dyn Kv,
    registry: &mut Registry,
    totals: &mut HashMap<u32, IstioCell, foldhash::fast::RandomState>,
    damage: &Damage,
) -> Result<usize, StoreError> {
    let mut records: Vec<(Vec<u8>, Result<Record, CorruptError>)> = Vec::new();
    kv.scan(Table::MetricDeltas, &[], &[0xff], false, &mut |k, v| {
        records.push((k.to_vec(), decode_record(v)));
        Ok(true)
    })?;
    if records.is_empty() {
        return Ok(0);
    }
    let mut merged: HashMap<CellKey, Cell> = HashMap::new();
    let mut ops = Vec::new();
    for (key, decoded) in &records {
        ops.push(Op::delete(Table::MetricDeltas, key.clone()));
        let items = match decoded {
            Ok(items) => items,
            Err(error) => {
                damage.record(DamageKind::UndecodableValue, "metric_deltas", error);
                continue;
            }
        };
        for (cell_at, delta) in items {
            let (family, id, bucket) = *cell_at;
            // A series the retention removed since (a checkpoint precedes every pass, so
            // this is a record of a write that failed): nothing to add to.
            if registry.get(family, id).is_none() {
                continue;
            }
            let cell = match merged.entry(*cell_at) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    entry.insert(super::stored_cell(kv, damage, *cell_at)?)
                }
            };
            cell.add(delta);
            registry.saw_bucket(family, id, bucket);
            if let Cell::Istio(delta) = delta {
                totals.entry(id).or_default().add(delta);
            }
        }
    }
    for ((family, id, bucket), cell) in merged {
        ops.push(Op::put(
            Table::MetricCells,
            cell_key(family, id, bucket),
            cell.encode(),
        ));
    }
    kv.write(ops)?;
    tracing::info!(
        records = records.len(),
        "added the derived metrics of the writes after the last checkpoint to their cells"
    );
    Ok(records.len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::derive::cell::ServiceCell;

    #[test]
    fn records_round_trip_and_damage_is_an_error() {
        let mut service = ServiceCell::default();
        service.observe(1500);
        let mut istio = IstioCell::default();
        istio.add(&IstioCell::default());
        let items = vec![
            ((Family::Service, 7, 15_000), Cell::Service(service)),
            (
                (Family::Istio, 300_000, u64::MAX),
                Cell::Istio(Box::new(istio)),
            ),
        ];
        let mut writer = RecordWriter::new();
        for (key, cell) in &items {
            writer.push(*key, cell);
        }
        let bytes = writer.finish();
        assert_eq!(decode_record(&bytes).unwrap(), items);
        assert_eq!(decode_record(&[RECORD_V1]).unwrap(), vec![]);
        // A cut record is an error, or (cut between two cells) fewer cells: never other ones.
        for cut in 1..bytes.len() {
            if let Ok(some) = decode_record(&bytes[..cut]) {
                assert!(
                    some.len() < items.len() && items.starts_with(&some),
                    "cut at {cut}"
                );
            }
        }
        assert!(decode_record(&[2]).is_err());
        assert!(decode_record(&[RECORD_V1, b'X', 1, 1, 0]).is_err());
        assert!(decode_record(&[RECORD_V1, b'S', 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
    }
}
