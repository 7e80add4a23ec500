//! Reading the derived series back: the label sets that a filter keeps, their cells in a
//! range of buckets (the engine's, overlaid with the newer ones in memory), and for Istio
//! series their totals — copied under the state lock, read from the engine after it.

use std::collections::BTreeMap;
use std::sync::Arc;

use meshtrace_metrics::Matcher;

use super::cell::{Cell, IstioCell};
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
            let first = after_ms
                .checked_div(step)
                .and_then(|n| n.checked_add(1))
                .and_then(|n| n.checked_mul(step));
            let last = until_ms.min(state.resident_newest);
            let lookups = match first {
                Some(first) if first <= last => {
                    (last.saturating_sub(first).checked_div(step).unwrap_or(0))
                        .saturating_add(1)
                        .saturating_mul(found.len() as u64)
                }
                _ => 0,
            };
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

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the selection matches {0} series, more than a query may read")]
    TooLarge(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}
