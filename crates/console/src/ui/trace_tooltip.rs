//! The Traces tab scatter's tooltip (Kiali's `TraceTooltip`): an HTML fragment for one trace —
//! its name, duration, "N spans, avg=…" and the compact "Compared with metrics" map (avg, p50,
//! p90 over 60m and 3h, Kiali's compact stats). `meshtrace.js` asks for it after a 400 ms hover
//! or on keyboard focus of a point; without script the point keeps its SVG `<title>`.
//!
//! Bounded: one trace (through the trace cache), and the stats of at most
//! [`metrics_stats::MAX_TARGETS`] workloads × 2 intervals, asked in process as the details do.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use meshtrace_mesh::stats::TraceSummary;
use meshtrace_model::Trace;

use super::heatmap::{self, Heatmap};
use super::metrics_stats::{self, COMPACT_INTERVALS, COMPACT_STATS};
use super::spans;
use super::trace_page::read_trace;
use super::view::format_duration;
use crate::Console;
use crate::error::page;

/// What the tooltip's left side shows.
enum Compact {
    /// The compact map (`n/a` in a cell whose stat is missing).
    Map(Heatmap),
    /// The trace has no Envoy span: nothing to compare (Kiali's `n/a`).
    NoEnvoy,
    /// The metrics source failed: which and why.
    Unavailable(String),
}

#[derive(Template)]
#[template(path = "trace_tooltip.html")]
struct Tooltip {
    trace_id: String,
    name: String,
    duration: String,
    /// `3 spans, avg=1.2ms` (Kiali's wording).
    spans: String,
    compact: Compact,
}

/// `GET /console/traces/{traceID}/tooltip`: the fragment, 400 for an ID that is not 1 to 32
/// hex digits, 404 for a trace the backend does not know.
pub(super) async fn tooltip(
    State(console): State<Arc<Console>>,
    Path(trace_id): Path<String>,
) -> Response {
    let trace = match read_trace(&console, &trace_id).await {
        Ok(trace) => trace,
        Err(response) => return response,
    };
    let compact = compact(&console, &trace).await;
    let mut response = page(None, fragment(&trace, compact));
    // The stats move with the clock: the page's script keeps what it read, no one else.
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    response
}

/// The compact map of `trace`: its first Envoy spans' workloads, in the span table's order.
async fn compact(console: &Console, trace: &Trace) -> Compact {
    let envoy = trace
        .spans
        .iter()
        .any(|s| meshtrace_mesh::tag_str(s, "component") == Some("proxy"));
    if !envoy {
        return Compact::NoEnvoy;
    }
    let ordered = spans::tree_order(trace);
    let targets = metrics_stats::targets(ordered.iter().map(|(_, s)| *s), &[]);
    match metrics_stats::fetch_compact(console, &targets).await {
        Ok(stats) => Compact::Map(
            heatmap::trace_heatmap(trace, &stats, &COMPACT_INTERVALS, &COMPACT_STATS).heatmap,
        ),
        Err(error) => Compact::Unavailable(error),
    }
}

fn fragment(trace: &Trace, compact: Compact) -> Tooltip {
    let summary = TraceSummary::of(trace);
    let average = if summary.spans == 0 {
        "n/a".to_string()
    } else {
        format_duration(summary.average_span)
    };
    Tooltip {
        name: summary.name(),
        duration: format_duration(summary.duration),
        spans: format!(
            "{} {}, avg={average}",
            summary.spans,
            if summary.spans == 1 { "span" } else { "spans" }
        ),
        trace_id: summary.trace_id,
        compact,
    }
}
