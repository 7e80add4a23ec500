//! Every class of bad input gets a precise message and the right status, and loses nothing
//! that was acknowledged.

mod common;

use std::io::Write;

use bytes::Bytes;
use common::*;
use meshtrace_store::Store;
use meshtrace_store::raw_codec::ClientCodec;
use meshtrace_testkit::http::parts;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use serde_json::{Value, json};

const NOW: u64 = 1_900_000_000_000_000;

fn good(trace: u128, span: u64) -> opentelemetry_proto::tonic::trace::v1::Span {
    SpanSpec::server(trace, span, "GET /", NOW, 10).build()
}

/// Two good spans and three that cannot be stored, in one batch.
fn mixed_batch() -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    let mut no_trace = good(9, 9);
    no_trace.trace_id.clear();
    let mut zero_span = good(9, 9);
    zero_span.span_id = vec![0; 8];
    let mut backwards = good(9, 9);
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1;
    request(vec![resource_spans(
        "svc",
        vec![],
        vec![good(1, 1), no_trace, zero_span, good(2, 2), backwards],
    )])
}

async fn post(
    store: &TestStore,
    url: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, String) {
    let (status, bytes) = store.post_bytes(url, content_type, encoding, body).await;
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A store whose `--max-body` is 4096 bytes.
async fn small_store() -> TestStore {
    TestStore::start(
        Store::in_memory(std::time::Duration::from_secs(1 << 40)),
        4096,
    )
    .await
}

async fn stored(store: &TestStore, trace: &str) -> bool {
    store.get_json(&format!("/api/traces/{trace}")).await.0 == 200
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_http_bad_input() {
    let store = small_store().await;
    let url = store.otlp_http();

    // Undecodable bodies: 400 with what and where.
    let (status, body) = post(
        &store,
        &url,
        "application/json",
        None,
        b"{\"resourceSpans\": [}".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"code": 3, "message": "the body is not valid OTLP JSON: expected value at line 1 column 20"})
    );
    let (status, body) = store
        .post_bytes(&url, "application/x-protobuf", None, vec![0x0a, 0xff, 0xff])
        .await;
    assert_eq!(status, 400);
    let rpc = RpcStatus::decode(body).unwrap();
    assert_eq!(rpc.code, 3);
    assert!(
        rpc.message
            .starts_with("the body is not a valid OTLP ExportTraceServiceRequest protobuf: "),
        "{}",
        rpc.message
    );

    // Wrong media type: 415.
    let (status, body) = post(&store, &url, "text/plain", None, b"hello".to_vec()).await;
    assert_eq!(status, 415);
    assert!(body.contains(
        "Content-Type `text/plain`: OTLP/HTTP takes application/x-protobuf or application/json"
    ));
    let (status, body) = post(&store, &url, "application/json", Some("br"), b"{}".to_vec()).await;
    assert_eq!(status, 415);
    assert!(body.contains("Content-Encoding `br` is not supported"));

    // Too large, before or after gzip: 413.
    let big = serde_json::to_vec(&json!({"resourceSpans": [], "pad": "x".repeat(5000)})).unwrap();
    let (status, body) = post(&store, &url, "application/json", None, big.clone()).await;
    assert_eq!(status, 413);
    assert!(body.contains("larger than the limit of 4096 bytes (--max-body)"));
    let (status, _) = post(&store, &url, "application/json", Some("gzip"), gzip(&big)).await;
    assert_eq!(
        status, 413,
        "a small gzip body that inflates past the limit is refused"
    );
    let (status, body) = post(
        &store,
        &url,
        "application/json",
        Some("gzip"),
        b"not gzip".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("the body is not valid gzip"));

    // Spans that cannot be stored are rejected one by one; the good ones are kept.
    let batch = mixed_batch().encode_to_vec();
    let (status, body) = store
        .post_bytes(&url, "application/x-protobuf", Some("gzip"), gzip(&batch))
        .await;
    assert_eq!(status, 200);
    let reply = ExportTraceServiceResponse::decode(body).unwrap();
    let partial = reply.partial_success.unwrap();
    assert_eq!(partial.rejected_spans, 3);
    assert_eq!(
        partial.error_message,
        "3 span(s) rejected: resourceSpans[0].scopeSpans[0].spans[1]: no trace ID; \
         resourceSpans[0].scopeSpans[0].spans[2]: the span ID is all zeros; \
         resourceSpans[0].scopeSpans[0].spans[4]: span 0000000000000009 ends before it starts \
         (start 1900000000000000000 ns, end 1899999999999999999 ns)"
    );
    assert!(stored(&store, "0000000000000001").await);
    assert!(stored(&store, "0000000000000002").await);
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn otlp_grpc_bad_input() {
    let store = TestStore::memory().await;
    let mut client = TraceServiceClient::connect(store.otlp_grpc())
        .await
        .unwrap();
    let reply = client.export(mixed_batch()).await.unwrap().into_inner();
    assert_eq!(reply.partial_success.unwrap().rejected_spans, 3);
    assert!(stored(&store, "0000000000000002").await);

    // Garbage bytes: InvalidArgument, not Internal.
    let channel = store.otlp_grpc_channel().await;
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
        .parse()
        .unwrap();
    let status = grpc
        .unary::<Bytes, ExportTraceServiceResponse, _>(
            tonic::Request::new(Bytes::from_static(&[0x0a, 0xff, 0xff])),
            path,
            ClientCodec::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status
            .message()
            .starts_with("the message is not a valid OTLP ExportTraceServiceRequest: "),
        "{}",
        status.message()
    );
    store.stop().await;
}

/// A message past `--max-body` over OTLP/gRPC gets what OTLP/HTTP's 413 carries in its body:
/// `ResourceExhausted` and the same message, whether it is too large as sent or once inflated.
#[tokio::test(flavor = "multi_thread")]
async fn otlp_grpc_over_max_body_is_resource_exhausted() {
    let store = small_store().await;
    let channel = store.otlp_grpc_channel().await;
    let path: tonic::codegen::http::uri::PathAndQuery =
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
            .parse()
            .unwrap();
    // A name that makes the message 5,000-odd bytes, and compresses to a few dozen.
    let mut big = good(1, 1);
    big.name = "x".repeat(5000);
    let message =
        Bytes::from(request(vec![resource_spans("svc", vec![], vec![big])]).encode_to_vec());
    for compressed in [false, true] {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        if compressed {
            grpc = grpc.send_compressed(tonic::codec::CompressionEncoding::Gzip);
        }
        grpc.ready().await.unwrap();
        let status = grpc
            .unary::<Bytes, ExportTraceServiceResponse, _>(
                tonic::Request::new(message.clone()),
                path.clone(),
                ClientCodec::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (
                tonic::Code::ResourceExhausted,
                "the request body is larger than the limit of 4096 bytes (--max-body)"
            ),
            "compressed: {compressed}"
        );
    }
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn zipkin_bad_input() {
    let store = TestStore::memory().await;
    let url = store.zipkin();
    let (status, body) = post(
        &store,
        &url,
        "application/json",
        None,
        b"[{\"traceId\": 5}]".to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "the body is not a valid Zipkin v2 JSON list of spans: invalid type: integer `5`, expected a string at line 1 column 14\n"
    );
    let (status, body) = post(&store, &url, "application/x-protobuf", None, vec![1, 2]).await;
    assert_eq!(status, 415);
    assert!(body.starts_with("Zipkin protobuf is not supported"));
    let batch = json!([
        {"traceId": "01", "id": "02", "timestamp": 1, "duration": 1, "localEndpoint": {"serviceName": "a"}},
        {"traceId": "01", "id": "zz", "timestamp": 1, "duration": 1}
    ]);
    let (status, body) = store.post_json(&url, &batch).await;
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 400);
    assert_eq!(
        body,
        "1 span(s) stored; 1 span(s) rejected: [1]: span ID `zz` is not 1 to 16 hexadecimal digits\n"
    );
    assert!(stored(&store, "0000000000000001").await);
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn query_parameters_are_checked() {
    let store = TestStore::memory().await;
    let cases: &[(&str, u16, &str)] = &[
        ("/api/traces", 400, "parameter 'service' is required"),
        (
            "/api/traces?service=a&start=yesterday",
            400,
            "unable to parse param 'start': \"yesterday\" is not a whole number of microseconds",
        ),
        (
            "/api/traces?service=a&minDuration=10",
            400,
            "unable to parse param 'minDuration': time: missing unit in duration \"10\"",
        ),
        (
            "/api/traces?service=a&minDuration=2s&maxDuration=1s",
            400,
            "'maxDuration' should be greater than 'minDuration'",
        ),
        (
            "/api/traces?service=a&tags=%7Bbad",
            400,
            "malformed 'tags' parameter, cannot unmarshal JSON: key must be a string at line 1 column 2",
        ),
        (
            "/api/traces?service=a&tag=nocolon",
            400,
            "malformed 'tag' parameter, expecting key:value, received: nocolon",
        ),
        (
            "/api/traces?traceID=xyz",
            400,
            "cannot parse traceID param: trace ID `xyz` is not 1 to 32 hexadecimal digits",
        ),
        (
            "/api/traces/xyz",
            400,
            "cannot parse traceID param: trace ID `xyz` is not 1 to 32 hexadecimal digits",
        ),
        ("/api/traces/0000000000000042", 404, "trace not found"),
        ("/api/operations", 400, "parameter 'service' is required"),
        (
            "/api/dependencies?endTs=soon",
            400,
            "unable to parse param 'endTs': \"soon\" is not a whole number of milliseconds",
        ),
    ];
    for (path, status, message) in cases {
        let response = store.http.get(store.query(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), *status, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; charset=utf-8",
            "{path}"
        );
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert_eq!(
            body["errors"],
            json!([{"code": status, "msg": message}]),
            "{path}"
        );
        assert_eq!(body["data"], Value::Null);
    }
    let v3: &[(&str, u16, &str)] = &[
        (
            "/api/v3/traces?query.serviceName=a",
            400,
            "query.startTimeMin and query.startTimeMax are required parameters",
        ),
        (
            "/api/v3/traces?query.startTimeMin=2026-01-02T00:00:00Z&query.startTimeMax=2026-01-01T00:00:00Z",
            400,
            "query.startTimeMin must be before query.startTimeMax",
        ),
        (
            "/api/v3/traces?query.startTimeMin=monday&query.startTimeMax=2026-01-01T00:00:00Z",
            400,
            "malformed parameter query.startTimeMin: cannot parse \"monday\" as an RFC 3339 time (e.g. 2026-11-24T05:00:00Z)",
        ),
        (
            "/api/v3/traces?query.startTimeMin=2026-01-01T00:00:00Z&query.startTimeMax=2026-01-02T00:00:00Z",
            404,
            "No traces found",
        ),
        (
            "/api/v3/traces/00000000000000000000000000000042",
            404,
            "No traces found",
        ),
        (
            "/api/v3/traces/nothex",
            400,
            "malformed parameter trace_id: trace ID `nothex` is not 1 to 32 hexadecimal digits",
        ),
        ("/api/v3/operations", 400, "service is required"),
    ];
    for (path, status, message) in v3 {
        let (actual, body) = store.get_json(path).await;
        assert_eq!(actual, *status, "{path}");
        assert_eq!(
            body,
            json!({"error": {"httpCode": status, "message": message}}),
            "{path}"
        );
    }
    let (status, _, body) = parts(store.http.get(store.query("/api/nothing"))).await;
    assert_eq!(status, 404);
    assert_eq!(body, "404 page not found\n");
    store.stop().await;
}
