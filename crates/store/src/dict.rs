//! The string dictionary: tag keys, operation names and the tag values that repeat (Istio
//! spans repeat nearly all of theirs: `node_id`, `istio.*`, `upstream_cluster`, `http.url`...)
//! are stored once and referred to by a small number.
//!
//! The dictionary is kept whole in memory, so it is bounded: at most `max_entries` IDs are ever
//! handed out (`--dictionary-max-entries`), no string longer than `MAX_INTERNED_LEN` bytes is
//! interned, and values are interned per key only until that key has shown
//! `MAX_VALUES_PER_KEY` distinct values (past that the key is taken for high-cardinality, like
//! `guid:x-request-id`). Whatever is not interned is stored inline in the span: nothing is
//! lost, spans are only larger. Without the bound, a client sending random tag keys grew the
//! dictionary (and the memory of every later start) without limit (issue 13, defect 7).
//!
//! IDs are never reused: the next ID is at least the highest one ever acknowledged (see
//! `layout.rs`), so after a journal lost some entries, the spans that still refer to them
//! read a placeholder instead of another string.
//!
//! An entry is persisted in the same atomic batch as the first spans that use it; until that
//! batch is committed, every batch that uses the entry writes it too (the write is idempotent),
//! so no committed span can refer to an entry that is not on disk.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard};

/// Distinct values interned per key before the key counts as high-cardinality.
const MAX_VALUES_PER_KEY: u32 = 2048;
/// Longer strings are never interned.
const MAX_INTERNED_LEN: usize = 256;
/// The default bound on the dictionary: each entry costs its text plus about 100 bytes, so
/// 100,000 entries hold at most ~36 MiB (~10 MiB for typical mesh tags).
pub const DEFAULT_MAX_ENTRIES: u32 = 100_000;

struct Entry {
    text: Arc<str>,
    committed: bool,
}

/// Keyed per process (the strings come from clients): fast, and not a hash a client can
/// aim collisions at without knowing the key.
type Hasher = foldhash::fast::RandomState;

#[derive(Default)]
struct Inner {
    ids: HashMap<Arc<str>, u32, Hasher>,
    /// By ID; None for an ID whose entry was lost (or never written).
    strings: Vec<Option<Entry>>,
    /// The next ID to hand out (at least `strings.len()`).
    next_id: u32,
    /// Bytes of text held.
    bytes: u64,
    /// Distinct values interned so far, per key ID (reset at restart: a bound, not a census).
    values_per_key: HashMap<u32, u32, Hasher>,
}

pub struct Dictionary {
    inner: RwLock<Inner>,
    max_entries: u32,
    /// Strings stored inline because the dictionary was full.
    refused: AtomicU64,
}

/// IDs handed out while encoding one batch that are not yet known to be on disk.
#[derive(Default)]
pub struct Pending {
    pub ids: Vec<u32>,
}

/// The most tag positions an [`Interner`] remembers (a span with more tags looks the rest up
/// every time): bounds its memory whatever a span holds.
const REMEMBERED_SLOTS: usize = 64;
/// A tag position an [`Interner`] never remembers: its lookups go to the dictionary every time.
pub const UNREMEMBERED_SLOT: usize = usize::MAX;

/// Looks the strings of a batch's spans up in the dictionary, adding the new ones.
///
/// A span has some fifty strings. Two things made them cost: a lock taken for each (its cache
/// line moved between the threads encoding at once), and hashing and probing each. So the
/// interner holds the read lock from its first lookup until it is released (once per span: a
/// writer waits no longer than one span's encoding), and it remembers, per tag position, the
/// last key and value it looked up with their answer: the spans of one process (the batches of
/// a proxy, a service's SDK) repeat their keys in the same order and most of their values, and
/// comparing with the previous span's string is cheaper than a lookup. An answer stays right
/// for the rest of the batch: an ID always names the same string, and a string refused
/// (stored inline) may only be stored inline again. A new string takes the write lock (the
/// read lock let go first), so a thread never waits for the lock while holding it.
pub struct Interner<'d, 's> {
    dict: &'d Dictionary,
    read: Option<RwLockReadGuard<'d, Inner>>,
    pending: &'d mut Pending,
    remembered: Vec<Remembered<'s>>,
}

/// What one tag position last looked up: the key and its answer, the value (with its key's
/// ID) and its answer.
#[derive(Clone, Copy, Default)]
struct Remembered<'s> {
    key: Option<(&'s str, Option<u32>)>,
    value: Option<(u32, &'s str, Option<u32>)>,
}

impl<'s> Interner<'_, 's> {
    /// The ID of a tag key (or the pseudo key of operation names), or None when it is stored
    /// inline.
    pub fn key_id(&mut self, text: &str) -> Option<u32> {
        self.intern(text, None)
    }

    /// The ID of a value of the key `key_id`, or None when it should be stored inline.
    pub fn value_id(&mut self, key_id: Option<u32>, text: &str) -> Option<u32> {
        // Values of an inline key are inline too: the per-key bound needs a key ID.
        self.intern(text, Some(key_id?))
    }

    /// [`Interner::key_id`] of the key at tag position `slot`, answered from the previous
    /// lookup at that position when it was the same string.
    pub fn key_id_at(&mut self, slot: usize, text: &'s str) -> Option<u32> {
        if let Some(Remembered {
            key: Some((seen, id)),
            ..
        }) = self.remembered.get(slot)
            && *seen == text
        {
            return *id;
        }
        let id = self.key_id(text);
        if let Some(remembered) = self.slot(slot) {
            remembered.key = Some((text, id));
        }
        id
    }

    /// [`Interner::value_id`] of the value at tag position `slot`, answered from the previous
    /// lookup at that position when it was the same string under the same key.
    pub fn value_id_at(&mut self, slot: usize, key_id: Option<u32>, text: &'s str) -> Option<u32> {
        let key = key_id?;
        if let Some(Remembered {
            value: Some((seen_key, seen, id)),
            ..
        }) = self.remembered.get(slot)
            && *seen_key == key
            && *seen == text
        {
            return *id;
        }
        let id = self.intern(text, Some(key));
        if let Some(remembered) = self.slot(slot) {
            remembered.value = Some((key, text, id));
        }
        id
    }

    /// Lets the read lock go (until the next lookup).
    pub fn release(&mut self) {
        self.read = None;
    }

    fn slot(&mut self, slot: usize) -> Option<&mut Remembered<'s>> {
        if slot >= REMEMBERED_SLOTS {
            return None;
        }
        if self.remembered.len() <= slot {
            self.remembered
                .resize(slot.saturating_add(1), Remembered::default());
        }
        self.remembered.get_mut(slot)
    }

    fn intern(&mut self, text: &str, key: Option<u32>) -> Option<u32> {
        if text.len() > MAX_INTERNED_LEN {
            return None;
        }
        let dict = self.dict;
        let inner = self.read.get_or_insert_with(|| dict.read());
        if let Some(id) = inner.known(text, self.pending) {
            return Some(id);
        }
        if key.is_some_and(|k| {
            inner.values_per_key.get(&k).copied().unwrap_or(0) >= MAX_VALUES_PER_KEY
        }) {
            return None;
        }
        self.read = None;
        dict.add(text, key, self.pending)
    }
}

/// What `/metrics` shows of the dictionary.
pub struct DictionaryStats {
    pub entries: u64,
    pub bytes: u64,
    pub max_entries: u32,
    pub refused: u64,
}

impl Default for Dictionary {
    fn default() -> Self {
        Dictionary::new(DEFAULT_MAX_ENTRIES)
    }
}

/// The first dictionary ID that a data directory holding `entries` entries cannot have handed
/// out: twice the entries (room for entries lost to damage) or the cap, whichever is larger,
/// with some slack. Bounds the memory that loading a damaged or hostile dictionary can take.
pub fn plausible_id_bound(entries: usize, max_entries: u32) -> u32 {
    let entries = u32::try_from(entries).unwrap_or(u32::MAX);
    entries
        .saturating_mul(2)
        .max(max_entries)
        .saturating_add(1024)
}

impl Dictionary {
    pub fn new(max_entries: u32) -> Dictionary {
        Dictionary {
            inner: RwLock::default(),
            max_entries,
            refused: AtomicU64::new(0),
        }
    }

    /// A dictionary holding the entries read back from disk, that hands out IDs from
    /// `next_id` on (or past the highest entry read, whichever is larger).
    pub fn from_entries(entries: Vec<(u32, String)>, next_id: u32, max_entries: u32) -> Dictionary {
        let mut inner = Inner::default();
        for (id, text) in entries {
            let Ok(index) = usize::try_from(id) else {
                continue;
            };
            if inner.strings.len() <= index {
                inner.strings.resize_with(index.saturating_add(1), || None);
            }
            let text: Arc<str> = Arc::from(text);
            inner.bytes = inner.bytes.saturating_add(text.len() as u64);
            inner.ids.insert(text.clone(), id);
            if let Some(slot) = inner.strings.get_mut(index) {
                *slot = Some(Entry {
                    text,
                    committed: true,
                });
            }
        }
        let loaded = u32::try_from(inner.strings.len()).unwrap_or(u32::MAX);
        inner.next_id = next_id.max(loaded);
        Dictionary {
            inner: RwLock::new(inner),
            max_entries,
            refused: AtomicU64::new(0),
        }
    }

    /// An interner for the strings of a batch (see [`Interner`]).
    pub fn interner<'d, 's>(&'d self, pending: &'d mut Pending) -> Interner<'d, 's> {
        Interner {
            dict: self,
            read: None,
            pending,
            remembered: Vec::new(),
        }
    }

    /// [`Interner::key_id`] through an interner of its own (tests).
    #[cfg(test)]
    pub fn key_id(&self, text: &str, pending: &mut Pending) -> Option<u32> {
        self.interner(pending).key_id(text)
    }

    /// [`Interner::value_id`] through an interner of its own (tests).
    #[cfg(test)]
    pub fn value_id(&self, key_id: Option<u32>, text: &str, pending: &mut Pending) -> Option<u32> {
        self.interner(pending).value_id(key_id, text)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds `text` (the lookup under the read lock missed): under the write lock, it may have
    /// come meanwhile.
    fn add(&self, text: &str, key: Option<u32>, pending: &mut Pending) -> Option<u32> {
        let mut inner = self.write();
        if let Some(id) = inner.known(text, pending) {
            return Some(id);
        }
        let id = inner.next_id;
        let Ok(index) = usize::try_from(id) else {
            return None;
        };
        if id >= self.max_entries {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if let Some(key) = key {
            let count = inner.values_per_key.entry(key).or_default();
            if *count >= MAX_VALUES_PER_KEY {
                return None;
            }
            *count = count.saturating_add(1);
        }
        let text: Arc<str> = Arc::from(text);
        if inner.strings.len() <= index {
            inner.strings.resize_with(index.saturating_add(1), || None);
        }
        if let Some(slot) = inner.strings.get_mut(index) {
            *slot = Some(Entry {
                text: text.clone(),
                committed: false,
            });
        }
        inner.bytes = inner.bytes.saturating_add(text.len() as u64);
        inner.ids.insert(text, id);
        inner.next_id = id.saturating_add(1);
        pending.ids.push(id);
        Some(id)
    }

    /// The ID of a string already in the dictionary.
    pub fn lookup(&self, text: &str) -> Option<u32> {
        self.read().ids.get(text).copied()
    }

    /// The string of an ID; None when the ID has no entry (lost, or never written).
    pub fn get(&self, id: u32) -> Option<Arc<str>> {
        let inner = self.read();
        let entry = inner.strings.get(usize::try_from(id).ok()?)?.as_ref()?;
        Some(entry.text.clone())
    }

    /// The entries a batch must write along with its spans.
    pub fn entries_to_write(&self, pending: &Pending) -> Vec<(u32, Arc<str>)> {
        let inner = self.read();
        let mut ids = pending.ids.clone();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| {
                let entry = inner.strings.get(usize::try_from(id).ok()?)?.as_ref()?;
                (!entry.committed).then(|| (id, entry.text.clone()))
            })
            .collect()
    }

    /// Records that these entries are on disk.
    pub fn mark_committed(&self, ids: &[u32]) {
        let mut inner = self.write();
        for id in ids {
            let slot = usize::try_from(*id)
                .ok()
                .and_then(|index| inner.strings.get_mut(index));
            if let Some(Some(entry)) = slot {
                entry.committed = true;
            }
        }
    }

    pub fn stats(&self) -> DictionaryStats {
        let inner = self.read();
        DictionaryStats {
            entries: inner.ids.len() as u64,
            bytes: inner.bytes,
            max_entries: self.max_entries,
            refused: self.refused.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    /// The ID of `text` when the dictionary has it, noted in `pending` while its entry is not
    /// known to be on disk (the batch then writes it too).
    fn known(&self, text: &str, pending: &mut Pending) -> Option<u32> {
        let id = *self.ids.get(text)?;
        if !self.is_committed(id) {
            pending.ids.push(id);
        }
        Some(id)
    }

    fn is_committed(&self, id: u32) -> bool {
        usize::try_from(id)
            .ok()
            .and_then(|index| self.strings.get(index))
            .and_then(Option::as_ref)
            .is_some_and(|entry| entry.committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_values_get_one_id_and_high_cardinality_keys_stop_interning() {
        let dict = Dictionary::new(10_000);
        let mut pending = Pending::default();
        let key = dict.key_id("istio.namespace", &mut pending);
        let a = dict.value_id(key, "bookinfo", &mut pending).unwrap();
        assert_eq!(dict.value_id(key, "bookinfo", &mut pending), Some(a));
        assert_eq!(dict.get(a).as_deref(), Some("bookinfo"));

        let guid = dict.key_id("guid:x-request-id", &mut pending);
        for i in 0..MAX_VALUES_PER_KEY {
            assert!(
                dict.value_id(guid, &format!("id-{i}"), &mut pending)
                    .is_some()
            );
        }
        assert_eq!(dict.value_id(guid, "one-more", &mut pending), None);
        assert!(
            dict.value_id(guid, "id-7", &mut pending).is_some(),
            "known values keep their ID"
        );
        assert_eq!(dict.value_id(key, &"x".repeat(300), &mut pending), None);
        assert_eq!(dict.key_id(&"k".repeat(300), &mut pending), None);
    }

    #[test]
    fn uncommitted_entries_are_written_by_every_batch_that_uses_them() {
        let dict = Dictionary::default();
        let mut first = Pending::default();
        let id = dict.key_id("component", &mut first).unwrap();
        let mut second = Pending::default();
        assert_eq!(dict.key_id("component", &mut second), Some(id));
        assert_eq!(dict.entries_to_write(&second).len(), 1);
        dict.mark_committed(&first.ids);
        let mut third = Pending::default();
        dict.key_id("component", &mut third);
        assert!(dict.entries_to_write(&third).is_empty());

        let reloaded = Dictionary::from_entries(vec![(0, "component".into())], 0, 100);
        let mut pending = Pending::default();
        assert_eq!(reloaded.key_id("component", &mut pending), Some(0));
        assert!(pending.ids.is_empty());
    }

    #[test]
    fn the_dictionary_stops_at_its_bound_and_never_reuses_a_lost_id() {
        let dict = Dictionary::new(3);
        let mut pending = Pending::default();
        let ids: Vec<Option<u32>> = ["a", "b", "c", "d"]
            .iter()
            .map(|k| dict.key_id(k, &mut pending))
            .collect();
        assert_eq!(ids, [Some(0), Some(1), Some(2), None]);
        let stats = dict.stats();
        assert_eq!((stats.entries, stats.bytes, stats.refused), (3, 3, 1));

        // Entries 1 and 2 were acknowledged but lost: new strings get IDs from 3 on, and the
        // lost IDs read as missing.
        let reloaded = Dictionary::from_entries(vec![(0, "a".into())], 3, 10);
        assert_eq!(reloaded.get(1), None);
        assert_eq!(reloaded.key_id("z", &mut pending), Some(3));
    }
}
