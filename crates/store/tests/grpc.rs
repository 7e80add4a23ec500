//! The gRPC query APIs (jaeger.api_v2 and api_v3) over the wire with tonic clients generated
//! from the same protos: every RPC, its status codes, and the same answers as the HTTP routes.

mod common;

use std::sync::Arc;

use common::TestStore;
use meshtrace_model::jaeger_json::trace_to_json;
use meshtrace_model::{
    KeyValue, Process, RefType, Span, SpanId, SpanRef, Trace, TraceId, Value, group_by_trace,
};
use meshtrace_proto::api_v2::query_service_client::QueryServiceClient as V2Client;
use meshtrace_proto::api_v3::query_service_client::QueryServiceClient as V3Client;
use meshtrace_proto::convert::{duration, span_from_proto, timestamp};
use meshtrace_proto::{api_v2, api_v3};
use meshtrace_testkit::{now, rfc3339};
use serde_json::{Value as Json, json};

/// Traces of a gateway calling productpage calling reviews, the last failing every third time.
fn dataset(base: u64) -> Vec<Span> {
    let gateway = meshtrace_testkit::process(
        "istio-ingressgateway.istio-system",
        vec![KeyValue::string("ip", "10.0.0.1")],
    );
    let productpage = meshtrace_testkit::process("productpage.bookinfo", vec![]);
    let reviews = meshtrace_testkit::process("reviews.bookinfo", vec![]);
    let mut spans = Vec::new();
    for t in 1..=25u64 {
        let trace_id = TraceId(((t as u128) << 64) | 0xabc);
        let start = base + t * 10_000;
        let make = |id: u64,
                    parent: Option<u64>,
                    process: &Arc<Process>,
                    op: &str,
                    kind: &str,
                    offset: u64,
                    dur: u64,
                    error: bool| {
            let mut tags = vec![
                KeyValue::string("span.kind", kind),
                KeyValue::new(
                    "http.status_code",
                    Value::I64(if error { 503 } else { 200 }),
                ),
                // Falsy values, which a JSON writer must not take for defaults.
                KeyValue::new("retried", Value::Bool(false)),
                KeyValue::new("upstream.retries", Value::I64(0)),
            ];
            if error {
                tags.push(KeyValue::new("error", Value::Bool(true)));
            }
            Span {
                trace_id,
                span_id: SpanId(t * 100 + id),
                operation_name: op.into(),
                references: parent
                    .map(|p| SpanRef {
                        ref_type: RefType::ChildOf,
                        trace_id,
                        span_id: SpanId(t * 100 + p),
                    })
                    .into_iter()
                    .collect(),
                flags: 1,
                start_time: start + offset,
                duration: dur,
                tags,
                logs: vec![],
                process: process.clone(),
                warnings: vec![],
            }
        };
        let error = t % 3 == 0;
        spans.push(make(
            1,
            None,
            &gateway,
            "productpage.bookinfo.svc.cluster.local:9080/productpage",
            "client",
            0,
            9000 + t,
            error,
        ));
        spans.push(make(
            2,
            Some(1),
            &productpage,
            "productpage.bookinfo.svc.cluster.local:9080/productpage",
            "server",
            100,
            8000 + t,
            error,
        ));
        spans.push(make(
            3,
            Some(2),
            &productpage,
            "reviews.bookinfo.svc.cluster.local:9080/*",
            "client",
            200,
            3000 + t,
            error,
        ));
        spans.push(make(
            4,
            Some(3),
            &reviews,
            "reviews.bookinfo.svc.cluster.local:9080/*",
            "server",
            300,
            2000 + t * 10,
            error,
        ));
    }
    spans
}

async fn setup() -> (
    TestStore,
    V2Client<tonic::transport::Channel>,
    V3Client<tonic::transport::Channel>,
    u64,
) {
    let store = TestStore::memory().await;
    let base = now() - 60_000_000;
    store.store.write(&dataset(base)).unwrap();
    let url = format!("http://{}", store.addrs.query_grpc);
    let v2 = V2Client::connect(url.clone()).await.unwrap();
    let v3 = V3Client::connect(url).await.unwrap();
    (store, v2, v3, base)
}

fn v2_traces(chunks: Vec<api_v2::SpansResponseChunk>) -> Vec<Trace> {
    for chunk in &chunks {
        assert!(chunk.spans.len() <= 10, "chunks hold at most 10 spans");
        for span in &chunk.spans {
            assert!(span.process.is_some(), "every span carries its process");
        }
    }
    let spans = chunks
        .iter()
        .flat_map(|c| c.spans.iter().map(|s| span_from_proto(s).unwrap()))
        .collect();
    group_by_trace(spans)
}

/// The answer of a unary call that must succeed.
async fn unary<T>(call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>) -> T {
    call.await.unwrap().into_inner()
}

/// Every message of a server-streaming call that must succeed.
async fn stream<T>(
    call: impl Future<Output = Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>>,
) -> Vec<T> {
    let mut stream = call.await.unwrap().into_inner();
    let mut items = Vec::new();
    while let Some(item) = stream.message().await.unwrap() {
        items.push(item);
    }
    items
}

#[tokio::test(flavor = "multi_thread")]
async fn api_v2_answers_as_the_http_routes_do() {
    let (store, mut v2, _, base) = setup().await;

    let services = unary(v2.get_services(api_v2::GetServicesRequest {})).await;
    let (_, http) = store.get_json("/api/services").await;
    assert_eq!(json!(services.services), http["data"]);

    let operations = unary(v2.get_operations(api_v2::GetOperationsRequest {
        service: "productpage.bookinfo".into(),
        span_kind: "server".into(),
    }))
    .await;
    let (_, http) = store
        .get_json("/api/operations?service=productpage.bookinfo&spanKind=server")
        .await;
    let grpc: Vec<Json> = operations
        .operations
        .iter()
        .map(|o| json!({"name": o.name, "spanKind": o.span_kind}))
        .collect();
    assert_eq!(json!(grpc), http["data"]);
    assert_eq!(
        operations.operation_names,
        ["productpage.bookinfo.svc.cluster.local:9080/productpage"]
    );

    // GetTrace: the same trace as /api/traces/{id}, once converted back.
    let id = TraceId((3u128 << 64) | 0xabc);
    let chunks = stream(v2.get_trace(api_v2::GetTraceRequest {
        trace_id: id.to_bytes().to_vec(),
        ..Default::default()
    }))
    .await;
    let traces = v2_traces(chunks);
    assert_eq!(traces.len(), 1);
    let (_, http) = store.get_json(&format!("/api/traces/{id}")).await;
    assert_eq!(
        serde_json::to_value(trace_to_json(&traces[0])).unwrap(),
        http["data"][0]
    );

    // FindTraces: service + tag + minDuration, limit 5, in a window.
    let query = api_v2::TraceQueryParameters {
        service_name: "reviews.bookinfo".into(),
        tags: [("error".to_string(), "true".to_string())].into(),
        start_time_min: Some(timestamp(base)),
        start_time_max: Some(timestamp(now())),
        duration_min: Some(duration(2100)),
        search_depth: 5,
        ..Default::default()
    };
    let chunks = stream(v2.find_traces(api_v2::FindTracesRequest { query: Some(query) })).await;
    let grpc: Vec<Json> = v2_traces(chunks)
        .iter()
        .map(|t| serde_json::to_value(trace_to_json(t)).unwrap())
        .collect();
    let (_, http) = store
        .get_json(&format!(
            "/api/traces?service=reviews.bookinfo&tags=%7B%22error%22%3A%22true%22%7D&minDuration=2100us&limit=5&start={base}&end={}",
            now()
        ))
        .await;
    assert_eq!(grpc.len(), 5);
    assert_eq!(json!(grpc), http["data"]);

    let deps = unary(v2.get_dependencies(api_v2::GetDependenciesRequest {
        start_time: Some(timestamp(base)),
        end_time: Some(timestamp(now())),
    }))
    .await;
    let (_, http) = store.get_json("/api/dependencies?lookback=3600000").await;
    let grpc: Vec<Json> = deps
        .dependencies
        .iter()
        .map(|d| json!({"parent": d.parent, "child": d.child, "callCount": d.call_count}))
        .collect();
    assert_eq!(json!(grpc), http["data"]);
    assert_eq!(grpc.len(), 2);
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_v2_status_codes_are_jaegers() {
    let (store, mut v2, _, _) = setup().await;
    for (trace_id, code, message) in [
        (
            TraceId(42).to_bytes().to_vec(),
            tonic::Code::NotFound,
            "trace not found",
        ),
        (
            vec![0; 16],
            tonic::Code::InvalidArgument,
            "the trace ID is zero",
        ),
        (
            vec![1, 2, 3],
            tonic::Code::InvalidArgument,
            "trace ID has 3 bytes; expected 16 (or 8)",
        ),
    ] {
        let answer = v2
            .get_trace(api_v2::GetTraceRequest {
                trace_id,
                ..Default::default()
            })
            .await;
        assert_eq!(failure(answer), (code, message.to_string()));
    }
    let answer = v2
        .find_traces(api_v2::FindTracesRequest {
            query: Some(api_v2::TraceQueryParameters {
                service_name: "a".into(),
                ..Default::default()
            }),
        })
        .await;
    assert_eq!(
        failure(answer),
        (
            tonic::Code::InvalidArgument,
            "start time min and max are required parameters".to_string()
        )
    );
    let answer = v2
        .get_dependencies(api_v2::GetDependenciesRequest::default())
        .await;
    assert_eq!(failure(answer).0, tonic::Code::InvalidArgument);
    let answer = v2
        .archive_trace(api_v2::ArchiveTraceRequest::default())
        .await;
    assert_eq!(
        failure(answer),
        (
            tonic::Code::Unimplemented,
            "archiving traces is not supported by meshtrace's store".to_string()
        )
    );
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_v3_answers_as_the_http_gateway_does() {
    let (store, _, mut v3, base) = setup().await;
    let services = unary(v3.get_services(api_v3::GetServicesRequest {})).await;
    let (_, http) = store.get_json("/api/v3/services").await;
    assert_eq!(json!({"services": services.services}), http);

    let operations = unary(v3.get_operations(api_v3::GetOperationsRequest {
        service: "reviews.bookinfo".into(),
        span_kind: String::new(),
    }))
    .await;
    let (_, http) = store
        .get_json("/api/v3/operations?service=reviews.bookinfo")
        .await;
    let grpc: Vec<Json> = operations
        .operations
        .iter()
        .map(|o| json!({"name": o.name, "spanKind": o.span_kind}))
        .collect();
    assert_eq!(json!({"operations": grpc}), http);

    let id = TraceId((6u128 << 64) | 0xabc);
    let data = stream(v3.get_trace(api_v3::GetTraceRequest {
        trace_id: id.to_hex32(),
        ..Default::default()
    }))
    .await;
    let (_, http) = store
        .get_json(&format!("/api/v3/traces/{}", id.to_hex32()))
        .await;
    // Read back by OTLP's own JSON decoder, which fills in what protojson leaves out: the same
    // messages as the gRPC stream's.
    let decoded: Vec<opentelemetry_proto::tonic::trace::v1::ResourceSpans> =
        serde_json::from_value(http["result"]["resourceSpans"].clone()).unwrap();
    assert_eq!(decoded, data[0].resource_spans);

    let start = rfc3339(base);
    let end = rfc3339(now());
    let query = || api_v3::TraceQueryParameters {
        service_name: "productpage.bookinfo".into(),
        start_time_min: Some(timestamp(base)),
        start_time_max: Some(timestamp(now())),
        search_depth: 4,
        ..Default::default()
    };
    let traces = stream(v3.find_traces(api_v3::FindTracesRequest {
        query: Some(query()),
    }))
    .await;
    assert_eq!(traces.len(), 4);
    let (_, http) = store
        .get_json(&format!("/api/v3/traces?query.serviceName=productpage.bookinfo&query.startTimeMin={start}&query.startTimeMax={end}&query.searchDepth=4"))
        .await;
    // One TracesData per trace over gRPC, one merged document over HTTP: the same spans.
    let all: Vec<_> = traces
        .iter()
        .flat_map(|t| t.resource_spans.clone())
        .collect();
    assert_eq!(
        span_ids(&serde_json::to_value(&all).unwrap()),
        span_ids(&http["result"]["resourceSpans"])
    );
    assert_eq!(span_ids(&http["result"]["resourceSpans"]).len(), 16);

    let summaries = stream(v3.find_trace_summaries(api_v3::FindTraceSummariesRequest {
        query: Some(query()),
    }))
    .await;
    let (_, http) = store
        .get_json(&format!("/api/v3/trace-summaries?query.serviceName=productpage.bookinfo&query.startTimeMin={start}&query.startTimeMax={end}&query.searchDepth=4"))
        .await;
    let grpc = &summaries[0].summaries;
    assert_eq!(grpc.len(), 4);
    for (g, h) in grpc.iter().zip(http["summaries"].as_array().unwrap()) {
        assert_eq!(json!(g.trace_id), h["traceId"]);
        assert_eq!(json!(g.root_service_name), h["rootServiceName"]);
        assert_eq!(json!(g.span_count), h["spanCount"]);
        assert_eq!(
            json!(g.min_start_time_unix_nano.to_string()),
            h["minStartTimeUnixNano"]
        );
        assert_eq!(g.services.len(), h["services"].as_array().unwrap().len());
    }

    let answer = v3
        .get_trace(api_v3::GetTraceRequest {
            trace_id: "00000000000000000000000000000042".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(failure(answer).0, tonic::Code::NotFound);
    let answer = v3
        .find_traces(api_v3::FindTracesRequest {
            query: Some(api_v3::TraceQueryParameters::default()),
        })
        .await;
    assert_eq!(failure(answer).0, tonic::Code::InvalidArgument);
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_health_service_reports_serving() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let (store, _, _, _) = setup().await;
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", store.addrs.query_grpc))
            .unwrap()
            .connect()
            .await
            .unwrap();
    let mut health = HealthClient::new(channel);
    for service in [
        "",
        "jaeger.api_v2.QueryService",
        "jaeger.api_v3.QueryService",
    ] {
        let reply = unary(health.check(HealthCheckRequest {
            service: service.into(),
        }))
        .await;
        assert_eq!(reply.status, ServingStatus::Serving as i32, "{service}");
    }
    store.stop().await;
}

fn span_ids(resource_spans: &Json) -> std::collections::BTreeSet<(String, String)> {
    resource_spans
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rs| rs["scopeSpans"].as_array().unwrap().iter())
        .flat_map(|ss| ss["spans"].as_array().unwrap().iter())
        .map(|s| {
            (
                s["traceId"].as_str().unwrap().to_string(),
                s["spanId"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The code and message of a call that must fail.
fn failure<T>(answer: Result<T, tonic::Status>) -> (tonic::Code, String) {
    let status = answer.err().expect("the call fails");
    (status.code(), status.message().to_string())
}
