//! The derived metrics live as long as their spans: the retention pass removes the buckets that
//! ended before its cutoff (and the counters drop by them, staying the sum of what is kept),
//! then the series left without buckets; and a durable store opened again serves the same
//! series (their totals are read back from the stored buckets).

use std::time::Duration;

use meshtrace_metrics::{Matcher, SeriesSource};
use meshtrace_model::{KeyValue, RefType, Span, SpanId, SpanRef, TraceId};
use meshtrace_store::{Store, StoreOptions};

/// A client span of productpage calling `callee` (answered by `callee-v1`), and the server
/// span that answered, ending at `end_us`.
fn request(n: u64, callee: &str, end_us: u64) -> Vec<Span> {
    let process = |name: &str| meshtrace_testkit::process(&format!("{name}.bookinfo"), vec![]);
    let span = |id: u64, parent: Option<u64>, app: &str, kind: &str, upstream: String| Span {
        trace_id: TraceId(u128::from(n) + 1),
        span_id: SpanId(id),
        operation_name: format!("{callee}.bookinfo.svc.cluster.local:9080/*"),
        references: parent
            .map(|p| SpanRef {
                ref_type: RefType::ChildOf,
                trace_id: TraceId(u128::from(n) + 1),
                span_id: SpanId(p),
            })
            .into_iter()
            .collect(),
        flags: 1,
        start_time: end_us - 2000,
        duration: 2000,
        tags: vec![
            KeyValue::string(
                "node_id",
                format!(
                    "sidecar~10.0.0.{id}~{app}-v1-7d8f9c6b5-x2kqp.bookinfo~bookinfo.svc.cluster.local"
                ),
            ),
            KeyValue::string("istio.canonical_service", app),
            KeyValue::string("upstream_cluster", upstream),
            KeyValue::string("http.status_code", "200"),
            KeyValue::string("span.kind", kind),
        ],
        logs: vec![],
        process: process(app),
        warnings: vec![],
    };
    vec![
        span(
            n * 2 + 1,
            None,
            "productpage",
            "client",
            format!("outbound|9080||{callee}.bookinfo.svc.cluster.local"),
        ),
        span(
            n * 2 + 2,
            Some(n * 2 + 1),
            callee,
            "server",
            "inbound|9080||".to_string(),
        ),
    ]
}

/// Requests counted per destination workload (both reporters), at the latest sample.
fn counts(store: &Store) -> Vec<(String, f64)> {
    let now = (meshtrace_testkit::now() / 1000) as i64;
    let mut out: Vec<(String, f64)> = store
        .select(
            &[
                Matcher::equal("__name__", "istio_requests_total"),
                Matcher::equal("reporter", "destination"),
            ],
            now - 3 * 3_600_000,
            now + 60_000,
        )
        .unwrap()
        .into_iter()
        .map(|s| {
            (
                s.labels.get("destination_workload").unwrap().to_string(),
                s.samples.last().unwrap().value,
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn retention_removes_old_buckets_and_the_series_left_empty() {
    let store = Store::in_memory_with(&StoreOptions::new(Duration::from_secs(2 * 3600)));
    let now = meshtrace_testkit::now();
    let old = now - 90 * 60 * 1_000_000;
    let recent = now - 10 * 60 * 1_000_000;
    for n in 0..5 {
        store.write(&request(n, "details", old)).unwrap();
        store.write(&request(100 + n, "reviews", old)).unwrap();
    }
    for n in 0..3 {
        store.write(&request(200 + n, "reviews", recent)).unwrap();
    }
    assert_eq!(
        counts(&store),
        vec![
            ("details-v1".to_string(), 5.0),
            ("reviews-v1".to_string(), 8.0)
        ]
    );
    // A cutoff an hour ago: the old buckets go; details had nothing else.
    store.purge_before(now - 3600 * 1_000_000).unwrap();
    assert_eq!(counts(&store), vec![("reviews-v1".to_string(), 3.0)]);
}

#[test]
fn a_reopened_store_serves_the_same_series() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::new(Duration::from_secs(24 * 3600));
    let now = meshtrace_testkit::now();
    let before = {
        let store = Store::open_with(dir.path(), &options).unwrap();
        for n in 0..20 {
            store
                .write(&request(
                    n,
                    ["details", "reviews"][n as usize % 2],
                    now - n * 20_000_000,
                ))
                .unwrap();
        }
        let counted = counts(&store);
        store.flush().unwrap();
        counted
    };
    assert_eq!(
        before,
        vec![
            ("details-v1".to_string(), 10.0),
            ("reviews-v1".to_string(), 10.0)
        ]
    );
    let store = Store::open_with(dir.path(), &options).unwrap();
    assert_eq!(counts(&store), before);
    // And it goes on counting from there.
    store.write(&request(99, "details", now)).unwrap();
    assert_eq!(counts(&store)[0], ("details-v1".to_string(), 11.0));
}
