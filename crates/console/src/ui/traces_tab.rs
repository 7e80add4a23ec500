//! The Traces tab of a detail page (`?tab=traces`): the scatter chart of the target's traces
//! with Kiali's options (limit, errors only, value axis, percentile: its values from the
//! metrics, as Kiali's), the coverage banner, and the selected trace's details: its summary,
//! the trace compared with its workloads' metrics, the similar traces, the span table.

use std::collections::{BTreeMap, HashMap};

use askama::Template;
use meshtrace_mesh::Kind;
use meshtrace_mesh::stats::{TraceSummary, percentile, similar};
use meshtrace_model::{Trace, TraceId};

use super::heatmap::{self, Heatmap};
use super::links::Links;
use super::metrics_stats::{self, INTERVALS, STATS, Stats, StatsTarget};
use super::view::{LIMITS, PERCENTILES, View, ago, format_duration, format_time};
use super::{Choice, enc, form_fields, root, scatter, spans};
use crate::Console;
use crate::params::TracingParams;
use crate::tracing_api::{self, TracesRequest};

/// What the Traces tab is asked: whose traces, in which view, and where its links go.
pub(super) struct TabRequest<'a> {
    pub(super) console: &'a Console,
    pub(super) view: &'a View,
    pub(super) kind: Kind,
    pub(super) namespace: &'a str,
    pub(super) name: &'a str,
    /// The detail page's path, which the tab's links extend with their query.
    pub(super) base: &'a str,
    /// Links into the backend's own UI, when there is one.
    pub(super) links: Option<&'a Links>,
}

/// What the Traces tab shows; the detail page embeds it.
#[derive(Template)]
#[template(path = "traces_tab.html")]
pub(super) struct TracesTab {
    /// The options form keeps the page's namespaces, time range and refresh.
    keep: Vec<(String, String)>,
    limits: Vec<Choice>,
    errors_only: bool,
    spans_average: bool,
    percentiles: Vec<Choice>,
    /// Where the percentiles come from (the metrics, or the fetched traces and why).
    percentile_source: String,
    search_link: Option<String>,
    coverage: Option<String>,
    partial: Option<String>,
    traces_error: Option<String>,
    chart: scatter::Chart,
    /// Where the scatter's script asks a point's tooltip: `<this>/<traceID>/tooltip`.
    tooltip_base: String,
    details: Option<Details>,
    missing_trace: Option<String>,
}

impl TracesTab {
    /// The tab before anything was found.
    fn empty(view: &View) -> TracesTab {
        TracesTab {
            keep: Vec::new(),
            limits: Vec::new(),
            errors_only: view.errors_only,
            spans_average: view.spans_average,
            percentiles: Vec::new(),
            percentile_source: String::new(),
            search_link: None,
            coverage: None,
            partial: None,
            traces_error: None,
            chart: scatter::chart(&[], (0, 1), false, "", |_| String::new()),
            tooltip_base: String::new(),
            details: None,
            missing_trace: None,
        }
    }
}

struct Similar {
    trace_id: String,
    short: String,
    href: String,
    duration_diff: String,
    duration_class: &'static str,
    average_diff: String,
    average_class: &'static str,
}

/// "Compared with metrics": the trace's heatmap, or why there is none.
struct Compared {
    heatmap: Option<Heatmap>,
    incomplete: bool,
    /// `3 of 4 Envoy spans compared`.
    counts: String,
    error: Option<String>,
}

struct Details {
    trace_id: String,
    name: String,
    started: String,
    ago: String,
    spans: usize,
    apps: usize,
    error_spans: usize,
    duration: String,
    average: String,
    similar: Vec<Similar>,
    mean_duration_diff: String,
    mean_duration_class: &'static str,
    mean_average_diff: String,
    mean_average_class: &'static str,
    view_link: Option<String>,
    compare_link: Option<String>,
    table: spans::SpanTable,
    compared: Compared,
    timeline_href: String,
    /// The span filter form keeps the page's other parameters.
    span_keep: Vec<(String, String)>,
}

/// `+12.3ms` / `−4.0ms`, and a class for the heatmap cell.
fn difference(this: u64, other: u64) -> (String, &'static str) {
    let longer = this >= other;
    let diff = this.abs_diff(other);
    let text = format!(
        "{}{}",
        if longer { "+" } else { "−" },
        format_duration(diff)
    );
    let relative = diff as f64 / other.max(1) as f64;
    let class = if relative <= 0.1 {
        "same"
    } else if longer {
        "slower"
    } else {
        "faster"
    };
    (text, class)
}

/// The tab for `request`: the traces found (or why there are none), the chart, and the
/// selected trace's details.
pub(super) async fn traces_tab(request: TabRequest<'_>) -> TracesTab {
    let TabRequest {
        console,
        view,
        kind,
        namespace,
        name,
        base,
        links,
    } = request;
    let mut tab = TracesTab::empty(view);
    tab.tooltip_base = format!("{}/console/traces/", root(console));
    let limit = view
        .limit
        .unwrap_or((console.config.ui_tracing_limit as usize).clamp(1, 1000));
    let (start, end) = view.window();
    let mut tags = BTreeMap::new();
    if view.errors_only {
        tags.insert("error".to_string(), "true".to_string());
    }
    tab.keep = form_fields(&view.navigation().query(&[("tab", Some("traces".into()))]));
    tab.limits = LIMITS
        .iter()
        .map(|l| Choice::new(&l.to_string(), &l.to_string(), *l == limit))
        .collect();

    // Kiali's percentile filter: values from the metrics, the chosen one the search's
    // minDuration. Without metrics the fetched traces' percentiles filter them afterwards.
    let from_metrics = metrics_stats::percentiles(console, kind, namespace, name).await;
    let min_ms = match &from_metrics {
        Ok(values) => values.get(view.percentile.as_str()).copied(),
        Err(_) => None,
    };
    let request = TracesRequest {
        namespace: namespace.into(),
        kind,
        name: name.into(),
        params: TracingParams {
            start,
            end,
            limit,
            // ms → µs, rounded down so the percentile's own traces stay.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            min_duration: min_ms.map(|ms| (ms * 1000.0).floor().max(0.0) as u64),
            tags: tags.clone(),
            cluster: None,
        },
    };
    let asked = match tracing_api::ask(console, request).await {
        Ok(asked) => asked,
        Err(error) => {
            tab.traces_error = Some(error.error);
            (tab.percentiles, tab.percentile_source) = percentile_choices(view, &from_metrics, &[]);
            return tab;
        }
    };
    tab.search_link =
        links.map(|l| l.search(&asked.service, Some(limit), Some((start, end)), &tags));
    tab.partial = asked.found.partial.clone();
    let summaries: Vec<TraceSummary> = asked.found.traces.iter().map(TraceSummary::of).collect();
    let durations: Vec<u64> = summaries.iter().map(|s| s.duration).collect();
    (tab.percentiles, tab.percentile_source) = percentile_choices(view, &from_metrics, &durations);
    // The backend applied the metrics' value; without it, the fetched traces' percentile.
    let floor = view
        .percentile
        .strip_prefix('p')
        .and_then(|p| p.parse::<f64>().ok())
        .filter(|_| min_ms.is_none())
        .and_then(|p| percentile(&durations, p));
    let shown: Vec<TraceSummary> = summaries
        .into_iter()
        .filter(|s| floor.is_none_or(|f| s.duration >= f))
        .collect();
    // Kiali's banner: the traces fetched cover less than 85 % of the period.
    if let Some(oldest) = shown.iter().map(|s| s.start).min() {
        let covered = end.saturating_sub(oldest) as f64 / end.saturating_sub(start).max(1) as f64;
        if covered < 0.85 {
            tab.coverage = Some(format!(
                "The {} traces cover only {:.0}% of the time period. You may want to increase the fetch limit, reduce the time range, or define a custom time range.",
                shown.len(),
                covered * 100.0
            ));
        }
    }
    tab.chart = scatter::chart(
        &shown,
        (start, end),
        view.spans_average,
        &view.trace_id,
        |id| select_href(base, view, id),
    );

    if view.trace_id.is_empty() {
        return tab;
    }
    let Ok(id) = TraceId::from_hex(&view.trace_id) else {
        tab.missing_trace = Some(format!("`{}` is not a trace ID", view.trace_id));
        return tab;
    };
    // The selected trace is read from the backend only when the search did not bring it.
    let found = asked.found.traces.iter().find(|t| t.trace_id() == Some(id));
    let fetched: Option<Trace> = match found {
        Some(_) => None,
        None => match console.backend() {
            Ok(backend) => console
                .timed("TraceDetail", backend.get_trace(id))
                .await
                .unwrap_or_else(|e| {
                    tab.missing_trace = Some(e.to_string());
                    None
                }),
            Err(e) => {
                tab.missing_trace = Some(e.error);
                None
            }
        },
    };
    let Some(trace) = found.or(fetched.as_ref()) else {
        if tab.missing_trace.is_none() {
            tab.missing_trace = Some(format!("Trace {} not found", view.trace_id));
        }
        return tab;
    };
    let root = root(console);
    let ordered = spans::tree_order(trace);
    let targets = metrics_stats::targets(ordered.iter().map(|(_, s)| *s), &view.stats_spans);
    let stats = metrics_stats::fetch(console, &targets).await;
    tab.details = Some(details(
        trace,
        &asked.found.traces,
        links,
        view,
        &root,
        (&targets, &stats),
        |id| select_href(base, view, id),
        |span_id| load_href(base, view, span_id),
    ));
    tab
}

/// The link that loads the metrics statistics of one more span, and comes back to its row.
fn load_href(base: &str, view: &View, span_id: &str) -> String {
    let mut loaded = view.stats_spans.clone();
    loaded.push(span_id.to_string());
    // The oldest go first when the bound is reached.
    let extra = loaded.len().saturating_sub(metrics_stats::MAX_LOADED);
    loaded.drain(..extra);
    format!(
        "{base}{}#span-{span_id}",
        view.query(&[
            ("tab", Some("traces".into())),
            ("statsSpans", Some(loaded.join(",")))
        ])
    )
}

/// The trace against its workloads' metrics, or why it cannot be.
fn compared(trace: &Trace, stats: &Result<Stats, String>) -> Compared {
    match stats {
        Ok(stats) => {
            let c = heatmap::trace_heatmap(trace, stats, &INTERVALS, &STATS);
            Compared {
                heatmap: (c.envoy > 0).then_some(c.heatmap),
                incomplete: c.incomplete,
                counts: format!("{} of {} Envoy spans compared", c.compared, c.envoy),
                error: None,
            }
        }
        Err(error) => Compared {
            heatmap: None,
            incomplete: false,
            counts: String::new(),
            error: Some(error.clone()),
        },
    }
}

/// The link that selects trace `id` on the Traces tab (span filters belong to the old trace).
fn select_href(base: &str, view: &View, id: &str) -> String {
    format!(
        "{base}{}",
        view.query(&[
            ("tab", Some("traces".into())),
            ("traceId", Some(id.into())),
            ("spanWorkload", None),
            ("spanApp", None),
            ("spanComponent", None),
            ("spanOperation", None),
            ("spanError", None),
            ("statsSpans", None),
        ])
    )
}

/// The percentile filter's choices, labelled with their values: from the metrics
/// (`p90 (123.45ms+)`, Kiali's label), else from the fetched traces (`p90 (12.3ms+, fetched
/// traces)`); and a sentence saying where they come from.
fn percentile_choices(
    view: &View,
    from_metrics: &Result<HashMap<&'static str, f64>, String>,
    durations: &[u64],
) -> (Vec<Choice>, String) {
    let mut choices = vec![Choice {
        value: String::new(),
        label: "All".into(),
        selected: view.percentile.is_empty(),
    }];
    let metrics = from_metrics.as_ref().ok();
    for p in PERCENTILES {
        let label = match metrics.and_then(|m| m.get(p)) {
            Some(ms) => format!("{p} ({ms:.2}ms+)"),
            None => {
                let q = p.get(1..).and_then(|n| n.parse().ok()).unwrap_or(100.0);
                match percentile(durations, q) {
                    Some(v) => format!("{p} ({}+, fetched traces)", format_duration(v)),
                    None => p.to_string(),
                }
            }
        };
        choices.push(Choice {
            value: p.to_string(),
            label,
            selected: view.percentile == p,
        });
    }
    let source = match from_metrics {
        Ok(m) if m.len() == PERCENTILES.len() => {
            "Percentiles of the response times over the last hour, from the metrics; the chosen one is the search's minimum duration.".to_string()
        }
        Ok(_) => "The metrics have no response times for this target over the last hour: the percentiles are those of the traces fetched.".to_string(),
        Err(e) => format!(
            "Metrics unavailable ({e}): the percentiles are those of the traces fetched."
        ),
    };
    (choices, source)
}

#[allow(clippy::too_many_arguments)]
fn details(
    trace: &Trace,
    among: &[Trace],
    links: Option<&Links>,
    view: &View,
    root: &str,
    (asked, stats): (
        &std::collections::BTreeSet<StatsTarget>,
        &Result<Stats, String>,
    ),
    href: impl Fn(&str) -> String,
    load: impl Fn(&str) -> String,
) -> Details {
    let summary = TraceSummary::of(trace);
    let durations = spans::operation_durations(among);
    // Links to app and workload pages keep the time range, not this page's options.
    let nav = View {
        namespaces: Vec::new(),
        ..view.navigation()
    }
    .query(&[]);
    let trace_hex = summary.trace_id.clone();
    let spans = spans::table(
        trace,
        &durations,
        view,
        |segment, namespace, name| {
            (!namespace.is_empty() && !name.is_empty()).then(|| {
                format!(
                    "{root}/console/namespaces/{}/{segment}/{}{nav}",
                    enc(namespace),
                    enc(name)
                )
            })
        },
        |span_id| links.map(|l| l.span(&trace_hex, span_id)),
        |span| match (StatsTarget::of(span), stats) {
            (None, _) => spans::Compared::NotEnvoy,
            (Some(target), Ok(stats)) if asked.contains(&target) => spans::Compared::Heatmap(
                heatmap::span_heatmap(span, &target, stats, &INTERVALS, &STATS),
            ),
            (Some(_), _) => spans::Compared::Load(load(&span.span_id.to_string())),
        },
    );
    let span_keep = form_fields(&view.query(&[
        ("spanWorkload", None),
        ("spanApp", None),
        ("spanComponent", None),
        ("spanOperation", None),
        ("spanError", None),
    ]));
    let similar: Vec<TraceSummary> = similar(trace, among, 8)
        .into_iter()
        .map(TraceSummary::of)
        .collect();
    let rows: Vec<Similar> = similar
        .iter()
        .map(|s| {
            let (duration_diff, duration_class) = difference(summary.duration, s.duration);
            let (average_diff, average_class) = difference(summary.average_span, s.average_span);
            Similar {
                short: s.short_id().to_string(),
                href: href(&s.trace_id),
                trace_id: s.trace_id.clone(),
                duration_diff,
                duration_class,
                average_diff,
                average_class,
            }
        })
        .collect();
    let mean = |f: fn(&TraceSummary) -> u64| {
        let sum = similar.iter().map(f).fold(0u64, u64::saturating_add);
        sum.checked_div(similar.len() as u64).unwrap_or(0)
    };
    let (mean_duration_diff, mean_duration_class) =
        difference(summary.duration, mean(|s| s.duration));
    let (mean_average_diff, mean_average_class) =
        difference(summary.average_span, mean(|s| s.average_span));
    let others: Vec<String> = similar.iter().map(|s| s.trace_id.clone()).collect();
    Details {
        name: summary.name(),
        started: format_time(summary.start),
        ago: ago(summary.start),
        spans: summary.spans,
        apps: summary.apps.len(),
        error_spans: summary.error_spans,
        duration: format_duration(summary.duration),
        average: format_duration(summary.average_span),
        similar: rows,
        mean_duration_diff,
        mean_duration_class,
        mean_average_diff,
        mean_average_class,
        view_link: links.map(|l| l.trace(&summary.trace_id)),
        compare_link: links.and_then(|l| l.compare(&summary.trace_id, &others)),
        trace_id: summary.trace_id,
        table: spans,
        compared: compared(trace, stats),
        timeline_href: format!("{root}/console/traces/{trace_hex}"),
        span_keep,
    }
}

#[cfg(test)]
mod tests {
    use super::difference;

    #[test]
    fn differences_in_words_and_classes() {
        assert_eq!(difference(12_300, 1_000), ("+11.3ms".to_string(), "slower"));
        assert_eq!(difference(1_000, 12_300), ("−11.3ms".to_string(), "faster"));
        assert_eq!(difference(1_050, 1_000), ("+50µs".to_string(), "same"));
        assert_eq!(difference(500, 500), ("+0µs".to_string(), "same"));
        // Durations from a hostile backend do not overflow.
        assert_eq!(difference(u64::MAX, 0).1, "slower");
        assert_eq!(difference(0, u64::MAX).1, "faster");
    }
}
