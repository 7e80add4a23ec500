//! Store layout 5 files spans under the second they arrive in (or their start's, when later),
//! and notes each trace's seconds in `trace_arrivals`. These pin what that must not change: a
//! trace is read whole and once, whatever seconds its spans came in; retention removes spans
//! that arrived long after they expired and spans that claim to start in the future exactly
//! when their start says, and leaves no `trace_arrivals` entry behind; and the data check
//! reads the new tables. Layout 6's service index in slices of time: searched newest first
//! and stopped at the limit, late spans found in their slice, retention by slice.

use std::sync::Arc;
use std::time::Duration;

use meshtrace_model::{KeyValue, Span, TraceId};
use meshtrace_store::{Kv, MemoryKv, Store, Table, TraceQuery};
use meshtrace_testkit::{SpanBuilder, now, process};

const HOUR: u64 = 3_600_000_000;
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn span(trace: u128, id: u64, start: u64) -> Span {
    SpanBuilder::new(trace, id, "GET /", &process("frontend", vec![]))
        .at(start, 1_000)
        .tag(KeyValue::string("http.status_code", "503"))
        .build()
}

fn entries(kv: &MemoryKv, table: Table) -> usize {
    let mut n = 0;
    kv.scan(table, &[], &[0xff; 64], false, &mut |_, _| {
        n += 1;
        Ok(true)
    })
    .unwrap();
    n
}

fn in_memory() -> (Arc<MemoryKv>, Store) {
    let kv = Arc::new(MemoryKv::new());
    let store = Store::new(kv.clone(), FOREVER).unwrap();
    (kv, store)
}

fn span_ids(store: &Store, trace: u128) -> Vec<u64> {
    store
        .get_trace(TraceId(trace))
        .unwrap()
        .map(|t| t.spans.iter().map(|s| s.span_id.0).collect())
        .unwrap_or_default()
}

fn search(store: &Store, from: u64, to: u64) -> Vec<u128> {
    let query = TraceQuery {
        service: Some("frontend".into()),
        start_min: from,
        start_max: to,
        tags: vec![("http.status_code".into(), "503".into())],
        limit: 20,
        ..Default::default()
    };
    trace_ids(store, &query)
}

fn trace_ids(store: &Store, query: &TraceQuery) -> Vec<u128> {
    store
        .find_trace_ids(query)
        .unwrap()
        .into_iter()
        .map(|t| t.0)
        .collect()
}

#[test]
fn a_trace_whose_spans_arrive_in_several_seconds_is_read_whole_and_once() {
    let (kv, store) = in_memory();
    let start = now() - 60_000_000;
    store
        .write(&[span(7, 1, start), span(7, 2, start + 10)])
        .unwrap();
    // The next second: another span of the trace, and span 2 again (a client's retry).
    let second = now() / 1_000_000;
    while now() / 1_000_000 == second {
        std::thread::sleep(Duration::from_millis(20));
    }
    store
        .write(&[span(7, 3, start + 20), span(7, 2, start + 10)])
        .unwrap();
    assert_eq!(entries(&kv, Table::TraceArrivals), 2);
    assert_eq!(span_ids(&store, 7), vec![1, 2, 3]);
    assert_eq!(search(&store, start - HOUR, start + HOUR), vec![7]);
    // Retention removes both copies of span 2 with the rest, and the trace's entries.
    store.purge_before(now() + 10_000_000).unwrap();
    assert_eq!(span_ids(&store, 7), Vec::<u64>::new());
    for table in [
        Table::SpansByArrival,
        Table::TraceArrivals,
        Table::BySlice,
        Table::ServiceSlices,
        Table::Services,
    ] {
        assert_eq!(entries(&kv, table), 0, "{table:?}");
    }
}

#[test]
fn retention_removes_late_and_future_spans_by_their_start() {
    let (kv, store) = in_memory();
    let now = now();
    // Arrives now, started two hours ago: expired on arrival for a one-hour retention.
    store.write(&[span(1, 1, now - 2 * HOUR)]).unwrap();
    // Claims to start in an hour (a client clock ahead).
    store.write(&[span(2, 1, now + HOUR)]).unwrap();
    // An ordinary span.
    store.write(&[span(3, 1, now - 1_000)]).unwrap();

    let removed = store.purge_before(now - HOUR).unwrap();
    assert_eq!(removed, 1);
    assert_eq!(span_ids(&store, 1), Vec::<u64>::new());
    assert_eq!(span_ids(&store, 2), vec![1]);
    assert_eq!(span_ids(&store, 3), vec![1]);
    // The late span's trace entry went with it; the other two traces' stay.
    assert_eq!(entries(&kv, Table::TraceArrivals), 2);

    // Half an hour from now: the future span is not due yet, though it arrived long before.
    store.purge_before(now + HOUR / 2).unwrap();
    assert_eq!(span_ids(&store, 2), vec![1]);
    assert_eq!(span_ids(&store, 3), Vec::<u64>::new());
    assert_eq!(search(&store, now, now + 2 * HOUR), vec![2]);
    assert_eq!(entries(&kv, Table::TraceArrivals), 1);

    store.purge_before(now + 2 * HOUR).unwrap();
    assert_eq!(span_ids(&store, 2), Vec::<u64>::new());
    for table in [
        Table::SpansByArrival,
        Table::TraceArrivals,
        Table::BySlice,
        Table::ServiceSlices,
        Table::Services,
    ] {
        assert_eq!(entries(&kv, table), 0, "{table:?}");
    }
}

#[test]
fn retention_takes_an_expired_span_out_of_its_group_and_keeps_the_rest() {
    let (kv, store) = in_memory();
    let now = now();
    // One write brings three spans of trace 1 (one group): two expired on arrival, one not;
    // and two expired spans of trace 2 (a group that goes whole).
    store
        .write(&[
            span(1, 1, now - 2 * HOUR),
            span(1, 2, now - 1_000),
            span(1, 3, now - 3 * HOUR),
            span(2, 1, now - 2 * HOUR),
            span(2, 2, now - 2 * HOUR + 5),
        ])
        .unwrap();
    assert_eq!(entries(&kv, Table::SpansByArrival), 2);

    assert_eq!(store.purge_before(now - HOUR).unwrap(), 4);
    assert_eq!(span_ids(&store, 1), vec![2]);
    assert_eq!(span_ids(&store, 2), Vec::<u64>::new());
    assert_eq!(entries(&kv, Table::SpansByArrival), 1);
    assert_eq!(entries(&kv, Table::TraceArrivals), 1);
    assert_eq!(search(&store, now - HOUR, now), vec![1]);

    store.purge_before(now).unwrap();
    assert_eq!(span_ids(&store, 1), Vec::<u64>::new());
    assert_eq!(entries(&kv, Table::SpansByArrival), 0);
    assert_eq!(entries(&kv, Table::TraceArrivals), 0);
}

#[test]
fn a_search_by_a_tag_not_indexed_reads_each_span_inside_its_group() {
    let (_kv, store) = in_memory();
    let now = now();
    let with_user = |trace: u128, id: u64, start: u64, user: &str| {
        SpanBuilder::new(trace, id, "GET /", &process("frontend", vec![]))
            .at(start, 1_000)
            .tag(KeyValue::string("user", user))
            .build()
    };
    // Trace 1 is one group: bob's span opens it, alice's is its second member.
    store
        .write(&[
            with_user(1, 1, now - 3_000, "bob"),
            with_user(1, 2, now - 2_000, "alice"),
            with_user(2, 1, now - 1_000, "bob"),
        ])
        .unwrap();
    let by_user = |user: &str| {
        let query = TraceQuery {
            service: Some("frontend".into()),
            start_min: now - HOUR,
            start_max: now,
            tags: vec![("user".into(), user.into())],
            limit: 20,
            ..Default::default()
        };
        trace_ids(&store, &query)
    };
    assert_eq!(by_user("alice"), vec![1]);
    assert_eq!(by_user("bob"), vec![2, 1]);
    assert_eq!(by_user("carol"), Vec::<u128>::new());
}

#[test]
fn two_writes_of_one_trace_in_one_second_keep_both_groups() {
    // The same first span in both writes (a client that sent it again with other spans), in
    // one store and across a restart: each write files its own group, nothing is replaced.
    let dir = tempfile::tempdir().unwrap();
    let start = now() - 1_000_000;
    {
        let store = Store::open(dir.path(), FOREVER).unwrap();
        store
            .write(&[span(1, 1, start), span(1, 2, start + 1)])
            .unwrap();
        store
            .write(&[span(1, 1, start), span(1, 3, start + 2)])
            .unwrap();
        assert_eq!(span_ids(&store, 1), vec![1, 2, 3]);
    }
    let store = Store::open(dir.path(), FOREVER).unwrap();
    store
        .write(&[span(1, 1, start), span(1, 4, start + 3)])
        .unwrap();
    assert_eq!(span_ids(&store, 1), vec![1, 2, 3, 4]);
}

#[test]
fn a_trace_too_big_for_one_group_is_filed_in_several_and_read_whole() {
    // 400 spans of one trace in one write, each with a 1 KiB tag: about 400 KiB, which the
    // store files in groups of at most 16 KiB (a search reading one of them reads no more).
    let (kv, store) = in_memory();
    let now = now();
    let spans: Vec<Span> = (0..400u64)
        .map(|i| {
            SpanBuilder::new(1, i + 1, "GET /", &process("frontend", vec![]))
                .at(now - 1_000_000 + i, 1_000)
                .tag(KeyValue::string("payload", "x".repeat(1024)))
                .tag(KeyValue::string("user", format!("user-{i}")))
                .build()
        })
        .collect();
    store.write(&spans).unwrap();
    let groups = entries(&kv, Table::SpansByArrival);
    assert!((20..=40).contains(&groups), "{groups} groups");
    assert_eq!(span_ids(&store, 1), (1..=400).collect::<Vec<u64>>());
    // The last span is in the last group: a search by a tag outside the index reads it there.
    let query = TraceQuery {
        service: Some("frontend".into()),
        start_min: now - HOUR,
        start_max: now,
        tags: vec![("user".into(), "user-399".into())],
        limit: 20,
        ..Default::default()
    };
    assert_eq!(trace_ids(&store, &query), vec![1]);
}

#[test]
fn the_data_check_reads_the_arrival_tables() {
    let dir = tempfile::tempdir().unwrap();
    // A second into a ten-second slice of the service index, a minute ago.
    let start = (now() - 60_000_000) / 10_000_000 * 10_000_000 + 1_000_000;
    {
        let store = Store::open(dir.path(), FOREVER).unwrap();
        let spans: Vec<Span> = (0..20u64)
            .map(|i| span(u128::from(i / 4) + 1, i, start + i))
            .collect();
        store.write(&spans).unwrap();
        store.flush().unwrap();
    }
    let report = meshtrace_store::check::check(dir.path()).unwrap();
    assert!(!report.is_damaged(), "{report}");
    // Five traces of four spans in one write: one group each.
    assert_eq!(report.checked.get("spans_by_arrival"), Some(&5));
    assert_eq!(report.checked.get("trace_arrivals"), Some(&5));
    assert_eq!(report.checked.get("by_slice"), Some(&20));
    assert_eq!(report.checked.get("service_slices"), Some(&1));
    assert_eq!(report.checked.get("by_service"), Some(&0));
    assert_eq!(report.checked.get("spans"), Some(&0));
}

/// A search over many slices of the service index: newest first, stopped at its limit, late
/// spans found in their slice; retention by slice, the cutoff's slice kept listed.
#[test]
fn slices_are_searched_newest_first_and_expire_whole() {
    const SLICE: u64 = 10_000_000;
    let (kv, store) = in_memory();
    // Traces 1 to 30, trace t starting 3t seconds after the start of a slice an hour ago: ten
    // slices (0 holds traces 1 to 3, 1 holds 4 to 6, ..., 9 holds 30).
    let base = (now() - HOUR) / SLICE * SLICE;
    let start = |t: u64| base + t * 3_000_000;
    // Written in order but for traces 21 to 25, which come last (late, into their slices).
    for t in (1..=20).chain(26..=30).chain(21..=25) {
        store.write(&[span(u128::from(t), 1, start(t))]).unwrap();
    }
    let limited = TraceQuery {
        service: Some("frontend".into()),
        start_min: base,
        start_max: base + HOUR,
        limit: 5,
        ..Default::default()
    };
    assert_eq!(trace_ids(&store, &limited), vec![30, 29, 28, 27, 26]);
    // A window across slices, from 7 s and 1 µs to 37 s: traces 3 (9 s) to 12 (36 s).
    let window = search(&store, start(2) + 1_000_001, start(12) + 1_000_000);
    assert_eq!(window, (3..=12).rev().collect::<Vec<u128>>());
    assert_eq!(
        search(&store, start(21), start(25)),
        vec![25, 24, 23, 22, 21]
    );
    assert_eq!(entries(&kv, Table::ServiceSlices), 10);

    // Retention just after trace 17 (51 s, in slice 5 with traces 18 and 19): 1 to 17 go.
    let removed = store.purge_before(start(17) + 1).unwrap();
    assert_eq!(removed, 17);
    assert_eq!(span_ids(&store, 17), Vec::<u64>::new());
    assert_eq!(span_ids(&store, 18), vec![1]);
    assert_eq!(search(&store, base, base + HOUR).last().copied(), Some(18));
    // Slices 0 to 4 are unlisted; slice 5, the cutoff's, stays listed with traces 18 and 19.
    assert_eq!(entries(&kv, Table::ServiceSlices), 5);
    assert_eq!(entries(&kv, Table::BySlice), 13);
}

/// A slice retention unlisted is listed again by the next span written into it, though the
/// store remembers which slices it has listed (so as not to list them in every batch).
#[test]
fn a_span_written_into_an_unlisted_slice_lists_it_again() {
    let (kv, store) = in_memory();
    let start = now() - HOUR;
    store.write(&[span(1, 1, start)]).unwrap();
    store.write(&[span(2, 1, start + 1)]).unwrap();
    assert_eq!(entries(&kv, Table::ServiceSlices), 1);
    store.purge_before(start + 3_600_000_000).unwrap();
    assert_eq!(entries(&kv, Table::ServiceSlices), 0);
    // A late span of the same slice.
    store.write(&[span(3, 1, start + 2)]).unwrap();
    assert_eq!(entries(&kv, Table::ServiceSlices), 1);
    assert_eq!(search(&store, start, start + 10), vec![3]);
}
