//! Jaeger's metrics API, byte for byte where Jaeger's is fixed: the `MetricFamily` shape
//! (compared with answers written from Jaeger's source, `tests/fixtures/jaeger_metrics`), the
//! error envelope and its messages, `minstep`, and the 501 of a store that derives nothing.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use meshtrace_store::{Store, StoreOptions};
use prost::Message;
use serde_json::Value;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/jaeger_metrics/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The keys (in order) and value types of a JSON value; an array stands for its first item.
fn shape(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        Value::Array(items) => Value::Array(items.first().map(shape).into_iter().collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn get(store: &TestStore, path: &str) -> (u16, String, String) {
    let response = store.http.get(store.query(path)).send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (status, content_type, response.text().await.unwrap())
}

/// Server spans of checkoutservice, two operations, ending two minutes ago.
async fn send_spans(store: &TestStore) {
    let end_us = (now_ms() - 120_000) * 1000;
    let spans = (0..20u64)
        .map(|i| {
            SpanSpec::server(
                1000 + u128::from(i),
                1 + i,
                if i % 2 == 0 {
                    "/PlaceOrder"
                } else {
                    "/Checkout"
                },
                end_us - 5000 - i * 1000,
                5000 + i * 1000,
            )
            .build()
        })
        .collect();
    let body = request(vec![resource_spans("checkoutservice", vec![], spans)]).encode_to_vec();
    store.export("application/x-protobuf", body).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_have_jaegers_shape() {
    let store = TestStore::in_memory_with(&StoreOptions::new(Duration::from_secs(3600))).await;
    send_spans(&store).await;
    let range = format!(
        "endTs={}&lookback=600000&step=60000&ratePer=60000",
        now_ms()
    );

    let (status, content_type, text) = get(
        &store,
        &format!("/api/metrics/calls?service=checkoutservice&groupByOperation=true&{range}"),
    )
    .await;
    assert_eq!(
        (status, content_type.as_str()),
        (200, "application/json"),
        "{text}"
    );
    assert!(
        text.contains(r"grouped by service \u0026 operation"),
        "{text}"
    );
    let ours: Value = serde_json::from_str(&text).unwrap();
    let theirs: Value = serde_json::from_str(&fixture("service_operation_call_rate.json")).unwrap();
    assert_eq!(shape(&ours), shape(&theirs), "{text}");
    for key in ["name", "type", "help"] {
        assert_eq!(ours[key], theirs[key]);
    }
    assert_eq!(ours["metrics"].as_array().unwrap().len(), 2);

    // A point without calls has no latency: "NaN", as jsonpb writes it.
    let (status, _, text) = get(
        &store,
        &format!("/api/metrics/latencies?service=checkoutservice&quantile=0.95&{range}"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let ours: Value = serde_json::from_str(&text).unwrap();
    let theirs: Value = serde_json::from_str(&fixture("service_latencies.json")).unwrap();
    for key in ["name", "type", "help"] {
        assert_eq!(ours[key], theirs[key]);
    }
    let points = ours["metrics"][0]["metricPoints"].as_array().unwrap();
    let nan = points
        .iter()
        .find(|p| p["gaugeValue"]["doubleValue"] == "NaN")
        .unwrap();
    let number = points
        .iter()
        .find(|p| p["gaugeValue"]["doubleValue"].is_number())
        .unwrap();
    let their_points = theirs["metrics"][0]["metricPoints"].as_array().unwrap();
    assert_eq!(shape(number), shape(&their_points[0]));
    assert_eq!(shape(nan), shape(&their_points[1]));

    // prettyPrint indents as jsonpb does (four spaces).
    let (_, _, pretty) = get(
        &store,
        &format!("/api/metrics/calls?service=checkoutservice&prettyPrint=true&{range}"),
    )
    .await;
    assert!(
        pretty.starts_with("{\n    \"name\": \"service_call_rate\""),
        "{pretty}"
    );

    // No such service: a family without metrics.
    let (_, _, text) = get(
        &store,
        &format!("/api/metrics/errors?service=nobody&{range}"),
    )
    .await;
    assert_eq!(
        text,
        r#"{"name":"service_error_rate","type":"GAUGE","help":"error rate, computed as a fraction of errors/sec over calls/sec, grouped by service"}"#
    );

    let (status, content_type, text) = get(&store, "/api/metrics/minstep").await;
    assert_eq!((status, content_type.as_str()), (200, "application/json"));
    let theirs: Value = serde_json::from_str(&fixture("minstep.json")).unwrap();
    let ours: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(shape(&ours), shape(&theirs));
    assert_eq!(ours["data"], 15000, "the derivation step, in ms");
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_parameters_get_jaegers_400s_naming_the_parameter() {
    let store = TestStore::memory().await;
    let (status, content_type, text) = get(&store, "/api/metrics/calls").await;
    assert_eq!(status, 400);
    assert_eq!(content_type, "text/plain; charset=utf-8");
    assert_eq!(text, fixture("error_400.txt"));

    let cases: [(&str, &str); 10] = [
        (
            "/api/metrics/latencies?service=a",
            r#"unable to parse param 'quantile': strconv.ParseFloat: parsing "": invalid syntax"#,
        ),
        (
            "/api/metrics/latencies?service=a&quantile=x",
            r#"unable to parse param 'quantile': strconv.ParseFloat: parsing "x": invalid syntax"#,
        ),
        (
            "/api/metrics/calls?service=a&spanKind=bogus",
            "unable to parse param 'spanKind': unsupported span kind: 'bogus'",
        ),
        (
            "/api/metrics/calls?service=a&groupByOperation=maybe",
            r#"unable to parse param 'groupByOperation': strconv.ParseBool: parsing "maybe": invalid syntax"#,
        ),
        (
            "/api/metrics/errors?service=a&endTs=now",
            r#"unable to parse param 'endTs': strconv.ParseInt: parsing "now": invalid syntax"#,
        ),
        (
            "/api/metrics/errors?service=a&endTs=99999999999999999999",
            r#"unable to parse param 'endTs': strconv.ParseInt: parsing "99999999999999999999": value out of range"#,
        ),
        (
            "/api/metrics/errors?service=a&endTs=9223372036854775807",
            "unable to parse param 'endTs': ",
        ),
        (
            "/api/metrics/calls?service=a&lookback=9223372036854775807",
            "unable to parse param 'lookback': ",
        ),
        (
            "/api/metrics/calls?service=a&step=0",
            "unable to parse param 'step': ",
        ),
        (
            "/api/metrics/calls?service=a&ratePer=-5",
            "unable to parse param 'ratePer': ",
        ),
    ];
    for (path, message) in cases {
        let (status, _, text) = get(&store, path).await;
        assert_eq!(status, 400, "{path}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["errors"][0]["code"], 400);
        let msg = body["errors"][0]["msg"].as_str().unwrap();
        assert!(msg.starts_with(message), "{path}: {msg}");
        assert!(text.ends_with("}\n"));
    }
    // Too many points for one series, as Prometheus refuses them.
    let (status, _, text) = get(
        &store,
        "/api/metrics/calls?service=a&step=1&lookback=86400000",
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("11,000 points"), "{text}");
    // Only Jaeger's routes.
    let (status, _, _) = get(&store, "/api/metrics/other?service=a").await;
    assert_eq!(status, 404);
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_without_derived_metrics_answers_501() {
    let options = StoreOptions {
        metrics: None,
        ..StoreOptions::new(Duration::from_secs(3600))
    };
    let store = TestStore::start(Store::in_memory_with(&options), 1 << 20).await;
    for path in [
        "/api/metrics/calls?service=a",
        "/api/metrics/latencies?service=a&quantile=0.5",
        "/api/metrics/minstep",
    ] {
        let (status, _, text) = get(&store, path).await;
        assert_eq!(status, 501, "{path}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            body["errors"][0]["msg"],
            "trace metrics are currently disabled - no metrics backend configured"
        );
    }
    store.stop().await;
}
