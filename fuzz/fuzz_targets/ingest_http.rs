//! The store's ingest ports in-process (OTLP/HTTP and Zipkin routes over an in-memory engine):
//! the first byte picks the route, the content type and the encoding, the rest is the body.
//! Every request must be answered with a status that says what happened, and never a 5xx.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use http::Request;
use libfuzzer_sys::fuzz_target;
use meshtrace_fuzz::{Harness, memory_store};
use meshtrace_store::ingest::{Ingest, otlp_http_routes, zipkin_routes};

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let ingest = Ingest {
            store: memory_store(),
            max_body: 1 << 20,
        };
        Harness::new(otlp_http_routes(ingest.clone()).merge(zipkin_routes(ingest)))
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let (path, content_type) = match selector % 4 {
        0 => ("/v1/traces", "application/x-protobuf"),
        1 => ("/v1/traces", "application/json"),
        2 => ("/api/v2/spans", "application/json"),
        _ => ("/v1/traces", "text/plain"),
    };
    let mut request = Request::post(path).header("content-type", content_type);
    if selector & 0x80 != 0 {
        request = request.header("content-encoding", "gzip");
    }
    let request = request.body(Body::from(body.to_vec())).expect("request");
    let response = harness().call(request);
    assert!(
        !response.status().is_server_error(),
        "ingest answered {} to a body it should refuse or store",
        response.status()
    );
});
