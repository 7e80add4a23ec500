//! The derived metrics' retention pass: the cells of buckets that ended before the spans'
//! cutoff are removed (and taken out of the Istio totals, so the counters stay the sum of the
//! buckets kept), then the label sets left without a cell. Each chunk of series is done under
//! the state lock and queued through the group writer, after any write of the same cells.

use std::collections::{HashMap, HashSet};

use super::series::{Family, entry_key};
use super::{Derivation, cell_key, decode_cell, parse_cell_key};
use crate::StoreError;
use crate::damage::{Damage, DamageKind};
use crate::group::GroupWriter;
use crate::keys::prefix_end;
use crate::kv::{Kv, Op, Table};

use super::cell::Cell;

/// Series per locked chunk.
const CHUNK: usize = 256;

impl Derivation {
    /// Removes the cells of buckets ending at or before `cutoff_ms`, and the series left
    /// without cells; returns how many cells were removed.
    pub fn purge_before(
        &self,
        kv: &dyn Kv,
        damage: &Damage,
        writer: &GroupWriter,
        cutoff_ms: u64,
    ) -> Result<usize, StoreError> {
        // The cells on disk whole first: no record written before the pass then names a cell
        // or series it removes.
        self.checkpoint_now(writer);
        let candidates = self.lock().registry.starting_by(cutoff_ms);
        let mut removed: usize = 0;
        for chunk in candidates.chunks(CHUNK) {
            let mut state = self.changing();
            let mut ops = Vec::new();
            // The chunk's cells in memory, by series (one pass over them per chunk).
            let wanted: HashSet<(Family, u32)> = chunk.iter().copied().collect();
            let mut in_memory: HashMap<(Family, u32), Vec<u64>> = HashMap::new();
            for key in state.resident.keys() {
                if wanted.contains(&(key.0, key.1)) {
                    in_memory.entry((key.0, key.1)).or_default().push(key.2);
                }
            }
            for &(family, id) in chunk {
                let resident_buckets = in_memory.remove(&(family, id)).unwrap_or_default();
                let prefix = entry_key(family, id);
                let end = cell_key(family, id, cutoff_ms.saturating_add(1));
                let mut expired: Vec<(u64, Option<Vec<u8>>)> = Vec::new();
                kv.scan(Table::MetricCells, &prefix, &end, false, &mut |k, v| {
                    match parse_cell_key(k) {
                        Some((_, _, bucket)) => expired.push((bucket, Some(v.to_vec()))),
                        None => ops.push(Op::delete(Table::MetricCells, k)),
                    }
                    Ok(true)
                })?;
                for bucket in &resident_buckets {
                    if *bucket <= cutoff_ms {
                        expired.push((*bucket, None));
                    }
                }
                expired.sort_unstable_by_key(|(bucket, _)| *bucket);
                expired.dedup_by_key(|(bucket, _)| *bucket);
                for (bucket, stored) in expired {
                    let cell = match state.resident.remove(&(family, id, bucket)) {
                        Some(resident) => Some(resident.cell),
                        None => stored.and_then(|v| match decode_cell(family, &v) {
                            Ok(cell) => Some(cell),
                            Err(error) => {
                                damage.record(DamageKind::UndecodableValue, "metric_cells", &error);
                                None
                            }
                        }),
                    };
                    if let Some(Cell::Istio(cell)) = cell
                        && let Some(total) = state.totals.get_mut(&id)
                    {
                        total.subtract(&cell);
                    }
                    ops.push(Op::delete(Table::MetricCells, cell_key(family, id, bucket)));
                    removed = removed.saturating_add(1);
                }
                // The next cell kept: no pass needs to look at this series before it ends.
                let to = prefix_end(&prefix).unwrap_or_else(|| vec![0xff; 14]);
                let mut next = u64::MAX;
                kv.scan(Table::MetricCells, &end, &to, false, &mut |k, _| {
                    if let Some((_, _, bucket)) = parse_cell_key(k) {
                        next = bucket;
                    }
                    Ok(false)
                })?;
                let resident_next = resident_buckets
                    .iter()
                    .copied()
                    .filter(|b| *b > cutoff_ms)
                    .min()
                    .unwrap_or(u64::MAX);
                state
                    .registry
                    .set_first_bucket(family, id, next.min(resident_next));
            }
            if ops.is_empty() {
                continue;
            }
            let ticket = writer.submit(ops)?;
            drop(state);
            ticket.wait()?;
        }
        let mut state = self.changing();
        let gone = state.registry.remove_expired(cutoff_ms.saturating_add(1));
        if gone.is_empty() {
            return Ok(removed);
        }
        let mut ops = Vec::with_capacity(gone.len());
        for (family, id) in gone {
            if family == Family::Istio {
                state.totals.remove(&id);
            }
            ops.push(Op::delete(Table::MetricSeries, entry_key(family, id)));
        }
        let ticket = writer.submit(ops)?;
        drop(state);
        ticket.wait()?;
        Ok(removed)
    }
}
