//! `diagnose_prometheus` (behind `meshtrace diagnose --prometheus`) against a real Prometheus
//! (whose samples are old: no Istio metrics now), against meshtrace's API given the root of its
//! server (found under `/prometheus`) with Istio metrics of now, with `thanos_proxy`, and
//! against a closed port.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use meshtrace_backend::diagnose::{PrometheusDiagnosis, diagnose_prometheus};
use meshtrace_backend::prometheus::PrometheusOptions;
use meshtrace_metrics::http::{ApiOptions, router};
use meshtrace_metrics::{Labels, MemorySource};
use meshtrace_testkit::prometheus::RealPrometheus;

use crate::support::{openmetrics, serve};

fn config(extra: &str) -> meshtrace_config::PrometheusConfig {
    let yaml = format!("external_services:\n  prometheus:\n    url: http://unused:9090\n{extra}");
    meshtrace_config::load_str(&yaml).unwrap().config.prometheus
}

fn lines(d: &PrometheusDiagnosis) -> Vec<String> {
    d.probes
        .iter()
        .map(|p| match &p.result {
            Ok(note) => format!("ok {}: {note}", p.test),
            Err(reason) => format!("no {}: {reason}", p.test),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_reports_version_health_istio_metrics_and_storage() {
    // A real Prometheus: it answers, but holds no sample of the last 5 minutes.
    let real = RealPrometheus::start(&openmetrics()).await;
    let d = diagnose_prometheus(
        &real.addr.to_string(),
        &config(""),
        &PrometheusOptions::default(),
    )
    .await
    .unwrap();
    let shown = lines(&d);
    let addr = real.addr;
    assert_eq!(
        shown[0],
        format!("ok tcp {}:{}: open", addr.ip(), addr.port())
    );
    assert!(
        shown[1].starts_with(&format!(
            "ok Prometheus API http://{addr}: answers, version 2."
        )),
        "{shown:?}"
    );
    assert_eq!(
        shown[2],
        format!("ok health http://{addr}/-/healthy: healthy")
    );
    assert!(
        shown[3].starts_with(
            "no Istio metrics (istio_requests_total): none in the last 5 minutes: Prometheus \
             does not scrape Istio's proxies;"
        ),
        "{shown:?}"
    );
    assert_eq!(
        shown[4],
        "ok storage: scrape interval 15s, retention 100y (as Prometheus reports them, or its defaults)"
    );
    let working = d.working.unwrap();
    assert_eq!(working.url, format!("http://{addr}"));
    assert!(
        working
            .yaml()
            .contains(&format!("    url: http://{addr}\n"))
    );

    // The scope is named when it may be why nothing is found.
    let scoped = config("    query_scope:\n      mesh_id: east\n");
    let d = diagnose_prometheus(&real.url(""), &scoped, &PrometheusOptions::default())
        .await
        .unwrap();
    assert!(
        lines(&d)[3].contains("or query_scope (mesh_id=\"east\") leaves none"),
        "{:?}",
        lines(&d)
    );

    // meshtrace's API, given its server's root: found under /prometheus, with the Istio
    // metrics of now; thanos_proxy's settings are used instead of asking.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut source = MemorySource::builder();
    for workload in ["reviews-v1", "ratings-v1"] {
        let labels = Labels::new([
            ("__name__".to_string(), "istio_requests_total".to_string()),
            ("destination_workload".to_string(), workload.to_string()),
        ]);
        source.push(&labels, now_ms - 10_000, 5.0);
    }
    let app = axum::Router::new().nest(
        "/prometheus",
        router(Arc::new(source.build()), ApiOptions::default()),
    );
    let (ours, task) = serve(app).await;
    let thanos = config(
        "    thanos_proxy:\n      enabled: true\n      scrape_interval: 30s\n      retention_period: 7d\n",
    );
    let d = diagnose_prometheus(
        &format!("http://{ours}"),
        &thanos,
        &PrometheusOptions::default(),
    )
    .await
    .unwrap();
    let shown = lines(&d);
    assert!(
        shown[1].starts_with(&format!(
            "no Prometheus API http://{ours}: Prometheus at http://{ours} answered HTTP 404"
        )),
        "{shown:?}"
    );
    assert!(
        shown[2].starts_with(&format!(
            "ok Prometheus API http://{ours}/prometheus: answers"
        )),
        "{shown:?}"
    );
    assert_eq!(
        shown[4],
        "ok Istio metrics (istio_requests_total): 2 series in the last 5 minutes: the graph and \
         metrics pages have data"
    );
    assert_eq!(
        shown[5],
        "ok storage: scrape interval 30s, retention 7d (from thanos_proxy)"
    );
    let working = d.working.unwrap();
    assert_eq!(working.url, format!("http://{ours}/prometheus"));
    assert!(
        working
            .note
            .ends_with("2 series of Istio's request metrics"),
        "{}",
        working.note
    );
    task.abort();

    // Nothing listens.
    let d = diagnose_prometheus("127.0.0.1:9", &config(""), &PrometheusOptions::default())
        .await
        .unwrap();
    assert!(d.working.is_none());
    assert_eq!(
        lines(&d),
        [
            "no tcp 127.0.0.1:9: closed or filtered: check the host and port of the url, and that Prometheus is running"
        ]
    );
}
