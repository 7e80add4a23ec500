//! The console's one cache type: a few values by key, each good for a time-to-live and shared
//! as an `Arc`, so that a hit costs a reference count, never a copy. Bounded: at most
//! `capacity` entries, the oldest dropped first; expired entries go when a value is added.
//! The trace cache of the pages, the inventory snapshot and the backend's version use it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    capacity: usize,
    ttl: Duration,
    entries: Mutex<VecDeque<Entry<K, V>>>,
}

struct Entry<K, V> {
    key: K,
    at: Instant,
    value: Arc<V>,
}

impl<K: PartialEq, V> TtlCache<K, V> {
    /// A cache of at most `capacity` values (at least one), each good for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        TtlCache {
            capacity: capacity.max(1),
            ttl,
            entries: Mutex::new(VecDeque::new()),
        }
    }

    /// The value for `key` while it is younger than the time-to-live.
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        self.get_stale(key)
            .and_then(|(value, age)| (age < self.ttl).then_some(value))
    }

    /// The value for `key` however old, with its age: for a caller that serves a stale value
    /// while it has it refreshed, or that judges its age itself.
    pub fn get_stale(&self, key: &K) -> Option<(Arc<V>, Duration)> {
        self.lock()
            .iter()
            .find(|entry| entry.key == *key)
            .map(|entry| (entry.value.clone(), entry.at.elapsed()))
    }

    /// Keeps `value` for `key`, in place of any older one, and gives it back shared.
    pub fn insert(&self, key: K, value: V) -> Arc<V> {
        let value = Arc::new(value);
        let mut entries = self.lock();
        entries.retain(|entry| entry.key != key && entry.at.elapsed() < self.ttl);
        while entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back(Entry {
            key,
            at: Instant::now(),
            value: value.clone(),
        });
        value
    }

    /// The entries; a panic elsewhere while they were held leaves them consistent (every change
    /// is one call on the deque), so a poisoned lock is taken as it is.
    fn lock(&self) -> MutexGuard<'_, VecDeque<Entry<K, V>>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_share_the_value_and_the_oldest_goes_first() {
        let cache = TtlCache::new(2, Duration::from_secs(60));
        let first = cache.insert(1, "one".to_string());
        let hit = cache.get(&1).unwrap();
        assert!(Arc::ptr_eq(&first, &hit), "a hit is the same allocation");
        cache.insert(2, "two".to_string());
        cache.insert(3, "three".to_string());
        assert!(cache.get(&1).is_none(), "the oldest was dropped");
        assert_eq!(cache.get(&2).as_deref().map(String::as_str), Some("two"));
        cache.insert(2, "deux".to_string());
        assert_eq!(cache.get(&2).as_deref().map(String::as_str), Some("deux"));
        assert_eq!(cache.get(&3).as_deref().map(String::as_str), Some("three"));
    }

    #[test]
    fn expired_values_are_only_had_stale() {
        let cache = TtlCache::new(4, Duration::ZERO);
        cache.insert((), 7);
        assert!(cache.get(&()).is_none());
        let (value, _age) = cache.get_stale(&()).unwrap();
        assert_eq!(*value, 7);
    }
}
