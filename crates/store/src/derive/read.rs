//! Reading the derived series back: the label sets that a filter keeps, their cells in a
//! range of buckets (the engine's, overlaid with the newer ones in memory), and for Istio
//! series their totals — copied under the state lock, read from the engine after it.

use std::collections::BTreeMap;
use std::sync::Arc;

use meshtrace_metrics::Matcher;

use super::cell::{Cell, Hist, IstioCell};
use super::series::{Family, entry_key};
use super::{Derivation, cell_key, decode_cell, parse_cell_key};
use crate::StoreError;
use crate::damage::{Damage, DamageKind};
use crate::keys::prefix_end;
use crate::kv::{Kv, Table};

/// One series read back.
pub struct SeriesData {
    pub id: u32,
    pub labels: Box<[Arc<str>]>,
    /// Cells by bucket end (ms), for the buckets asked.
    pub cells: BTreeMap<u64, Cell>,
    /// Istio series: the sum of every bucket kept.
    pub total: Option<IstioCell>,
}

impl Derivation {
    /// The series of `family` whose labels satisfy `matchers` (label positions as
    /// [`super::series::Registry::matching`] takes them), with their cells of buckets in
    /// `(after_ms, until_ms]`. Fails with `TooLarge` past `max_series` series.
    pub fn read(
        &self,
        kv: &dyn Kv,
        damage: &Damage,
        family: Family,
        matchers: &[(Option<usize>, &Matcher)],
        (after_ms, until_ms): (u64, u64),
        max_series: usize,
    ) -> Result<Vec<SeriesData>, ReadError> {
        let mut found = {
            let state = self.lock();
            let ids = state.registry.matching(family, matchers);
            if ids.len() > max_series {
                return Err(ReadError::TooLarge(ids.len()));
            }
            let mut found: Vec<SeriesData> = ids
                .iter()
                .filter_map(|id| {
                    let entry = state.registry.get(family, *id)?;
                    Some(SeriesData {
                        id: *id,
                        labels: entry.labels.clone(),
                        cells: BTreeMap::new(),
                        total: (family == Family::Istio)
                            .then(|| state.totals.get(id).cloned().unwrap_or_default()),
                    })
                })
                .collect();
            found.sort_unstable_by_key(|s| s.id);
            // The resident cells in range: looked up bucket by bucket when that is fewer
            // lookups than walking them all (a short range, few series).
            let step = state.step_ms.max(1);
            let last = until_ms.min(state.resident_newest);
            let (first, lookups) = bucket_lookups(after_ms, last, step, found.len());
            if state.resident_aligned && lookups < state.resident.len() as u64 {
                if let Some(first) = first {
                    for series in &mut found {
                        let mut bucket = first;
                        while bucket <= last {
                            if let Some(resident) = state.resident.get(&(family, series.id, bucket))
                            {
                                series.cells.insert(bucket, resident.cell.clone());
                            }
                            match bucket.checked_add(step) {
                                Some(next) => bucket = next,
                                None => break,
                            }
                        }
                    }
                }
            } else {
                for (key, resident) in &state.resident {
                    if key.0 != family || key.2 <= after_ms || key.2 > until_ms {
                        continue;
                    }
                    if let Ok(at) = found.binary_search_by_key(&key.1, |s| s.id)
                        && let Some(series) = found.get_mut(at)
                    {
                        series.cells.insert(key.2, resident.cell.clone());
                    }
                }
            }
            found
        };
        for series in &mut found {
            let from = cell_key(family, series.id, after_ms.saturating_add(1));
            let to = match until_ms.checked_add(1) {
                Some(end) => cell_key(family, series.id, end),
                None => prefix_end(&entry_key(family, series.id)).unwrap_or_else(|| vec![0xff; 14]),
            };
            kv.scan(Table::MetricCells, &from, &to, false, &mut |k, v| {
                let Some((_, _, bucket)) = parse_cell_key(k) else {
                    return Ok(true);
                };
                if series.cells.contains_key(&bucket) {
                    return Ok(true); // the copy in memory is at least as new
                }
                match decode_cell(family, v) {
                    Ok(cell) => {
                        series.cells.insert(bucket, cell);
                    }
                    Err(error) => {
                        damage.record(DamageKind::UndecodableValue, "metric_cells", &error);
                    }
                }
                Ok(true)
            })?;
        }
        Ok(found)
    }
}

/// The most cells a series' vector is sized for ahead (a day of 15 s buckets); more grow it.
const MAX_ROOM: usize = 5_760;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the selection matches {0} series, more than a query may read")]
    TooLarge(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One histogram of an Istio series read back: its sum over every bucket kept, and its cells
/// of the buckets asked in bucket order.
pub struct HistData {
    pub total: Hist,
    /// (bucket end ms, the histogram of that bucket), ascending.
    pub cells: Vec<(u64, Hist)>,
}

/// An Istio series read back for a Prometheus selection: only the histograms it asked.
pub struct IstioData {
    pub id: u32,
    pub labels: Box<[Arc<str>]>,
    /// Per histogram (0 duration, 1 request bytes, 2 response bytes); `None` when not asked.
    pub hists: [Option<HistData>; 3],
}

impl Derivation {
    /// The Istio series whose labels satisfy `matchers`, with histograms `which` (indexes as in
    /// [`IstioCell::decode_hist`]) of their total and of their cells after `after_ms`: what a
    /// Prometheus selection needs, without decoding or copying the histograms it does not ask.
    /// Fails with `TooLarge` past `max_series` series.
    pub fn read_istio(
        &self,
        kv: &dyn Kv,
        damage: &Damage,
        matchers: &[(Option<usize>, &Matcher)],
        after_ms: u64,
        which: [bool; 3],
        max_series: usize,
    ) -> Result<Vec<IstioData>, ReadError> {
        let family = Family::Istio;
        // Resident cells (newer than the engine's copy) by series, then bucket.
        let (mut found, resident, room) = {
            let state = self.lock();
            let ids = state.registry.matching(family, matchers);
            if ids.len() > max_series {
                return Err(ReadError::TooLarge(ids.len()));
            }
            let mut found: Vec<IstioData> = ids
                .iter()
                .filter_map(|id| {
                    let entry = state.registry.get(family, *id)?;
                    let total = state.totals.get(id);
                    Some(IstioData {
                        id: *id,
                        labels: entry.labels.clone(),
                        hists: std::array::from_fn(|h| {
                            which.get(h).copied().unwrap_or(false).then(|| HistData {
                                total: total.map(|t| t.hist(h).clone()).unwrap_or_default(),
                                cells: Vec::new(),
                            })
                        }),
                    })
                })
                .collect();
            found.sort_unstable_by_key(|s| s.id);
            // The resident cells in range (newer than the engine's copy), copied straight into
            // the histograms asked; their buckets by series, for the engine's scan to pass over.
            let mut resident: Vec<Vec<u64>> = found.iter().map(|_| Vec::new()).collect();
            // How many cells each series may have in range (its buckets after `after_ms` up to
            // its last), to size the vectors the engine's cells go in once: growing them cell
            // by cell moved and zeroed large blocks.
            let step = state.step_ms.max(1);
            let room: Vec<usize> = found
                .iter()
                .map(|series| {
                    let last = state
                        .registry
                        .get(family, series.id)
                        .map_or(0, |e| e.last_bucket);
                    let buckets = last.saturating_sub(after_ms).checked_div(step).unwrap_or(0);
                    usize::try_from(buckets)
                        .unwrap_or(usize::MAX)
                        .saturating_add(1)
                        .min(MAX_ROOM)
                })
                .collect();
            let keep =
                |series: &mut IstioData, buckets: &mut Vec<u64>, bucket: u64, cell: &Cell| {
                    if let Cell::Istio(cell) = cell {
                        buckets.push(bucket);
                        for (h, slot) in series.hists.iter_mut().enumerate() {
                            if let Some(slot) = slot {
                                slot.cells.push((bucket, cell.hist(h).clone()));
                            }
                        }
                    }
                };
            let last = state.resident_newest;
            let (first, lookups) = bucket_lookups(after_ms, last, step, found.len());
            if state.resident_aligned && lookups < state.resident.len() as u64 {
                if let Some(first) = first {
                    for (series, buckets) in found.iter_mut().zip(&mut resident) {
                        let mut bucket = first;
                        while bucket <= last {
                            if let Some(r) = state.resident.get(&(family, series.id, bucket)) {
                                keep(series, buckets, bucket, &r.cell);
                            }
                            match bucket.checked_add(step) {
                                Some(next) => bucket = next,
                                None => break,
                            }
                        }
                    }
                }
            } else {
                for (key, r) in &state.resident {
                    if key.0 != family || key.2 <= after_ms {
                        continue;
                    }
                    if let Ok(at) = found.binary_search_by_key(&key.1, |s| s.id)
                        && let (Some(series), Some(buckets)) =
                            (found.get_mut(at), resident.get_mut(at))
                    {
                        keep(series, buckets, key.2, &r.cell);
                    }
                }
            }
            (found, resident, room)
        };
        for ((series, mut resident), room) in found.iter_mut().zip(resident).zip(room) {
            resident.sort_unstable();
            // The engine's cells of the buckets not in memory, then merged with those by bucket.
            let room = room.saturating_sub(resident.len());
            let mut disk: [Vec<(u64, Hist)>; 3] = std::array::from_fn(|h| {
                let wanted = series.hists.get(h).is_some_and(Option::is_some);
                Vec::with_capacity(if wanted { room } else { 0 })
            });
            let from = cell_key(family, series.id, after_ms.saturating_add(1));
            let to = prefix_end(&entry_key(family, series.id)).unwrap_or_else(|| vec![0xff; 14]);
            let wanted = series.hists.each_ref().map(Option::is_some);
            kv.scan(Table::MetricCells, &from, &to, false, &mut |k, v| {
                let Some((_, _, bucket)) = parse_cell_key(k) else {
                    return Ok(true);
                };
                if resident.binary_search(&bucket).is_ok() {
                    return Ok(true); // the copy in memory is at least as new
                }
                for ((h, cells), wanted) in disk.iter_mut().enumerate().zip(wanted) {
                    if !wanted {
                        continue;
                    }
                    match IstioCell::decode_hist(v, h) {
                        Ok(hist) => cells.push((bucket, hist)),
                        Err(error) => {
                            // Every histogram of a cell fails alike (the whole cell is checked),
                            // so this is the first one asked: the cell is left out, as `read`
                            // leaves it.
                            damage.record(DamageKind::UndecodableValue, "metric_cells", &error);
                            break;
                        }
                    }
                }
                Ok(true)
            })?;
            for (slot, mut cells) in series.hists.iter_mut().zip(disk) {
                let Some(slot) = slot else { continue };
                if cells.is_empty() {
                    slot.cells.sort_unstable_by_key(|(bucket, _)| *bucket);
                    continue;
                }
                slot.cells.sort_unstable_by_key(|(bucket, _)| *bucket);
                // The resident cells are usually all newer than the engine's: then the two
                // runs join as they are; else a stable sort finds the runs and merges them.
                let joined = match (cells.last(), slot.cells.first()) {
                    (Some((disk, _)), Some((memory, _))) => disk < memory,
                    _ => true,
                };
                cells.append(&mut slot.cells);
                if !joined {
                    cells.sort_by_key(|(bucket, _)| *bucket);
                }
                slot.cells = cells;
            }
        }
        Ok(found)
    }
}

/// The first bucket end after `after_ms`, and how many map lookups reading buckets from it to
/// `last` for `series` series takes (0 when the range holds no bucket): the readers compare it
/// with the resident map's size to choose between lookups and one walk of the map.
fn bucket_lookups(after_ms: u64, last: u64, step: u64, series: usize) -> (Option<u64>, u64) {
    let first = after_ms
        .checked_div(step)
        .and_then(|n| n.checked_add(1))
        .and_then(|n| n.checked_mul(step));
    let lookups = match first {
        Some(first) if first <= last => (last.saturating_sub(first).checked_div(step).unwrap_or(0))
            .saturating_add(1)
            .saturating_mul(series as u64),
        _ => 0,
    };
    (first, lookups)
}
