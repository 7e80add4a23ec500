//! What the Prometheus client's tests share: the samples (as OpenMetrics text, for promtool and
//! for a `MemorySource`), meshtrace's own Prometheus API served under `/prometheus` as the store
//! mounts it, clients made from Kiali configuration text, and answer comparison.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use meshtrace_backend::prometheus::{
    Answer, PrometheusClient, PrometheusError, PrometheusOptions, Value,
};
use meshtrace_metrics::MemorySource;
use meshtrace_metrics::http::{ApiOptions, router};
use meshtrace_metrics::promql::{Compat, EngineOptions};
use meshtrace_testkit::prometheus::prometheus_version;

/// The first scrape, in Unix seconds; scrapes every 15 s for 10 minutes.
pub const BASE: i64 = 1_700_000_000;
pub const SCRAPES: i64 = 40;
pub const EVERY: i64 = 15;

/// Requests added per scrape for each (mesh, workload, code): known, so that the rates the
/// tests expect are worked out by hand (a counter growing by `n` every 15 s has a rate of
/// `n / 15` per second).
pub const REQUESTS: [(&str, &str, &str, u64); 8] = [
    ("east", "reviews-v1", "200", 30),
    ("east", "reviews-v1", "503", 3),
    ("east", "ratings-v1", "200", 15),
    ("east", "ratings-v1", "503", 0),
    ("west", "reviews-v1", "200", 60),
    ("west", "reviews-v1", "503", 6),
    ("west", "ratings-v1", "200", 45),
    ("west", "ratings-v1", "503", 15),
];

/// Label values a query must be able to compare with exactly, whatever they hold.
pub const HOSTILE: [&str; 14] = [
    "plain",
    "\"} or up{",
    "\"}) or vector(1) or (up{a=\"",
    "quote\"inside",
    "back\\slash",
    "trailing\\",
    "\\\"",
    "new\nline",
    "literal\\n",
    "two\n\nlines\\\n",
    "{braces},commas=\"x\"",
    ".*",
    "$1 ^ (a|b) [c]",
    "ünïcödé ✓ \u{2028}",
];

/// OpenMetrics label value escaping: backslash, quote, newline.
fn om_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The samples: `istio_requests_total` by mesh, workload and code; gauges holding NaN and
/// infinities; one `hostile` series per [`HOSTILE`] value, whose sample value is its index.
pub fn openmetrics() -> String {
    let mut text = String::from("# TYPE istio_requests counter\n");
    for (mesh, workload, code, per_scrape) in REQUESTS {
        for k in 0..=SCRAPES {
            let value = 1000 + per_scrape * k as u64;
            let _ = writeln!(
                text,
                "istio_requests_total{{mesh_id=\"{mesh}\",destination_workload=\"{workload}\",response_code=\"{code}\",reporter=\"destination\"}} {value} {}",
                BASE + k * EVERY
            );
        }
    }
    text.push_str("# TYPE edge_gauge gauge\n");
    for (kind, value) in [
        ("nan", "NaN"),
        ("inf", "+Inf"),
        ("ninf", "-Inf"),
        ("tiny", "1e-300"),
        ("frac", "0.1"),
    ] {
        for k in 0..=SCRAPES {
            let _ = writeln!(
                text,
                "edge_gauge{{kind=\"{kind}\"}} {value} {}",
                BASE + k * EVERY
            );
        }
    }
    text.push_str("# TYPE hostile gauge\n");
    for (i, value) in HOSTILE.iter().enumerate() {
        for k in 0..=SCRAPES {
            let _ = writeln!(
                text,
                "hostile{{v=\"{}\"}} {i} {}",
                om_escape(value),
                BASE + k * EVERY
            );
        }
    }
    text.push_str("# EOF\n");
    text
}

/// meshtrace's Prometheus API over the same samples, under `/prometheus` as the store serves
/// it, on `127.0.0.1:<free port>` until dropped.
pub struct Ours {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Ours {
    pub async fn start() -> Ours {
        let source = MemorySource::from_openmetrics(&openmetrics()).unwrap();
        let (major, minor) = prometheus_version();
        let options = ApiOptions {
            engine: EngineOptions {
                compat: Compat::prometheus(major, minor),
                ..EngineOptions::default()
            },
            ..ApiOptions::default()
        };
        let app = axum::Router::new().nest("/prometheus", router(Arc::new(source), options));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Ours { addr, task }
    }

    /// The URL to configure: the API's root.
    pub fn url(&self) -> String {
        format!("http://{}/prometheus", self.addr)
    }
}

impl Drop for Ours {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `app` on a loopback port until the returned handle is aborted.
pub async fn serve(app: axum::Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (addr, task)
}

/// A client of the Prometheus at `url`, with more of `external_services.prometheus` in
/// `extra` (YAML lines indented by four spaces).
pub fn client_with(url: &str, extra: &str, options: &PrometheusOptions) -> PrometheusClient {
    try_client(url, extra, options).unwrap_or_else(|e| panic!("{e}"))
}

pub fn try_client(
    url: &str,
    extra: &str,
    options: &PrometheusOptions,
) -> Result<PrometheusClient, PrometheusError> {
    let yaml = format!("external_services:\n  prometheus:\n    url: {url}\n{extra}");
    let loaded = meshtrace_config::load_str(&yaml).unwrap_or_else(|e| panic!("{e:?}: {yaml}"));
    PrometheusClient::new(&loaded.config.prometheus, options)
}

pub fn client(url: &str) -> PrometheusClient {
    client_with(url, "", &PrometheusOptions::default())
}

/// Milliseconds of `BASE + seconds`.
pub fn at(seconds: i64) -> i64 {
    (BASE + seconds) * 1000
}

fn same_number(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan())
        || a == b
        || ((a - b).abs() <= 1e-9 * a.abs().max(b.abs()) && a.is_finite() && b.is_finite())
}

/// Where two answers differ (series compared by label set), or `None`.
pub fn difference(a: &Answer, b: &Answer) -> Option<String> {
    match (&a.value, &b.value) {
        (Value::Vector(x), Value::Vector(y)) => {
            let mut x: Vec<_> = x.iter().map(|s| (&s.metric, vec![s.point])).collect();
            let mut y: Vec<_> = y.iter().map(|s| (&s.metric, vec![s.point])).collect();
            x.sort_by(|p, q| p.0.cmp(q.0));
            y.sort_by(|p, q| p.0.cmp(q.0));
            series_difference(&x, &y)
        }
        (Value::Matrix(x), Value::Matrix(y)) => {
            let mut x: Vec<_> = x.iter().map(|s| (&s.metric, s.points.clone())).collect();
            let mut y: Vec<_> = y.iter().map(|s| (&s.metric, s.points.clone())).collect();
            x.sort_by(|p, q| p.0.cmp(q.0));
            y.sort_by(|p, q| p.0.cmp(q.0));
            series_difference(&x, &y)
        }
        (Value::Scalar(x), Value::Scalar(y)) => (x.timestamp_ms != y.timestamp_ms
            || !same_number(x.value, y.value))
        .then(|| format!("{x:?} != {y:?}")),
        (x, y) => (x != y).then(|| format!("{x:?} != {y:?}")),
    }
}

type Points<'a> = (
    &'a meshtrace_backend::prometheus::Labels,
    Vec<meshtrace_backend::prometheus::Point>,
);

fn series_difference(x: &[Points], y: &[Points]) -> Option<String> {
    if x.len() != y.len() {
        return Some(format!("{} series != {} series", x.len(), y.len()));
    }
    for ((lx, px), (ly, py)) in x.iter().zip(y) {
        if lx != ly {
            return Some(format!("labels {lx:?} != {ly:?}"));
        }
        let same = px.len() == py.len()
            && px
                .iter()
                .zip(py)
                .all(|(p, q)| p.timestamp_ms == q.timestamp_ms && same_number(p.value, q.value));
        if !same {
            return Some(format!("{lx:?}: {px:?} != {py:?}"));
        }
    }
    None
}
