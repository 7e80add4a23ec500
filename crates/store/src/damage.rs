//! Damaged stored data met while serving: what kind, how often. A read that meets damage
//! skips the damaged entry (or serves a placeholder) instead of failing, counts it here for
//! `/metrics`, and logs it — the first few times and then at every power of two, so a damaged
//! store that is read often does not flood the log.

use std::sync::atomic::{AtomicU64, Ordering};

/// The kinds of damage; a closed set (they are metric label values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DamageKind {
    /// A key that is not what the layout writes (skipped).
    UndecodableKey,
    /// A stored value that does not decode (the span or index entry is skipped).
    UndecodableValue,
    /// A span whose process is not stored (served with a placeholder process).
    MissingProcess,
    /// A string ID that is not in the dictionary (served as a placeholder string).
    MissingDictionaryEntry,
    /// An index entry whose span is not stored (skipped).
    DanglingIndexEntry,
}

impl DamageKind {
    pub const ALL: [DamageKind; 5] = [
        DamageKind::UndecodableKey,
        DamageKind::UndecodableValue,
        DamageKind::MissingProcess,
        DamageKind::MissingDictionaryEntry,
        DamageKind::DanglingIndexEntry,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DamageKind::UndecodableKey => "undecodable_key",
            DamageKind::UndecodableValue => "undecodable_value",
            DamageKind::MissingProcess => "missing_process",
            DamageKind::MissingDictionaryEntry => "missing_dictionary_entry",
            DamageKind::DanglingIndexEntry => "dangling_index_entry",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Default)]
pub struct Damage {
    counts: [AtomicU64; DamageKind::ALL.len()],
}

impl Damage {
    /// Counts one damaged entry met in `table`, and logs it when the count is small or a power
    /// of two.
    pub fn record(&self, kind: DamageKind, table: &'static str, detail: &dyn std::fmt::Display) {
        let Some(counter) = self.counts.get(kind.index()) else {
            return;
        };
        let seen = counter.fetch_add(1, Ordering::Relaxed).saturating_add(1);
        if seen <= 10 || seen.is_power_of_two() {
            tracing::warn!(
                kind = kind.label(),
                table,
                seen,
                "damaged stored data skipped: {detail} (run `meshtrace store --check` on the data directory to see all of it)"
            );
        }
    }

    pub fn count(&self, kind: DamageKind) -> u64 {
        self.counts
            .get(kind.index())
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}
