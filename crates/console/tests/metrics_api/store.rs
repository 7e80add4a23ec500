//! Against a meshtrace store: the simulator's Bookinfo requests, one a second over the last
//! 21 minutes, written to a real store whose `/prometheus` API the console reads. Every route
//! answers Kiali's shape with the Bookinfo series, and the numbers are the spans' own: counted
//! here from the spans the simulator made, not from the store.

use meshtrace_console::ConsoleOptions;
use meshtrace_model::Span;
use meshtrace_sim::Options;
use meshtrace_store::server::LoopbackServer;
use meshtrace_testkit::prometheus::istio_bucket;
use serde_json::{Value, json};

use crate::{common, config, get, post_stats, values};

/// A store holding 1,260 simulated requests, one a second, the last a minute ago; and the
/// spans.
async fn store_with_traffic() -> (LoopbackServer, Vec<Span>) {
    let options = Options {
        error_rate: 0.1,
        ..Options::default()
    };
    let spans = common::bookinfo_each_second(7, options, 1260);
    (common::store_of(&spans).await, spans)
}

/// A console whose traces and metrics both come from the store (its `/prometheus`), the
/// store, and the spans it holds.
async fn console_on_store() -> (
    LoopbackServer,
    Vec<Span>,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
) {
    let (store, spans) = store_with_traffic().await;
    let query_http = store.addresses.query_http;
    let prometheus = format!("    url: http://{query_http}/prometheus\n");
    let yaml = config(&format!("http://{query_http}"), &prometheus);
    let (console, stop) = common::start_console(ConsoleOptions::default(), |_| yaml).await;
    (store, spans, console, stop)
}

/// The server spans of `workload`'s sidecars (what its inbound `reporter="destination"`
/// series count) that started in `(from_us, to_us]`.
fn served_by<'a>(spans: &'a [Span], workload: &str, from_us: u64, to_us: u64) -> Vec<&'a Span> {
    let pod = format!("~{workload}-");
    spans
        .iter()
        .filter(|s| s.kind() == "server")
        .filter(|s| {
            s.tag("node_id").is_some_and(|v| {
                let id = v.as_text();
                id.starts_with("sidecar~") && id.contains(&pod)
            })
        })
        .filter(|s| s.start_time > from_us && s.start_time <= to_us)
        .collect()
}

fn within(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= expected.abs() * tolerance
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_kialis_shape_with_the_bookinfo_series() {
    let (_store, spans, console, _stop) = console_on_store().await;
    let now_s = meshtrace_testkit::now() / 1_000_000;

    // The namespace: every metric by name, each series a Kiali Metric.
    let (status, body) = get(console, "/api/namespaces/bookinfo/metrics").await;
    assert_eq!(status, 200, "{body}");
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "grpc_received",
            "grpc_sent",
            "request_count",
            "request_duration_millis",
            "request_error_count",
            "request_size",
            "request_throughput",
            "response_size",
            "response_throughput",
            "tcp_closed",
            "tcp_opened",
            "tcp_received",
            "tcp_sent",
        ]
    );
    let count = &body["request_count"][0];
    assert_eq!(count["name"], "request_count");
    assert_eq!(count["labels"], json!({}));
    assert!(count.get("stat").is_none(), "{count}");
    // 30 minutes every 15 s, over traffic that began 22 minutes ago.
    let rates = values(count);
    assert!(rates.len() > 60, "{count}");
    assert!(rates.iter().any(|r| *r > 0.5), "{count}");
    assert_eq!(body["request_duration_millis"][0]["stat"], "avg");
    assert_eq!(body["grpc_sent"], Value::Null, "Bookinfo has no gRPC");

    // An app, inbound as the detail page asks: the quantiles then the average.
    let (status, body) = get(
        console,
        "/api/namespaces/bookinfo/apps/reviews/metrics?direction=inbound&reporter=destination\
         &filters[]=request_duration_millis&quantiles[]=0.5&quantiles[]=0.99&step=60&duration=600",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let stats: Vec<&str> = body["request_duration_millis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["stat"].as_str().unwrap())
        .collect();
    assert_eq!(stats, ["0.5", "0.99", "avg"]);
    assert_eq!(body.as_object().unwrap().len(), 1);

    // A service, grouped by the workloads behind it.
    let (status, body) = get(
        console,
        "/api/namespaces/bookinfo/services/reviews/metrics?direction=inbound&reporter=destination\
         &filters[]=request_count&byLabels[]=destination_workload",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut workloads: Vec<&str> = body["request_count"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["labels"]["destination_workload"].as_str().unwrap())
        .collect();
    workloads.sort_unstable();
    assert_eq!(workloads, ["reviews-v1", "reviews-v2", "reviews-v3"]);

    // A workload: its inbound request rate over 10 minutes is the spans' count over them.
    let path = format!(
        "/api/namespaces/bookinfo/workloads/reviews-v1/metrics?direction=inbound&reporter=destination\
         &filters[]=request_count&filters[]=request_error_count&rateInterval=10m&step=60&duration=600\
         &queryTime={now_s}"
    );
    let (status, body) = get(console, &path).await;
    assert_eq!(status, 200, "{body}");
    let rate = *values(&body["request_count"][0]).last().unwrap();
    // As in Kiali, the range starts at a multiple of the step, so its last point is at the last
    // whole minute, up to 59 s before `queryTime` (counting to `queryTime` failed the tolerance
    // about once in 40 runs, when the minute was nearly over).
    let end_us = now_s / 60 * 60 * 1_000_000;
    let served = served_by(&spans, "reviews-v1", end_us - 600_000_000, end_us);
    let expected = served.len() as f64 / 600.0;
    assert!(served.len() > 100, "{} spans", served.len());
    assert!(
        within(rate, expected, 0.1),
        "reviews-v1 inbound: {rate}/s from the metrics, {expected}/s from {} spans",
        served.len()
    );
    let errors = *values(&body["request_error_count"][0]).last().unwrap();
    assert!(
        errors > 0.0 && errors < rate,
        "{errors} errors/s of {rate}/s"
    );

    // Outbound (Kiali's default direction and reporter): what reviews-v1 asks of ratings.
    let (status, body) = get(
        console,
        "/api/namespaces/bookinfo/workloads/reviews-v1/metrics?filters[]=request_count\
         &byLabels[]=destination_service_name",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["request_count"][0]["labels"],
        json!({"destination_service_name": "ratings"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn heatmap_stats_are_the_spans_response_times() {
    let (_store, spans, console, _stop) = console_on_store().await;
    let now_s = meshtrace_testkit::now() / 1_000_000;

    // What the trace heatmap asks for a Bookinfo trace's workloads: avg, p50, p90, p99 over
    // 10m, 60m and 3h; inbound (reporter destination) and outbound (reporter source).
    let mut queries = Vec::new();
    for (workload, direction) in [
        ("productpage-v1", "inbound"),
        ("productpage-v1", "outbound"),
        ("details-v1", "inbound"),
        ("reviews-v1", "inbound"),
        ("reviews-v1", "outbound"),
        ("ratings-v1", "inbound"),
    ] {
        for interval in ["10m", "60m", "3h"] {
            queries.push(json!({
                "target": {"namespace": "bookinfo", "name": workload, "kind": "workload"},
                "queryTime": now_s,
                "interval": interval,
                "direction": direction,
                "avg": true,
                "quantiles": ["0.5", "0.9", "0.99"],
            }));
        }
    }
    let (status, body) = post_stats(console, &json!({"queries": queries})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["warnings"], Value::Null);
    assert_eq!(body["stats"].as_object().unwrap().len(), 18, "{body}");
    let times =
        &body["stats"]["bookinfo:workload:reviews-v1::inbound:10m:destination"]["responseTimes"];
    let names: Vec<&str> = times
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["0.5", "0.9", "0.99", "avg"]);
    let stat = |name: &str| {
        times
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap()["value"]
            .as_f64()
            .unwrap()
    };
    let end_us = now_s * 1_000_000;
    let mut ms: Vec<f64> = served_by(&spans, "reviews-v1", end_us - 600_000_000, end_us)
        .iter()
        .map(|s| s.duration as f64 / 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    assert!(
        within(stat("avg"), mean, 0.1),
        "avg {} vs {mean}",
        stat("avg")
    );
    // A quantile of a histogram is only known to its bucket.
    let median = ms[ms.len() / 2];
    let p50 = stat("0.5");
    let (lower, upper) = istio_bucket(median);
    assert!(
        p50 > lower && p50 <= upper,
        "p50 {p50} is not in the bucket ({lower}, {upper}] of the spans' median {median}"
    );
    assert!(
        body["stats"]["bookinfo:workload:reviews-v1::outbound:3h:source"]["responseTimes"]
            .as_array()
            .is_some_and(|t| t.len() == 4),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_prometheus_the_metrics_fail_and_the_traces_answer() {
    let (store, _spans) = store_with_traffic().await;
    let query_http = store.addresses.query_http;
    let yaml = config(
        &format!("http://{query_http}"),
        "    url: http://127.0.0.1:9\n",
    );
    let (console, _stop) = common::start_console(ConsoleOptions::default(), |_| yaml).await;
    let (status, body) = get(
        console,
        "/api/namespaces/bookinfo/workloads/reviews-v1/metrics",
    )
    .await;
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("Prometheus at http://127.0.0.1:9 is unreachable"),
        "{error}"
    );
    let (status, body) = get(
        console,
        "/api/namespaces/bookinfo/workloads/reviews-v1/traces?limit=5",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(!body["data"].as_array().unwrap().is_empty(), "{body}");
}
