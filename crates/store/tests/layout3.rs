//! Searches over traces with several spans of one service (Bookinfo's productpage: its server
//! span and its client span to reviews), and a data directory written by an earlier build.
//! These pin that a search wants one span to satisfy operation, tags and duration together
//! (two spans of one trace and service, one with the operation and one with the tag, do not
//! make a match), that a range starting between two spans of a trace finds it by the later
//! one, and that retention removes whole traces; and that `tests/fixtures/layout3` — written by
//! [`write_layout3_fixture`] through `Store::write` at commit b22fdb14, its journal cut to the
//! bytes written, without the zeros the engine preallocates — opens and answers the same, so a
//! later layout has a directory of this one to migrate or refuse. `tests/fixtures/layout5` was
//! written the same way at commit 31d86f9f (layout 5, spans in arrival order, the service
//! index keyed by service first), and `tests/fixtures/layout6` at commit 9f7ab27a (layout 6,
//! every span its own entry of `spans_by_arrival`, the service index in slices of time).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use meshtrace_model::{KeyValue, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};
use meshtrace_store::{Store, TraceQuery};

#[path = "common/dirs.rs"]
mod dirs;
use dirs::fixture_copy;

const LONG_TIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
/// 2026-01-01 00:00:00 UTC, the fixture's first start.
const DAY: u64 = 1_767_225_600_000_000;

fn process(name: &str) -> Arc<Process> {
    meshtrace_testkit::process(name, vec![])
}

#[allow(clippy::too_many_arguments)]
fn span(
    trace: u128,
    id: u64,
    parent: Option<u64>,
    process: &Arc<Process>,
    op: &str,
    start: u64,
    duration: u64,
    status: i64,
) -> Span {
    let child_of = |p: u64| SpanRef {
        ref_type: RefType::ChildOf,
        trace_id: TraceId(trace),
        span_id: SpanId(p),
    };
    Span {
        trace_id: TraceId(trace),
        span_id: SpanId(id),
        operation_name: op.into(),
        references: parent.into_iter().map(child_of).collect(),
        flags: 1,
        start_time: start,
        duration,
        tags: vec![
            KeyValue::new("http.status_code", Value::I64(status)),
            KeyValue::string("component", "proxy"),
        ],
        logs: Vec::new(),
        process: process.clone(),
        warnings: Vec::new(),
    }
}

/// Six Bookinfo-like traces a minute apart, each: productpage's server span and its client
/// span to reviews (two spans of one service in one trace), reviews' server span. In traces
/// 0xc001 and 0xc004 the client span (`call`, 30 ms) has the 503 and the server span (`page`,
/// 50 ms) a 200.
fn fixture_traces() -> Vec<Span> {
    let productpage = process("productpage");
    let reviews = process("reviews");
    let mut spans = Vec::new();
    for t in 0..6u64 {
        let trace = 0xc000 + u128::from(t);
        let start = DAY + t * 60_000_000;
        let failed = t % 3 == 1;
        let base = t * 10;
        spans.push(span(
            trace,
            base + 1,
            None,
            &productpage,
            "page",
            start,
            50_000,
            200,
        ));
        spans.push(span(
            trace,
            base + 2,
            Some(base + 1),
            &productpage,
            "call",
            start + 1_000,
            30_000,
            if failed { 503 } else { 200 },
        ));
        spans.push(span(
            trace,
            base + 3,
            Some(base + 2),
            &reviews,
            "reviews",
            start + 2_000,
            20_000,
            if failed { 503 } else { 200 },
        ));
    }
    spans
}

fn query(service: &str, start: u64) -> TraceQuery {
    TraceQuery {
        service: Some(service.into()),
        start_min: start,
        start_max: start + 3_600_000_000,
        limit: 20,
        ..Default::default()
    }
}

fn with_tag(query: TraceQuery, key: &str, value: &str) -> TraceQuery {
    TraceQuery {
        tags: vec![(key.to_string(), value.to_string())],
        ..query
    }
}

fn ids(store: &Store, query: &TraceQuery) -> Vec<u128> {
    store
        .find_trace_ids(query)
        .unwrap()
        .into_iter()
        .map(|id| id.0)
        .collect()
}

/// Writes the layout-3 fixture into `$LAYOUT3_FIXTURE_DIR` (run by hand:
/// `LAYOUT3_FIXTURE_DIR=... cargo test -p meshtrace-store --test layout3 -- --ignored`).
#[test]
#[ignore]
fn write_layout3_fixture() {
    let dir = std::env::var("LAYOUT3_FIXTURE_DIR").unwrap();
    let store = Store::open(Path::new(&dir), LONG_TIME).unwrap();
    store.write(&fixture_traces()).unwrap();
    store.flush().unwrap();
}

/// What every layout must answer for the fixture's traces (written once, however they are
/// stored).
fn check_fixture_searches(store: &Store) {
    let pp = query("productpage", DAY);
    assert_eq!(
        ids(store, &pp),
        vec![0xc005, 0xc004, 0xc003, 0xc002, 0xc001, 0xc000]
    );
    // The 503 is on `call`, never on `page`: one span must hold operation and tag together.
    let search = |op: Option<&str>, tag: (&str, &str), min: Option<u64>| {
        let query = TraceQuery {
            operation: op.map(str::to_string),
            duration_min: min,
            ..with_tag(pp.clone(), tag.0, tag.1)
        };
        ids(store, &query)
    };
    let status_503 = ("http.status_code", "503");
    assert_eq!(search(Some("page"), status_503, None), Vec::<u128>::new());
    assert_eq!(search(Some("call"), status_503, None), vec![0xc004, 0xc001]);
    // The 503 span lasts 30 ms, the 50 ms one is a 200: tag and duration on one span too.
    assert_eq!(search(None, status_503, Some(40_000)), Vec::<u128>::new());
    // The same with a tag no index entry carries (decided on the spans themselves).
    let proxy = ("component", "proxy");
    assert_eq!(
        search(Some("call"), proxy, Some(40_000)),
        Vec::<u128>::new()
    );
    assert_eq!(search(Some("call"), proxy, None).len(), 6);
    // A range that starts between the server span (+0) and the client span (+1 ms) of trace
    // 0xc002 finds it by its client span.
    let from_call = TraceQuery {
        start_max: DAY + 2 * 60_000_000 + 1_500,
        ..query("productpage", DAY + 2 * 60_000_000 + 500)
    };
    assert_eq!(ids(store, &from_call), vec![0xc002]);
    let reviews_503 = with_tag(query("reviews", DAY), "http.status_code", "503");
    assert_eq!(ids(store, &reviews_503), vec![0xc004, 0xc001]);
    let trace = store.get_trace(TraceId(0xc004)).unwrap().unwrap();
    assert_eq!(trace.spans.len(), 3);
    assert!(trace.warnings.is_empty(), "{:?}", trace.warnings);
    let client = trace
        .spans
        .iter()
        .find(|s| s.span_id == SpanId(42))
        .unwrap();
    assert_eq!(client.parent_span_id(), Some(SpanId(41)));
    assert_eq!(
        store
            .dependencies(DAY + 3_600_000_000, 3_600_000_000)
            .unwrap()[0]
            .call_count,
        6
    );
}

#[test]
fn a_search_wants_one_span_to_match_everything() {
    let store = Store::in_memory(LONG_TIME);
    store.write(&fixture_traces()).unwrap();
    check_fixture_searches(&store);
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), LONG_TIME).unwrap();
        store.write(&fixture_traces()).unwrap();
        check_fixture_searches(&store);
    }
    check_fixture_searches(&Store::open(dir.path(), LONG_TIME).unwrap());
}

#[test]
fn a_layout_3_directory_of_an_earlier_build_opens_and_is_searched_right() {
    // The fixture's last trace stays in the trace-keyed table; the spans written since are in
    // the arrival-ordered one.
    migrates_and_answers(
        "layout3",
        &[
            ("spans", 3),
            ("spans_by_arrival", 7),
            ("by_service", 3),
            ("by_slice", 19),
        ],
    );
}

#[test]
fn a_layout_5_directory_of_an_earlier_build_opens_and_is_searched_right() {
    // Every span is in the arrival-ordered table: the fixture's were filed when it was written
    // (2026-12-01), long after they started, so retention removes them through the index.
    migrates_and_answers(
        "layout5",
        &[
            ("spans", 0),
            ("spans_by_arrival", 10),
            ("by_service", 3),
            ("by_slice", 19),
        ],
    );
}

#[test]
fn a_layout_6_directory_of_an_earlier_build_opens_and_is_searched_right() {
    // The fixture's spans are single entries of the arrival-ordered table, and indexed in the
    // slices; the spans written since are groups there, one per trace and write (the late
    // span's, and six traces').
    migrates_and_answers(
        "layout6",
        &[
            ("spans", 0),
            ("spans_by_arrival", 10),
            ("by_service", 0),
            ("by_slice", 22),
        ],
    );
}

/// Opens a copy of the fixture `name` (written by [`write_layout3_fixture`] at an earlier
/// layout), which must be migrated to layout 7 and answer as it did, with new spans beside
/// the old; then retention and the data check, which must count `entries` in its tables.
fn migrates_and_answers(name: &str, entries: &[(&str, u64)]) {
    let (_tmp, dir) = fixture_copy(name);
    {
        let store = Store::open(&dir, LONG_TIME).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("meshtrace-layout")).unwrap(),
            "meshtrace store layout 7\n"
        );
        check_fixture_searches(&store);
        // A span of a fixture trace written now: the trace is read from both tables.
        let late = span(
            0xc005,
            54,
            Some(51),
            &process("productpage"),
            "late",
            DAY + 5 * 60_000_000 + 3_000,
            1_000,
            200,
        );
        store.write(&[late]).unwrap();
        let trace = store.get_trace(TraceId(0xc005)).unwrap().unwrap();
        let span_ids: Vec<u64> = trace.spans.iter().map(|s| s.span_id.0).collect();
        assert_eq!(span_ids, vec![51, 52, 53, 54]);
        // New traces beside the fixture's.
        let mut later = fixture_traces();
        for span in &mut later {
            span.trace_id = TraceId(span.trace_id.0 + 0x100);
            span.start_time += 10 * 60_000_000;
        }
        store.write(&later).unwrap();
        let call_503 = TraceQuery {
            operation: Some("call".into()),
            ..with_tag(query("productpage", DAY), "http.status_code", "503")
        };
        assert_eq!(ids(&store, &call_503), vec![0xc104, 0xc101, 0xc004, 0xc001]);
    }
    // Opened again: nothing lost; retention removes the five oldest traces, three spans each.
    let store = Store::open(&dir, LONG_TIME).unwrap();
    assert_eq!(ids(&store, &query("productpage", DAY)).len(), 12);
    let removed = store.purge_before(DAY + 5 * 60_000_000).unwrap();
    assert_eq!(removed, 15);
    assert_eq!(
        ids(&store, &query("productpage", DAY)),
        vec![0xc105, 0xc104, 0xc103, 0xc102, 0xc101, 0xc100, 0xc005]
    );
    assert!(store.get_trace(TraceId(0xc004)).unwrap().is_none());
    assert_eq!(
        store
            .get_trace(TraceId(0xc005))
            .unwrap()
            .unwrap()
            .spans
            .len(),
        4
    );
    store.flush().unwrap();
    drop(store);
    // The data check finds every span in an index and every entry with its span: the
    // fixture's last trace in the old index, the spans written since in the slices.
    let report = meshtrace_store::check::check(&dir).unwrap();
    assert!(!report.is_damaged(), "{report}");
    for &(table, count) in entries {
        assert_eq!(report.checked.get(table), Some(&count), "{table}");
    }
}
