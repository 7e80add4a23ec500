//! The Jaeger clients against a real `meshtrace store` over the wire, HTTP and gRPC, built from
//! Kiali configurations as a user writes them.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meshtrace_backend::{BackendError, TraceQuery, TracingBackend};
use meshtrace_model::{KeyValue, Span, TraceId, Value};
use meshtrace_store::Store;
use meshtrace_store::server::{Addresses, LoopbackServer};
use meshtrace_testkit::{SpanBuilder, now, process};

/// Ten traces of productpage calling reviews; every other reviews span fails.
fn dataset(base: u64) -> Vec<Span> {
    let productpage = process("productpage.bookinfo", vec![]);
    let reviews = process(
        "reviews.bookinfo",
        vec![KeyValue::string("hostname", "reviews-v2-7d8f9c6b5-x2kqp")],
    );
    let mut spans = Vec::new();
    for t in 1..=10u64 {
        let trace = (t as u128) << 64 | 7;
        let root = SpanBuilder::new(
            trace,
            t * 10 + 1,
            "productpage.bookinfo.svc.cluster.local:9080/productpage",
            &productpage,
        )
        .at(base + t * 1000, 5000)
        .tag(KeyValue::string("span.kind", "server"));
        let mut child = SpanBuilder::new(
            trace,
            t * 10 + 2,
            "reviews.bookinfo.svc.cluster.local:9080/*",
            &reviews,
        )
        .at(base + t * 1000 + 100, 1000 * t)
        .child_of(t * 10 + 1)
        .tag(KeyValue::string("span.kind", "server"));
        if t % 2 == 0 {
            child = child.tag(KeyValue::new("error", Value::Bool(true)));
        }
        spans.push(root.build());
        spans.push(child.build());
    }
    spans
}

struct Running {
    addrs: Addresses,
    _server: LoopbackServer,
}

async fn store() -> (Running, u64) {
    let store = Store::in_memory(Duration::from_secs(3600 * 24));
    let base = now() - 60_000_000;
    store.write(&dataset(base)).unwrap();
    let server = LoopbackServer::start(Arc::new(store), 1 << 20)
        .await
        .unwrap();
    (
        Running {
            addrs: server.addresses.clone(),
            _server: server,
        },
        base,
    )
}

fn backend(internal_url: &str, use_grpc: bool, extra: &str) -> Box<dyn TracingBackend> {
    let extra = format!("    query_timeout: 2\n{extra}");
    common::tracing_backend("jaeger", use_grpc, internal_url, &extra)
}

fn query(base: u64, limit: usize) -> TraceQuery {
    TraceQuery {
        service: "reviews.bookinfo".into(),
        tags: BTreeMap::from([("error".to_string(), "true".to_string())]),
        start: base,
        end: now(),
        min_duration: Some(4000),
        limit,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn http_and_grpc_clients_read_the_same_store_alike() {
    let (running, base) = store().await;
    let http = backend(&format!("http://{}", running.addrs.query_http), false, "");
    let grpc = backend(
        &format!("http://{}/jaeger", running.addrs.query_grpc),
        true,
        "",
    );
    assert_eq!(
        http.describe(),
        format!("Jaeger HTTP at http://{}", running.addrs.query_http)
    );
    assert_eq!(
        grpc.describe(),
        format!("Jaeger gRPC at http://{}", running.addrs.query_grpc)
    );

    for client in [&http, &grpc] {
        client.status().await.unwrap();
        assert_eq!(
            client.services().await.unwrap(),
            ["productpage.bookinfo", "reviews.bookinfo"]
        );

        // reviews spans with an error and at least 4 ms: traces 4, 6, 8, 10, newest first.
        let found = client.find_traces(&query(base, 20)).await.unwrap();
        let ids: Vec<u128> = found
            .traces
            .iter()
            .map(|t| t.trace_id().unwrap().0 >> 64)
            .collect();
        assert_eq!(ids, [10, 8, 6, 4], "{}", client.describe());
        assert_eq!(found.partial, None);
        assert!(found.traces.iter().all(|t| t.spans.len() == 2));

        // As many traces as the limit: maybe more.
        let found = client.find_traces(&query(base, 2)).await.unwrap();
        assert_eq!(found.traces.len(), 2);
        assert_eq!(
            found.partial.as_deref(),
            Some("the limit of 2 traces was reached: there may be more")
        );

        let trace = client
            .get_trace(TraceId(3 << 64 | 7))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(trace.spans.len(), 2);
        assert_eq!(trace.spans[1].process.tags[0].key, "hostname");
        assert!(client.get_trace(TraceId(99)).await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_pointed_at_the_http_port_says_so() {
    let (running, _) = store().await;
    let grpc = backend(&format!("http://{}", running.addrs.query_http), true, "");
    let error = grpc.status().await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, BackendError::Protocol { .. }), "{message}");
    assert!(
        message.contains("answers plain HTTP (HTTP 404, text/plain), not gRPC"),
        "{message}"
    );
    assert!(
        message.contains("point internal_url at port 16685, or set use_grpc: false"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_path_a_dead_port_and_a_silent_server_are_told_apart() {
    let (running, _) = store().await;
    let prefixed = backend(
        &format!("http://{}/jaeger", running.addrs.query_http),
        false,
        "",
    );
    let message = prefixed.services().await.unwrap_err().to_string();
    assert!(
        message.contains("answered HTTP 404: no Jaeger API at this path"),
        "{message}"
    );

    // Nothing listens: unreachable, for both protocols.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for use_grpc in [false, true] {
        let client = backend(&format!("http://{dead}"), use_grpc, "");
        let error = client.status().await.unwrap_err();
        assert!(matches!(error, BackendError::Unreachable { .. }), "{error}");
    }

    // A server that accepts and never answers: the query_timeout (2 s) ends the wait.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let client = backend(&format!("http://{address}"), false, "");
    let error = client.services().await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("Jaeger HTTP at http://{address} did not answer within 2s (query_timeout)")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_reaches_an_error() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let auth = "    auth:\n      type: basic\n      username: kiali\n      password: pw-SECRET\n";
    for use_grpc in [false, true] {
        let client = backend(&format!("http://user:url-SECRET@{dead}"), use_grpc, auth);
        let message = client.status().await.unwrap_err().to_string();
        assert!(!message.contains("SECRET"), "{message}");
        assert!(!client.describe().contains("SECRET"));
    }
}
