//! Reduced windows kept for the selections that ask them again. Kiali's stats ask, per
//! workload, direction and interval, one histogram's `_sum`, `_count` and (once per quantile)
//! `_bucket` over the same labels and window, at once: the first of them reads the cells and
//! reduces the windows of every series the histogram returns; the others wait for it and
//! take their columns from that.
//!
//! Exact: an entry is used only while the derivation's change count is the one read before
//! it was computed (any write, failed write taken back or purge raises it first), and for the
//! same labels, window bounds and sample times. Bounded: at most [`MAX_ENTRIES`] entries and
//! about [`MAX_BYTES`] bytes of windows; the least recently used go first, and a result
//! larger than the whole bound is handed back without being kept.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::fmt::Write;
use std::sync::{Arc, Mutex, PoisonError};

use meshtrace_metrics::{MatchOp, Matcher, SourceError, WindowSamples};

/// Entries kept.
pub const MAX_ENTRIES: usize = 128;
/// About how many bytes the kept windows may take.
pub const MAX_BYTES: usize = 8 * 1024 * 1024;

/// What a cached selection is: everything its reduced windows depend on besides the
/// derivation's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The label matchers other than `__name__` and `le`, as text.
    pub labels: String,
    /// The histogram (index as in `IstioCell::decode_hist`).
    pub histogram: usize,
    pub start_ms: i64,
    pub end_ms: i64,
    pub left_open: bool,
    /// The sample times (they depend on the present and the oldest bucket kept).
    pub times: Vec<(i64, u64)>,
}

impl Key {
    /// The text of `matchers` (each: name, operator, value or pattern), unambiguous.
    pub fn labels(matchers: &[&Matcher]) -> String {
        let mut out = String::new();
        for m in matchers {
            let (op, value) = match &m.op {
                MatchOp::Equal(v) => ("=", v.as_str()),
                MatchOp::NotEqual(v) => ("!=", v.as_str()),
                MatchOp::Regex(re) => ("=~", re.as_str()),
                MatchOp::NotRegex(re) => ("!~", re.as_str()),
            };
            // Lengths first: no name or value can make two lists read alike.
            let _ = write!(
                out,
                "{}:{}{op}{}:{};",
                m.name.len(),
                m.name,
                value.len(),
                value
            );
        }
        out
    }

    fn bytes(&self) -> usize {
        self.labels
            .len()
            .saturating_add(self.times.len().saturating_mul(16))
    }
}

/// The reduced windows of one label set: every column of the histogram, in the order of the
/// full column list the entry was computed with.
pub struct Reduced {
    pub labels: Box<[std::sync::Arc<str>]>,
    /// How many samples `select` would return for each column.
    pub selected: usize,
    pub windows: Vec<WindowSamples>,
}

/// One computed selection.
pub struct Entry {
    /// Label sets the selection read (those without a request yet included).
    pub read: usize,
    pub series: Vec<Reduced>,
}

impl Entry {
    /// About how many bytes the entry holds.
    pub fn bytes(&self) -> usize {
        let per_window = std::mem::size_of::<WindowSamples>();
        let mut bytes = std::mem::size_of::<Entry>();
        for s in &self.series {
            bytes = bytes
                .saturating_add(std::mem::size_of::<Reduced>())
                .saturating_add(s.labels.len().saturating_mul(16))
                .saturating_add(s.windows.len().saturating_mul(per_window));
            for w in &s.windows {
                bytes = bytes.saturating_add(w.resets().len().saturating_mul(8));
            }
        }
        bytes
    }
}

type Slot = Arc<Mutex<Option<Arc<Entry>>>>;

struct Kept {
    key: Key,
    changes: u64,
    used: u64,
    /// 0 until computed.
    bytes: usize,
    slot: Slot,
}

#[derive(Default)]
struct Inner {
    kept: Vec<Kept>,
    clock: u64,
}

pub struct WindowCache {
    inner: Mutex<Inner>,
    max_entries: usize,
    max_bytes: usize,
}

impl Default for WindowCache {
    fn default() -> Self {
        WindowCache::new(MAX_ENTRIES, MAX_BYTES)
    }
}

impl WindowCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> WindowCache {
        WindowCache {
            inner: Mutex::new(Inner::default()),
            max_entries: max_entries.max(1),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The entry of `key` computed at change count `changes`: the one kept, the one another
    /// caller is computing (waited for), or `compute`'s (kept when it fits). An error is
    /// returned, never kept.
    pub fn get_or_compute(
        &self,
        key: Key,
        changes: u64,
        compute: impl FnOnce() -> Result<Entry, SourceError>,
    ) -> Result<Arc<Entry>, SourceError> {
        let slot = {
            let mut inner = self.lock();
            inner.clock = inner.clock.wrapping_add(1);
            let clock = inner.clock;
            let found = inner.kept.iter_mut().find(|k| k.key == key);
            match found {
                Some(kept) if kept.changes == changes => {
                    kept.used = clock;
                    kept.slot.clone()
                }
                Some(kept) => {
                    // Computed before a change: replaced.
                    kept.changes = changes;
                    kept.used = clock;
                    kept.bytes = 0;
                    kept.slot = Slot::default();
                    kept.slot.clone()
                }
                None => {
                    let slot = Slot::default();
                    inner.kept.push(Kept {
                        key: key.clone(),
                        changes,
                        used: clock,
                        bytes: 0,
                        slot: slot.clone(),
                    });
                    self.shrink(&mut inner, None);
                    slot
                }
            }
        };
        // One caller computes; the others of the same key wait for it here.
        let mut value = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = value.as_ref() {
            return Ok(entry.clone());
        }
        let entry = Arc::new(compute()?);
        *value = Some(entry.clone());
        drop(value);
        let bytes = entry.bytes().saturating_add(key.bytes()).max(1);
        let mut inner = self.lock();
        if let Some(kept) = inner.kept.iter_mut().find(|k| Arc::ptr_eq(&k.slot, &slot)) {
            kept.bytes = bytes;
        }
        self.shrink(&mut inner, Some(&slot));
        Ok(entry)
    }

    /// Drops the least recently used entries past the bounds (`fresh`, just computed, last:
    /// it goes only when it alone passes the byte bound).
    fn shrink(&self, inner: &mut Inner, fresh: Option<&Slot>) {
        let is_fresh = |k: &Kept| fresh.is_some_and(|f| Arc::ptr_eq(&k.slot, f));
        if fresh.is_some_and(|_| {
            inner
                .kept
                .iter()
                .any(|k| is_fresh(k) && k.bytes > self.max_bytes)
        }) {
            inner.kept.retain(|k| !is_fresh(k));
        }
        loop {
            let bytes = inner
                .kept
                .iter()
                .fold(0usize, |sum, k| sum.saturating_add(k.bytes));
            if inner.kept.len() <= self.max_entries && bytes <= self.max_bytes {
                return;
            }
            let oldest = inner
                .kept
                .iter()
                .enumerate()
                .filter(|(_, k)| !is_fresh(k))
                .min_by_key(|(_, k)| k.used)
                .map(|(at, _)| at);
            match oldest {
                Some(at) => {
                    inner.kept.swap_remove(at);
                }
                None => return,
            }
        }
    }

    /// Entries kept and their bytes.
    #[cfg(test)]
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        let bytes = inner
            .kept
            .iter()
            .fold(0usize, |sum, k| sum.saturating_add(k.bytes));
        (inner.kept.len(), bytes)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn key(n: i64) -> Key {
        Key {
            labels: Key::labels(&[&Matcher::equal("reporter", "source")]),
            histogram: 0,
            start_ms: 0,
            end_ms: n,
            left_open: true,
            times: vec![(15_000, 15_000)],
        }
    }

    /// An entry of `series` label sets of 23 windows each.
    fn entry(series: usize) -> Entry {
        Entry {
            read: series,
            series: (0..series)
                .map(|_| Reduced {
                    labels: vec![Arc::from("x"); 3].into_boxed_slice(),
                    selected: 1,
                    windows: vec![WindowSamples::default(); 23],
                })
                .collect(),
        }
    }

    #[test]
    fn the_same_selection_is_computed_once_until_a_change() {
        let cache = WindowCache::default();
        let computed = AtomicUsize::new(0);
        let compute = || {
            computed.fetch_add(1, Ordering::SeqCst);
            Ok(entry(2))
        };
        let first = cache.get_or_compute(key(1), 7, compute).unwrap();
        let again = cache.get_or_compute(key(1), 7, compute).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        // Another window end, then the same after a change: computed again, and kept once.
        cache.get_or_compute(key(2), 7, compute).unwrap();
        let changed = cache.get_or_compute(key(1), 8, compute).unwrap();
        assert!(!Arc::ptr_eq(&first, &changed));
        assert_eq!(computed.load(Ordering::SeqCst), 3);
        assert_eq!(cache.usage().0, 2);
    }

    #[test]
    fn errors_are_not_kept() {
        let cache = WindowCache::default();
        let failed = cache.get_or_compute(key(1), 0, || {
            Err(SourceError::TooLarge("too many".to_string()))
        });
        assert!(matches!(failed, Err(SourceError::TooLarge(_))));
        let ok = cache.get_or_compute(key(1), 0, || Ok(entry(1))).unwrap();
        assert_eq!(ok.read, 1);
    }

    #[test]
    fn callers_of_one_selection_wait_for_the_first() {
        let cache = WindowCache::default();
        let computed = AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    cache
                        .get_or_compute(key(1), 0, || {
                            computed.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok(entry(1))
                        })
                        .unwrap();
                });
            }
        });
        assert_eq!(computed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn entries_stay_within_the_bound_least_recently_used_first() {
        let cache = WindowCache::default();
        for n in 0..MAX_ENTRIES as i64 {
            cache.get_or_compute(key(n), 0, || Ok(entry(1))).unwrap();
        }
        assert_eq!(cache.usage().0, MAX_ENTRIES);
        // The first is used again: the second is the one dropped for a new entry.
        cache.get_or_compute(key(0), 0, || panic!("kept")).unwrap();
        cache
            .get_or_compute(key(MAX_ENTRIES as i64), 0, || Ok(entry(1)))
            .unwrap();
        assert_eq!(cache.usage().0, MAX_ENTRIES);
        cache.get_or_compute(key(0), 0, || panic!("kept")).unwrap();
        let recomputed = AtomicUsize::new(0);
        cache
            .get_or_compute(key(1), 0, || {
                recomputed.fetch_add(1, Ordering::SeqCst);
                Ok(entry(1))
            })
            .unwrap();
        assert_eq!(recomputed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn bytes_stay_within_the_bound() {
        let cache = WindowCache::default();
        // An entry of about an eighth of the bound: at most 8 are kept.
        let per_series = entry(1).bytes() - entry(0).bytes();
        let series = MAX_BYTES / 8 / per_series;
        for n in 0..20 {
            let kept = cache
                .get_or_compute(key(n), 0, || Ok(entry(series)))
                .unwrap();
            assert_eq!(kept.read, series);
            let (entries, bytes) = cache.usage();
            assert!(bytes <= MAX_BYTES, "{bytes} bytes kept");
            assert!(entries <= 8, "{entries} entries kept");
        }
        assert!(cache.usage().1 > MAX_BYTES / 2);
        // One larger than the whole bound is answered, not kept; the others stay.
        let before = cache.usage().0;
        let big = MAX_BYTES / per_series + 1;
        let answered = cache.get_or_compute(key(99), 0, || Ok(entry(big))).unwrap();
        assert_eq!(answered.series.len(), big);
        assert_eq!(cache.usage().0, before);
        assert!(cache.usage().1 <= MAX_BYTES);
    }
}
