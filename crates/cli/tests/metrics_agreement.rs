//! The console's metrics from either source mean the same numbers. One `meshtrace sim` run
//! sends its spans to a real `meshtrace store` and serves its proxies' Istio metrics, which a
//! real Prometheus (Debian's package) scrapes. Two `meshtrace serve` consoles read the same
//! traces, one with `prometheus.url` at that Prometheus, the other at the store's
//! `/prometheus` (metrics derived from the spans). Every Kiali metrics route, and the heatmap's
//! `POST /api/stats/metrics`, answers the same series from both; rates agree within 10 % (or
//! the counting noise of a series of few requests), averages within 10 % (or the noise of a few
//! requests), quantiles within the histogram buckets of the other source's neighbouring
//! quantiles or either side of one bucket bound.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{start_console, start_sim, start_store_with};
use meshtrace_testkit::prometheus::{RealPrometheus, istio_bucket};
use serde_json::{Value, json};

/// Seconds between Prometheus's scrapes, and between the store's samples (`--metrics-step`).
const SAMPLE_INTERVAL: f64 = 5.0;
/// Kiali's `rateInterval` of every route here, in seconds.
const RATE_INTERVAL: f64 = 30.0;

/// Labels whose values the two sources cannot share. The simulator writes what Istio's proxies
/// know from the mTLS handshake: `source_principal`/`destination_principal` (SPIFFE IDs) and
/// `connection_security_policy` (`mutual_tls` on the destination side); no span carries the
/// peer's certificate or the connection's TLS mode, so the store writes `unknown` for them
/// (docs/SIM.md and docs/STORE.md). Series grouped by them are summed without them.
const DIFFERENT: [&str; 3] = [
    "source_principal",
    "destination_principal",
    "connection_security_policy",
];

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Each quantile compared, with the two asked beside it (`q ∓ δ`).
const QUANTILES: [(&str, &str, &str); 4] = [
    ("0.5", "0.49", "0.51"),
    ("0.9", "0.89", "0.91"),
    ("0.95", "0.94", "0.96"),
    ("0.99", "0.985", "0.995"),
];

/// Kiali's `quantiles[]` parameters for `asked`, each with its neighbours.
fn quantile_params(asked: &[&str]) -> String {
    let mut out = String::new();
    for (q, below, above) in QUANTILES.iter().filter(|(q, ..)| asked.contains(q)) {
        for value in [below, q, above] {
            out.push_str(&format!("&quantiles[]={value}"));
        }
    }
    out
}

/// The quantile `value` of one source agrees with the other source's `other` when it lies
/// between the bucket holding the other's `q - δ` quantile and the bucket holding its `q + δ`
/// quantile. A quantile is interpolated inside its bucket, which is all a histogram knows; and
/// where the distribution is flat across buckets (Bookinfo's p99: 99 % of a hop's requests
/// under 5 ms, the slow 1 % at 25–50 ms) the requests a few seconds apart at the windows' ends
/// move it across them, which a slightly lower or higher quantile of the other shows.
/// Where the quantile's rank falls on a bucket bound itself (a median of 2,490 bytes beside
/// one of 2,510 at the 2,500-byte bound; a p99 of 24.96 ms at the 25 ms bound beside one of
/// 40.7 ms, where few requests lie above the bound), one request more or less on either side
/// puts the two in neighbouring buckets, and the one past the bound anywhere in its bucket:
/// they agree when one of them is at the shared bound (within 1 %), or when they are closer
/// than the narrower bucket is wide.
fn quantile_agrees(value: f64, other: f64, other_below: f64, other_above: f64) -> bool {
    let between = value >= istio_bucket(other_below).0 && value <= istio_bucket(other_above).1;
    let (mine, theirs) = (istio_bucket(value), istio_bucket(other));
    let shared = if mine.1 == theirs.0 {
        Some(mine.1)
    } else if theirs.1 == mine.0 {
        Some(mine.0)
    } else {
        None
    };
    let width = |(lower, upper): (f64, f64)| upper - lower;
    let at_bound =
        |bound: f64| (value - bound).abs() <= 0.01 * bound || (other - bound).abs() <= 0.01 * bound;
    between
        || shared.is_some_and(|bound| {
            at_bound(bound) || (value - other).abs() <= width(mine).min(width(theirs))
        })
}

/// Two averages of the same requests agree within 10 %, or, for a series of few requests,
/// within the noise of the requests the two windows do not share: up to a sample interval at
/// each end (see [`rates_agree`]), `edge` requests of the window's `requests` replaced by
/// others; the mean of `requests` values, `edge` of them drawn anew, moves by about
/// `sqrt(2·edge)/requests` of the values' spread, which for request durations and sizes is of
/// the order of the mean itself. Three of those is the allowance. `rate` is the series'
/// request rate (per second), when the answer has it.
fn averages_agree(a: f64, b: f64, rate: Option<f64>) -> bool {
    let larger = a.abs().max(b.abs());
    let allowance = match rate {
        Some(rate) if rate > 0.0 => {
            let requests = rate * RATE_INTERVAL;
            let edge = 2.0 * SAMPLE_INTERVAL * rate;
            (3.0 * (2.0 * edge).sqrt() / requests).max(0.10)
        }
        _ => 0.10,
    };
    (a - b).abs() <= allowance * larger
}

/// Two rates of the same requests agree within 10 %, or, for a series of few requests, within
/// the counting noise of their windows: Prometheus samples the counters at its scrapes and the
/// store at its bucket bounds, so the two windows differ by up to a sample interval at each end;
/// the requests there are a Poisson count, and 4 standard deviations of it is the allowance.
/// `per_request` is the series' amount per request (1 for a request rate, bytes for a
/// throughput).
fn rates_agree(a: f64, b: f64, per_request: f64) -> bool {
    let larger = a.abs().max(b.abs());
    let requests = larger / per_request.max(1.0);
    let edge = 2.0 * SAMPLE_INTERVAL * requests;
    let noise = 4.0 * edge.sqrt() * per_request.max(1.0) / (RATE_INTERVAL - SAMPLE_INTERVAL);
    (a - b).abs() <= (0.10 * larger).max(noise)
}

fn number(value: &Value) -> f64 {
    match value {
        Value::String(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {value}")),
        other => other
            .as_f64()
            .unwrap_or_else(|| panic!("not a number: {other}")),
    }
}

/// A series' identity: its metric name, its stat (`avg`, a quantile, or none) and its labels
/// less the [`DIFFERENT`] ones.
type Key = (String, String, BTreeMap<String, String>);

/// One metric's series of a Kiali metrics answer, keyed, with the [`DIFFERENT`] labels dropped
/// and the series that then share a key summed point by point.
fn series(metrics: &Value, at: &str) -> BTreeMap<Key, BTreeMap<i64, f64>> {
    let mut out: BTreeMap<Key, BTreeMap<i64, f64>> = BTreeMap::new();
    for metric in metrics
        .as_array()
        .unwrap_or_else(|| panic!("{at}: {metrics}"))
    {
        let labels: BTreeMap<String, String> = metric["labels"]
            .as_object()
            .unwrap_or_else(|| panic!("{at}: {metric}"))
            .iter()
            .filter(|(k, _)| !DIFFERENT.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let stat = metric["stat"].as_str().unwrap_or("").to_string();
        let dropped = metric["labels"].as_object().unwrap().len() != labels.len();
        assert!(
            !dropped || stat.is_empty(),
            "{at}: a {stat} series cannot be summed over {DIFFERENT:?}"
        );
        let name = metric["name"].as_str().unwrap().to_string();
        let points = out.entry((name, stat, labels)).or_default();
        for point in metric["datapoints"].as_array().unwrap() {
            let t = point[0].as_i64().unwrap_or_else(|| panic!("{at}: {point}"));
            *points.entry(t).or_default() += number(&point[1]);
        }
    }
    out
}

/// The same series, at the same times; rates within 10 % (or the counting noise of a series of
/// few requests), averages by [`averages_agree`], quantiles by [`quantile_agrees`]; NaN (no request in the
/// window) only where the other side has NaN too. Adds what disagrees to `bad`; answers the
/// number of values compared.
fn agree_metrics(real: &Value, ours: &Value, route: &str, bad: &mut Vec<String>) -> usize {
    let (r, o) = (real.as_object().unwrap(), ours.as_object().unwrap());
    assert_eq!(
        r.keys().collect::<Vec<_>>(),
        o.keys().collect::<Vec<_>>(),
        "{route}"
    );
    let mut all = BTreeMap::new();
    for (name, metrics) in r {
        let at = format!("{route} {name}");
        if metrics.is_null() || o[name].is_null() {
            assert_eq!(metrics, &o[name], "{at}: only one source has it");
            continue;
        }
        let (a, b) = (series(metrics, &at), series(&o[name], &at));
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "{at}: the series differ"
        );
        all.insert(name.clone(), (a, b));
    }
    let mut compared = 0;
    for (name, (a, b)) in &all {
        for (key, points) in a {
            let theirs = &b[key];
            assert_eq!(
                points.keys().collect::<Vec<_>>(),
                theirs.keys().collect::<Vec<_>>(),
                "{route} {key:?}: the times differ"
            );
            for (t, x) in points {
                let y = theirs[t];
                let ok = if x.is_nan() || y.is_nan() {
                    x.is_nan() && y.is_nan()
                } else if key.1 == "avg" {
                    // The requests behind the average: the same series' request rate.
                    let count = ("request_count".to_string(), String::new(), key.2.clone());
                    let rate = all
                        .get("request_count")
                        .and_then(|(counts, _)| counts.get(&count))
                        .and_then(|points| points.get(t));
                    averages_agree(*x, y, rate.copied())
                } else if key.1.is_empty() {
                    // A throughput is bytes: its noise is its requests', each of its size.
                    let per_request = if name.ends_with("_throughput") {
                        let (counts, _) = all
                            .get("request_count")
                            .unwrap_or_else(|| panic!("{route}: {name} without request_count"));
                        let count = ("request_count".to_string(), String::new(), key.2.clone());
                        x / counts[&count][t]
                    } else {
                        1.0
                    };
                    rates_agree(*x, y, per_request)
                } else {
                    let Some((_, below, above)) = QUANTILES.iter().find(|(q, ..)| *q == key.1)
                    else {
                        // A neighbour, only there to bound its quantile.
                        continue;
                    };
                    let at = |side: &BTreeMap<Key, BTreeMap<i64, f64>>, stat: &str| {
                        side[&(key.0.clone(), stat.to_string(), key.2.clone())][t]
                    };
                    quantile_agrees(*x, y, at(b, below), at(b, above))
                        && quantile_agrees(y, *x, at(a, below), at(a, above))
                };
                if !ok {
                    bad.push(format!(
                        "{route} {key:?} at {t}: {x} from Prometheus, {y} from the store"
                    ));
                }
                compared += 1;
            }
        }
    }
    compared
}

async fn get(client: &reqwest::Client, console: &str, route: &str) -> Value {
    let response = client
        .get(format!("{console}{route}"))
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "{console}{route}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// A console reading traces from the store and metrics from `prometheus`.
fn kiali_yaml(query_http: &str, prometheus: &str) -> String {
    format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: http://{query_http}\n\
         \x20   use_grpc: false\n  prometheus:\n    url: {prometheus}\n"
    )
}

/// The request-duration buckets, summed by bound, over the stats key's interval at `time`, of
/// the series a heatmap stats key (`bookinfo:workload:<name>::<direction>:<interval>:<reporter>`)
/// reads: for a failure's message.
async fn duration_buckets(client: &reqwest::Client, base: &str, key: &str, time: i64) -> String {
    let parts: Vec<&str> = key.split(':').collect();
    let [namespace, _, workload, _, direction, interval, reporter] = parts[..] else {
        return format!("(not a stats key: {key})");
    };
    let side = if direction == "inbound" {
        "destination"
    } else {
        "source"
    };
    let query = format!(
        "sum by (le) (increase(istio_request_duration_milliseconds_bucket{{reporter=\"{reporter}\",\
         {side}_workload_namespace=\"{namespace}\",{side}_workload=\"{workload}\"}}[{interval}]))"
    );
    let answer = meshtrace_testkit::http::json(
        client
            .get(format!("{base}/api/v1/query"))
            .query(&[("query", query.as_str()), ("time", &time.to_string())]),
    )
    .await;
    let mut buckets: Vec<(f64, String)> = answer["data"]["result"]
        .as_array()
        .map(|series| {
            series
                .iter()
                .map(|s| {
                    let le = s["metric"]["le"].as_str().unwrap_or("?").to_string();
                    let bound = le.parse().unwrap_or(f64::INFINITY);
                    (
                        bound,
                        format!("{le}: {}", s["value"][1].as_str().unwrap_or("?")),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    buckets
        .into_iter()
        .map(|(_, b)| b)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Waits for Prometheus's first successful scrape of the simulator (its target's health
/// `up`); answers when it was seen.
async fn first_scrape(client: &reqwest::Client, prometheus: &RealPrometheus) -> Instant {
    let started = Instant::now();
    loop {
        let targets = get(client, &prometheus.url(""), "/api/v1/targets?state=active").await;
        if targets["data"]["activeTargets"][0]["health"] == "up" {
            return Instant::now();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no successful scrape in 30 s: {targets} {}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_and_the_store_give_the_console_the_same_metrics() {
    // The store's samples every 5 s, as often as Prometheus scrapes.
    let store = start_store_with(&["--memory".as_ref()], &["--metrics-step", "5s"], None);
    let sim = start_sim(
        &store,
        &["--rate", "100", "--error-rate", "0.1", "--seed", "16"],
    );
    let prometheus = RealPrometheus::scraping("meshtrace-sim", &[&sim.metrics], 5).await;
    let real = start_console(&kiali_yaml(&store.query_http, &prometheus.url("")));
    let ours = start_console(&kiali_yaml(
        &store.query_http,
        &format!("http://{}/prometheus", store.query_http),
    ));
    let client = reqwest::Client::new();
    let first_scrape = first_scrape(&client, &prometheus).await;

    // The window: three points 10 s apart, each a rate over 30 s, ending 8 s ago (the last
    // scrape and the last spans are in). Its first rate starts past the first scrape: before
    // it Prometheus has no sample, and a rate over a window it covers in part is extrapolated
    // only half a scrape interval beyond its first sample. Kiali floors the start to a
    // multiple of the step: one more step.
    let (rate_interval, duration, step, lag) = (RATE_INTERVAL as u64, 20, 10, 8);
    let wait = Duration::from_secs(2 + rate_interval + duration + step + lag);
    tokio::time::sleep(wait.saturating_sub(first_scrape.elapsed())).await;
    let query_time = now_s() - lag as i64;
    let window = format!(
        "queryTime={query_time}&duration={duration}&step={step}&rateInterval={rate_interval}s"
    );
    let routes = [
        format!("/api/namespaces/bookinfo/metrics?{window}"),
        format!(
            "/api/namespaces/bookinfo/workloads/reviews-v2/metrics?{window}&direction=inbound\
             &reporter=destination&byLabels[]=response_code&byLabels[]=source_workload{}",
            quantile_params(&["0.5", "0.95", "0.99"])
        ),
        format!(
            "/api/namespaces/bookinfo/workloads/productpage-v1/metrics?{window}\
             &byLabels[]=destination_service_name&byLabels[]=response_flags{}",
            quantile_params(&["0.9"])
        ),
        format!(
            "/api/namespaces/bookinfo/apps/reviews/metrics?{window}&direction=inbound&reporter=both\
             &filters[]=request_count&filters[]=request_error_count&filters[]=request_throughput\
             &byLabels[]=destination_workload&byLabels[]=connection_security_policy"
        ),
        format!(
            "/api/namespaces/bookinfo/services/reviews/metrics?{window}&direction=inbound\
             &reporter=destination&byLabels[]=destination_workload&requestProtocol=http{}",
            quantile_params(&["0.5"])
        ),
        format!(
            "/api/namespaces/bookinfo/apps/details/metrics?{window}&direction=inbound\
             &reporter=destination&filters[]=request_count&byLabels[]=source_principal"
        ),
    ];
    let mut compared = 0;
    let mut bad = Vec::new();
    for route in &routes {
        let a = get(&client, &real.url, route).await;
        let b = get(&client, &ours.url, route).await;
        compared += agree_metrics(&a, &b, route, &mut bad);
    }
    eprintln!("{compared} datapoints compared");
    assert!(
        bad.is_empty(),
        "{} disagree:\n{}",
        bad.len(),
        bad.join("\n")
    );
    assert!(compared > 100, "{compared} datapoints compared");

    // The label that differs does differ, and says why it is dropped above.
    let principals = |answer: &Value| -> Vec<String> {
        answer["request_count"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                m["labels"]["source_principal"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    let route = routes.last().unwrap();
    assert_eq!(
        principals(&get(&client, &real.url, route).await),
        ["spiffe://cluster.local/ns/bookinfo/sa/bookinfo-productpage"]
    );
    assert_eq!(
        principals(&get(&client, &ours.url, route).await),
        ["unknown"]
    );

    // The heatmap's stats for Bookinfo's workloads, both ways, over Kiali's intervals.
    let stats_quantiles: Vec<&str> = QUANTILES
        .iter()
        .filter(|(q, ..)| ["0.5", "0.9", "0.99"].contains(q))
        .flat_map(|(q, below, above)| [*below, *q, *above])
        .collect();
    let mut queries = Vec::new();
    for workload in [
        "productpage-v1",
        "details-v1",
        "reviews-v1",
        "reviews-v2",
        "reviews-v3",
        "ratings-v1",
    ] {
        for direction in ["inbound", "outbound"] {
            for interval in ["10m", "60m", "3h"] {
                queries.push(json!({
                    "target": {"namespace": "bookinfo", "name": workload, "kind": "workload"},
                    "queryTime": query_time, "interval": interval, "direction": direction,
                    "avg": true, "quantiles": stats_quantiles,
                }));
            }
        }
    }
    let body = json!({ "queries": queries });
    let mut answers = Vec::new();
    for console in [&real, &ours] {
        let response = client
            .post(format!("{}/api/stats/metrics", console.url))
            .json(&body)
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        answers.push(response.json::<Value>().await.unwrap());
    }
    let (a, b) = (&answers[0]["stats"], &answers[1]["stats"]);
    let keys: Vec<&String> = a.as_object().unwrap().keys().collect();
    assert_eq!(keys, b.as_object().unwrap().keys().collect::<Vec<_>>());
    assert_eq!(keys.len(), queries.len(), "{}", answers[0]);
    let mut stats = 0;
    for key in keys {
        let times = |s: &Value| -> Vec<(String, f64)> {
            s[key]["responseTimes"]
                .as_array()
                .unwrap_or_else(|| panic!("{key}: {s}"))
                .iter()
                .map(|t| (t["name"].as_str().unwrap().to_string(), number(&t["value"])))
                .collect()
        };
        let (x, y) = (times(a), times(b));
        assert_eq!(
            x.iter().map(|t| &t.0).collect::<Vec<_>>(),
            y.iter().map(|t| &t.0).collect::<Vec<_>>(),
            "{key}"
        );
        let find = |side: &[(String, f64)], stat: &str| {
            side.iter()
                .find(|(n, _)| n == stat)
                .map_or(f64::NAN, |(_, v)| *v)
        };
        for ((name, p), (_, q)) in x.iter().zip(&y) {
            let ok = if name == "avg" {
                (p - q).abs() <= 0.10 * p.abs().max(q.abs())
            } else {
                let Some((_, below, above)) = QUANTILES.iter().find(|(q, ..)| q == name) else {
                    continue;
                };
                quantile_agrees(*p, *q, find(&y, below), find(&y, above))
                    && quantile_agrees(*q, *p, find(&x, below), find(&x, above))
            };
            if !ok {
                bad.push(format!(
                    "{key} {name}: {p} from Prometheus, {q} from the store"
                ));
            }
            stats += 1;
        }
    }
    eprintln!("{stats} stats compared");
    if !bad.is_empty() {
        // What each source's histogram holds for the series that disagree, to tell a quantile
        // on a bucket's edge from requests one source does not have.
        for line in &bad {
            eprintln!("{line}");
            let key = line.split(' ').next().unwrap_or_default();
            for (source, base) in [
                ("Prometheus", prometheus.url("")),
                (
                    "the store",
                    format!("http://{}/prometheus", store.query_http),
                ),
            ] {
                let buckets = duration_buckets(&client, &base, key, query_time).await;
                eprintln!("{key} from {source}: {buckets}");
            }
        }
    }
    assert!(
        bad.is_empty(),
        "{} disagree:\n{}",
        bad.len(),
        bad.join("\n")
    );
    // Every query has its four stats but those of workloads that call nothing.
    let empty: Vec<&String> = a
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| v["responseTimes"].as_array().is_some_and(Vec::is_empty))
        .map(|(k, _)| k)
        .collect();
    eprintln!("no stats: {empty:?}");
    assert_eq!(stats, 4 * (queries.len() - empty.len()), "{empty:?}");
    drop(sim);
}
