//! Store layout 3: index entries carry the values of the tags searched most (`error`,
//! `http.status_code`, `response_flags`), so a search decides from the index alone. These
//! tests pin that the answer is the one reading the spans gives — tags on the span, its process
//! and its logs, any value type compared as text — including where an entry has no tag section
//! (too many or too long values) and the span must be read; and that a data directory written
//! by layout 2 opens, is migrated, and is searched right. (tests/fixtures/layout2 was written
//! through `Store::write` by the meshtrace before layout 3, commit e053b2f6; its journal is cut
//! to the bytes written, without the zeros the engine preallocates.)

use std::sync::Arc;
use std::time::Duration;

use meshtrace_model::{KeyValue, Log, Process, Span, SpanId, TraceId, Value};
use meshtrace_store::{Store, TraceQuery};

#[path = "common/dirs.rs"]
mod dirs;
use dirs::fixture_copy;

const BASE: u64 = 1_700_000_000_000_000;
const LONG_TIME: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

fn span(trace: u128, process: &Arc<Process>, tags: Vec<KeyValue>, logs: Vec<Log>) -> Span {
    Span {
        trace_id: TraceId(trace),
        span_id: SpanId(trace as u64),
        operation_name: "GET /".into(),
        references: Vec::new(),
        flags: 1,
        start_time: BASE + trace as u64 * 1_000,
        duration: 1_000,
        tags,
        logs,
        process: process.clone(),
        warnings: Vec::new(),
    }
}

fn int(key: &str, v: i64) -> KeyValue {
    KeyValue::new(key, Value::I64(v))
}

fn dataset() -> Vec<Span> {
    let plain = meshtrace_testkit::process("svc", vec![]);
    let flagged = meshtrace_testkit::process("svc", vec![KeyValue::string("response_flags", "UH")]);
    let long = "5".repeat(65);
    let many_logs: Vec<Log> = (0..9)
        .map(|i| Log {
            timestamp: BASE,
            fields: vec![KeyValue::string("response_flags", format!("F{i}"))],
        })
        .collect();
    vec![
        // 1: an integer status code
        span(1, &plain, vec![int("http.status_code", 503)], vec![]),
        // 2: the same as a string, with error=true
        span(
            2,
            &plain,
            vec![
                KeyValue::string("http.status_code", "503"),
                KeyValue::new("error", Value::Bool(true)),
            ],
            vec![],
        ),
        // 3: 200, and the flag on its process
        span(3, &flagged, vec![int("http.status_code", 200)], vec![]),
        // 4: error in a log field only
        span(
            4,
            &plain,
            vec![int("http.status_code", 500)],
            vec![Log {
                timestamp: BASE,
                fields: vec![KeyValue::new("error", Value::Bool(true))],
            }],
        ),
        // 5: a status code too long for the index (its span is read instead)
        span(
            5,
            &plain,
            vec![KeyValue::string("http.status_code", long)],
            vec![],
        ),
        // 6: nine flags in its logs, more than an entry holds; and a 503
        span(6, &plain, vec![int("http.status_code", 503)], many_logs),
        // 7: a 503 with a tag that is not indexed
        span(
            7,
            &plain,
            vec![
                int("http.status_code", 503),
                KeyValue::string("peer.service", "db"),
            ],
            vec![],
        ),
        // 8: no indexed tag at all, error=false
        span(
            8,
            &plain,
            vec![KeyValue::new("error", Value::Bool(false))],
            vec![],
        ),
    ]
}

/// A search of `service` over the hour from `start` for `tags`.
fn query(service: &str, start: u64, tags: &[(&str, &str)]) -> TraceQuery {
    TraceQuery {
        service: Some(service.into()),
        operation: None,
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        start_min: start,
        start_max: start + 3_600_000_000,
        duration_min: None,
        duration_max: None,
        limit: 20,
    }
}

/// The trace IDs a search finds, in order.
fn sorted_ids(store: &Store, query: &TraceQuery) -> Vec<u128> {
    let mut ids: Vec<u128> = store
        .find_trace_ids(query)
        .unwrap()
        .into_iter()
        .map(|id| id.0)
        .collect();
    ids.sort_unstable();
    ids
}

fn found(store: &Store, tags: &[(&str, &str)]) -> Vec<u128> {
    sorted_ids(store, &query("svc", BASE, tags))
}

fn check(store: &Store) {
    let long = "5".repeat(65);
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<u128>);
    let cases: Vec<Case> = vec![
        (vec![("http.status_code", "503")], vec![1, 2, 6, 7]),
        (vec![("http.status_code", "200")], vec![3]),
        (vec![("http.status_code", &long)], vec![5]),
        (vec![("error", "true")], vec![2, 4]),
        (vec![("error", "false")], vec![8]),
        (vec![("response_flags", "UH")], vec![3]),
        (vec![("response_flags", "F8")], vec![6]),
        (
            vec![("http.status_code", "503"), ("error", "true")],
            vec![2],
        ),
        (
            vec![("http.status_code", "503"), ("peer.service", "db")],
            vec![7],
        ),
        (vec![("http.status_code", "404")], vec![]),
    ];
    for (tags, expected) in cases {
        assert_eq!(found(store, &tags), expected, "search for {tags:?}");
    }
}

#[test]
fn indexed_tags_find_what_the_spans_hold_in_memory() {
    let store = Store::in_memory(LONG_TIME);
    store.write(&dataset()).unwrap();
    check(&store);
}

#[test]
fn indexed_tags_find_what_the_spans_hold_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path(), LONG_TIME).unwrap();
        store.write(&dataset()).unwrap();
        check(&store);
    }
    let store = Store::open(dir.path(), LONG_TIME).unwrap();
    check(&store);
}

/// The fixture: 2026-01-01, six traces of two spans (productpage → reviews), every third
/// reviews span a 503 with error=true, trace 0xa004's reviews span with a log.
fn ids(store: &Store, tags: &[(&str, &str)]) -> Vec<u128> {
    sorted_ids(store, &query("reviews", 1_767_225_600_000_000, tags))
}

#[test]
fn a_layout_2_directory_is_migrated_and_searched_right() {
    let (_tmp, dir) = fixture_copy("layout2");
    assert_eq!(
        std::fs::read_to_string(dir.join("meshtrace-layout")).unwrap(),
        "meshtrace store layout 2\n"
    );
    {
        let store = Store::open(&dir, LONG_TIME).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("meshtrace-layout")).unwrap(),
            "meshtrace store layout 7\n"
        );
        // The old entries have no tag section: their spans are read for the tags.
        assert_eq!(
            ids(&store, &[("http.status_code", "503")]),
            vec![0xa000, 0xa003]
        );
        assert_eq!(ids(&store, &[("error", "true")]), vec![0xa000, 0xa003]);
        assert_eq!(ids(&store, &[("event", "retry")]), vec![0xa004]);
        let trace = store.get_trace(TraceId(0xa004)).unwrap().unwrap();
        assert_eq!(trace.spans.len(), 2);
        assert!(trace.warnings.is_empty(), "{:?}", trace.warnings);

        // New entries (with tag sections) beside the old ones.
        let reviews = meshtrace_testkit::process("reviews", vec![]);
        let mut new = span(0xb000, &reviews, vec![int("http.status_code", 503)], vec![]);
        new.start_time = 1_767_225_600_000_000 + 30_000_000;
        store.write(&[new]).unwrap();
        assert_eq!(
            ids(&store, &[("http.status_code", "503")]),
            vec![0xa000, 0xa003, 0xb000]
        );
    }
    // Opened again: the current layout now, nothing lost.
    let store = Store::open(&dir, LONG_TIME).unwrap();
    assert_eq!(
        ids(&store, &[("http.status_code", "503")]),
        vec![0xa000, 0xa003, 0xb000]
    );
    assert_eq!(ids(&store, &[]).len(), 7);
}
