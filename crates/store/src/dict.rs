//! The string dictionary: tag keys, operation names and the tag values that repeat (Istio
//! spans repeat nearly all of theirs: `node_id`, `istio.*`, `upstream_cluster`, `http.url`...)
//! are stored once and referred to by a small number.
//!
//! Values are interned per key only until that key has shown `MAX_VALUES_PER_KEY` distinct
//! values; past that the key is taken for high-cardinality (`guid:x-request-id`) and its new
//! values are stored inline, so the dictionary (kept whole in memory) stays small.
//!
//! An entry is persisted in the same atomic batch as the first spans that use it; until that
//! batch is committed, every batch that uses the entry writes it too (the write is idempotent),
//! so no committed span can refer to an entry that is not on disk.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Distinct values interned per key before the key counts as high-cardinality.
const MAX_VALUES_PER_KEY: u32 = 2048;
/// Longer values are never interned.
const MAX_INTERNED_LEN: usize = 256;

#[derive(Default)]
struct Inner {
    ids: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
    committed: Vec<bool>,
    /// Distinct values interned so far, per key ID (reset at restart: a bound, not a census).
    values_per_key: HashMap<u32, u32>,
}

#[derive(Default)]
pub struct Dictionary {
    inner: RwLock<Inner>,
}

/// IDs handed out while encoding one batch that are not yet known to be on disk.
#[derive(Default)]
pub struct Pending {
    pub ids: Vec<u32>,
}

impl Dictionary {
    /// A dictionary holding the entries read back from disk.
    pub fn from_entries(entries: Vec<(u32, String)>) -> Dictionary {
        let mut inner = Inner::default();
        for (id, text) in entries {
            let text: Arc<str> = Arc::from(text);
            let index = id as usize;
            if inner.strings.len() <= index {
                inner.strings.resize(index + 1, Arc::from(""));
                inner.committed.resize(index + 1, false);
            }
            inner.strings[index] = text.clone();
            inner.committed[index] = true;
            inner.ids.insert(text, id);
        }
        Dictionary {
            inner: RwLock::new(inner),
        }
    }

    /// The ID of a string that is always interned (tag keys, operation names up to the cap).
    pub fn key_id(&self, text: &str, pending: &mut Pending) -> u32 {
        self.intern(text, None, pending)
            .expect("keys are always interned")
    }

    /// The ID of a value of the key `key_id`, or None when it should be stored inline.
    pub fn value_id(&self, key_id: u32, text: &str, pending: &mut Pending) -> Option<u32> {
        if text.len() > MAX_INTERNED_LEN {
            return None;
        }
        self.intern(text, Some(key_id), pending)
    }

    fn intern(&self, text: &str, key: Option<u32>, pending: &mut Pending) -> Option<u32> {
        {
            let inner = self.inner.read().expect("lock poisoned");
            if let Some(&id) = inner.ids.get(text) {
                if !inner.committed[id as usize] {
                    pending.ids.push(id);
                }
                return Some(id);
            }
            if key.is_some_and(|k| {
                inner.values_per_key.get(&k).copied().unwrap_or(0) >= MAX_VALUES_PER_KEY
            }) {
                return None;
            }
        }
        let mut inner = self.inner.write().expect("lock poisoned");
        if let Some(&id) = inner.ids.get(text) {
            if !inner.committed[id as usize] {
                pending.ids.push(id);
            }
            return Some(id);
        }
        if let Some(key) = key {
            let count = inner.values_per_key.entry(key).or_default();
            if *count >= MAX_VALUES_PER_KEY {
                return None;
            }
            *count += 1;
        }
        let id = inner.strings.len() as u32;
        let text: Arc<str> = Arc::from(text);
        inner.strings.push(text.clone());
        inner.committed.push(false);
        inner.ids.insert(text, id);
        pending.ids.push(id);
        Some(id)
    }

    /// The ID of a string already in the dictionary.
    pub fn lookup(&self, text: &str) -> Option<u32> {
        self.inner
            .read()
            .expect("lock poisoned")
            .ids
            .get(text)
            .copied()
    }

    pub fn get(&self, id: u32) -> Option<Arc<str>> {
        self.inner
            .read()
            .expect("lock poisoned")
            .strings
            .get(id as usize)
            .cloned()
    }

    /// The entries a batch must write along with its spans.
    pub fn entries_to_write(&self, pending: &Pending) -> Vec<(u32, Arc<str>)> {
        let inner = self.inner.read().expect("lock poisoned");
        let mut ids = pending.ids.clone();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter(|id| !inner.committed[*id as usize])
            .map(|id| (id, inner.strings[id as usize].clone()))
            .collect()
    }

    /// Records that these entries are on disk.
    pub fn mark_committed(&self, ids: &[u32]) {
        let mut inner = self.inner.write().expect("lock poisoned");
        for id in ids {
            inner.committed[*id as usize] = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_values_get_one_id_and_high_cardinality_keys_stop_interning() {
        let dict = Dictionary::default();
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
    }

    #[test]
    fn uncommitted_entries_are_written_by_every_batch_that_uses_them() {
        let dict = Dictionary::default();
        let mut first = Pending::default();
        let id = dict.key_id("component", &mut first);
        let mut second = Pending::default();
        assert_eq!(dict.key_id("component", &mut second), id);
        assert_eq!(dict.entries_to_write(&second).len(), 1);
        dict.mark_committed(&first.ids);
        let mut third = Pending::default();
        dict.key_id("component", &mut third);
        assert!(dict.entries_to_write(&third).is_empty());

        let reloaded = Dictionary::from_entries(vec![(0, "component".into())]);
        let mut pending = Pending::default();
        assert_eq!(reloaded.key_id("component", &mut pending), 0);
        assert!(pending.ids.is_empty());
    }
}
