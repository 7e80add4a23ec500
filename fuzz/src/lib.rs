//! What the fuzz targets share: an in-memory store, optionally holding a real trace (the captured
//! OTLP request of Jaeger's own tests), and a runtime to drive the store's routers in-process.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{Request, Response};
use meshtrace_model::Span;
use meshtrace_store::{MemoryKv, Store};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tower::ServiceExt;

/// Retention long enough that the fixture's 2023 timestamps are never expired.
pub const RETENTION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The spans of the captured Jaeger fixture.
pub fn fixture_spans() -> &'static [Span] {
    static SPANS: OnceLock<Vec<Span>> = OnceLock::new();
    SPANS.get_or_init(|| {
        let fixture = include_str!("../../tests/fixtures/jaeger/otlp2jaeger-in.json");
        let request: ExportTraceServiceRequest =
            serde_json::from_str(fixture).expect("the fixture is OTLP JSON");
        meshtrace_model::otlp::spans_from_otlp(&request.resource_spans).spans
    })
}

/// A fresh in-memory store.
pub fn memory_store() -> Arc<Store> {
    Arc::new(Store::new(Arc::new(MemoryKv::new()), RETENTION).expect("memory store"))
}

/// A router of the store, driven on a one-worker runtime built once per process.
pub struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
}

impl Harness {
    pub fn new(router: Router) -> Harness {
        Harness {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime"),
            router,
        }
    }

    /// Sends one request through the router and returns its answer.
    pub fn call(&self, request: Request<Body>) -> Response<Body> {
        let router = self.router.clone();
        self.runtime
            .block_on(router.oneshot(request))
            .expect("routers are infallible")
    }
}
