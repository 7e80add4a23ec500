//! Against a real Prometheus (Debian's package, through `testkit::prometheus`) holding Istio
//! series written here, and against meshtrace's own Prometheus API over the same samples: the
//! console's answers are the numbers worked out by hand from the samples, and the two sources
//! give the same answers, series for series.

use std::net::SocketAddr;
use std::sync::Arc;

use meshtrace_console::ConsoleOptions;
use meshtrace_metrics::MemorySource;
use meshtrace_metrics::http::{ApiOptions, router};
use meshtrace_metrics::promql::{Compat, EngineOptions};
use meshtrace_testkit::prometheus::{RealPrometheus, prometheus_version};
use serde_json::{Value, json};

use crate::{common, config, get, post_stats, values};

/// The first sample (a multiple of 15 and 60 s), then one every 15 s for an hour.
const BASE: i64 = 1_600_000_200;
const SCRAPES: i64 = 240;
const BUCKETS: [&str; 20] = [
    "0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000",
    "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf",
];

fn labels(reporter: &str) -> String {
    format!(
        "reporter=\"{reporter}\",source_workload=\"productpage-v1\",source_workload_namespace=\"bookinfo\",\
         source_canonical_service=\"productpage\",destination_workload=\"reviews-v1\",\
         destination_workload_namespace=\"bookinfo\",destination_canonical_service=\"reviews\",\
         destination_service_name=\"reviews\",destination_service_namespace=\"bookinfo\",\
         request_protocol=\"http\",response_flags=\"-\""
    )
}

/// productpage-v1 → reviews-v1, reported by both proxies: 1.8 requests/s answered 200 and
/// 0.2/s answered 503; every 15 s half of the 30 requests take 5–10 ms and half 10–25 ms,
/// 450 ms in all.
fn openmetrics() -> String {
    let mut out = String::from("# TYPE istio_requests counter\n");
    for reporter in ["source", "destination"] {
        let l = labels(reporter);
        for (code, per_scrape) in [("200", 27), ("503", 3)] {
            for k in 0..=SCRAPES {
                let t = BASE + 15 * k;
                out.push_str(&format!(
                    "istio_requests_total{{{l},response_code=\"{code}\"}} {} {t}\n",
                    per_scrape * k
                ));
            }
        }
    }
    out.push_str("# TYPE istio_request_duration_milliseconds histogram\n");
    for reporter in ["source", "destination"] {
        let l = labels(reporter);
        for k in 0..=SCRAPES {
            let t = BASE + 15 * k;
            for le in BUCKETS {
                let per_scrape = match le {
                    "0.5" | "1" | "5" => 0,
                    "10" => 15,
                    _ => 30,
                };
                out.push_str(&format!(
                    "istio_request_duration_milliseconds_bucket{{{l},le=\"{le}\"}} {} {t}\n",
                    per_scrape * k
                ));
            }
            out.push_str(&format!(
                "istio_request_duration_milliseconds_sum{{{l}}} {} {t}\n",
                450 * k
            ));
            out.push_str(&format!(
                "istio_request_duration_milliseconds_count{{{l}}} {} {t}\n",
                30 * k
            ));
        }
    }
    out.push_str("# EOF\n");
    out
}

/// meshtrace's Prometheus API over the same samples, as the installed Prometheus evaluates.
async fn meshtrace_api(text: &str) -> SocketAddr {
    let (major, minor) = prometheus_version();
    let compat = Compat::prometheus(major, minor);
    let engine = EngineOptions {
        compat,
        ..EngineOptions::default()
    };
    let options = ApiOptions {
        engine,
        ..ApiOptions::default()
    };
    let source = MemorySource::from_openmetrics(text).unwrap();
    let app = axum::Router::new().nest("/prometheus", router(Arc::new(source), options));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Two answers that agree: the same keys, series and labels, values within 1e-9.
fn agree(a: &Value, b: &Value, at: &str) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let (kx, ky): (Vec<_>, Vec<_>) = (x.keys().collect(), y.keys().collect());
            assert_eq!(kx, ky, "{at}");
            for (k, v) in x {
                agree(v, &y[k], &format!("{at}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{at}: {a} vs {b}");
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                agree(v, w, &format!("{at}[{i}]"));
            }
        }
        (Value::String(x), Value::String(y)) if x != y => {
            let (p, q): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!((p - q).abs() <= 1e-9 * p.abs().max(1.0), "{at}: {x} vs {y}");
        }
        (Value::Number(x), Value::Number(y)) => {
            let (p, q) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((p - q).abs() <= 1e-9 * p.abs().max(1.0), "{at}: {x} vs {y}");
        }
        _ => assert_eq!(a, b, "{at}"),
    }
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= 1e-6 * expected.abs().max(1.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_and_meshtrace_give_the_numbers_of_the_samples() {
    let text = openmetrics();
    let prometheus = RealPrometheus::start(&text).await;
    let meshtrace = meshtrace_api(&text).await;
    let consoles = [
        format!("    url: http://{}\n", prometheus.addr),
        format!("    url: http://{meshtrace}/prometheus\n"),
    ];
    let mut started = Vec::new();
    for yaml in &consoles {
        let yaml = config("http://127.0.0.1:9", yaml);
        started.push(common::start_console(ConsoleOptions::default(), |_| yaml).await);
    }
    let end = BASE + 15 * SCRAPES;
    let window = format!("queryTime={end}&duration=1800&step=60");
    let routes = [
        format!("/api/namespaces/bookinfo/metrics?{window}"),
        format!(
            "/api/namespaces/bookinfo/workloads/reviews-v1/metrics?{window}&direction=inbound\
             &reporter=destination&quantiles[]=0.5&quantiles[]=0.99&byLabels[]=response_code"
        ),
        format!(
            "/api/namespaces/bookinfo/workloads/productpage-v1/metrics?{window}&quantiles[]=0.9"
        ),
        format!(
            "/api/namespaces/bookinfo/apps/reviews/metrics?{window}&direction=inbound&reporter=both\
             &filters[]=request_count&filters[]=request_error_count&requestProtocol=http"
        ),
        format!(
            "/api/namespaces/bookinfo/services/reviews/metrics?{window}&direction=inbound\
             &reporter=source,destination&rateFunc=irate&rateInterval=2m"
        ),
    ];
    let mut answers = Vec::new();
    for (console, _) in &started {
        let mut these = Vec::new();
        for route in &routes {
            let (status, body) = get(*console, route).await;
            assert_eq!(status, 200, "{route}: {body}");
            these.push(body);
        }
        answers.push(these);
    }
    for (i, route) in routes.iter().enumerate() {
        agree(&answers[0][i], &answers[1][i], route);
    }

    // The numbers, from the samples: 2 requests/s, 0.2 of them errors, 15 ms on average,
    // half under 10 ms (p50 = 10), p99 = 10 + 15 × 0.98.
    let inbound = &answers[0][1];
    let count = inbound["request_count"].as_array().unwrap();
    assert_eq!(count.len(), 2, "by response_code: {inbound}");
    assert_eq!(count[0]["labels"], json!({"response_code": "200"}));
    let ok = values(&count[0]);
    assert_eq!(ok.len(), 31, "30 minutes every minute, both ends included");
    assert!(ok.iter().all(|v| close(*v, 1.8)), "{ok:?}");
    assert_eq!(
        inbound["request_count"][0]["datapoints"][0][0],
        json!(BASE + 1800)
    );
    let failed = values(&inbound["request_error_count"][0]);
    assert!(failed.iter().all(|v| close(*v, 0.2)), "{failed:?}");
    assert_eq!(
        inbound["request_error_count"][0]["labels"],
        json!({"response_code": "503"})
    );
    let durations = inbound["request_duration_millis"].as_array().unwrap();
    let stat = |name: &str| {
        let m = durations.iter().find(|m| m["stat"] == name).unwrap();
        values(m)[0]
    };
    assert!(close(stat("avg"), 15.0), "{}", stat("avg"));
    assert!(close(stat("0.5"), 10.0), "{}", stat("0.5"));
    assert!(close(stat("0.99"), 24.7), "{}", stat("0.99"));
    // requestProtocol=http: both reporters counted, no gRPC part.
    let app = &answers[0][3];
    assert!(
        values(&app["request_count"][0])
            .iter()
            .all(|v| close(*v, 4.0))
    );
    // Outbound from productpage-v1: the source reporter only.
    let outbound = &answers[0][2];
    assert!(
        values(&outbound["request_count"][0])
            .iter()
            .all(|v| close(*v, 2.0))
    );
    assert_eq!(outbound["tcp_sent"], Value::Null);

    // The heatmap's stats, from both.
    let query = |interval: &str, direction: &str, name: &str| {
        json!({
            "target": {"namespace": "bookinfo", "name": name, "kind": "workload"},
            "queryTime": end, "interval": interval, "direction": direction,
            "avg": true, "quantiles": ["0.5", "0.9", "0.99"],
        })
    };
    let body = json!({"queries": [
        query("10m", "inbound", "reviews-v1"),
        query("60m", "inbound", "reviews-v1"),
        query("10m", "outbound", "productpage-v1"),
        query("10m", "inbound", "ratings-v1"),
    ]});
    let (status, real) = post_stats(started[0].0, &body).await;
    assert_eq!(status, 200, "{real}");
    let (status, ours) = post_stats(started[1].0, &body).await;
    assert_eq!(status, 200, "{ours}");
    agree(&real, &ours, "stats");
    let times =
        real["stats"]["bookinfo:workload:reviews-v1::inbound:10m:destination"]["responseTimes"]
            .as_array()
            .unwrap_or_else(|| panic!("{real}"))
            .clone();
    let got: Vec<(&str, f64)> = times
        .iter()
        .map(|t| (t["name"].as_str().unwrap(), t["value"].as_f64().unwrap()))
        .collect();
    let expected = [
        ("0.5", 10.0),
        ("0.9", 10.0 + 15.0 * 0.8),
        ("0.99", 24.7),
        ("avg", 15.0),
    ];
    assert_eq!(got.len(), expected.len(), "{real}");
    for ((name, value), (want_name, want)) in got.iter().zip(expected) {
        assert_eq!(*name, want_name);
        assert!(close(*value, want), "{name}: {value} vs {want}");
    }
    assert_eq!(
        real["stats"]["bookinfo:workload:ratings-v1::inbound:10m:destination"],
        json!({"responseTimes": []}),
        "no series: no stat"
    );
}
