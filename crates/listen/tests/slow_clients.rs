//! Slow and idle clients against a real listener on a loopback port, with short configured
//! timeouts (issue 13, defect 5). Waits are bounded so that a server that keeps a connection
//! open fails the test instead of hanging it; no test asserts how long anything took.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use meshtrace_listen::Limits;
use meshtrace_testkit::http::parts;
use tokio::net::TcpStream;

/// Far longer than any configured timeout below.
const PATIENCE: Duration = Duration::from_secs(20);

fn limits(max_connections: usize) -> Limits {
    Limits {
        header_timeout: Duration::from_millis(400),
        body_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_millis(400),
        max_connections,
    }
}

async fn start(limits: Limits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let router = Router::new().route("/", get(|| async { "hello\n" })).route(
        "/echo",
        post(|body: Bytes| async move {
            // Working long after the whole body arrived is not a slow client.
            tokio::time::sleep(Duration::from_millis(800)).await;
            body
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(meshtrace_listen::serve(listener, router, limits, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// Everything the server sends until it closes the connection.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let (answer, closed) = meshtrace_testkit::read_until_closed(stream, PATIENCE).await;
    assert!(closed, "the server kept the connection open: {answer}");
    answer
}

/// Connects to `addr`, sends `bytes` and reads until the server closes the connection.
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = meshtrace_testkit::connect_and_send(addr, bytes).await;
    read_until_closed(&mut stream).await
}

#[tokio::test]
async fn a_client_that_sends_half_a_head_and_stalls_is_disconnected() {
    let (addr, _stop) = start(limits(16)).await;
    let answer = exchange(addr, b"GET / HTTP/1.1\r\nhost: test\r\nx-slow: ").await;
    assert!(!answer.contains("hello"), "{answer}");
}

#[tokio::test]
async fn a_client_that_connects_and_sends_nothing_is_disconnected() {
    let (addr, _stop) = start(limits(16)).await;
    exchange(addr, b"").await;
}

#[tokio::test]
async fn a_client_that_stalls_mid_body_gets_408_and_is_disconnected() {
    let (addr, _stop) = start(limits(16)).await;
    let answer = exchange(
        addr,
        b"POST /echo HTTP/1.1\r\nhost: test\r\ncontent-length: 100\r\n\r\nonly ten b",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(
        answer.ends_with("the request body did not arrive within 0.4 s\n"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_slow_handler_with_the_whole_body_is_not_cut_short() {
    let (addr, _stop) = start(limits(16)).await;
    let request = reqwest::Client::new()
        .post(format!("http://{addr}/echo"))
        .body("the whole body");
    let (status, _, body) = parts(request).await;
    assert_eq!(status, 200);
    assert_eq!(body, "the whole body");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let (addr, _stop) = start(limits(16)).await;
    let answer = exchange(addr, b"GET / HTTP/1.1\r\nhost: test\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.ends_with("hello\n"), "{answer}");
}

#[tokio::test]
async fn idle_connections_past_the_cap_do_not_keep_a_request_from_being_served() {
    let (addr, _stop) = start(limits(4)).await;
    // Ten times the cap: four are accepted and time out, the rest wait their turn and do too.
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(meshtrace_testkit::connect_and_send(addr, b"GET / HTTP/1.1\r\n").await);
    }
    let request = reqwest::Client::new().get(format!("http://{addr}/"));
    let (status, _, body) = tokio::time::timeout(PATIENCE, parts(request))
        .await
        .expect("the request was never served");
    assert_eq!(status, 200);
    assert_eq!(body, "hello\n");
}

#[tokio::test]
async fn silent_http2_clients_are_disconnected_too() {
    let (addr, _stop) = start(limits(16)).await;
    // Half of the HTTP/2 preface, then nothing.
    exchange(addr, b"PRI * HTTP/2.0\r\n").await;
    // The whole preface and an empty SETTINGS frame, then no request.
    exchange(
        addr,
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
    )
    .await;
}
