//! The store's query API in-process (Jaeger HTTP v1 and v3 routes over an in-memory engine that
//! holds a few spans): the input is the request target, path and query string. Every request
//! must be answered, and never with a 5xx.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use http::Request;
use libfuzzer_sys::fuzz_target;
use meshtrace_fuzz::{Harness, fixture_spans, memory_store};
use meshtrace_store::server::query_router;

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let store = memory_store();
        store.write(fixture_spans()).expect("memory write");
        Harness::new(query_router(store, 16 << 20))
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
    let response = harness().call(request);
    assert!(
        !response.status().is_server_error(),
        "{target} answered {}",
        response.status()
    );
});
