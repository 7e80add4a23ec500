//! Slow and idle clients against every port of a real store, with short configured timeouts
//! (issue 13, defect 5): they are disconnected, and while they crowd a listener to its cap the
//! store keeps ingesting and answering. Waits are bounded so that a connection held open fails
//! the test instead of hanging it; no test asserts how long anything took.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use meshtrace_store::Store;
use meshtrace_store::server::{Limits, LoopbackServer, ServeOptions};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tokio::net::TcpStream;

const PATIENCE: Duration = Duration::from_secs(30);
const NOW_US: u64 = 1_900_000_000_000_000;

async fn start(max_connections: usize) -> (LoopbackServer, reqwest::Client) {
    let store = Arc::new(Store::in_memory(Duration::from_secs(1 << 40)));
    let options = ServeOptions {
        jaeger_ui: None,
        max_body: 1 << 20,
        retention_interval: Duration::from_secs(3600),
        limits: Limits {
            header_timeout: Duration::from_millis(400),
            body_timeout: Duration::from_millis(400),
            idle_timeout: Duration::from_millis(400),
            max_connections,
        },
    };
    let server = LoopbackServer::start_with(store, options).await.unwrap();
    (server, reqwest::Client::new())
}

/// Everything the store sends until it closes the connection.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let (answer, closed) = meshtrace_testkit::read_until_closed(stream, PATIENCE).await;
    assert!(closed, "the store kept the connection open: {answer}");
    answer
}

fn export_request(
    trace: u128,
) -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    let span = SpanSpec::server(trace, 1, "op", NOW_US, 5);
    request(vec![resource_spans("svc", vec![], vec![span.build()])])
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_and_silent_clients_are_disconnected_on_every_port() {
    let (server, _) = start(64).await;
    let a = server.addresses.clone();
    for addr in [a.otlp_http, a.zipkin, a.query_http] {
        // Half a request head, then nothing.
        let mut stream = meshtrace_testkit::connect_and_send(
            addr,
            b"POST /v1/traces HTTP/1.1\r\nhost: x\r\ncontent-le",
        )
        .await;
        read_until_closed(&mut stream).await;
    }
    for (addr, path) in [(a.otlp_http, "/v1/traces"), (a.zipkin, "/api/v2/spans")] {
        // A whole head, part of the body, then nothing.
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n[{{\"traceId\":"
        );
        let mut stream = meshtrace_testkit::connect_and_send(addr, head.as_bytes()).await;
        let answer = read_until_closed(&mut stream).await;
        assert!(answer.starts_with("HTTP/1.1 408 "), "{path}: {answer}");
    }
    for addr in [a.otlp_grpc, a.query_grpc] {
        // Connected, and not even the HTTP/2 preface.
        let mut stream = TcpStream::connect(addr).await.unwrap();
        read_until_closed(&mut stream).await;
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_past_the_cap_starve_no_port() {
    let (server, http) = start(4).await;
    let a = server.addresses.clone();
    // Each HTTP port and the OTLP gRPC port crowded with five times its cap of idle clients.
    let mut idle = Vec::new();
    for addr in [a.otlp_http, a.zipkin, a.query_http] {
        for _ in 0..20 {
            idle.push(
                meshtrace_testkit::connect_and_send(addr, b"GET /api/services HTTP/1.1\r\n").await,
            );
        }
    }
    for _ in 0..20 {
        idle.push(TcpStream::connect(a.otlp_grpc).await.unwrap());
    }

    // gRPC ingest works: once the idle clients ahead of it time out, the export is served.
    let exported = tokio::time::timeout(PATIENCE, async {
        let mut client = TraceServiceClient::connect(format!("http://{}", a.otlp_grpc))
            .await
            .unwrap();
        client.export(export_request(0x51)).await.unwrap()
    })
    .await
    .expect("the export was never answered");
    assert_eq!(exported.into_inner().partial_success, None);

    // And so is a query, on its crowded port.
    let response = tokio::time::timeout(
        PATIENCE,
        http.get(format!(
            "http://{}/api/traces/0000000000000051",
            a.query_http
        ))
        .send(),
    )
    .await
    .expect("the query was never answered")
    .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["data"][0]["spans"].as_array().unwrap().len(), 1);
    drop(idle);
    server.stop().await.unwrap();
}
