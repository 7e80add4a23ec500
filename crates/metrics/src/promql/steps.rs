//! The values the evaluator passes between nodes, over all evaluation steps at once (as
//! Prometheus's range evaluation does): a scalar per step, or series holding a point at some
//! steps. Also the two tools every operator uses: [`Transposed`] (the points of each step,
//! for operators that combine series) and [`Collector`] (output series by label set, refusing
//! two points of the same label set at one step as Prometheus does).

use std::collections::hash_map::Entry;

use crate::{FastMap, FastSet};

use super::QueryError;
use crate::series::{Labels, Series};

/// Series with a point at some evaluation steps (`u32` step index, value), in step order.
#[derive(Debug, Clone)]
pub(crate) struct StepSeries {
    pub labels: Labels,
    pub points: Vec<(u32, f64)>,
}

/// A node's value over all steps.
#[derive(Debug)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    Vector(Vec<StepSeries>),
    /// Raw samples of a range selector (only at the top of an instant query).
    Matrix(Vec<Series>),
    Str(String),
}

/// The points of a vector grouped by step: `entries[offsets[i]..offsets[i + 1]]` are the
/// (series index, value) pairs of step `i`, in series order.
pub(crate) struct Transposed {
    offsets: Vec<usize>,
    entries: Vec<(u32, f64)>,
}

impl Transposed {
    pub fn new(series: &[StepSeries], steps: usize) -> Transposed {
        let mut counts = vec![0usize; steps.saturating_add(1)];
        for s in series {
            for &(step, _) in &s.points {
                if let Some(c) = counts.get_mut(step as usize) {
                    *c = c.saturating_add(1);
                }
            }
        }
        // Prefix sums: offsets[i] is where step i starts.
        let mut offsets = Vec::with_capacity(counts.len());
        let mut total = 0usize;
        for c in &counts {
            offsets.push(total);
            total = total.saturating_add(*c);
        }
        let mut fill = offsets.clone();
        let mut entries = vec![(0u32, 0.0f64); total];
        for (index, s) in series.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            for &(step, value) in &s.points {
                if let Some(at) = fill.get_mut(step as usize) {
                    if let Some(slot) = entries.get_mut(*at) {
                        *slot = (index, value);
                    }
                    *at = at.saturating_add(1);
                }
            }
        }
        Transposed { offsets, entries }
    }

    /// The (series index, value) pairs at `step`.
    pub fn at(&self, step: usize) -> &[(u32, f64)] {
        let from = self.offsets.get(step).copied().unwrap_or(0);
        let to = self
            .offsets
            .get(step.saturating_add(1))
            .copied()
            .unwrap_or(from);
        self.entries.get(from..to).unwrap_or(&[])
    }
}

/// Output series, one per label set.
#[derive(Default)]
pub(crate) struct Collector {
    index: FastMap<Labels, usize>,
    series: Vec<StepSeries>,
}

impl Collector {
    /// A collector sized for `series` label sets: an operator that keeps one output series
    /// per input series (`round`, a comparison with a scalar) hashes each label set once,
    /// without the rehashing of a growing map.
    pub fn with_capacity(series: usize) -> Collector {
        Collector {
            index: FastMap::with_capacity_and_hasher(series, Default::default()),
            series: Vec::with_capacity(series),
        }
    }

    /// The slot of `labels`, created on first use.
    pub fn slot(&mut self, labels: Labels) -> usize {
        // One hash a call: the entry serves both the lookup and the insert.
        let next = self.series.len();
        match self.index.entry(labels) {
            Entry::Occupied(entry) => *entry.get(),
            Entry::Vacant(entry) => {
                self.series.push(StepSeries {
                    labels: entry.key().clone(),
                    points: Vec::new(),
                });
                entry.insert(next);
                next
            }
        }
    }

    pub fn push(&mut self, slot: usize, step: u32, value: f64) {
        if let Some(s) = self.series.get_mut(slot) {
            s.points.push((step, value));
        }
    }

    /// The series with points, each in step order; two points of one label set at the same
    /// step are Prometheus's "vector cannot contain metrics with the same labelset".
    pub fn finish(self) -> Result<Vec<StepSeries>, QueryError> {
        let mut out = Vec::with_capacity(self.series.len());
        for mut s in self.series {
            if s.points.is_empty() {
                continue;
            }
            if !s.points.is_sorted_by_key(|p| p.0) {
                s.points.sort_by_key(|p| p.0);
            }
            if s.points
                .windows(2)
                .any(|w| matches!(w, [a, b] if a.0 == b.0))
            {
                return Err(same_labelset());
            }
            out.push(s);
        }
        Ok(out)
    }
}

/// The output of an operator that makes one series of each input series and keeps its labels,
/// or drops only their metric name (`round`, an operation with a scalar).
///
/// Every vector the evaluator passes on has distinct label sets (a source's series are distinct
/// series; an operator's output went through a [`Collector`] or [`check_distinct`]), so when
/// the labels are kept as they are — nothing dropped, or no input series has a metric name to
/// drop — the outputs are distinct too and are passed on without hashing a label set. When
/// names are dropped, two inputs may meet in one label set: the collector then merges them or
/// refuses a step where both have a point, as Prometheus does.
pub(crate) enum OneToOne {
    Direct(Vec<StepSeries>),
    Collect(Collector),
}

impl OneToOne {
    pub fn new(input: &[StepSeries], drop_name: bool) -> OneToOne {
        if !drop_name || input.iter().all(|s| s.labels.metric_name().is_none()) {
            OneToOne::Direct(Vec::with_capacity(input.len()))
        } else {
            OneToOne::Collect(Collector::with_capacity(input.len()))
        }
    }

    /// The output series of one input series: its labels (the name already dropped when the
    /// operator drops it) and its points, in step order, one per step at most.
    pub fn add(&mut self, labels: Labels, points: Vec<(u32, f64)>) {
        match self {
            OneToOne::Direct(out) => {
                if !points.is_empty() {
                    out.push(StepSeries { labels, points });
                }
            }
            OneToOne::Collect(collector) => {
                let slot = collector.slot(labels);
                for (step, value) in points {
                    collector.push(slot, step, value);
                }
            }
        }
    }

    pub fn finish(self) -> Result<Vec<StepSeries>, QueryError> {
        match self {
            OneToOne::Direct(out) => Ok(out),
            OneToOne::Collect(collector) => collector.finish(),
        }
    }
}

pub(crate) fn same_labelset() -> QueryError {
    QueryError::Execution("vector cannot contain metrics with the same labelset".to_string())
}

/// Prometheus's check on a whole result: two non-empty series with the same labels.
pub(crate) fn check_distinct(series: &[StepSeries]) -> Result<(), QueryError> {
    let mut seen = FastSet::with_capacity_and_hasher(series.len(), Default::default());
    for s in series {
        if !s.points.is_empty() && !seen.insert(&s.labels) {
            return Err(same_labelset());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::tests::labels;

    fn series(pairs: &[(&str, &str)], points: &[(u32, f64)]) -> StepSeries {
        StepSeries {
            labels: labels(pairs),
            points: points.to_vec(),
        }
    }

    fn run(input: Vec<StepSeries>, drop_name: bool) -> Result<Vec<StepSeries>, QueryError> {
        let mut out = OneToOne::new(&input, drop_name);
        for s in input {
            let labels = if drop_name {
                s.labels.without_name()
            } else {
                s.labels
            };
            out.add(labels, s.points);
        }
        out.finish()
    }

    #[test]
    fn one_to_one_keeps_series_in_order_and_drops_empty_ones() {
        let input = vec![
            series(&[("j", "2")], &[(0, 1.0), (2, 3.0)]),
            series(&[("j", "1")], &[]),
            series(&[("j", "0")], &[(1, 5.0)]),
        ];
        for drop_name in [false, true] {
            let out = run(input.clone(), drop_name).unwrap();
            let got: Vec<_> = out
                .iter()
                .map(|s| (s.labels.get("j").unwrap(), s.points.clone()))
                .collect();
            assert_eq!(
                got,
                vec![("2", vec![(0, 1.0), (2, 3.0)]), ("0", vec![(1, 5.0)])]
            );
        }
    }

    #[test]
    fn one_to_one_merges_or_refuses_series_that_lose_their_names() {
        // Two metrics that meet in `{j="1"}` once their names are dropped: at other steps
        // they make one series, as in Prometheus; at one step, its error.
        let apart = vec![
            series(&[("__name__", "a"), ("j", "1")], &[(1, 2.0)]),
            series(&[("__name__", "b"), ("j", "1")], &[(0, 1.0)]),
        ];
        let out = run(apart.clone(), true).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].labels, labels(&[("j", "1")]));
        assert_eq!(out[0].points, vec![(0, 1.0), (1, 2.0)]);
        // Names kept: two series, as they came.
        assert_eq!(run(apart, false).unwrap().len(), 2);
        let together = vec![
            series(&[("__name__", "a"), ("j", "1")], &[(0, 2.0)]),
            series(&[("__name__", "b"), ("j", "1")], &[(0, 1.0)]),
        ];
        let e = run(together, true).unwrap_err();
        assert!(e.to_string().contains("same labelset"), "{e}");
    }
}
