//! meshtrace as its own tracing UI: the console answers the Jaeger UI's link routes, so
//! `external_url` can point at meshtrace itself (`meshtrace demo` does) and every
//! "View in Tracing" link and the "Distributed Tracing" menu item work without a Jaeger UI.
//!
//! - `/jaeger/search?service=&operation=&limit=&start=&end=&lookback=&tags=&minDuration=`
//! - `/jaeger/trace/{id}` (`?uiFind=<spanID>` selects a span) — the timeline page
//! - `/jaeger/trace/{id}...{id2}...?cohort=` — a side-by-side comparison

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use meshtrace_backend::TraceQuery;
use meshtrace_mesh::stats::TraceSummary;
use meshtrace_model::TraceId;
use meshtrace_model::time::{format_duration, format_time, now_micros, parse_ui_duration};

use super::shell::{Shell, Visitor, known_namespaces};
use super::view::View;
use super::{Choice, root, scatter};
use crate::Console;
use crate::error::{ApiError, ErrorCode, page};

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/jaeger", get(home))
        .route("/jaeger/", get(home))
        .route("/jaeger/search", get(search))
        .route("/jaeger/trace/{ids}", get(trace))
}

async fn home(State(console): State<Arc<Console>>) -> Redirect {
    Redirect::to(&format!("{}/jaeger/search", root(&console)))
}

const LOOKBACKS: [(&str, &str, u64); 7] = [
    ("5m", "Last 5 minutes", 300),
    ("15m", "Last 15 minutes", 900),
    ("1h", "Last hour", 3600),
    ("2h", "Last 2 hours", 7200),
    ("6h", "Last 6 hours", 21600),
    ("12h", "Last 12 hours", 43200),
    ("24h", "Last 24 hours", 86400),
];

pub struct SearchResult {
    trace_id: String,
    short: String,
    href: String,
    name: String,
    spans: usize,
    errors: usize,
    duration: String,
    started: String,
    services: String,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    shell: Shell,
    services: Vec<Choice>,
    operation: String,
    tags: String,
    min_duration: String,
    lookbacks: Vec<Choice>,
    limit: usize,
    searched: bool,
    error: Option<String>,
    partial: Option<String>,
    chart: scatter::Chart,
    results: Vec<SearchResult>,
}

/// Tags as a JSON object (`{"error":"true"}`, what Kiali links carry) or logfmt
/// (`error=true http.status_code=503`, what people type).
fn parse_tags(text: &str) -> Result<BTreeMap<String, String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(BTreeMap::new());
    }
    if text.starts_with('{') {
        let map: BTreeMap<String, serde_json::Value> = serde_json::from_str(text)
            .map_err(|e| format!("tags: not a JSON object of strings: {e}"))?;
        return Ok(map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect());
    }
    text.split_whitespace()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
                .ok_or_else(|| format!("tags: `{pair}` is not key=value"))
        })
        .collect()
}

async fn search(
    State(console): State<Arc<Console>>,
    visitor: Visitor,
    RawQuery(raw): RawQuery,
) -> Response {
    let pairs: BTreeMap<String, String> =
        form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let get = |k: &str| pairs.get(k).cloned().unwrap_or_default();
    let view = View::parse(None);
    let limit = get("limit")
        .parse::<usize>()
        .ok()
        .filter(|l| *l > 0)
        .unwrap_or(20)
        .min(crate::params::MAX_LIMIT);
    let lookback = pairs
        .get("lookback")
        .and_then(|l| LOOKBACKS.iter().find(|(v, _, _)| v == l))
        .map_or(3600, |l| l.2);
    let mut search_page = SearchPage {
        services: Vec::new(),
        operation: get("operation"),
        tags: get("tags"),
        min_duration: get("minDuration"),
        lookbacks: LOOKBACKS
            .iter()
            .map(|(value, label, secs)| Choice::new(value, label, *secs == lookback))
            .collect(),
        limit,
        searched: false,
        error: None,
        partial: None,
        chart: scatter::chart(&[], (0, 1), false, "", |_| String::new()),
        results: Vec::new(),
        shell: Shell::new(
            &console,
            &visitor,
            &view,
            "Search traces".into(),
            "",
            &known_namespaces(&console).await,
        ),
    };
    let backend = match console.backend() {
        Ok(backend) => backend.clone(),
        Err(error) => {
            let code = error.code;
            search_page.shell.error = Some(error.error);
            return page(Some(code), search_page);
        }
    };
    let services = console
        .timed("Services", backend.services())
        .await
        .unwrap_or_default();
    let service = get("service");
    let mut names: BTreeSet<String> = services.into_iter().collect();
    if !service.is_empty() {
        names.insert(service.clone());
    }
    search_page.services = names
        .into_iter()
        .map(|value| Choice {
            selected: value == service,
            label: value.clone(),
            value,
        })
        .collect();
    if service.is_empty() {
        return page(None, search_page);
    }
    search_page.searched = true;
    let mut tags = match parse_tags(&get("tags")) {
        Ok(tags) => tags,
        Err(error) => {
            search_page.error = Some(error);
            return page(Some(ErrorCode::BadRequest), search_page);
        }
    };
    // Every search stays within `query_scope`, as the API's do.
    tags.extend(console.config.tracing.query_scope.clone());
    let min_duration = match get("minDuration").as_str() {
        "" => None,
        text => match parse_ui_duration(text) {
            Some(d) => Some(d),
            None => {
                search_page.error = Some(format!(
                    "minDuration `{text}` is not a duration such as 10ms or 1.5s"
                ));
                return page(Some(ErrorCode::BadRequest), search_page);
            }
        },
    };
    let now = now_micros();
    let end = get("end").parse().unwrap_or(now);
    let start = get("start")
        .parse()
        .unwrap_or(end.saturating_sub(lookback.saturating_mul(1_000_000)));
    let query = TraceQuery {
        service: service.clone(),
        tags,
        start,
        end,
        min_duration,
        limit,
    };
    let found = match console
        .timed("AppTraces", backend.find_traces(&query))
        .await
    {
        Ok(found) => found,
        Err(error) => {
            // 400 for a search the backend cannot be asked, 503 when it failed.
            let error = ApiError::from(error);
            let code = error.code;
            search_page.error = Some(error.error);
            return page(Some(code), search_page);
        }
    };
    let operation = get("operation");
    let traces: Vec<_> = found
        .traces
        .into_iter()
        .filter(|t| {
            operation.is_empty()
                || t.spans
                    .iter()
                    .any(|s| s.process.service_name == service && s.operation_name == operation)
        })
        .collect();
    search_page.partial = found.partial;
    let root = root(&console);
    let href = |id: &str| format!("{root}/jaeger/trace/{id}");
    let summaries: Vec<TraceSummary> = traces.iter().map(TraceSummary::of).collect();
    search_page.chart = scatter::chart(&summaries, (start, end), false, "", href);
    search_page.results = traces
        .iter()
        .zip(&summaries)
        .map(|(trace, s)| {
            let services: BTreeSet<&str> = trace
                .spans
                .iter()
                .map(|sp| sp.process.service_name.as_str())
                .collect();
            SearchResult {
                short: s.short_id().to_string(),
                href: href(&s.trace_id),
                name: s.name(),
                spans: s.spans,
                errors: s.error_spans,
                duration: format_duration(s.duration),
                started: format_time(s.start),
                services: services.into_iter().collect::<Vec<_>>().join(", "),
                trace_id: s.trace_id.clone(),
            }
        })
        .collect();
    page(None, search_page)
}

pub struct Compared {
    short: String,
    href: String,
    first: bool,
    name: String,
    duration: String,
    spans: usize,
    errors: usize,
}

pub struct OperationRow {
    name: String,
    counts: Vec<usize>,
    differs: bool,
}

#[derive(Template)]
#[template(path = "compare.html")]
struct ComparePage {
    shell: Shell,
    error: Option<String>,
    traces: Vec<Compared>,
    operations: Vec<OperationRow>,
}

async fn trace(
    State(console): State<Arc<Console>>,
    Path(ids): Path<String>,
    visitor: Visitor,
    RawQuery(raw): RawQuery,
) -> Response {
    if !ids.contains("...") {
        return super::trace_page::render_trace_page(
            &console,
            &visitor,
            &ids,
            raw.as_deref(),
            None,
        )
        .await;
    }
    // `{id}...{id2}...?cohort=id&cohort=id2`: the path's IDs, then any cohort not among them.
    let mut wanted: Vec<String> = ids.split("...").map(str::to_string).collect();
    for (key, value) in form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes()) {
        if key == "cohort" && !wanted.iter().any(|w| *w == value) {
            wanted.push(value.into_owned());
        }
    }
    wanted.truncate(11);
    let view = View::parse(None);
    let mut shell = Shell::new(
        &console,
        &visitor,
        &view,
        "Compare traces".into(),
        "",
        &known_namespaces(&console).await,
    );
    let root = root(&console);
    let mut traces = Vec::new();
    let mut missing = Vec::new();
    for text in &wanted {
        let Ok(id) = TraceId::from_hex(text) else {
            missing.push(format!("`{text}` is not a trace ID"));
            continue;
        };
        match console.trace(id).await {
            Ok(Some(trace)) => traces.push(trace),
            Ok(None) => missing.push(format!("trace {text} not found")),
            Err(error) => {
                let code = error.code;
                shell.error = Some(error.error);
                return page(
                    Some(code),
                    ComparePage {
                        shell,
                        error: None,
                        traces: Vec::new(),
                        operations: Vec::new(),
                    },
                );
            }
        }
    }
    // Spans per service and operation in each trace.
    let mut counts: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, trace) in traces.iter().enumerate() {
        for span in &trace.spans {
            let key = format!("{} · {}", span.process.service_name, span.operation_name);
            let per_trace = counts.entry(key).or_insert_with(|| vec![0; traces.len()]);
            if let Some(count) = per_trace.get_mut(i) {
                *count = count.saturating_add(1);
            }
        }
    }
    let operations = counts
        .into_iter()
        .map(|(name, counts)| OperationRow {
            differs: counts.iter().any(|c| Some(c) != counts.first()),
            name,
            counts,
        })
        .collect();
    let compared = traces
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let s = TraceSummary::of(t);
            Compared {
                short: s.short_id().to_string(),
                href: format!("{root}/jaeger/trace/{}", s.trace_id),
                first: i == 0,
                name: s.name(),
                duration: format_duration(s.duration),
                spans: s.spans,
                errors: s.error_spans,
            }
        })
        .collect();
    page(
        None,
        ComparePage {
            shell,
            error: (!missing.is_empty()).then(|| missing.join("; ")),
            traces: compared,
            operations,
        },
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_as_the_jaeger_ui_writes_them() {
        assert_eq!(
            parse_tags("{\"error\":\"true\"}").unwrap(),
            BTreeMap::from([("error".into(), "true".into())])
        );
        assert_eq!(
            parse_tags("error=true http.status_code=\"503\"").unwrap(),
            BTreeMap::from([
                ("error".into(), "true".into()),
                ("http.status_code".into(), "503".into())
            ])
        );
        assert!(parse_tags("nonsense").is_err());
    }
}
