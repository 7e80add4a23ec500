//! The query API over the wire, on what the comparison with Prometheus does not reach:
//! POST forms as Kiali sends them, refusals of what the engine does not evaluate, the limits
//! (query size and nesting, series, points, body size, deadline), a failing source, the
//! status endpoints Kiali reads, metadata, and `limit` on listings.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Served;
use meshtrace_metrics::http::{ApiOptions, router};
use meshtrace_metrics::promql::{EngineOptions, Limits};
use meshtrace_metrics::{
    Labels, Matcher, MemorySource, MetricMetadata, Series, SeriesSource, SourceError,
};
use meshtrace_testkit::http::error_text;
use serde_json::Value;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())))
}

/// `up{job="jN"}` for N in 0..jobs, one sample a second for ten minutes from t = 1000 s.
fn source(jobs: usize) -> MemorySource {
    let mut builder = MemorySource::builder();
    for j in 0..jobs {
        let l = labels(&[("__name__", "up"), ("job", &format!("j{j}"))]);
        for t in 0..600 {
            builder.push(&l, (1000 + t) * 1000, t as f64);
        }
    }
    builder.build()
}

async fn get(served: &Served, path: &str, params: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(served.url(path))
        .query(params)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A POST with an urlencoded body, as Prometheus's Go client (and so Kiali) sends queries.
async fn post_form(served: &Served, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    reqwest::Client::new()
        .post(served.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn post_forms_answer_as_get_does() {
    let served = Served::start(source(2), ApiOptions::default()).await;
    let params = [("query", "sum(rate(up[1m])) by (job)"), ("time", "1300")];
    let (status, by_get) = get(&served, "/api/v1/query", &params).await;
    assert_eq!(status, 200, "{by_get}");
    let response = post_form(&served, "/api/v1/query", &params).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let by_post: Value = response.json().await.unwrap();
    assert_eq!(by_post, by_get);
    // The rate of a counter rising 1 a second is 1, per job.
    let result = by_get["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2);
    assert_eq!(result[0]["metric"], serde_json::json!({"job": "j0"}));
    assert_eq!(result[0]["value"], serde_json::json!([1300, "1"]));
}

#[tokio::test]
async fn what_the_engine_does_not_evaluate_is_refused_by_name() {
    let served = Served::start(source(1), ApiOptions::default()).await;
    for (query, named) in [
        ("topk(1, up)", "topk"),
        (
            "label_replace(up, \"a\", \"b\", \"c\", \"d\")",
            "label_replace",
        ),
        ("max_over_time(up[5m])", "max_over_time"),
        ("rate(up[5m:1m])", "subqueries"),
        ("up atan2 up", "atan2"),
        ("quantile(0.5, up)", "quantile"),
        ("abs(up)", "abs"),
    ] {
        let (status, body) = get(&served, "/api/v1/query", &[("query", query)]).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["status"], "error");
        assert_eq!(body["errorType"], "execution");
        let error = error_text(&body);
        assert!(
            error.contains(named) && error.contains("not supported"),
            "{query}: {error}"
        );
    }
}

#[tokio::test]
async fn limits_give_clear_errors() {
    let options = ApiOptions {
        engine: EngineOptions {
            limits: Limits {
                max_series: 5,
                max_points: 2000,
                ..Limits::default()
            },
            ..EngineOptions::default()
        },
        max_body_bytes: 1024,
        ..ApiOptions::default()
    };
    let served = Served::start(source(10), options).await;
    let (status, body) = get(
        &served,
        "/api/v1/query",
        &[("query", "up"), ("time", "1300")],
    )
    .await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (422, Some("execution")),
        "{body}"
    );
    assert!(error_text(&body).contains("too many samples"), "{body}");
    // Three series of 900 points each (600 s of samples, then 300 s of lookback).
    let range = [
        ("query", r#"up{job=~"j1|j2|j3"}"#),
        ("start", "1000"),
        ("end", "2000"),
        ("step", "1"),
    ];
    let (status, body) = get(&served, "/api/v1/query_range", &range).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        error_text(&body).contains("more than 2000 points"),
        "{body}"
    );
    let long = format!("up{{job=~\"{}\"}}", "a".repeat(20_000));
    let (status, body) = get(&served, "/api/v1/query", &[("query", &long)]).await;
    assert_eq!(status, 400, "{body}");
    assert!(error_text(&body).contains("limit is 16384 bytes"), "{body}");
    let deep = format!("{}up{}", "(".repeat(65), ")".repeat(65));
    let (status, body) = get(&served, "/api/v1/query", &[("query", &deep)]).await;
    assert_eq!(status, 400, "{body}");
    assert!(error_text(&body).contains("nests 65 levels"), "{body}");
    let (status, body) = get(
        &served,
        "/api/v1/query",
        &[("query", r#"up{job="j1"}"#), ("timeout", "0s")],
    )
    .await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (503, Some("timeout")),
        "{body}"
    );
    let response = post_form(&served, "/api/v1/query", &[("query", &"a".repeat(2000))]).await;
    assert_eq!(response.status(), 413);
}

/// A source whose storage fails.
struct Failing;

impl SeriesSource for Failing {
    fn select(&self, _: &[Matcher], _: i64, _: i64) -> Result<Vec<Series>, SourceError> {
        Err(SourceError::Failed("disk on fire".to_string()))
    }

    fn metadata(&self) -> Vec<MetricMetadata> {
        Vec::new()
    }
}

#[tokio::test]
async fn a_failing_source_is_an_internal_error() {
    let app = router(Arc::new(Failing), ApiOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    for path in [
        "/api/v1/query?query=up",
        "/api/v1/series?match[]=up",
        "/api/v1/labels",
    ] {
        let response = reqwest::get(format!("http://{addr}{path}")).await.unwrap();
        assert_eq!(response.status(), 500, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["errorType"], "internal");
        assert_eq!(body["error"], "disk on fire");
    }
}

#[tokio::test]
async fn status_endpoints_and_metadata() {
    let text = "# TYPE istio_requests counter\n# HELP istio_requests Requests served.\n\
                istio_requests_total{reporter=\"source\"} 1 1000\n# TYPE latency histogram\n# EOF\n";
    let options = ApiOptions {
        scrape_interval: Duration::from_secs(15),
        retention: Duration::from_secs(7 * 86_400),
        ..ApiOptions::default()
    };
    let served = Served::start(MemorySource::from_openmetrics(text).unwrap(), options).await;
    let (status, body) = get(&served, "/api/v1/status/buildinfo", &[]).await;
    assert_eq!(status, 200);
    assert!(
        body["data"]["version"].as_str().unwrap().starts_with('3'),
        "{body}"
    );
    let (_, body) = get(&served, "/api/v1/status/config", &[]).await;
    assert!(
        body["data"]["yaml"]
            .as_str()
            .unwrap()
            .contains("scrape_interval: 15s"),
        "{body}"
    );
    let (_, body) = get(&served, "/api/v1/status/runtimeinfo", &[]).await;
    assert_eq!(body["data"]["storageRetention"], "7d");
    let (_, body) = get(&served, "/api/v1/metadata", &[]).await;
    assert_eq!(
        body["data"]["istio_requests"],
        serde_json::json!([{"type": "counter", "help": "Requests served.", "unit": ""}])
    );
    assert_eq!(body["data"]["latency"][0]["type"], "histogram");
    let (_, body) = get(&served, "/api/v1/metadata", &[("metric", "latency")]).await;
    assert_eq!(body["data"].as_object().unwrap().len(), 1);
    let health = reqwest::get(served.url("/-/healthy")).await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn listings_honour_limit_with_a_warning() {
    let served = Served::start(source(4), ApiOptions::default()).await;
    let (status, body) = get(&served, "/api/v1/label/job/values", &[("limit", "2")]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"], serde_json::json!(["j0", "j1"]));
    assert_eq!(
        body["warnings"],
        serde_json::json!(["results truncated due to limit"])
    );
    let (_, body) = get(
        &served,
        "/api/v1/series",
        &[("match[]", "up"), ("limit", "3")],
    )
    .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 3);
    let (_, body) = get(&served, "/api/v1/label/job/values", &[]).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 4);
    assert!(body.get("warnings").is_none(), "{body}");
}
