//! The store's query API in-process (Jaeger HTTP v1 and v3 routes over an in-memory engine that
//! holds a few spans): the input is the request target, path and query string. Every request
//! must be answered, and never with a 5xx.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use http::Request;
use libfuzzer_sys::fuzz_target;
use meshtrace_store::server::query_router;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use meshtrace_store::{MemoryKv, Store};
use tower::ServiceExt;

struct Harness {
    runtime: tokio::runtime::Runtime,
    router: Router,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let store = Arc::new(
            Store::new(Arc::new(MemoryKv::new()), Duration::from_secs(3600))
                .expect("memory store"),
        );
        // Real spans to find: the captured OTLP request of Jaeger's own tests.
        let fixture = include_str!("../../tests/fixtures/jaeger/otlp2jaeger-in.json");
        let request: ExportTraceServiceRequest =
            serde_json::from_str(fixture).expect("the fixture is OTLP JSON");
        let converted = meshtrace_model::otlp::spans_from_otlp(&request.resource_spans);
        store.write(&converted.spans).expect("memory write");
        Harness {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime"),
            router: query_router(store),
        }
    })
}

/// Routes the store serves; the fuzzer's bytes choose one and write its query string.
const ROUTES: &[&str] = &[
    "/api/traces",
    "/api/traces/",
    "/api/services",
    "/api/services/svc/operations",
    "/api/operations",
    "/api/dependencies",
    "/api/v3/traces",
    "/api/v3/traces/",
    "/api/v3/services",
    "/api/v3/operations",
    "/api/v3/trace-summaries",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let route = ROUTES[usize::from(selector) % ROUTES.len()];
    let tail = String::from_utf8_lossy(rest);
    // Keep it a valid request target: the HTTP parser refuses the rest before any route runs.
    let tail: String = tail
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '%' })
        .collect();
    let target = if route.ends_with('/') {
        format!("{route}{tail}")
    } else {
        format!("{route}?{tail}")
    };
    let Ok(request) = Request::get(target.as_str()).body(Body::empty()) else {
        return;
    };
    let harness = harness();
    let response = harness
        .runtime
        .block_on(harness.router.clone().oneshot(request))
        .expect("infallible");
    assert!(
        !response.status().is_server_error(),
        "{target} answered {}",
        response.status()
    );
});
