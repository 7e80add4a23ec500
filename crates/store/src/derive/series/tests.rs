//! The label-set registry's bounds and stored form.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]
use super::*;

fn resolve(registry: &mut Registry, family: Family, labels: &[&str], bucket: u64) -> Resolved {
    let hash = registry.hash(labels);
    registry.resolve(family, labels, hash, bucket)
}

#[test]
fn values_past_the_bound_fold_into_overflow_and_series_past_theirs_into_one() {
    let mut registry = Registry::new(2, 3, RandomState::default());
    let a = resolve(&mut registry, Family::Service, &["a", "op", "k", "s"], 10);
    assert!(a.new_entry.is_some());
    let again = resolve(&mut registry, Family::Service, &["a", "op", "k", "s"], 20);
    assert_eq!(again.id, a.id);
    registry.mark_committed(Family::Service, a.id);
    let committed = resolve(&mut registry, Family::Service, &["a", "op", "k", "s"], 20);
    assert!(committed.new_entry.is_none());
    assert_eq!(committed.disk_max, 0, "nothing on disk but in memory");
    let b = resolve(&mut registry, Family::Service, &["b", "op", "k", "s"], 10);
    // A third service name is past the bound of two values.
    let c = resolve(&mut registry, Family::Service, &["c", "op", "k", "s"], 10);
    let entry = registry.get(Family::Service, c.id).unwrap();
    assert_eq!(&*entry.labels[0], OVERFLOW);
    assert_ne!(c.id, b.id);
    let d = resolve(&mut registry, Family::Service, &["d", "op", "k", "s"], 10);
    assert_eq!(d.id, c.id, "folded to the same label set");
    // Three series is the bound: a new label set goes to the all-overflow series.
    let e = resolve(&mut registry, Family::Service, &["a", "op", "k", "t"], 10);
    let entry = registry.get(Family::Service, e.id).unwrap();
    assert!(entry.labels.iter().all(|v| &**v == OVERFLOW));
    let folded = registry.folded();
    assert!(folded.contains(&(Family::Service, "service_name", 2)));
    assert!(folded.contains(&(Family::Service, "series", 1)));
    assert_eq!(registry.len(Family::Istio), 0);

    let long = "x".repeat(MAX_VALUE_BYTES + 1);
    let mut roomy = Registry::new(100, 100, RandomState::default());
    let r = resolve(&mut roomy, Family::Service, &[&long, "op", "k", "s"], 1);
    assert_eq!(
        &*roomy.get(Family::Service, r.id).unwrap().labels[0],
        OVERFLOW
    );

    let expired = registry.remove_expired(15);
    assert_eq!(expired.len(), 3, "all but the series touched at 20");
    let fresh = resolve(&mut registry, Family::Service, &["z", "op", "k", "s"], 30);
    assert_eq!(
        &*registry.get(Family::Service, fresh.id).unwrap().labels[0],
        "z"
    );
}

#[test]
fn entries_round_trip() {
    let mut registry = Registry::new(10, 10, RandomState::default());
    let r = resolve(&mut registry, Family::Service, &["a", "", "k", "s"], 1);
    let (key, value) = r.new_entry.unwrap();
    assert_eq!(parse_entry_key(&key), Some((Family::Service, r.id)));
    assert_eq!(
        decode_entry(Family::Service, &value).unwrap(),
        vec!["a", "", "k", "s"]
    );
    assert!(decode_entry(Family::Istio, &value).is_err());
    let mut loaded = Registry::new(10, 10, RandomState::default());
    loaded.load(Family::Service, 7, &["a", "", "k", "s"]);
    assert_eq!(
        resolve(&mut loaded, Family::Service, &["a", "", "k", "s"], 1).id,
        7
    );
    assert_eq!(
        resolve(&mut loaded, Family::Service, &["b", "", "k", "s"], 1).id,
        8
    );
}
