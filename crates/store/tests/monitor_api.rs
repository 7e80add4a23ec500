//! Jaeger's metrics API against the spans themselves: spans with known durations, kinds and
//! errors go in through the OpenTelemetry SDK's OTLP exporter; they are read back through
//! `/api/traces`, and every point of `/api/metrics/calls`, `errors` and `latencies` must agree
//! with the figures computed from what was read back — counts exactly, quantiles within 2 % of
//! the exact quantile of the durations (rank ⌊q·(n−1)⌋).
//!
//! The windows follow the documented rule: a span counts in the bucket `[k·15s, (k+1)·15s)`
//! holding its end, and the point at `t` sums the buckets that end in `(t − ratePer, t]`.

mod common;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::TestStore;
use meshtrace_store::StoreOptions;
use meshtrace_testkit::jaeger_json::{tag, tag_value};
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;

const STEP_MS: u64 = 15_000;
const SERVICES: [&str; 2] = ["frontend", "checkout"];
const OPERATIONS: [&str; 3] = ["GET /", "POST /cart", "GET /item"];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Sends 900 spans: both services, three operations, mostly server spans; only frontend has
/// errors. They end over the last ten minutes and last 1 ms to 2 s.
fn emit(endpoint: String, now: SystemTime) {
    let provider = |service: &str| {
        let exporter = common::otlp_http_exporter(&endpoint);
        SdkTracerProvider::builder()
            .with_simple_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service.to_string())
                    .build(),
            )
            .build()
    };
    let providers: Vec<SdkTracerProvider> = SERVICES.iter().map(|s| provider(s)).collect();
    let mut rng = Rng(0x5eed);
    for _ in 0..900 {
        let service = (rng.next() % 2) as usize;
        let tracer = providers[service].tracer("monitor-test");
        let operation = OPERATIONS[(rng.next() % 3) as usize];
        let kind = if rng.next() % 5 == 0 {
            SpanKind::Client
        } else {
            SpanKind::Server
        };
        let end = now - Duration::from_micros(20_000_000 + rng.next() % 580_000_000);
        let duration = Duration::from_micros((1000.0 * (rng.unit() * 2000f64.ln()).exp()) as u64);
        let mut span = tracer
            .span_builder(operation)
            .with_kind(kind)
            .with_start_time(end - duration)
            .start(&tracer);
        if service == 0 && rng.next() % 10 == 0 {
            span.set_status(Status::error("failed"));
        }
        span.end_with_timestamp(end);
    }
    for provider in providers {
        provider.shutdown().unwrap();
    }
}

/// A span as read back: service, operation, kind, error, end (ms), duration (µs).
#[derive(Debug, Clone)]
struct ReadSpan {
    service: String,
    operation: String,
    kind: String,
    error: bool,
    end_ms: u64,
    duration_us: u64,
}

async fn read_back(store: &TestStore) -> Vec<ReadSpan> {
    let mut spans = Vec::new();
    for service in SERVICES {
        let (status, body) = store
            .get_json(&format!(
                "/api/traces?service={service}&limit=100000&lookback=1h"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        for trace in body["data"].as_array().unwrap() {
            for span in trace["spans"].as_array().unwrap() {
                let process = &trace["processes"][span["processID"].as_str().unwrap()];
                let start = span["startTime"].as_u64().unwrap();
                let duration = span["duration"].as_u64().unwrap();
                spans.push(ReadSpan {
                    service: process["serviceName"].as_str().unwrap().to_string(),
                    operation: span["operationName"].as_str().unwrap().to_string(),
                    kind: tag(span, "span.kind").unwrap_or_default().to_string(),
                    error: tag_value(span, "error") == Some(&Value::Bool(true)),
                    end_ms: (start + duration) / 1000,
                    duration_us: duration,
                });
            }
        }
    }
    spans
}

/// The points Jaeger's range has, with the spans of each point's window.
fn windows(
    spans: &[ReadSpan],
    end_ms: u64,
    lookback: u64,
    step: u64,
    rate: u64,
    keep: impl Fn(&ReadSpan) -> bool,
) -> Vec<(u64, Vec<&ReadSpan>)> {
    let mut t = end_ms - lookback;
    let mut out = Vec::new();
    while t <= end_ms {
        let inside = spans
            .iter()
            .filter(|s| keep(s))
            .filter(|s| {
                let bucket = (s.end_ms / STEP_MS + 1) * STEP_MS;
                bucket > t - rate && bucket <= t
            })
            .collect();
        out.push((t, inside));
        t += step;
    }
    out
}

fn point_ms(point: &Value) -> u64 {
    let at = prost_types::Timestamp::from_str(point["timestamp"].as_str().unwrap()).unwrap();
    at.seconds as u64 * 1000 + at.nanos as u64 / 1_000_000
}

fn value(point: &Value) -> f64 {
    match &point["gaugeValue"]["doubleValue"] {
        Value::String(s) if s == "NaN" => f64::NAN,
        v => v
            .as_f64()
            .unwrap_or_else(|| panic!("not a double: {point}")),
    }
}

/// The lines of an answer by their labels (`service`, or `service/operation`).
fn lines(body: &Value) -> BTreeMap<String, Vec<(u64, f64)>> {
    body["metrics"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let labels = m["labels"].as_array().unwrap();
            assert_eq!(
                labels[0]["name"], "service_name",
                "service_name comes first"
            );
            let mut key = labels[0]["value"].as_str().unwrap().to_string();
            if let Some(op) = labels.get(1) {
                assert_eq!(op["name"], "operation");
                key = format!("{key}/{}", op["value"].as_str().unwrap());
            }
            let points = m["metricPoints"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| (point_ms(p), value(p)))
                .collect();
            (key, points)
        })
        .collect()
}

fn exact_quantile(durations_us: &mut [u64], q: f64) -> f64 {
    durations_us.sort_unstable();
    durations_us[(q * (durations_us.len() - 1) as f64).floor() as usize] as f64 / 1000.0
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_errors_and_latencies_agree_with_the_spans_read_back() {
    let store = TestStore::in_memory_with(&StoreOptions::new(Duration::from_secs(24 * 3600))).await;
    let now = SystemTime::now();
    let endpoint = store.otlp_http();
    std::thread::spawn(move || emit(endpoint, now))
        .join()
        .unwrap();
    let spans = read_back(&store).await;
    assert_eq!(spans.len(), 900, "every span reads back");

    let end_ms = now.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let (lookback, step, rate) = (660_000u64, 30_000u64, 120_000u64);
    let range = format!("endTs={end_ms}&lookback={lookback}&step={step}&ratePer={rate}");
    let mut checked_points = 0;

    // Calls, per service, server spans (Jaeger's default kind), and client spans on request.
    for (kind, extra) in [("server", ""), ("client", "&spanKind=client")] {
        let (status, body) = store
            .get_json(&format!(
                "/api/metrics/calls?service=frontend&service=checkout&{range}{extra}"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["name"], "service_call_rate");
        let got = lines(&body);
        for service in SERVICES {
            let want = windows(&spans, end_ms, lookback, step, rate, |s| {
                s.service == service && s.kind == kind
            });
            let line = &got[service];
            assert_eq!(line.len(), want.len());
            for ((t, v), (want_t, inside)) in line.iter().zip(&want) {
                assert_eq!(t, want_t);
                let count = v * rate as f64 / 1000.0;
                assert!(
                    (count - inside.len() as f64).abs() < 1e-6,
                    "{service} {kind} at {t}: {count} != {}",
                    inside.len()
                );
                checked_points += 1;
            }
        }
    }

    // Calls by operation.
    let (_, body) = store
        .get_json(&format!(
            "/api/metrics/calls?service=frontend&groupByOperation=true&{range}"
        ))
        .await;
    assert_eq!(body["name"], "service_operation_call_rate");
    let got = lines(&body);
    assert_eq!(got.len(), OPERATIONS.len());
    for operation in OPERATIONS {
        let want = windows(&spans, end_ms, lookback, step, rate, |s| {
            s.service == "frontend" && s.kind == "server" && s.operation == operation
        });
        for ((_, v), (_, inside)) in got[&format!("frontend/{operation}")].iter().zip(&want) {
            assert!((v * rate as f64 / 1000.0 - inside.len() as f64).abs() < 1e-6);
        }
    }

    // Error rates: frontend's are the share of errors; checkout has none, so Jaeger's answer
    // is its call series at 0.
    let (_, body) = store
        .get_json(&format!("/api/metrics/errors?service=frontend&{range}"))
        .await;
    let want = windows(&spans, end_ms, lookback, step, rate, |s| {
        s.service == "frontend" && s.kind == "server"
    });
    for ((_, v), (t, inside)) in lines(&body)["frontend"].iter().zip(&want) {
        let errors = inside.iter().filter(|s| s.error).count();
        if inside.is_empty() {
            assert!(v.is_nan(), "no calls at {t}: NaN, got {v}");
        } else {
            assert!(
                (v - errors as f64 / inside.len() as f64).abs() < 1e-12,
                "at {t}"
            );
        }
        checked_points += 1;
    }
    assert!(
        want.iter().any(|(_, w)| w.iter().any(|s| s.error)),
        "the data has errors"
    );
    let (_, body) = store
        .get_json(&format!("/api/metrics/errors?service=checkout&{range}"))
        .await;
    let zeros = &lines(&body)["checkout"];
    assert!(
        !zeros.is_empty() && zeros.iter().all(|(_, v)| *v == 0.0),
        "{body}"
    );

    // Latency quantiles within 2 % of the exact ones.
    let mut worst: f64 = 0.0;
    for q in [0.5, 0.75, 0.95, 0.99] {
        let (status, body) = store
            .get_json(&format!(
                "/api/metrics/latencies?service=frontend&service=checkout&quantile={q}&{range}"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["help"],
            format!("{q:.2}th quantile latency, grouped by service")
        );
        let got = lines(&body);
        for service in SERVICES {
            let want = windows(&spans, end_ms, lookback, step, rate, |s| {
                s.service == service && s.kind == "server"
            });
            for ((_, v), (t, inside)) in got[service].iter().zip(&want) {
                if inside.is_empty() {
                    assert!(v.is_nan(), "{service} has no calls at {t}: NaN, got {v}");
                    continue;
                }
                let mut durations: Vec<u64> = inside.iter().map(|s| s.duration_us).collect();
                let exact = exact_quantile(&mut durations, q);
                let error = (v - exact).abs() / exact;
                worst = worst.max(error);
                assert!(
                    error <= 0.02,
                    "{service} q{q} at {t}: {v} ms vs exact {exact} ms"
                );
                checked_points += 1;
            }
        }
    }
    println!(
        "latency quantiles: worst relative error {:.4} %",
        worst * 100.0
    );
    assert!(checked_points > 200, "{checked_points}");
    store.stop().await;
}
