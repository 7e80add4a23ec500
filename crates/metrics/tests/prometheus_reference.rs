//! The real Prometheus is the reference: the same samples go into a Prometheus started here
//! (through `promtool tsdb create-blocks-from openmetrics`) and into a `MemorySource` behind
//! meshtrace's query API, both on loopback ports; every query of the table is asked of both,
//! instant at several times and as range queries at several resolutions, and the answers must
//! agree value for value. The table holds the queries Kiali sends (graph, response time,
//! throughput, security policy, metrics and stats, health) and edge cases.

mod common;

use common::bookinfo::{self, BASE};
use common::compare::{Answer, compare};
use common::{RealPrometheus, Served, prometheus_version};
use meshtrace_metrics::MemorySource;
use meshtrace_metrics::http::ApiOptions;
use meshtrace_metrics::promql::{Compat, EngineOptions};

/// Kiali's L13 grouping labels (graph/telemetry/istio/istio.go).
const L13: &str = "source_cluster,source_workload_namespace,source_workload,source_canonical_service,source_canonical_revision,destination_cluster,destination_service_namespace,destination_service,destination_service_name,destination_workload_namespace,destination_workload,destination_canonical_service,destination_canonical_revision";

/// Kiali's queries, shaped as graph/telemetry/istio/istio.go, its appenders,
/// prometheus/metrics.go and business/metrics.go build them for namespace `bookinfo`.
fn kiali_queries() -> Vec<String> {
    let g = format!("{L13},request_protocol,response_code,grpc_response_status,response_flags");
    let sec = format!(
        "{},source_principal,destination_principal,connection_security_policy",
        L13.replace(",destination_service,", ",")
    );
    let ns_sel = |m: &str, sel: &str, w: &str, by: &str| {
        format!("round(sum(rate({m}{{{sel}}} [{w}])) by ({by}) > 0,0.001)")
    };
    let sel0 = r#"reporter=~"waypoint|source",source_workload_namespace!="bookinfo",destination_workload_namespace="unknown",destination_workload="unknown",destination_service=~"^.+\\.bookinfo\\..+$""#;
    let sel2 = r#"reporter=~"waypoint|destination",destination_workload_namespace="bookinfo""#;
    let sel3 = r#"reporter=~"waypoint|source",source_workload_namespace="bookinfo""#;
    let rt_in = r#"reporter=~"waypoint|destination",destination_service_namespace="bookinfo""#;
    let rt_out = r#"reporter=~"waypoint|source",source_workload_namespace="bookinfo""#;
    let pp = r#"reporter="source",source_workload_namespace="bookinfo",source_canonical_service="productpage""#;
    let reviews_in = r#"reporter="destination",destination_service_name="reviews",destination_service_namespace="bookinfo""#;
    let err = r#"response_code=~"^0$|^[4-5]\\d\\d$""#;
    let grpc_err = r#"grpc_response_status=~"^[1-9]$|^1[0-6]$",response_code!~"^0$|^[4-5]\\d\\d$""#;
    let stats = r#"reporter="destination",destination_workload_namespace="bookinfo",destination_workload="reviews-v2""#;
    vec![
        // Graph: the namespace queries, instant, rounded (istio.go).
        ns_sel("istio_requests_total", sel0, "60s", &g),
        ns_sel("istio_requests_total", sel2, "60s", &g),
        ns_sel("istio_requests_total", sel3, "60s", &g),
        ns_sel("istio_requests_total", sel3, "600s", &g),
        ns_sel("istio_request_messages_total", sel3, "60s", L13),
        ns_sel("istio_tcp_sent_bytes_total", &format!("app!=\"ztunnel\",{sel3}"), "60s", &format!("app,{L13},response_flags")),
        format!(r#"sum(rate(istio_requests_total{{reporter="source",source_workload_namespace="bookinfo"}}[60s])) by ({g}) > 0"#),
        // Node graph (workload, incoming).
        format!(r#"sum(rate(istio_requests_total{{reporter=~"waypoint|destination",destination_workload_namespace="bookinfo",destination_workload="reviews-v2"}} [60s])) by ({g})"#),
        // Appenders: response time (quantile and average), throughput, security policy.
        format!("histogram_quantile(0.95, sum(rate(istio_request_duration_milliseconds_bucket{{{rt_in}}}[60s])) by (le,{L13},request_protocol)) > 0"),
        format!("histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{{{rt_out}}}[60s])) by (le,{L13},request_protocol)) > 0"),
        format!("sum(rate(istio_request_duration_milliseconds_sum{{{rt_in}}}[60s])) by ({L13},request_protocol) / sum(rate(istio_request_duration_milliseconds_count{{{rt_in}}}[60s])) by ({L13},request_protocol) > 0"),
        format!(r#"sum(rate(istio_response_bytes_sum{{reporter=~"waypoint|destination",source_workload_namespace!="bookinfo",destination_service_namespace="bookinfo"}}[60s])) by ({L13}) > 0"#),
        format!(r#"(sum(rate(istio_requests_total{{reporter=~"waypoint|destination",source_workload_namespace="bookinfo"}}[60s])) by ({sec}) > 0) OR (sum(rate(istio_tcp_sent_bytes_total{{app!="ztunnel",reporter=~"waypoint|destination",source_workload_namespace="bookinfo"}}[60s])) by ({sec}) > 0)"#),
        // Metrics tabs (range queries in Kiali): counts, errors, histograms, bytes, TCP.
        format!("sum(rate(istio_requests_total{{{pp}}}[1m])) by (destination_service_name)"),
        format!("sum(irate(istio_requests_total{{{pp}}}[1m])) by (response_code)"),
        format!("(sum(rate(istio_requests_total{{{pp},{err}}}[1m])) by (destination_service_name) OR sum(rate(istio_requests_total{{{pp},{grpc_err}}}[1m])) by (destination_service_name))"),
        format!("sum(rate(istio_request_duration_milliseconds_sum{{{reviews_in}}}[1m])) / sum(rate(istio_request_duration_milliseconds_count{{{reviews_in}}}[1m]))"),
        format!("sum(rate(istio_request_duration_milliseconds_sum{{{reviews_in}}}[1m])) by (destination_workload) / sum(rate(istio_request_duration_milliseconds_count{{{reviews_in}}}[1m])) by (destination_workload)"),
        format!("histogram_quantile(0.5, sum(rate(istio_request_duration_milliseconds_bucket{{{reviews_in}}}[1m])) by (le))"),
        format!("histogram_quantile(0.95, sum(rate(istio_request_duration_milliseconds_bucket{{{reviews_in}}}[1m])) by (le,destination_workload))"),
        format!("histogram_quantile(0.999, sum(rate(istio_request_duration_milliseconds_bucket{{{reviews_in}}}[1m])) by (le))"),
        format!("sum(rate(istio_request_bytes_sum{{{pp}}}[1m])) by (destination_service_name)"),
        r#"sum(rate(istio_tcp_received_bytes_total{reporter="source",source_workload_namespace="bookinfo",source_canonical_service="ratings"}[1m])) by (destination_service_name)"#.to_string(),
        // Stats (trace-details heatmaps, percentile filter), instant.
        format!("sum(rate(istio_request_duration_milliseconds_sum{{{stats}}}[10m])) / sum(rate(istio_request_duration_milliseconds_count{{{stats}}}[10m]))"),
        format!("histogram_quantile(0.9, sum(rate(istio_request_duration_milliseconds_bucket{{{stats}}}[10m])) by (le))"),
        format!("histogram_quantile(0.75, sum(rate(istio_request_duration_milliseconds_bucket{{{stats}}}[1h])) by (le))"),
        // Health (prometheus/metrics.go) and label discovery (prometheus/client.go).
        r#"rate(istio_requests_total{destination_service_namespace="bookinfo",source_workload_namespace!="bookinfo",destination_cluster="Kubernetes"}[1m]) > 0"#.to_string(),
        r#"rate(istio_requests_total{destination_service_name="reviews",destination_service_namespace="bookinfo",destination_cluster=~"Kubernetes|unknown"}[1m]) > 0"#.to_string(),
        r#"count({__name__=~"istio_requests_total|istio_request_duration_milliseconds_bucket|istio_request_messages_total",destination_workload="reviews-v3"}) by (__name__)"#.to_string(),
    ]
}

/// Edge cases: resets, gaps, late starts, jitter, offsets, `@`, NaN, broken histograms,
/// `without`, `on`/`ignoring`, `group_left`/`group_right`, `bool`, set operators, scalars,
/// empty results and Prometheus's execution errors.
fn edge_queries() -> Vec<String> {
    let by_code = r#"sum by (destination_workload, response_code) (rate(istio_requests_total{reporter="destination"}[1m]))"#;
    let by_wl =
        r#"sum by (destination_workload) (rate(istio_requests_total{reporter="destination"}[1m]))"#;
    [
        "rate(edge_reset_total[1m])",
        "rate(edge_reset_total[5m])",
        "increase(edge_reset_total[2m])",
        "irate(edge_reset_total[1m])",
        "delta(edge_gauge[5m])",
        "edge_reset_total[2m]",
        "edge_reset_total",
        "sum without (instance) (rate(edge_reset_total[2m]))",
        "sum without (job) (rate(edge_reset_total[2m]))",
        "avg by (job) (edge_reset_total)",
        "rate(edge_reset_total[1m] offset 5m)",
        "rate(edge_reset_total[1m] offset -2m)",
        "edge_reset_total offset 10m",
        "rate(edge_reset_total[3m] @ 1700001200)",
        "edge_gauge @ 1700000905.5",
        "sum(rate(edge_reset_total[1m] @ end()))",
        "edge_reset_total @ start()",
        "edge_gauge",
        "edge_gauge > 0",
        "edge_gauge == bool edge_gauge",
        "edge_gauge != edge_gauge",
        "sum by (kind) (edge_gauge)",
        "avg(edge_gauge)",
        "max(edge_gauge)",
        "min(edge_gauge)",
        "count(edge_gauge)",
        "-edge_gauge",
        "edge_gauge * 1e10",
        "round(edge_gauge, 0.5)",
        "round(rate(edge_reset_total[1m]))",
        "histogram_quantile(0.9, rate(edge_latency_bucket[5m]))",
        "histogram_quantile(0.5, edge_latency_bucket)",
        "histogram_quantile(0, edge_latency_bucket)",
        "histogram_quantile(1, edge_latency_bucket)",
        "histogram_quantile(-0.5, edge_latency_bucket)",
        "histogram_quantile(1.5, edge_latency_bucket)",
        "histogram_quantile(NaN, edge_latency_bucket)",
        "histogram_quantile(0.2, sum by (le) (rate(edge_latency_bucket[2m])))",
        r#"rate(istio_requests_total{destination_workload="details-v1"}[1m]) > bool 0.3"#,
        r#"0.3 < bool rate(istio_requests_total{destination_workload="details-v1"}[1m])"#,
        r#"0.3 < rate(istio_requests_total{destination_workload="details-v1"}[1m])"#,
        r#"istio_requests_total{destination_workload="ratings-v1",response_code="200"} > 300"#,
        &format!("{by_code} / ignoring(response_code) group_left {by_wl}"),
        &format!("{by_code} / on(destination_workload) group_left {by_wl}"),
        &format!("{by_wl} * on(destination_workload) group_right(response_code) {by_code}"),
        &format!("{by_wl} / on(destination_workload) {by_wl}"),
        &format!("{by_code} and on(destination_workload) ({by_wl} > 2)"),
        &format!("{by_code} unless on(response_code) ({by_code} > 0.5)"),
        &format!("{by_wl} or {by_code}"),
        &format!("{by_code} > bool ignoring(response_code) group_left {by_wl}"),
        &format!("{by_code} % 0.1"),
        &format!("2 ^ {by_wl}"),
        &format!("1 / ({by_code} - {by_code})"),
        "count(istio_requests_total) by (reporter)",
        "sum(istio_requests_total) without (response_code, response_flags, grpc_response_status)",
        "max by (destination_service_name) (istio_response_bytes_sum)",
        "sum(rate(istio_request_messages_total[1m]))",
        "nonexistent_metric",
        r#"rate(istio_requests_total{reporter="none"}[1m])"#,
        "-2 ^ 2",
        "(1 + 2) * 3 % 4",
        "1e-7",
        "1.5e21 / 3",
        "2 > bool 1",
        r#""a string""#,
        "rate({__name__=~\"edge_dup_.*\"}[1m])",
        "edge_gauge + on() edge_gauge",
        "edge_reset_total / ignoring(instance) edge_reset_total",
    ]
    .into_iter()
    .map(str::to_string)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_query_agrees_with_a_real_prometheus() {
    let (major, minor) = prometheus_version();
    let text = bookinfo::openmetrics();
    let prometheus = RealPrometheus::start(&text).await;
    let source = MemorySource::from_openmetrics(&text).unwrap();
    assert!(
        source.series().len() > 300,
        "{} series",
        source.series().len()
    );
    let options = ApiOptions {
        engine: EngineOptions {
            compat: Compat::prometheus(major, minor),
            ..EngineOptions::default()
        },
        ..ApiOptions::default()
    };
    let ours = Served::start(source, options).await;
    let client = reqwest::Client::new();

    // Instant: on the scrape grid, between scrapes, at the last scrape, exactly one lookback
    // after it, and past the lookback. Range: the whole half hour every 15 s, an offset range
    // every minute, and a window reaching past the data every 7 s.
    let times: Vec<String> = ["600", "1234.567", "1800", "2100", "2400"]
        .iter()
        .map(|t| format!("{}", BASE as f64 + t.parse::<f64>().unwrap()))
        .collect();
    let ranges = [
        (0.0, 1800.0, "15s"),
        (303.5, 1795.0, "60"),
        (1500.0, 2200.0, "7"),
    ];

    let mut kiali_agree = 0;
    let mut edge_agree = 0;
    let mut failures = Vec::new();
    let mut kiali_with_data = 0;
    let table: Vec<(bool, String)> = kiali_queries()
        .into_iter()
        .map(|q| (true, q))
        .chain(edge_queries().into_iter().map(|q| (false, q)))
        .collect();
    for (kiali, query) in &table {
        let mut agreed = true;
        let mut had_data = false;
        let mut asks: Vec<(&str, Vec<(&str, String)>)> = times
            .iter()
            .map(|t| {
                (
                    "/api/v1/query",
                    vec![("query", query.clone()), ("time", t.clone())],
                )
            })
            .collect();
        for (start, end, step) in ranges {
            asks.push((
                "/api/v1/query_range",
                vec![
                    ("query", query.clone()),
                    ("start", format!("{}", BASE as f64 + start)),
                    ("end", format!("{}", BASE as f64 + end)),
                    ("step", step.to_string()),
                ],
            ));
        }
        for (path, params) in &asks {
            let theirs = Answer::get(&client, &prometheus.url(path), params).await;
            let mine = Answer::get(&client, &ours.url(path), params).await;
            had_data |= theirs.status == 200 && !theirs.is_empty();
            if let Err(why) = compare(&mine, &theirs) {
                agreed = false;
                failures.push(format!("{path} {params:?}\n  {why}"));
            }
        }
        if *kiali {
            kiali_agree += usize::from(agreed);
            kiali_with_data += usize::from(had_data);
        } else {
            edge_agree += usize::from(agreed);
        }
    }
    let (kiali_total, edge_total) = (kiali_queries().len(), edge_queries().len());
    println!(
        "Prometheus {major}.{minor}: {kiali_agree}/{kiali_total} Kiali queries and {edge_agree}/{edge_total} edge cases agree \
         ({} instant times and {} ranges each); {kiali_with_data} Kiali queries returned data",
        times.len(),
        ranges.len()
    );
    assert!(
        failures.is_empty(),
        "{} disagreements with Prometheus {major}.{minor}:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The comparison means something only if the queries found series: all but the gRPC
    // message query (Bookinfo's data has no gRPC streams) must.
    assert!(
        kiali_with_data >= kiali_total - 1,
        "only {kiali_with_data} Kiali queries had data"
    );

    // Requests both must refuse the same way (status and errorType), and the series and label
    // listings, whose data must be the same.
    let mut refused = 0;
    for (path, params) in bad_requests() {
        let theirs = Answer::get(&client, &prometheus.url(path), &params).await;
        let mine = Answer::get(&client, &ours.url(path), &params).await;
        assert_ne!(theirs.status, 200, "Prometheus accepted {path} {params:?}");
        compare(&mine, &theirs).unwrap_or_else(|why| panic!("{path} {params:?}: {why}"));
        refused += 1;
    }
    let mut listed = 0;
    for (path, params) in listing_requests() {
        let theirs = Answer::get(&client, &prometheus.url(path), &params).await;
        let mine = Answer::get(&client, &ours.url(path), &params).await;
        assert_eq!(theirs.status, 200, "{path} {params:?}: {}", theirs.body);
        assert_eq!(mine.status, 200, "{path} {params:?}: {}", mine.body);
        assert_eq!(
            sorted(&mine.body["data"]),
            sorted(&theirs.body["data"]),
            "{path} {params:?}"
        );
        listed += 1;
    }
    println!("{refused} bad requests refused alike; {listed} series and label listings identical");
}

fn p(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
}

type Request = (&'static str, Vec<(&'static str, String)>);

/// Requests Prometheus refuses; meshtrace must give the same status and errorType.
fn bad_requests() -> Vec<Request> {
    let (start, end) = (BASE.to_string(), (BASE + 600).to_string());
    let range = |q: &str, step: &str| {
        p(&[
            ("query", q),
            ("start", &start),
            ("end", &end),
            ("step", step),
        ])
    };
    vec![
        ("/api/v1/query", p(&[("query", "sum(rate(x[5m])) by (a")])),
        ("/api/v1/query", p(&[("query", "foo +")])),
        ("/api/v1/query", p(&[("query", "rate(foo)")])),
        ("/api/v1/query", p(&[("query", "1 > 2")])),
        ("/api/v1/query", p(&[("query", r#"foo{a=~"("}"#)])),
        ("/api/v1/query", p(&[("query", "")])),
        ("/api/v1/query", p(&[("query", "up"), ("time", "abc")])),
        (
            "/api/v1/query",
            p(&[("query", "up"), ("time", "2023-11-14 22:13:20")]),
        ),
        ("/api/v1/query", p(&[("query", "up"), ("timeout", "abc")])),
        ("/api/v1/query_range", range("up", "0")),
        ("/api/v1/query_range", range("up", "-15")),
        ("/api/v1/query_range", range("up", "abc")),
        ("/api/v1/query_range", range("up[5m]", "15")),
        ("/api/v1/query_range", range(r#""text""#, "15")),
        ("/api/v1/query_range", range("sum(", "15")),
        (
            "/api/v1/query_range",
            p(&[
                ("query", "up"),
                ("start", &end),
                ("end", &start),
                ("step", "15"),
            ]),
        ),
        (
            "/api/v1/query_range",
            p(&[("query", "up"), ("end", &end), ("step", "15")]),
        ),
        (
            "/api/v1/query_range",
            p(&[
                ("query", "up"),
                ("start", "0"),
                ("end", "11001"),
                ("step", "1"),
            ]),
        ),
        (
            "/api/v1/query_range",
            p(&[
                ("query", "up"),
                ("start", "0"),
                ("end", "1e9"),
                ("step", "0.001"),
            ]),
        ),
        ("/api/v1/series", p(&[])),
        ("/api/v1/series", p(&[("match[]", "sum(up)")])),
        ("/api/v1/series", p(&[("match[]", "{}")])),
        ("/api/v1/labels", p(&[("start", "yesterday")])),
        ("/api/v1/label/not-a-name/values", p(&[])),
    ]
}

/// Listings both must give alike.
fn listing_requests() -> Vec<Request> {
    let (start, end) = (BASE.to_string(), (BASE + 1800).to_string());
    let after = (BASE + 4000).to_string();
    vec![
        (
            "/api/v1/series",
            p(&[
                ("match[]", "edge_reset_total"),
                ("start", &start),
                ("end", &end),
            ]),
        ),
        (
            "/api/v1/series",
            p(&[
                ("match[]", r#"{__name__=~"edge_.*",job!="x"}"#),
                ("match[]", "edge_gauge"),
            ]),
        ),
        (
            "/api/v1/series",
            p(&[("match[]", "edge_reset_total"), ("start", &after)]),
        ),
        ("/api/v1/labels", p(&[])),
        ("/api/v1/labels", p(&[("match[]", "edge_latency_bucket")])),
        ("/api/v1/label/__name__/values", p(&[])),
        (
            "/api/v1/label/__name__/values",
            p(&[("start", "0"), ("end", &end)]),
        ),
        (
            "/api/v1/label/destination_workload/values",
            p(&[("match[]", r#"istio_requests_total{reporter="source"}"#)]),
        ),
        ("/api/v1/label/nothing/values", p(&[])),
    ]
}

/// A JSON array with its items in a fixed order (the listings' order is not part of the API).
fn sorted(value: &serde_json::Value) -> serde_json::Value {
    match value.as_array() {
        Some(items) => {
            let mut items = items.clone();
            items.sort_by_key(std::string::ToString::to_string);
            serde_json::Value::Array(items)
        }
        None => value.clone(),
    }
}
