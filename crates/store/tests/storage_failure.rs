//! A store whose storage fails, over every surface: a batch it cannot take is retryable on each
//! ingest protocol (503 / `Unavailable`, as the OpenTelemetry Collector answers), a read it
//! cannot do is a server fault on each query API (500 / `Internal`, as Jaeger answers), each in
//! its surface's own body.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{RpcStatus, SpanSpec, TestStore, request, resource_spans};
use meshtrace_proto::{api_v2, api_v3};
use meshtrace_store::{Kv, MemoryKv, Op, Store, StoreError, Table};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use serde_json::json;

/// Memory storage that fails every write and read once `broken` is set.
struct BreakableKv {
    inner: MemoryKv,
    broken: Arc<AtomicBool>,
}

impl BreakableKv {
    fn check(&self, failure: StoreError) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            Err(failure)
        } else {
            Ok(())
        }
    }
}

impl Kv for BreakableKv {
    fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        self.check(StoreError::Write("no space left on device".into()))?;
        self.inner.write(ops)
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.check(StoreError::Corrupt("the disk is gone"))?;
        self.inner.get(table, key)
    }

    fn scan(
        &self,
        table: Table,
        from: &[u8],
        to: &[u8],
        reverse: bool,
        visit: &mut (dyn FnMut(&[u8], &[u8]) -> Result<bool, StoreError> + '_),
    ) -> Result<(), StoreError> {
        self.check(StoreError::Corrupt("the disk is gone"))?;
        self.inner.scan(table, from, to, reverse, visit)
    }

    fn disk_bytes(&self) -> u64 {
        self.inner.disk_bytes()
    }

    fn table_bytes(&self) -> Vec<(&'static str, u64)> {
        self.inner.table_bytes()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }

    fn compact(&self) -> Result<(), StoreError> {
        self.inner.compact()
    }
}

/// A running store whose storage is already broken.
async fn broken_store() -> TestStore {
    let broken = Arc::new(AtomicBool::new(false));
    let kv = BreakableKv {
        inner: MemoryKv::new(),
        broken: broken.clone(),
    };
    let store = Store::new(Arc::new(kv), Duration::from_secs(1 << 40)).unwrap();
    let store = TestStore::start(store, 1 << 20).await;
    broken.store(true, Ordering::SeqCst);
    store
}

fn batch() -> opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest {
    let span = SpanSpec::server(7, 1, "GET /", 1_900_000_000_000_000, 1000);
    request(vec![resource_spans("svc", Vec::new(), vec![span.build()])])
}

const NOT_STORED: &str = "the spans could not be stored: ";

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_the_store_cannot_take_is_retryable_on_every_ingest_protocol() {
    let store = broken_store().await;

    let (status, body) = store
        .post_bytes(
            &store.otlp_http(),
            "application/x-protobuf",
            None,
            batch().encode_to_vec(),
        )
        .await;
    assert_eq!(status, 503);
    let rpc = RpcStatus::decode(body).unwrap();
    assert_eq!(rpc.code, 14, "Unavailable");
    assert!(rpc.message.starts_with(NOT_STORED), "{}", rpc.message);

    let (status, body) = store.post_json(&store.otlp_http(), &batch()).await;
    assert_eq!(status, 503);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], 14);

    let mut client = TraceServiceClient::connect(store.otlp_grpc())
        .await
        .unwrap();
    let status = client.export(batch()).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable);
    assert!(status.message().starts_with(NOT_STORED), "{status:?}");

    let zipkin = json!([{
        "traceId": "0000000000000007", "id": "0000000000000001", "name": "get /",
        "timestamp": 1_900_000_000_000_000u64, "duration": 1000,
        "localEndpoint": {"serviceName": "svc"}
    }]);
    let (status, body) = store.post_json(&store.zipkin(), &zipkin).await;
    assert_eq!(status, 503);
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.starts_with(NOT_STORED), "{text}");
    store.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_the_store_cannot_do_is_a_server_fault_on_every_query_api() {
    let store = broken_store().await;
    let message = "stored data is corrupt: the disk is gone";

    for path in ["/api/traces/0000000000000007", "/api/services"] {
        let (status, body) = store.get_json(path).await;
        assert_eq!(status, 500, "{path}");
        assert_eq!(
            body,
            json!({"data": null, "total": 0, "limit": 0, "offset": 0,
                   "errors": [{"code": 500, "msg": message}]}),
            "{path}"
        );
    }
    for path in ["/api/v3/traces/0000000000000007", "/api/v3/services"] {
        let (status, body) = store.get_json(path).await;
        assert_eq!(status, 500, "{path}");
        assert_eq!(
            body,
            json!({"error": {"httpCode": 500, "message": message}}),
            "{path}"
        );
    }

    let url = format!("http://{}", store.addrs.query_grpc);
    let mut v2 = api_v2::query_service_client::QueryServiceClient::connect(url.clone())
        .await
        .unwrap();
    let status = v2
        .get_trace(api_v2::GetTraceRequest {
            trace_id: 7u128.to_be_bytes().to_vec(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::Internal, message)
    );
    let mut v3 = api_v3::query_service_client::QueryServiceClient::connect(url)
        .await
        .unwrap();
    let status = v3
        .get_services(api_v3::GetServicesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::Internal, message)
    );
    store.stop().await;
}
