//! "Compared with metrics" and the percentile filter in Chromium. The traces come from one
//! store, the metrics from another's `/prometheus`; both hold the same simulated Bookinfo
//! requests (one a second for 21 minutes), and the traces store holds one more trace whose
//! workload (a name with markup) has no metrics. What the page shows is checked against
//! `POST /api/stats/metrics`, the expected heatmap cells computed here from the spans' tags.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

use meshtrace_model::{KeyValue, Span, SpanId, TraceId};
use meshtrace_sim::Options;
use meshtrace_store::server::LoopbackServer;
use meshtrace_testkit::jaeger_json::tag;
use meshtrace_testkit::now;
use serde_json::{Value, json};

use crate::common::{bookinfo_each_second, store_of};
use crate::page::{
    all, assert_no_script_ran, find, get_json, goto, parsed, present, select, text, wait_for,
};
use crate::{console, driver};

const GHOST_TRACE: u128 = 0x0c0a_0000_0000_0000_0000_0000_0000_0007;
const GHOST_WORKLOAD: &str = "<img src=x onerror=window.pwned=3>-v1";

fn simulated() -> Vec<Span> {
    bookinfo_each_second(7, Options::default(), 1260)
}

/// A trace with a reviews-v1 server span (it has metrics) and a server span of a workload
/// the metrics never saw.
fn ghost_trace() -> Vec<Span> {
    let span = |id: u64, pod: &str, duration: u64| Span {
        trace_id: TraceId(GHOST_TRACE),
        span_id: SpanId(id),
        operation_name: "reviews.bookinfo.svc.cluster.local:9080/*".into(),
        references: vec![],
        flags: 1,
        start_time: now() - 20_000_000,
        duration,
        tags: vec![
            KeyValue::string("span.kind", "server"),
            KeyValue::string("component", "proxy"),
            KeyValue::string(
                "node_id",
                format!("sidecar~10.0.0.9~{pod}.bookinfo~bookinfo.svc.cluster.local"),
            ),
            KeyValue::string("upstream_cluster", "inbound|9080||"),
        ],
        logs: vec![],
        process: meshtrace_testkit::process("reviews.bookinfo", vec![]),
        warnings: vec![],
    };
    vec![
        span(1, "reviews-v1-5d9b4c9849-lq7m2", 12_000),
        span(2, &format!("{GHOST_WORKLOAD}-5d9b4c9849-lq7m2"), 3_000),
    ]
}

/// A console whose traces store holds the simulated requests and `extra`, whose metrics store
/// holds the simulated requests; and a browser.
pub(crate) struct Setup {
    pub(crate) console: SocketAddr,
    pub(crate) browser: driver::Browser,
    _stop: tokio::sync::oneshot::Sender<()>,
    _stores: [LoopbackServer; 2],
}

impl Setup {
    pub(crate) async fn start(extra: Vec<Span>) -> Setup {
        let spans = simulated();
        let metrics = store_of(&spans).await;
        let mut traced = spans;
        traced.extend(extra);
        let traces = store_of(&traced).await;
        let prometheus = format!("http://{}/prometheus", metrics.addresses.query_http);
        let (console, stop) = console(&yaml(&traces, &prometheus)).await;
        Setup {
            console,
            browser: driver::browser().await,
            _stop: stop,
            _stores: [metrics, traces],
        }
    }
}

/// Traces from `traces`, metrics from `prometheus`; no metrics cache, so each page's stats
/// are those of the second it asked.
fn yaml(traces: &LoopbackServer, prometheus: &str) -> String {
    format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: http://{}\n    use_grpc: false\n  prometheus:\n    url: {prometheus}\n    cache_enabled: false\n",
        traces.addresses.query_http
    )
}

pub(crate) async fn post_stats(console: SocketAddr, queries: Vec<Value>) -> Value {
    let response = reqwest::Client::new()
        .post(format!("http://{console}/api/stats/metrics"))
        .json(&json!({ "queries": queries }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The (namespace, workload, direction) of an Envoy span of the API's JSON, read from its
/// `node_id` (`sidecar~ip~<workload>-<hash>-<suffix>.<ns>~…`) and `upstream_cluster`.
fn envoy_target(span: &Value) -> Option<(String, String, &'static str)> {
    if tag(span, "component") != Some("proxy") {
        return None;
    }
    let pod_ns = tag(span, "node_id")?.split('~').nth(2)?;
    let (pod, ns) = pod_ns.rsplit_once('.')?;
    let parts: Vec<&str> = pod.split('-').collect();
    let workload = parts[..parts.len() - 2].join("-");
    let upstream = tag(span, "upstream_cluster")?;
    let direction = if upstream.starts_with("inbound|") {
        "inbound"
    } else {
        "outbound"
    };
    Some((ns.to_string(), workload, direction))
}

/// The Envoy spans of a trace of the API's JSON (at least two), with their targets.
pub(crate) fn envoy_spans(trace: &Value) -> Vec<(&Value, (String, String, &'static str))> {
    let envoy: Vec<_> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| envoy_target(s).map(|t| (s, t)))
        .collect();
    assert!(envoy.len() >= 2, "{trace}");
    envoy
}

/// Kiali's stats key of a target's (default reporter) answer over `interval`.
fn key((ns, workload, direction): &(String, String, &str), interval: &str) -> String {
    let reporter = if *direction == "inbound" {
        "destination"
    } else {
        "source"
    };
    format!("{ns}:workload:{workload}::{direction}:{interval}:{reporter}")
}

/// The trace's expected cell: the mean over its Envoy spans with the stat of (ms − stat).
pub(crate) fn mean_difference(
    envoy: &[(&Value, (String, String, &str))],
    answer: &Value,
    interval: &str,
    name: &str,
) -> f64 {
    let diffs: Vec<f64> = envoy
        .iter()
        .filter_map(|(span, target)| {
            let s = stat(answer, &key(target, interval), name)?;
            Some(span["duration"].as_f64().unwrap() / 1000.0 - s)
        })
        .collect();
    assert!(!diffs.is_empty(), "no stats for {interval} {name}");
    diffs.iter().sum::<f64>() / diffs.len() as f64
}

/// The stat `name` of `key` in a stats answer.
fn stat(answer: &Value, key: &str, name: &str) -> Option<f64> {
    answer["stats"][key]["responseTimes"]
        .as_array()?
        .iter()
        .find(|t| t["name"] == name)?["value"]
        .as_f64()
}

const INTERVALS: [&str; 3] = ["10m", "60m", "3h"];
const STATS: [(&str, &str); 4] = [
    ("avg", "avg"),
    ("0.5", "p50"),
    ("0.9", "p90"),
    ("0.99", "p99"),
];

/// The cells of the heatmap `css`: (interval, stat label) → data-value.
pub(crate) async fn cells(
    client: &fantoccini::Client,
    css: &str,
) -> BTreeMap<(String, String), String> {
    let mut out = BTreeMap::new();
    for row in all(client, &format!("{css} tbody tr")).await {
        let interval = row.attr("data-interval").await.unwrap().unwrap();
        for cell in row.find_all(fantoccini::Locator::Css("td")).await.unwrap() {
            let stat = cell.attr("data-stat").await.unwrap().unwrap();
            let value = cell.attr("data-value").await.unwrap().unwrap_or_default();
            out.insert((interval.clone(), stat), value);
        }
    }
    out
}

/// The heatmap's queries for `targets` at `time`: Kiali's, written out here.
fn stats_queries(targets: &[(String, String, &str)], time: u64) -> Vec<Value> {
    let mut queries = Vec::new();
    for (ns, workload, direction) in targets {
        for interval in INTERVALS {
            queries.push(json!({
                "target": {"namespace": ns, "name": workload, "kind": "workload"},
                "queryTime": time, "interval": interval, "direction": direction,
                "avg": true, "quantiles": ["0.5", "0.9", "0.99"],
            }));
        }
    }
    queries
}

pub(crate) fn close(shown: &str, expected: f64) -> bool {
    shown
        .parse::<f64>()
        .is_ok_and(|v| (v - expected).abs() < 1e-6)
}

#[tokio::test(flavor = "multi_thread")]
async fn heatmaps_and_percentiles_are_the_stats_routes_numbers() {
    let setup = Setup::start(ghost_trace()).await;
    let (c, client) = (setup.console, &setup.browser.client);
    let page = format!("http://{c}/console/namespaces/bookinfo/workloads/reviews-v1");

    // ---- the percentile filter: Kiali's query, the mean of inbound and outbound ----
    let time = now() / 1_000_000;
    let query = |direction: &str| {
        json!({"target": {"namespace": "bookinfo", "name": "reviews-v1", "kind": "workload"},
               "queryTime": time, "interval": "1h", "direction": direction,
               "avg": false, "quantiles": ["0.75", "0.9", "0.99"]})
    };
    let answer = post_stats(c, vec![query("inbound"), query("outbound")]).await;
    let p90 = |dir: &str, reporter: &str| {
        stat(
            &answer,
            &format!("bookinfo:workload:reviews-v1::{dir}:1h:{reporter}"),
            "0.9",
        )
        .unwrap()
    };
    let expected_p90 = (p90("inbound", "destination") + p90("outbound", "source")) / 2.0;
    // The whole hour: every simulated request is in the window, now or a second later.
    goto(
        client,
        &format!("{page}?tab=traces&limit=100&duration=3600"),
    )
    .await;
    let label = text(client, "#percentile option[value=p90]").await;
    assert_eq!(label, format!("p90 ({expected_p90:.2}ms+)"));
    // The page's script submits the form on the change (clicking Apply as well would race the
    // navigation it starts).
    select(client, "#percentile", "p90").await;
    wait_for(client, "#percentile option[value=p90][selected]").await;
    // The search asked the backend for minDuration = p90 (µs): the page shows what the traces
    // route answers for it, which is fewer traces than without it.
    let floor_us = (expected_p90 * 1000.0).floor() as u64;
    let api = |min: Option<u64>| {
        let start = now() - 3_500_000_000;
        let min = min.map(|m| format!("&minDuration={m}")).unwrap_or_default();
        format!(
            "http://{c}/api/namespaces/bookinfo/workloads/reviews-v1/traces?limit=100&startMicros={start}{min}"
        )
    };
    let ids = |body: Value| -> BTreeSet<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(crate::page::trace_id)
            .collect()
    };
    let filtered = ids(get_json(&api(Some(floor_us))).await);
    assert!(filtered.len() < ids(get_json(&api(None)).await).len());
    let mut shown = BTreeSet::new();
    for point in all(client, "#scatter circle").await {
        let us: u64 = parsed(&point, "data-value").await;
        assert!(us >= floor_us, "a trace of {us}µs under p90's {floor_us}µs");
        shown.insert(point.attr("data-trace-id").await.unwrap().unwrap());
    }
    assert_eq!(shown, filtered);

    // ---- a Bookinfo trace: its heatmap is the mean of (span ms − stat) ----
    let trace = crate::page::reviews_trace(c, 5, GHOST_TRACE).await;
    let ghost = format!("{GHOST_TRACE:032x}");
    let id = crate::page::trace_id(&trace);
    let envoy = envoy_spans(&trace);
    let targets: Vec<(String, String, &str)> = envoy.iter().map(|(_, t)| t.clone()).collect();
    // The page asked at some second while it loaded: the 10m window moves with it, so the
    // cells are compared with the route's answer for each second in between.
    let before = now() / 1_000_000;
    goto(client, &format!("{page}?tab=traces&limit=100&traceId={id}")).await;
    let after = now() / 1_000_000;
    let shown = cells(client, "#metrics-heatmap").await;
    assert_eq!(shown.len(), 12);
    let mut matched = None;
    for time in before..=after {
        let answer = post_stats(c, stats_queries(&targets, time)).await;
        let all_equal = INTERVALS.iter().all(|interval| {
            STATS.iter().all(|(name, label)| {
                close(
                    &shown[&(interval.to_string(), label.to_string())],
                    mean_difference(&envoy, &answer, interval, name),
                )
            })
        });
        if all_equal {
            matched = Some(answer);
            break;
        }
    }
    let answer = matched.unwrap_or_else(|| {
        panic!("no query time in {before}..={after} gives the page's cells {shown:?}")
    });
    let note = text(client, "#compare-metrics p.note").await;
    assert!(!present(client, "#metrics-incomplete").await, "{note}");
    // Each Envoy span's row: its own differences.
    for (span, target) in &envoy {
        let row = format!(
            "#span-{} .metrics-heatmap",
            span["spanID"].as_str().unwrap()
        );
        let row_cells = cells(client, &row).await;
        for interval in INTERVALS {
            for (name, label) in STATS {
                let s = stat(&answer, &key(target, interval), name).unwrap();
                let expected = span["duration"].as_f64().unwrap() / 1000.0 - s;
                let value = &row_cells[&(interval.to_string(), label.to_string())];
                assert!(
                    close(value, expected),
                    "{row} {interval} {label}: {value} vs {expected}"
                );
            }
        }
    }

    // ---- the ghost trace: one workload without metrics, its name markup ----
    let before = now() / 1_000_000;
    goto(client, &format!("{page}?tab=traces&traceId={ghost}")).await;
    let after = now() / 1_000_000;
    assert_eq!(
        text(client, "#metrics-incomplete").await,
        "Incomplete data, check Span Details"
    );
    // The reviews-v1 span alone makes the trace's numbers.
    let shown = &cells(client, "#metrics-heatmap").await[&("10m".into(), "avg".into())];
    let reviews = [("bookinfo".to_string(), "reviews-v1".to_string(), "inbound")];
    let mut found = false;
    for time in before..=after {
        let answer = post_stats(c, stats_queries(&reviews, time)).await;
        let avg = stat(&answer, &key(&reviews[0], "10m"), "avg").unwrap();
        found |= close(shown, 12.0 - avg);
    }
    assert!(found, "{shown}");
    let ghost_row = "#span-0000000000000002";
    assert_eq!(
        text(client, &format!("{ghost_row} a.workload")).await,
        GHOST_WORKLOAD
    );
    for value in cells(client, &format!("{ghost_row} .metrics-heatmap"))
        .await
        .values()
    {
        assert_eq!(value, "", "the ghost workload has no stats");
    }
    assert_no_script_ran(client).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metrics_source_down_keeps_the_traces_and_the_filter() {
    let traces = store_of(&simulated()).await;
    let (c, _stop) = console(&yaml(&traces, "http://127.0.0.1:9")).await;
    let browser = driver::browser().await;
    let client = &browser.client;
    let page = format!("http://{c}/console/namespaces/bookinfo/workloads/reviews-v1");
    let body = get_json(&format!(
        "http://{c}/api/namespaces/bookinfo/workloads/reviews-v1/traces?limit=5"
    ))
    .await;
    let id = crate::page::trace_id(&body["data"][0]);
    goto(
        client,
        &format!("{page}?tab=traces&percentile=p90&traceId={id}"),
    )
    .await;
    let error = text(client, "#metrics-error").await;
    assert!(error.contains("http://127.0.0.1:9"), "{error}");
    // The rest of the details, and the filter from the fetched traces.
    assert!(!all(client, "#span-table tr.span-row").await.is_empty());
    assert!(present(client, "#similar, #trace-details .note").await);
    assert!(!all(client, "#scatter circle").await.is_empty());
    let label = text(client, "#percentile option[value=p90]").await;
    assert!(label.ends_with("+, fetched traces)"), "{label}");
    let source = text(client, "#percentile-source").await;
    assert!(source.starts_with("Metrics unavailable ("), "{source}");
    assert!(source.contains("127.0.0.1:9"), "{source}");
    assert!(present(client, "#span-table a.load-stats").await);
    // The scatter's tooltip (keyboard focus): duration and spans, and why there are no stats.
    let point = find(client, "#scatter circle").await;
    let shown = point.attr("data-trace-id").await.unwrap().unwrap();
    // A click on plain text gives the page the window's focus first: Chromium fires no focus
    // event in a document without it (the test saw the link focused and no tooltip).
    find(client, "#metrics-error").await.click().await.unwrap();
    client
        .execute(
            "arguments[0].closest('a').focus();",
            vec![serde_json::to_value(&point).unwrap()],
        )
        .await
        .unwrap();
    let tip = format!("#trace-tooltip .trace-tooltip[data-trace-id='{shown}']");
    wait_for(client, &tip).await;
    let unavailable = text(client, &format!("{tip} .tt-unavailable")).await;
    assert!(
        unavailable.starts_with("Statistics unavailable: ") && unavailable.contains("127.0.0.1:9"),
        "{unavailable}"
    );
    assert!(!present(client, &format!("{tip} .metrics-heatmap")).await);
    assert!(
        !text(client, &format!("{tip} .tt-duration"))
            .await
            .is_empty()
    );
    let trace = get_json(&format!("http://{c}/api/traces/{shown}")).await;
    let spans = trace["data"]["spans"].as_array().unwrap().len();
    let line = text(client, &format!("{tip} .tt-spans")).await;
    assert!(line.starts_with(&format!("{spans} spans, avg=")), "{line}");
}
