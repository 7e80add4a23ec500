//! The derived series' label sets: a number for each, kept in memory whole (they are bounded)
//! and stored in the same batches as their first cells.
//!
//! The bounds: each label takes at most `max_values` distinct values (a value past them, or
//! longer than [`MAX_VALUE_BYTES`], becomes `__overflow__`), and a family holds at most
//! `max_series` label sets (past them, a request counts in the family's one series whose
//! every label is `__overflow__`). Both are counted and logged — the first few times, then at
//! every power of two — so a producer that sends endless workloads or operations grows
//! neither memory nor disk without limit; its spans are still stored.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;

use meshtrace_mesh::telemetry::ISTIO_LABELS;
use meshtrace_metrics::Matcher;

use crate::codec::CorruptError;
use crate::codec::reader::{Reader, put_str, put_varint};

/// The label value of whatever a bound folded.
pub const OVERFLOW: &str = "__overflow__";
/// Longer label values are folded into `__overflow__`.
pub const MAX_VALUE_BYTES: usize = 512;
/// The labels of the per-service series, as OpenTelemetry's span metrics name them.
pub const SERVICE_LABELS: [&str; 4] = ["service_name", "span_name", "span_kind", "status_code"];

/// The two families of derived series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// Istio's request metrics, one label set per [`ISTIO_LABELS`] values.
    Istio,
    /// Per (service, operation, span kind, status).
    Service,
}

impl Family {
    pub const ALL: [Family; 2] = [Family::Istio, Family::Service];

    /// The first byte of the family's keys.
    pub fn tag(self) -> u8 {
        match self {
            Family::Istio => b'I',
            Family::Service => b'S',
        }
    }

    pub fn from_tag(tag: u8) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.tag() == tag)
    }

    pub fn labels(self) -> &'static [&'static str] {
        match self {
            Family::Istio => &ISTIO_LABELS,
            Family::Service => &SERVICE_LABELS,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::Istio => "istio",
            Family::Service => "service",
        }
    }

    fn index(self) -> usize {
        match self {
            Family::Istio => 0,
            Family::Service => 1,
        }
    }
}

pub struct Entry {
    pub labels: Box<[Arc<str>]>,
    /// The earliest bucket (end, ms) that may have a cell of this series (a lower bound).
    pub first_bucket: u64,
    /// The latest bucket (end, ms) with a cell of this series.
    pub last_bucket: u64,
    /// No cell of a later bucket is on disk unless it is also in memory: the latest bucket
    /// stored before the open, or let go from memory since.
    pub disk_max: u64,
    /// Whether its stored entry is known to be on disk.
    pub committed: bool,
}

/// The label sets of one family.
struct Sets {
    family: Family,
    by_hash: HashMap<u64, Vec<u32>>,
    entries: HashMap<u32, Entry>,
    /// Distinct values per label (interned: entries share them).
    values: Vec<HashSet<Arc<str>>>,
    overflow_series: Option<u32>,
    /// Values folded, per label; then label sets folded by the series bound.
    folded: Vec<u64>,
    folded_series: u64,
}

pub struct Registry {
    families: [Sets; 2],
    hasher: RandomState,
    next_id: u32,
    max_values: usize,
    max_series: usize,
    overflow: Arc<str>,
}

/// A series found or made for a label set; `new_entry` is its stored entry when that is not
/// known to be on disk yet (it goes in the same batch as the cells).
pub struct Resolved {
    pub id: u32,
    pub new_entry: Option<(Vec<u8>, Vec<u8>)>,
    /// A bucket past it has no cell on disk that is not in memory ([`Entry::disk_max`]).
    pub disk_max: u64,
}

impl Registry {
    /// Label hashes are `hasher`'s (the one the batches are prepared with).
    pub fn new(max_values: usize, max_series: usize, hasher: RandomState) -> Registry {
        let sets = |family: Family| Sets {
            family,
            by_hash: HashMap::new(),
            entries: HashMap::new(),
            values: vec![HashSet::new(); family.labels().len()],
            overflow_series: None,
            folded: vec![0; family.labels().len()],
            folded_series: 0,
        };
        Registry {
            families: [sets(Family::Istio), sets(Family::Service)],
            hasher,
            next_id: 0,
            max_values: max_values.max(1),
            max_series: max_series.max(1),
            overflow: Arc::from(OVERFLOW),
        }
    }

    fn sets(&self, family: Family) -> &Sets {
        // The array has one entry per family.
        let [istio, service] = &self.families;
        match family.index() {
            0 => istio,
            _ => service,
        }
    }

    fn sets_mut(&mut self, family: Family) -> &mut Sets {
        let [istio, service] = &mut self.families;
        match family.index() {
            0 => istio,
            _ => service,
        }
    }

    pub fn hash(&self, labels: &[&str]) -> u64 {
        self.hasher.hash_one(labels)
    }

    fn find(&self, family: Family, hash: u64, labels: &[&str]) -> Option<u32> {
        let sets = self.sets(family);
        sets.by_hash.get(&hash)?.iter().copied().find(|id| {
            sets.entries
                .get(id)
                .is_some_and(|e| e.labels.iter().map(|v| &**v).eq(labels.iter().copied()))
        })
    }

    /// The series of `labels` (in the family's label order, `hash` their [`Registry::hash`]),
    /// made if needed within the bounds.
    pub fn resolve(&mut self, family: Family, labels: &[&str], hash: u64, bucket: u64) -> Resolved {
        if let Some(id) = self.find(family, hash, labels) {
            return self.touch(family, id, bucket);
        }
        let max_values = self.max_values;
        let mut folded: Vec<&str> = Vec::with_capacity(labels.len());
        let mut changed = false;
        for (at, value) in labels.iter().enumerate() {
            let known = self
                .sets(family)
                .values
                .get(at)
                .is_some_and(|set| set.contains(*value));
            let room = self
                .sets(family)
                .values
                .get(at)
                .is_some_and(|set| set.len() < max_values);
            if known || *value == OVERFLOW || (room && value.len() <= MAX_VALUE_BYTES) {
                folded.push(value);
            } else {
                folded.push(OVERFLOW);
                changed = true;
                self.count_folded_value(family, at, value);
            }
        }
        let hash = if changed {
            let hash = self.hash(&folded);
            if let Some(id) = self.find(family, hash, &folded) {
                return self.touch(family, id, bucket);
            }
            hash
        } else {
            hash
        };
        if self.sets(family).entries.len() >= self.max_series {
            return self.overflow_series(family, bucket);
        }
        self.insert(family, hash, &folded, (bucket, bucket), false)
    }

    fn touch(&mut self, family: Family, id: u32, bucket: u64) -> Resolved {
        let Some(entry) = self.sets_mut(family).entries.get_mut(&id) else {
            return Resolved {
                id,
                new_entry: None,
                disk_max: u64::MAX,
            };
        };
        entry.last_bucket = entry.last_bucket.max(bucket);
        entry.first_bucket = entry.first_bucket.min(bucket);
        let new_entry = (!entry.committed).then(|| encode_entry(family, id, &entry.labels));
        Resolved {
            id,
            new_entry,
            disk_max: entry.disk_max,
        }
    }

    fn overflow_series(&mut self, family: Family, bucket: u64) -> Resolved {
        let sets = self.sets_mut(family);
        sets.folded_series = sets.folded_series.saturating_add(1);
        let seen = sets.folded_series;
        if seen <= 10 || seen.is_power_of_two() {
            tracing::warn!(
                family = family.name(),
                seen,
                "derived metrics: the series bound (--metrics-max-series) is reached; the request is counted in the series whose labels are all __overflow__"
            );
        }
        if let Some(id) = sets.overflow_series {
            return self.touch(family, id, bucket);
        }
        let labels = vec![OVERFLOW; family.labels().len()];
        let hash = self.hash(&labels);
        let resolved = self.insert(family, hash, &labels, (bucket, bucket), false);
        self.sets_mut(family).overflow_series = Some(resolved.id);
        resolved
    }

    fn count_folded_value(&mut self, family: Family, at: usize, value: &str) {
        let sets = self.sets_mut(family);
        let Some(count) = sets.folded.get_mut(at) else {
            return;
        };
        *count = count.saturating_add(1);
        let seen = *count;
        if seen <= 10 || seen.is_power_of_two() {
            let shown: String = value.chars().take(64).collect();
            tracing::warn!(
                family = family.name(),
                label = family.labels().get(at).copied().unwrap_or(""),
                seen,
                value = ?shown,
                "derived metrics: a label has more distinct values than --metrics-max-label-values allows (or a value is too long); it is counted as __overflow__"
            );
        }
    }

    fn insert(
        &mut self,
        family: Family,
        hash: u64,
        labels: &[&str],
        (first_bucket, last_bucket): (u64, u64),
        committed: bool,
    ) -> Resolved {
        let id = self.next_id;
        self.next_id = self.next_id.saturating_add(1);
        let overflow = self.overflow.clone();
        let sets = self.sets_mut(family);
        let interned: Box<[Arc<str>]> = labels
            .iter()
            .enumerate()
            .map(|(at, value)| {
                if *value == OVERFLOW {
                    return overflow.clone();
                }
                let Some(set) = sets.values.get_mut(at) else {
                    return Arc::from(*value);
                };
                match set.get(*value) {
                    Some(known) => known.clone(),
                    None => {
                        let new: Arc<str> = Arc::from(*value);
                        set.insert(new.clone());
                        new
                    }
                }
            })
            .collect();
        let new_entry = (!committed).then(|| encode_entry(family, id, &interned));
        if labels.iter().all(|v| *v == OVERFLOW) {
            sets.overflow_series = Some(id);
        }
        sets.by_hash.entry(hash).or_default().push(id);
        sets.entries.insert(
            id,
            Entry {
                labels: interned,
                first_bucket,
                last_bucket,
                disk_max: 0,
                committed,
            },
        );
        Resolved {
            id,
            new_entry,
            disk_max: 0,
        }
    }

    /// A series read back at open (its entry is on disk); the values count toward the bounds.
    pub fn load(&mut self, family: Family, id: u32, labels: &[&str]) {
        let hash = self.hash(labels);
        if self.find(family, hash, labels).is_some() {
            return; // the same labels twice (damage): the first one stands
        }
        let saved = self.next_id;
        self.next_id = id;
        // No cell seen yet: the open's scan of the cells sets both ends.
        self.insert(family, hash, labels, (u64::MAX, 0), true);
        self.next_id = saved.max(id.saturating_add(1));
    }

    pub fn mark_committed(&mut self, family: Family, id: u32) {
        if let Some(entry) = self.sets_mut(family).entries.get_mut(&id) {
            entry.committed = true;
        }
    }

    /// Records that series `id` has a cell in `bucket` (read at open).
    pub fn saw_bucket(&mut self, family: Family, id: u32, bucket: u64) {
        if let Some(entry) = self.sets_mut(family).entries.get_mut(&id) {
            entry.last_bucket = entry.last_bucket.max(bucket);
            entry.first_bucket = entry.first_bucket.min(bucket);
            entry.disk_max = entry.disk_max.max(bucket);
        }
    }

    /// Records that the cell of `bucket` was let go from memory (it is on disk).
    pub fn evicted(&mut self, family: Family, id: u32, bucket: u64) {
        if let Some(entry) = self.sets_mut(family).entries.get_mut(&id) {
            entry.disk_max = entry.disk_max.max(bucket);
        }
    }

    /// After a retention pass: the series has no cell before `bucket`.
    pub fn set_first_bucket(&mut self, family: Family, id: u32, bucket: u64) {
        if let Some(entry) = self.sets_mut(family).entries.get_mut(&id) {
            entry.first_bucket = bucket;
        }
    }

    /// The earliest bucket any series of `family` may have a cell in.
    pub fn earliest_bucket(&self, family: Family) -> Option<u64> {
        self.sets(family)
            .entries
            .values()
            .map(|e| e.first_bucket)
            .filter(|b| *b != u64::MAX)
            .min()
    }

    /// The series that may have a cell in a bucket at or before `cutoff`.
    pub fn starting_by(&self, cutoff: u64) -> Vec<(Family, u32)> {
        self.families
            .iter()
            .flat_map(|sets| {
                sets.entries
                    .iter()
                    .filter(|(_, e)| e.first_bucket <= cutoff)
                    .map(|(id, _)| (sets.family, *id))
            })
            .collect()
    }

    pub fn get(&self, family: Family, id: u32) -> Option<&Entry> {
        self.sets(family).entries.get(&id)
    }

    pub fn ids(&self, family: Family) -> Vec<u32> {
        self.sets(family).entries.keys().copied().collect()
    }

    pub fn len(&self, family: Family) -> usize {
        self.sets(family).entries.len()
    }

    /// The series whose labels satisfy every matcher that names one of the family's labels
    /// (`names` gives each matcher's label position; None matches against "").
    pub fn matching(&self, family: Family, matchers: &[(Option<usize>, &Matcher)]) -> Vec<u32> {
        self.sets(family)
            .entries
            .iter()
            .filter(|(_, entry)| {
                matchers.iter().all(|(at, matcher)| {
                    let value = at.and_then(|at| entry.labels.get(at)).map_or("", |v| &**v);
                    matcher.matches(value)
                })
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Forgets the series without a cell since `cutoff` (their cells are gone); returns them.
    /// The distinct values are counted again from the series that remain.
    pub fn remove_expired(&mut self, cutoff: u64) -> Vec<(Family, u32)> {
        let mut removed = Vec::new();
        for sets in &mut self.families {
            let expired: Vec<u32> = sets
                .entries
                .iter()
                .filter(|(_, e)| e.last_bucket < cutoff)
                .map(|(id, _)| *id)
                .collect();
            if expired.is_empty() {
                continue;
            }
            for id in &expired {
                sets.entries.remove(id);
                if sets.overflow_series == Some(*id) {
                    sets.overflow_series = None;
                }
                removed.push((sets.family, *id));
            }
            sets.by_hash.retain(|_, ids| {
                ids.retain(|id| !expired.contains(id));
                !ids.is_empty()
            });
            for set in &mut sets.values {
                set.clear();
            }
            for entry in sets.entries.values() {
                for (set, value) in sets.values.iter_mut().zip(entry.labels.iter()) {
                    if &**value != OVERFLOW {
                        set.insert(value.clone());
                    }
                }
            }
        }
        removed
    }

    /// About how many bytes the label sets hold in memory: the maps' slots as allocated, each
    /// entry's label references, and each distinct value's text once (entries share it).
    pub fn approx_bytes(&self) -> usize {
        use std::mem::size_of;
        // A hash table slot: the pair and one control byte.
        fn slots<K, V>(capacity: usize) -> usize {
            capacity.saturating_mul(size_of::<(K, V)>().saturating_add(1))
        }
        let mut bytes = 0usize;
        for sets in &self.families {
            bytes = bytes
                .saturating_add(slots::<u32, Entry>(sets.entries.capacity()))
                .saturating_add(slots::<u64, Vec<u32>>(sets.by_hash.capacity()));
            for entry in sets.entries.values() {
                bytes =
                    bytes.saturating_add(entry.labels.len().saturating_mul(size_of::<Arc<str>>()));
            }
            for ids in sets.by_hash.values() {
                bytes = bytes.saturating_add(ids.capacity().saturating_mul(size_of::<u32>()));
            }
            for set in &sets.values {
                bytes = bytes.saturating_add(slots::<Arc<str>, ()>(set.capacity()));
                for value in set {
                    // The Arc's two counts and the text.
                    bytes = bytes.saturating_add(value.len().saturating_add(16));
                }
            }
        }
        bytes
    }

    /// Values folded into `__overflow__` so far, per family and label; and label sets folded by
    /// the series bound, per family (label `series`).
    pub fn folded(&self) -> Vec<(Family, &'static str, u64)> {
        let mut out = Vec::new();
        for sets in &self.families {
            for (label, count) in sets.family.labels().iter().zip(&sets.folded) {
                out.push((sets.family, *label, *count));
            }
            out.push((sets.family, "series", sets.folded_series));
        }
        out
    }
}

/// family tag | id (4, big-endian)
pub fn entry_key(family: Family, id: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(5);
    key.push(family.tag());
    key.extend_from_slice(&id.to_be_bytes());
    key
}

pub fn parse_entry_key(key: &[u8]) -> Option<(Family, u32)> {
    let (&tag, id) = key.split_first()?;
    Some((
        Family::from_tag(tag)?,
        u32::from_be_bytes(<[u8; 4]>::try_from(id).ok()?),
    ))
}

fn encode_entry(family: Family, id: u32, labels: &[Arc<str>]) -> (Vec<u8>, Vec<u8>) {
    let mut value = Vec::with_capacity(labels.len().saturating_mul(16));
    put_varint(&mut value, labels.len() as u64);
    for label in labels {
        put_str(&mut value, label);
    }
    (entry_key(family, id), value)
}

/// The label values of a stored entry; it must have as many as the family has labels.
pub fn decode_entry(family: Family, value: &[u8]) -> Result<Vec<&str>, CorruptError> {
    let mut reader = Reader::new(value);
    let count = reader.count()?;
    if count != family.labels().len() {
        return Err(CorruptError(
            "a series entry has the wrong number of labels",
        ));
    }
    let labels = (0..count)
        .map(|_| reader.str())
        .collect::<Result<Vec<_>, _>>()?;
    if !reader.is_empty() {
        return Err(CorruptError("trailing bytes after a series entry"));
    }
    Ok(labels)
}

#[cfg(test)]
mod tests;
