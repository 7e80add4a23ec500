//! A real store on ephemeral loopback ports, and builders of OTLP test data.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use meshtrace_store::server::{Addresses, LoopbackServer};
use meshtrace_store::{Store, StoreOptions};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};

pub struct TestStore {
    pub addrs: Addresses,
    pub store: Arc<Store>,
    pub http: reqwest::Client,
    server: LoopbackServer,
}

impl TestStore {
    pub async fn start(store: Store, max_body: usize) -> TestStore {
        let store = Arc::new(store);
        let server = LoopbackServer::start(store.clone(), max_body)
            .await
            .unwrap();
        TestStore {
            addrs: server.addresses.clone(),
            store,
            http: reqwest::Client::new(),
            server,
        }
    }

    /// A store in memory whose retention keeps the fixtures' old timestamps visible.
    pub async fn memory() -> TestStore {
        Self::start(
            Store::in_memory(Duration::from_secs(100 * 365 * 24 * 3600)),
            16 << 20,
        )
        .await
    }

    /// A store in memory with `options` and a 16 MiB `--max-body`.
    pub async fn in_memory_with(options: &StoreOptions) -> TestStore {
        Self::start(Store::in_memory_with(options), 16 << 20).await
    }

    pub fn query(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addrs.query_http, path_and_query)
    }

    pub fn otlp_http(&self) -> String {
        format!("http://{}/v1/traces", self.addrs.otlp_http)
    }

    pub fn zipkin(&self) -> String {
        format!("http://{}/api/v2/spans", self.addrs.zipkin)
    }

    pub fn otlp_grpc(&self) -> String {
        format!("http://{}", self.addrs.otlp_grpc)
    }

    /// A channel connected to the OTLP/gRPC port, for clients that send raw bytes.
    pub async fn otlp_grpc_channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.otlp_grpc())
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    /// Posts raw bytes with a content type and, optionally, a content encoding; the status and
    /// the body of the answer.
    pub async fn post_bytes(
        &self,
        url: &str,
        content_type: &str,
        encoding: Option<&str>,
        body: Vec<u8>,
    ) -> (u16, bytes::Bytes) {
        let mut request = self
            .http
            .post(url)
            .header("content-type", content_type)
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.bytes().await.unwrap())
    }

    /// Posts an uncompressed OTLP/HTTP export of `content_type` and asserts it is accepted
    /// (200); the body of the answer.
    pub async fn export(&self, content_type: &str, body: Vec<u8>) -> bytes::Bytes {
        let (status, reply) = self
            .post_bytes(&self.otlp_http(), content_type, None, body)
            .await;
        assert_eq!(status, 200, "{reply:?}");
        reply
    }

    /// Posts `body` as JSON (uncompressed); the status and the body of the answer.
    pub async fn post_json(&self, url: &str, body: &impl serde::Serialize) -> (u16, bytes::Bytes) {
        let body = serde_json::to_vec(body).unwrap();
        self.post_bytes(url, "application/json", None, body).await
    }

    /// The value of one series on the store's `/metrics`, named with its labels
    /// (`meshtrace_store_damaged_entries_total{kind="undecodable_key"}`).
    pub async fn metric(&self, series: &str) -> u64 {
        let text = meshtrace_testkit::http::text(self.http.get(self.query("/metrics"))).await;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in {text}"))
            .parse()
            .unwrap()
    }

    pub async fn get_json(&self, path_and_query: &str) -> (u16, serde_json::Value) {
        let response = self
            .http
            .get(self.query(path_and_query))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path_and_query}: {e}: {text}"));
        (status, json)
    }

    /// The body of an instant query of the store's Prometheus API at `at_s` (s), answered 200.
    pub async fn prometheus_query(&self, query: &str, at_s: u64) -> serde_json::Value {
        let query: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
        let (status, body) = self
            .get_json(&format!(
                "/prometheus/api/v1/query?time={at_s}&query={query}"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn stop(self) {
        self.server.stop().await.unwrap();
    }
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error, written here from the spec's field
/// numbers rather than taken from the store.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

pub fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub fn s(value: &str) -> any_value::Value {
    any_value::Value::StringValue(value.into())
}

pub fn trace_id(n: u128) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

pub fn span_id(n: u64) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// A span of `service` with the given IDs, times (µs) and attributes.
pub struct SpanSpec<'a> {
    pub trace: u128,
    pub span: u64,
    pub parent: u64,
    pub name: &'a str,
    pub kind: i32,
    pub start_us: u64,
    pub duration_us: u64,
    pub attributes: Vec<KeyValue>,
    pub error: bool,
}

impl<'a> SpanSpec<'a> {
    /// A root server span (OTLP kind 2) without attributes or error.
    pub fn server(trace: u128, span: u64, name: &'a str, start_us: u64, duration_us: u64) -> Self {
        SpanSpec {
            trace,
            span,
            parent: 0,
            name,
            kind: 2,
            start_us,
            duration_us,
            attributes: Vec::new(),
            error: false,
        }
    }

    pub fn build(&self) -> Span {
        Span {
            trace_id: trace_id(self.trace),
            span_id: span_id(self.span),
            parent_span_id: if self.parent == 0 {
                Vec::new()
            } else {
                span_id(self.parent)
            },
            name: self.name.into(),
            kind: self.kind,
            start_time_unix_nano: self.start_us * 1000,
            end_time_unix_nano: (self.start_us + self.duration_us) * 1000,
            attributes: self.attributes.clone(),
            status: self.error.then(|| Status {
                code: 2,
                message: String::new(),
            }),
            ..Default::default()
        }
    }
}

pub fn resource_spans(service: &str, resource: Vec<KeyValue>, spans: Vec<Span>) -> ResourceSpans {
    let mut attributes = vec![kv("service.name", s(service))];
    attributes.extend(resource);
    ResourceSpans {
        resource: Some(Resource {
            attributes,
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub fn request(resource_spans: Vec<ResourceSpans>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest { resource_spans }
}

/// The OpenTelemetry SDK's OTLP/HTTP (protobuf) span exporter, sending to `endpoint`.
pub fn otlp_http_exporter(endpoint: &str) -> opentelemetry_otlp::SpanExporter {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(endpoint)
        .build()
        .unwrap()
}
