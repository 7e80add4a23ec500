//! The web console in a real browser: headless Chromium (Debian's `chromium`), driven over
//! WebDriver (`chromedriver`) with fantoccini, against consoles started on loopback ports in
//! front of a real store filled by the simulator. `./scripts/test` installs both packages; without
//! them the tests fail with a message naming the package to install.
//!
//! [`modes`]: the pages and the Traces tab in each tracing mode; [`trace_views`]: the span
//! table, the timeline, the Jaeger UI's link routes and the configuration tester. [`driver`]
//! starts the browser, [`page`] holds what the tests ask of a page; [`metrics_tab`]: the
//! metrics tabs and their Spans overlay; [`compare_metrics`] and [`scatter_tooltip`]: the
//! trace against its workloads' metrics, in the details and in the scatter's tooltip.

use std::net::SocketAddr;

// The check's helper is not used here.
#[allow(dead_code)]
#[path = "../common/mod.rs"]
mod common;
mod compare_metrics;
mod driver;
mod metrics_tab;
mod modes;
mod page;
mod scatter_tooltip;
mod trace_views;

use meshtrace_console::ConsoleOptions;
use meshtrace_model::{KeyValue, Span, SpanId, TraceId};
use meshtrace_store::server::LoopbackServer;
use meshtrace_testkit::now;

const XSS_OPERATION: &str = "<script>window.pwned=1</script>GET /xss";
const XSS_TAG: &str = "<script>alert(1)</script><img src=x onerror=\"window.pwned=2\">";
const XSS_TRACE: u128 = 0x0bad_0000_0000_0000_0000_0000_0000_0001;

/// A span whose operation and tag try to run script in the page.
fn hostile_span() -> Span {
    Span {
        trace_id: TraceId(XSS_TRACE),
        span_id: SpanId(1),
        operation_name: XSS_OPERATION.into(),
        references: vec![],
        flags: 1,
        start_time: now() - 30_000_000,
        duration: 4_000,
        tags: vec![
            KeyValue::string("span.kind", "server"),
            KeyValue::string("evil", XSS_TAG),
        ],
        logs: vec![meshtrace_model::Log {
            timestamp: now() - 29_999_000,
            fields: vec![
                KeyValue::string("event", "retry"),
                KeyValue::string("message", XSS_TAG),
            ],
        }],
        process: meshtrace_testkit::process("productpage.bookinfo", vec![]),
        warnings: vec![],
    }
}

async fn filled_store() -> LoopbackServer {
    common::filled_store(150, 1, 11, &[hostile_span()]).await
}

/// What each test starts with: a filled store, and a browser.
async fn store_and_browser() -> (LoopbackServer, driver::Browser) {
    (filled_store().await, driver::browser().await)
}

async fn console(yaml: &str) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    console_at(|_| yaml.to_string()).await
}

/// A console whose configuration may name its own address (`external_url` pointing at it).
async fn console_at(
    yaml: impl FnOnce(SocketAddr) -> String,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    common::start_console(ConsoleOptions::default(), yaml).await
}

fn tracing_yaml(body: &str) -> String {
    format!("external_services:\n  tracing:\n    enabled: true\n{body}")
}
