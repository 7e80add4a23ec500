//! The web console: server-rendered pages (askama templates, checked at compile time), SVG
//! charts drawn on the server, one small JS file for what needs a browser (tooltips,
//! auto-refresh). Page URLs follow Kiali's: `<web_root>/console/overview`,
//! `/console/applications|workloads|services`, `/console/namespaces/{ns}/{kind}/{name}`, with
//! `?tab=traces&traceId=<id>`. All assets are embedded in the binary.
//!
//! One module a page: [`lists`] (overview and the three lists), [`detail`] (an app, workload or
//! service) with its [`traces_tab`], [`trace_page`] (the timeline), [`jaeger`] (the Jaeger UI's
//! link routes) and [`tester`]; [`shell`] is what every page shows around its content,
//! [`assets`] the static files and the security headers. This module keeps the router and the
//! few helpers the pages share.

mod assets;
mod detail;
mod graph_page;
mod heatmap;
mod jaeger;
mod line_chart;
mod links;
mod lists;
mod metrics_stats;
mod metrics_tab;
mod plot;
mod scatter;
mod shell;
mod spans;
mod tester;
mod timeline;
pub(crate) mod trace_cache;
mod trace_page;
mod trace_tooltip;
mod traces_tab;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::Redirect;
use axum::routing::get;

use crate::Console;

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/", get(home))
        .route("/console", get(home))
        .route("/console/overview", get(lists::overview))
        .route("/console/graph/namespaces", get(graph_page::graph_page))
        .route("/console/{list}", get(lists::list))
        .route(
            "/console/namespaces/{namespace}/{kind}/{name}",
            get(detail::detail),
        )
        .merge(assets::routes())
        .merge(jaeger::routes())
        .route("/console/tracing", get(tester::show).post(tester::check))
        .route("/console/traces/{trace_id}", get(trace_page::trace_page))
        .route(
            "/console/traces/{trace_id}/timeline.json",
            get(trace_page::timeline_data),
        )
        .route(
            "/console/traces/{trace_id}/tooltip",
            get(trace_tooltip::tooltip),
        )
        .route(
            "/console/traces/{trace_id}/spans/{span_id}",
            get(trace_page::span_data),
        )
        .layer(axum::middleware::map_response(assets::secure))
}

/// The console's root path (`server.web_root`, without a trailing slash).
fn root(console: &Console) -> String {
    console.config.server.path_prefix().to_string()
}

async fn home(State(console): State<Arc<Console>>) -> Redirect {
    Redirect::to(&format!("{}/console/overview", root(&console)))
}

/// One option of a `<select>`.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

impl Choice {
    fn new(value: &str, label: &str, selected: bool) -> Self {
        Self {
            value: value.to_string(),
            label: label.to_string(),
            selected,
        }
    }
}

/// A query string (`?a=1&b=2`) as hidden form fields.
fn form_fields(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
        .into_owned()
        .collect()
}

/// `text` as one URL path segment or query value.
fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
