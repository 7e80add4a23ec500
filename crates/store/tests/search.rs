//! Search semantics, case by case, on both engines (durable and in memory): which traces a
//! query finds and in which order.

use std::sync::Arc;
use std::time::Duration;

use meshtrace_model::{KeyValue, Log, Process, Span, SpanId, TraceId, Value};
use meshtrace_store::{Store, TraceQuery};

const BASE: u64 = 1_700_000_000_000_000;

fn span(
    trace: u128,
    id: u64,
    process: &Arc<Process>,
    op: &str,
    start: u64,
    duration: u64,
    tags: Vec<KeyValue>,
) -> Span {
    Span {
        trace_id: TraceId(trace),
        span_id: SpanId(id),
        operation_name: op.into(),
        references: Vec::new(),
        flags: 1,
        start_time: BASE + start,
        duration,
        tags,
        logs: Vec::new(),
        process: process.clone(),
        warnings: Vec::new(),
    }
}

fn dataset() -> Vec<Span> {
    let a1 = meshtrace_testkit::process("a", vec![KeyValue::string("pod", "a-1")]);
    let a2 = meshtrace_testkit::process("a", vec![KeyValue::string("pod", "a-2")]);
    let b = meshtrace_testkit::process("b", vec![]);
    let mut t1b = span(
        1,
        12,
        &b,
        "op-b",
        1100,
        300,
        vec![KeyValue::new("error", Value::Bool(true))],
    );
    t1b.logs.push(Log {
        timestamp: BASE + 1150,
        fields: vec![
            KeyValue::string("event", "retry"),
            KeyValue::new("attempt", Value::I64(2)),
        ],
    });
    vec![
        span(
            1,
            11,
            &a1,
            "op-a",
            1000,
            500,
            vec![
                KeyValue::new("http.status_code", Value::I64(200)),
                KeyValue::string("component", "proxy"),
            ],
        ),
        t1b,
        span(
            2,
            21,
            &a1,
            "op-a",
            2000,
            1500,
            vec![
                KeyValue::new("http.status_code", Value::I64(503)),
                KeyValue::new("ratio", Value::F64(0.5)),
            ],
        ),
        span(
            3,
            31,
            &a2,
            "op-x",
            3000,
            50,
            vec![KeyValue::new("flag", Value::Bool(true))],
        ),
        span(4, 41, &b, "op-b", 4000, 700, vec![]),
    ]
}

struct Case {
    name: &'static str,
    query: TraceQuery,
    expect: Vec<u128>,
}

fn q(service: Option<&str>) -> TraceQuery {
    TraceQuery {
        service: service.map(str::to_string),
        start_min: BASE,
        start_max: BASE + 10_000,
        limit: 20,
        ..Default::default()
    }
}

fn tags(query: TraceQuery, tags: &[(&str, &str)]) -> TraceQuery {
    TraceQuery {
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..query
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "service, most recent first",
            query: q(Some("a")),
            expect: vec![3, 2, 1],
        },
        Case {
            name: "limit keeps the most recent",
            query: TraceQuery {
                limit: 2,
                ..q(Some("a"))
            },
            expect: vec![3, 2],
        },
        Case {
            name: "operation",
            query: TraceQuery {
                operation: Some("op-a".into()),
                ..q(Some("a"))
            },
            expect: vec![2, 1],
        },
        Case {
            name: "span tag (int as text)",
            query: tags(q(Some("a")), &[("http.status_code", "503")]),
            expect: vec![2],
        },
        Case {
            name: "span tag 200",
            query: tags(q(Some("a")), &[("http.status_code", "200")]),
            expect: vec![1],
        },
        Case {
            name: "bool tag",
            query: tags(q(Some("b")), &[("error", "true")]),
            expect: vec![1],
        },
        Case {
            name: "float tag",
            query: tags(q(Some("a")), &[("ratio", "0.5")]),
            expect: vec![2],
        },
        Case {
            name: "process tag",
            query: tags(q(Some("a")), &[("pod", "a-2")]),
            expect: vec![3],
        },
        Case {
            name: "log field",
            query: tags(q(Some("b")), &[("event", "retry")]),
            expect: vec![1],
        },
        Case {
            name: "int log field",
            query: tags(q(Some("b")), &[("attempt", "2")]),
            expect: vec![1],
        },
        Case {
            name: "two tags on one span",
            query: tags(
                q(Some("a")),
                &[("http.status_code", "200"), ("component", "proxy")],
            ),
            expect: vec![1],
        },
        Case {
            name: "two tags on different spans do not match",
            query: tags(
                q(Some("a")),
                &[("http.status_code", "200"), ("flag", "true")],
            ),
            expect: vec![],
        },
        Case {
            name: "a tag of another service's span does not match",
            query: tags(q(Some("a")), &[("error", "true")]),
            expect: vec![],
        },
        Case {
            name: "min duration",
            query: TraceQuery {
                duration_min: Some(400),
                ..q(Some("a"))
            },
            expect: vec![2, 1],
        },
        Case {
            name: "max duration",
            query: TraceQuery {
                duration_max: Some(100),
                ..q(Some("a"))
            },
            expect: vec![3],
        },
        Case {
            name: "duration range",
            query: TraceQuery {
                duration_min: Some(400),
                duration_max: Some(1000),
                ..q(Some("a"))
            },
            expect: vec![1],
        },
        Case {
            name: "time window",
            query: TraceQuery {
                start_min: BASE + 1500,
                start_max: BASE + 2500,
                ..q(Some("a"))
            },
            expect: vec![2],
        },
        Case {
            name: "window edges are inclusive",
            query: TraceQuery {
                start_min: BASE + 2000,
                start_max: BASE + 3000,
                ..q(Some("a"))
            },
            expect: vec![3, 2],
        },
        Case {
            name: "unknown service",
            query: q(Some("c")),
            expect: vec![],
        },
        Case {
            name: "wrong tag value",
            query: tags(q(Some("a")), &[("http.status_code", "404")]),
            expect: vec![],
        },
        Case {
            name: "every service",
            query: q(None),
            expect: vec![4, 3, 2, 1],
        },
        Case {
            name: "every service with a tag",
            query: tags(q(None), &[("error", "true")]),
            expect: vec![1],
        },
    ]
}

fn check(store: &Store) {
    store.write(&dataset()).unwrap();
    let mut failures = Vec::new();
    for case in cases() {
        let found: Vec<u128> = store
            .find_trace_ids(&case.query)
            .unwrap()
            .into_iter()
            .map(|t| t.0)
            .collect();
        if found != case.expect {
            failures.push(format!(
                "{}: expected {:?}, found {:?}",
                case.name, case.expect, found
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let traces = store.find_traces(&q(Some("a"))).unwrap();
    assert_eq!(traces[2].spans.len(), 2, "a found trace comes back whole");
}

const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

#[test]
fn search_in_memory() {
    check(&Store::in_memory(FOREVER));
}

#[test]
fn search_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    check(&Store::open(dir.path(), FOREVER).unwrap());
}

#[test]
fn a_search_reads_past_many_non_matching_spans() {
    // More than one chunk of index entries that do not match, before the one that does.
    let store = Store::in_memory(FOREVER);
    let p = meshtrace_testkit::process("a", vec![]);
    let mut spans = vec![span(1, 1, &p, "rare", 0, 10, vec![])];
    for i in 0..3000u64 {
        spans.push(span(
            100 + i as u128,
            1000 + i,
            &p,
            "common",
            10 + i,
            10,
            vec![],
        ));
    }
    store.write(&spans).unwrap();
    let query = TraceQuery {
        operation: Some("rare".into()),
        ..q(Some("a"))
    };
    assert_eq!(store.find_trace_ids(&query).unwrap(), [TraceId(1)]);
}

#[test]
fn services_operations_and_dependencies() {
    let store = Store::in_memory(FOREVER);
    let mut spans = dataset();
    spans[1].references.push(meshtrace_model::SpanRef {
        ref_type: meshtrace_model::RefType::ChildOf,
        trace_id: TraceId(1),
        span_id: SpanId(11),
    });
    spans[1].tags.push(KeyValue::string("span.kind", "server"));
    store.write(&spans).unwrap();
    assert_eq!(store.services().unwrap(), ["a", "b"]);
    let names: Vec<String> = store
        .operations("a", None)
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["op-a", "op-x"]);
    let server: Vec<String> = store
        .operations("b", Some("server"))
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(server, ["op-b"]);
    let deps = store.dependencies(BASE + 10_000, 10_000).unwrap();
    assert_eq!(deps.len(), 1);
    assert_eq!(
        (
            deps[0].parent.as_str(),
            deps[0].child.as_str(),
            deps[0].call_count
        ),
        ("a", "b", 1)
    );
}

#[test]
fn retention_removes_old_spans_and_their_index_entries() {
    let store = Store::in_memory(FOREVER);
    store.write(&dataset()).unwrap();
    let removed = store.purge_before(BASE + 2500).unwrap();
    assert_eq!(removed, 3);
    assert!(store.get_trace(TraceId(1)).unwrap().is_none());
    assert!(store.get_trace(TraceId(3)).unwrap().is_some());
    assert_eq!(store.find_trace_ids(&q(Some("a"))).unwrap(), [TraceId(3)]);
}
