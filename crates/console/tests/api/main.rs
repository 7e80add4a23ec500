//! The console's API end to end: a real `meshtrace store` on loopback ports, the simulator
//! sending Bookinfo traffic to it over OTLP/gRPC, and the console reading the store over the
//! wire (Jaeger gRPC or HTTP), asked with reqwest.
//!
//! [`traces`]: Kiali's routes over both wires and the inventory; [`requests`]: bad requests,
//! cluster scoping, and what the routes say without a backend; [`ops`]: the configuration
//! check, diagnose, status, health, metrics and the web root.

use std::net::SocketAddr;

#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;
mod ops;
mod requests;
mod traces;

use meshtrace_console::ConsoleOptions;
use meshtrace_store::server::LoopbackServer;
use meshtrace_testkit::jaeger_json::{has_error, tag};
use serde_json::Value;

struct Setup {
    store: LoopbackServer,
    console: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn filled_store(requests: usize, clusters: usize) -> LoopbackServer {
    common::filled_store(requests, clusters, 7, &[]).await
}

async fn console(
    yaml: &str,
    options: ConsoleOptions,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    common::start_console(options, |_| yaml.to_string()).await
}

fn tracing_yaml(internal_url: &str, use_grpc: bool, extra: &str) -> String {
    format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: {internal_url}\n    use_grpc: {use_grpc}\n    external_url: http://jaeger.example.com\n{extra}"
    )
}

async fn setup(clusters: usize, use_grpc: bool) -> Setup {
    let store = filled_store(300, clusters).await;
    let url = if use_grpc {
        format!("http://{}", store.addresses.query_grpc)
    } else {
        format!("http://{}", store.addresses.query_http)
    };
    let (console, stop) =
        console(&tracing_yaml(&url, use_grpc, ""), ConsoleOptions::default()).await;
    Setup {
        store,
        console,
        _stop: stop,
    }
}

/// The status and the body of `GET path` (JSON, else the text as a JSON string).
async fn get(console: SocketAddr, path: &str) -> (u16, Value) {
    let response = reqwest::get(format!("http://{console}{path}"))
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// The answer of a traces route that finds traces of `service`: 200, Kiali's
/// `tracingServiceName`, and some traces.
async fn found(console: SocketAddr, path: &str, service: &str) -> Value {
    let (status, body) = get(console, path).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tracingServiceName"], service);
    assert!(!data(&body).is_empty());
    body
}

/// The traces of a traces route's answer (`data`).
fn data(body: &Value) -> &Vec<Value> {
    body["data"].as_array().unwrap()
}

/// A trace's spans.
fn spans(trace: &Value) -> &Vec<Value> {
    trace["spans"].as_array().unwrap()
}

/// The message of an error answer (`error`).
fn error(body: &Value) -> &str {
    body["error"].as_str().unwrap()
}

/// The pod in a span's node_id.
fn pod(span: &Value) -> String {
    tag(span, "node_id")
        .and_then(|n| n.split('~').nth(2))
        .and_then(|s| s.rsplit_once('.'))
        .map(|(pod, _)| pod.to_string())
        .unwrap_or_default()
}

/// The names in a list of the inventory (`namespaces`, `applications`, `workloads`).
fn names<'a>(body: &'a Value, list: &str) -> std::collections::BTreeSet<&'a str> {
    body[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect()
}
