//! Kiali's metrics routes (`/api/namespaces/.../metrics`, `POST /api/stats/metrics`) end to
//! end: a console on a loopback port reading a meshtrace store fed with simulated Bookinfo
//! traffic (`store`), a real Prometheus over Istio series written here (`real_prometheus`),
//! and Prometheus servers that fail in every way (`bad_input`).

#[path = "../common/mod.rs"]
#[allow(dead_code)]
mod common;

mod bad_input;
mod real_prometheus;
mod store;

use std::net::SocketAddr;

use serde_json::Value;

/// `GET` on the console: the status and the JSON answer (`Null` when it is not JSON).
pub async fn get(console: SocketAddr, path: &str) -> (u16, Value) {
    send(reqwest::Client::new().get(format!("http://{console}{path}"))).await
}

/// `POST /api/stats/metrics` with `body`.
pub async fn post_stats(console: SocketAddr, body: &Value) -> (u16, Value) {
    let url = format!("http://{console}/api/stats/metrics");
    send(reqwest::Client::new().post(url).json(body)).await
}

/// Sends `request` (giving up after a minute: nothing may hang): the status and the JSON
/// answer, `Null` when it is not JSON.
pub async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The console's configuration: traces from `tracing` (Jaeger HTTP), metrics from
/// `prometheus_yaml` (the lines under `prometheus:`).
pub fn config(tracing: &str, prometheus_yaml: &str) -> String {
    format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: {tracing}\n    use_grpc: false\n  prometheus:\n{prometheus_yaml}"
    )
}

/// The values of a Kiali `Metric`'s datapoints, checking their shape on the way: a JSON
/// number of seconds and a string value.
pub fn values(metric: &Value) -> Vec<f64> {
    metric["datapoints"]
        .as_array()
        .unwrap_or_else(|| panic!("no datapoints in {metric}"))
        .iter()
        .map(|point| {
            let pair = point.as_array().unwrap();
            assert_eq!(pair.len(), 2, "{point}");
            assert!(pair[0].is_number(), "{point}");
            pair[1].as_str().unwrap().parse::<f64>().unwrap()
        })
        .collect()
}
