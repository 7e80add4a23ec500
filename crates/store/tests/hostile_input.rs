//! Hostile input over the real wire (issue 13): query parameters that used to panic the
//! handler, times that used to wrap, bodies that used to be accepted or read too far, names
//! without a bound. Every case gets an answer with the right status and a message that names
//! what was wrong.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use meshtrace_store::Store;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NOW_US: u64 = 1_900_000_000_000_000;
/// 2554-07-21T23:34:33.709551Z: the last microsecond whose nanoseconds fit OTLP's u64.
const LATEST_US: u64 = u64::MAX / 1000;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Jaeger's v1 error envelope: `errors[0]`.
async fn v1_error(store: &TestStore, path: &str) -> (u16, Value) {
    let (status, body) = store.get_json(path).await;
    (status, body["errors"][0].clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn query_inputs_that_panicked_the_handler_get_a_400() {
    let store = TestStore::memory().await;
    // The in-memory index only panicked once it held something to range over.
    let span = json!([{"traceId": "0a", "id": "01", "timestamp": 5, "duration": 1,
                       "localEndpoint": {"serviceName": "a"}}]);
    let (status, _) = store.post_json(&store.zipkin(), &span).await;
    assert_eq!(status, 202);

    // A window that ends before it starts: the in-memory store's range panicked.
    let (status, error) = v1_error(&store, "/api/traces?service=a&start=10&end=1").await;
    assert_eq!(status, 400);
    assert_eq!(
        error,
        json!({"code": 400, "msg": "unable to parse param 'start': the start (10) is after the end (1)"})
    );
    // An end in milliseconds that overflows when made microseconds.
    let (status, error) = v1_error(
        &store,
        &format!("/api/dependencies?endTs={}", u64::MAX / 10),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], 400);
    assert!(
        error["msg"]
            .as_str()
            .unwrap()
            .starts_with("unable to parse param 'endTs': "),
        "{error}"
    );

    // A multi-byte character where an RFC 3339 zone's digits are expected: a byte index that
    // is not a char boundary panicked.
    for time in [
        "2026-01-01T00:00:00+0é000",
        "2026-01-01T00:00:00.5é",
        "2026-é1-01T00:00:00Z",
    ] {
        let path = format!(
            "/api/v3/traces?query.startTimeMin={}&query.startTimeMax=2026-01-02T00:00:00Z",
            form_urlencoded::byte_serialize(time.as_bytes()).collect::<String>()
        );
        let (status, body) = store.get_json(&path).await;
        assert_eq!(status, 400, "{time}");
        assert_eq!(
            body,
            json!({"error": {"httpCode": 400, "message": format!(
                "malformed parameter query.startTimeMin: cannot parse \"{time}\" as an RFC 3339 time (e.g. 2026-11-24T05:00:00Z)"
            )}}),
            "{time}"
        );
    }
    // Durations too long for Go's time.Duration (about 292 years) are refused as Go refuses them.
    let (status, error) = v1_error(&store, "/api/traces?service=a&minDuration=9999999999h").await;
    assert_eq!(status, 400);
    assert_eq!(
        error["msg"],
        "unable to parse param 'minDuration': time: invalid duration \"9999999999h\""
    );
    store.stop().await;
}

fn zipkin_span(id: &str, timestamp: u64, duration: u64) -> Value {
    json!({"traceId": "00000000000000000000000000000abc", "id": id, "name": "op",
           "timestamp": timestamp, "duration": duration, "localEndpoint": {"serviceName": "svc"}})
}

#[tokio::test(flavor = "multi_thread")]
async fn zipkin_times_past_what_otlp_can_carry_are_refused_and_nothing_wraps() {
    let store = TestStore::memory().await;
    let batch = json!([
        zipkin_span("0000000000000001", u64::MAX - 5, 10),
        zipkin_span("0000000000000002", NOW_US, u64::MAX - 5),
        zipkin_span("0000000000000003", LATEST_US - 10, 10),
    ]);
    let (status, body) = store.post_json(&store.zipkin(), &batch).await;
    assert_eq!(status, 400);
    assert_eq!(
        text(&body),
        format!(
            "1 span(s) stored; 2 span(s) rejected: \
             [0]: the start time {} µs is after 2554-07-21T23:34:33.709551Z, the latest time OTLP can carry; \
             [1]: the duration {} µs makes the span end after 2554-07-21T23:34:33.709551Z, the latest time OTLP can carry\n",
            u64::MAX - 5,
            u64::MAX - 5
        )
    );

    // The span at the very end of the range reads back with its end after its start, in v3...
    let (status, body) = store
        .get_json("/api/v3/traces/00000000000000000000000000000abc")
        .await;
    assert_eq!(status, 200);
    let spans = &body["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"];
    assert_eq!(spans.as_array().unwrap().len(), 1);
    assert_eq!(
        spans[0]["startTimeUnixNano"],
        ((LATEST_US - 10) as u128 * 1000).to_string()
    );
    assert_eq!(
        spans[0]["endTimeUnixNano"],
        (LATEST_US as u128 * 1000).to_string()
    );
    // ...and in v1.
    let (status, body) = store
        .get_json("/api/traces/00000000000000000000000000000abc")
        .await;
    assert_eq!(status, 200);
    let span = &body["data"][0]["spans"][0];
    assert_eq!(span["startTime"], LATEST_US - 10);
    assert_eq!(span["duration"], 10);
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gzip_bodies_with_trailing_junk_are_refused() {
    let store = TestStore::memory().await;
    let otlp = request(vec![resource_spans(
        "svc",
        vec![],
        vec![SpanSpec::server(0x77, 1, "op", NOW_US, 5).build()],
    )])
    .encode_to_vec();
    let mut junk = gzip(&otlp);
    junk.extend_from_slice(b"and then some junk");
    let (status, body) = store
        .post_bytes(
            &store.otlp_http(),
            "application/x-protobuf",
            Some("gzip"),
            junk,
        )
        .await;
    assert_eq!(status, 400);
    let message = RpcStatus::decode(body).unwrap().message;
    assert_eq!(
        message,
        "the body is not valid gzip: 18 bytes follow the end of the compressed data"
    );

    let mut junk = gzip(br#"[{"traceId":"78","id":"01","timestamp":1,"duration":1}]"#);
    junk.extend_from_slice(b"\x00\x01");
    let (status, body) = store
        .post_bytes(&store.zipkin(), "application/json", Some("gzip"), junk)
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        text(&body),
        "the body is not valid gzip: 2 bytes follow the end of the compressed data\n"
    );
    // Nothing of either was stored.
    for trace in ["0000000000000077", "0000000000000078"] {
        assert_eq!(store.get_json(&format!("/api/traces/{trace}")).await.0, 404);
    }
    // Concatenated gzip members are valid gzip (RFC 1952 §2.2) and still accepted.
    let mut members = gzip(br#"[{"traceId":"79","id":"01","timestamp":1,"duration":1},"#);
    members.extend(gzip(
        br#"{"traceId":"79","id":"02","timestamp":1,"duration":1}]"#,
    ));
    let (status, body) = store
        .post_bytes(&store.zipkin(), "application/json", Some("gzip"), members)
        .await;
    assert_eq!(status, 202, "{}", text(&body));
    store.stop().await;
}

/// Sends only a request head announcing `length` bytes, and reads what comes back.
async fn head_only(addr: std::net::SocketAddr, path: &str, length: usize) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: test\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // Bounded so that a server waiting for the body fails the test instead of hanging it.
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    answer.extend_from_slice(&chunk[..n]);
                    if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"\n") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer before the body was sent");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_content_length_above_max_body_is_refused_before_the_body_is_read() {
    let store = TestStore::start(Store::in_memory(Duration::from_secs(1 << 40)), 4096).await;
    let answer = head_only(store.addrs.zipkin, "/api/v2/spans", 10_000_000).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(
        answer.ends_with("the request body is larger than the limit of 4096 bytes (--max-body)\n"),
        "{answer}"
    );
    let answer = head_only(store.addrs.otlp_http, "/v1/traces", 10_000_000).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(
        answer.contains("larger than the limit of 4096 bytes (--max-body)"),
        "{answer}"
    );
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn names_and_keys_past_their_limits_are_refused_span_by_span() {
    let store = TestStore::memory().await;
    let long_service = "s".repeat(257);
    let good = |span: u64, name: &str| SpanSpec::server(0x99, span, name, NOW_US, 5).build();
    let long_name = "n".repeat(1025);
    let mut long_key = good(3, "op");
    long_key.attributes = vec![kv(&"k".repeat(257), s("v"))];
    let otlp = request(vec![
        resource_spans(&long_service, vec![], vec![good(1, "op")]),
        resource_spans(
            "svc",
            vec![],
            vec![good(2, &long_name), long_key, good(4, "op")],
        ),
    ]);
    let body = store
        .export("application/x-protobuf", otlp.encode_to_vec())
        .await;
    let partial = ExportTraceServiceResponse::decode(body)
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_spans, 3);
    assert_eq!(
        partial.error_message,
        "3 span(s) rejected: \
         resourceSpans[0].scopeSpans[0].spans[0]: the service name is 257 bytes long; the limit is 256 bytes; \
         resourceSpans[1].scopeSpans[0].spans[0]: the operation name is 1025 bytes long; the limit is 1024 bytes; \
         resourceSpans[1].scopeSpans[0].spans[1]: a tag key is 257 bytes long; the limit is 256 bytes"
    );
    let (_, trace) = store.get_json("/api/traces/0000000000000099").await;
    assert_eq!(trace["data"][0]["spans"].as_array().unwrap().len(), 1);

    let zipkin = json!([
        {"traceId": "9a", "id": "01", "timestamp": NOW_US, "duration": 1,
         "localEndpoint": {"serviceName": long_service}},
        {"traceId": "9a", "id": "02", "timestamp": NOW_US, "duration": 1,
         "localEndpoint": {"serviceName": "svc"}}
    ]);
    let (status, body) = store.post_json(&store.zipkin(), &zipkin).await;
    assert_eq!(status, 400);
    assert_eq!(
        text(&body),
        "1 span(s) stored; 1 span(s) rejected: [0]: the service name is 257 bytes long; the limit is 256 bytes\n"
    );
    let (_, services) = store.get_json("/api/services").await;
    assert_eq!(services["data"], json!(["svc"]));
    store.stop().await;
}
