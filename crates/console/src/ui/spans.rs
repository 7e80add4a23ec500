//! The span table under a trace's details: each span's place on the trace's timeline, its app
//! and workload, what it says (operation, Envoy response flags in words, component; expanded:
//! request, response, peer, every tag and log), and its duration: for an Envoy span compared
//! with its workload's metrics (a heatmap, or a "Load statistics" link), for the others
//! against the same operation in the traces fetched. Filters by workload, app, component, operation and error, with
//! `shown / total` counts. Rows expand with `<details>`: no script needed.

use std::collections::{BTreeSet, HashMap};

use meshtrace_mesh::stats::percentile;
use meshtrace_mesh::{span_info, tag_str};
use meshtrace_model::{Span, Trace};

use super::heatmap::Heatmap;
use super::view::View;
use meshtrace_model::time::format_duration;

pub struct Tag {
    pub key: String,
    pub value: String,
}

pub struct LogRow {
    pub offset: String,
    pub fields: String,
}

pub struct SpanRow {
    pub span_id: String,
    pub depth_indent: String,
    /// Position of the bar, in a 0–200 wide SVG.
    pub bar_x: String,
    pub bar_width: String,
    pub offset: String,
    pub duration: String,
    pub app: String,
    pub app_href: Option<String>,
    pub workload: String,
    pub workload_href: Option<String>,
    pub pod: String,
    pub namespace: String,
    pub error: bool,
    pub operation: String,
    pub flags: String,
    pub flags_meaning: String,
    pub component: String,
    pub direction: String,
    pub peer: String,
    pub request: String,
    pub status: String,
    pub tags: Vec<Tag>,
    pub logs: Vec<LogRow>,
    /// `p50 8.0ms · p90 11.0ms · p99 15.0ms` of the same operation, when it was seen before
    /// and the span has no metrics comparison.
    pub stats: String,
    /// The span compared with its workload's metrics.
    pub heatmap: Option<Heatmap>,
    /// The link that loads that comparison, for an Envoy span not compared yet.
    pub load_stats: Option<String>,
    /// `slower` when above the operation's p90, `faster` under its p50.
    pub stats_class: &'static str,
    pub more_link: Option<String>,
}

pub struct FilterOption {
    pub value: String,
    pub selected: bool,
}

pub struct SpanTable {
    pub rows: Vec<SpanRow>,
    pub total: usize,
    pub workloads: Vec<FilterOption>,
    pub apps: Vec<FilterOption>,
    pub components: Vec<FilterOption>,
    pub operations: Vec<FilterOption>,
    pub error_with: bool,
    pub error_without: bool,
}

/// The spans of `trace` in tree order (parents before children, siblings by start), with
/// their depth.
pub fn tree_order(trace: &Trace) -> Vec<(usize, &Span)> {
    let ids: HashMap<_, _> = trace
        .spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); trace.spans.len()];
    let mut roots = Vec::new();
    for (i, span) in trace.spans.iter().enumerate() {
        let parent = span
            .parent_span_id()
            .and_then(|p| ids.get(&p))
            .filter(|&&p| p != i);
        match parent.and_then(|&p| children.get_mut(p)) {
            Some(siblings) => siblings.push(i),
            None => roots.push(i),
        }
    }
    let by_start =
        |list: &mut Vec<usize>| list.sort_by_key(|&i| trace.spans.get(i).map(|s| s.start_time));
    by_start(&mut roots);
    children.iter_mut().for_each(by_start);
    let mut out = Vec::with_capacity(trace.spans.len());
    let mut seen = vec![false; trace.spans.len()];
    let mut stack: Vec<(usize, usize)> = roots.into_iter().rev().map(|r| (r, 0)).collect();
    while let Some((i, depth)) = stack.pop() {
        let (Some(visited), Some(span)) = (seen.get_mut(i), trace.spans.get(i)) else {
            continue;
        };
        if std::mem::replace(visited, true) {
            continue; // a reference cycle in bad data
        }
        out.push((depth, span));
        let below = children.get(i).map(Vec::as_slice).unwrap_or_default();
        stack.extend(below.iter().rev().map(|&c| (c, depth.saturating_add(1))));
    }
    out
}

/// The durations of each operation across `traces`, for the Statistics column.
pub fn operation_durations(traces: &[Trace]) -> HashMap<&str, Vec<u64>> {
    let mut out: HashMap<&str, Vec<u64>> = HashMap::new();
    for span in traces.iter().flat_map(|t| &t.spans) {
        out.entry(span.operation_name.as_str())
            .or_default()
            .push(span.duration);
    }
    out
}

fn options(values: BTreeSet<String>, selected: &str) -> Vec<FilterOption> {
    values
        .into_iter()
        .filter(|v| !v.is_empty())
        .map(|value| FilterOption {
            selected: value == selected,
            value,
        })
        .collect()
}

/// How a span compares with its workload's metrics.
pub enum Compared {
    /// Not an Envoy span, or one whose workload is unknown.
    NotEnvoy,
    Heatmap(Heatmap),
    /// An Envoy span not compared yet: the link that loads its statistics.
    Load(String),
}

/// The table for `trace`, filtered as `view` says. `page` links an app or workload page
/// (`None` when it has no namespace); `more` links a span in the tracing UI; `compare` is a
/// span's metrics comparison.
pub fn table(
    trace: &Trace,
    durations: &HashMap<&str, Vec<u64>>,
    view: &View,
    page: impl Fn(&str, &str, &str) -> Option<String>,
    more: impl Fn(&str) -> Option<String>,
    compare: impl Fn(&Span) -> Compared,
) -> SpanTable {
    let (start, end) = trace.bounds();
    let total_span = end.saturating_sub(start).max(1) as f64;
    let ordered = tree_order(trace);
    let (mut workloads, mut apps, mut components, mut operations) = (
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
        BTreeSet::new(),
    );
    let mut rows = Vec::new();
    for (depth, span) in &ordered {
        let info = span_info(span);
        let app = if info.app.is_empty() {
            span.process
                .service_name
                .split('.')
                .next()
                .unwrap_or("")
                .to_string()
        } else {
            info.app.clone()
        };
        workloads.insert(info.workload.clone());
        apps.insert(app.clone());
        components.insert(info.component.clone());
        operations.insert(span.operation_name.clone());
        let error = span.has_error();
        let keep = (view.span_workload.is_empty() || view.span_workload == info.workload)
            && (view.span_app.is_empty() || view.span_app == app)
            && (view.span_component.is_empty() || view.span_component == info.component)
            && (view.span_operation.is_empty() || view.span_operation == span.operation_name)
            && match view.span_error.as_str() {
                "with" => error,
                "without" => !error,
                _ => true,
            };
        if !keep {
            continue;
        }
        let offset = span.start_time.saturating_sub(start);
        let (heatmap, load_stats) = match compare(span) {
            Compared::NotEnvoy => (None, None),
            Compared::Heatmap(map) => (Some(map), None),
            Compared::Load(link) => (None, Some(link)),
        };
        let envoy = heatmap.is_some() || load_stats.is_some();
        let (stats, stats_class) = match durations.get(span.operation_name.as_str()) {
            // Metrics say more of an Envoy span than the few traces fetched.
            _ if envoy => (String::new(), "same"),
            Some(seen) if seen.len() > 1 => {
                let p = |q| percentile(seen, q).unwrap_or(0);
                let (p50, p90, p99) = (p(50.0), p(90.0), p(99.0));
                (
                    format!(
                        "p50 {} · p90 {} · p99 {} ({} seen)",
                        format_duration(p50),
                        format_duration(p90),
                        format_duration(p99),
                        seen.len()
                    ),
                    if span.duration > p90 {
                        "slower"
                    } else if span.duration < p50 {
                        "faster"
                    } else {
                        "same"
                    },
                )
            }
            _ => (String::new(), "same"),
        };
        let request = match (tag_str(span, "http.method"), tag_str(span, "http.url")) {
            (Some(m), Some(u)) => format!("{m} {u}"),
            (None, Some(u)) => u.to_string(),
            _ => String::new(),
        };
        rows.push(SpanRow {
            span_id: span.span_id.to_string(),
            depth_indent: "· ".repeat((*depth).min(20)),
            bar_x: format!("{:.1}", offset as f64 / total_span * 200.0),
            bar_width: format!(
                "{:.1}",
                (span.duration as f64 / total_span * 200.0).max(1.0)
            ),
            offset: format_duration(offset),
            duration: format_duration(span.duration),
            app_href: page("applications", &info.namespace, &app),
            workload_href: page("workloads", &info.namespace, &info.workload),
            app,
            workload: info.workload.clone(),
            pod: info.pod.clone(),
            namespace: info.namespace.clone(),
            error,
            operation: span.operation_name.clone(),
            flags: info.response_flags.clone(),
            flags_meaning: info.response_flags_meaning.clone(),
            component: info.component.clone(),
            direction: info.direction.to_string(),
            peer: info.peer.clone(),
            request,
            status: info.status_code.clone(),
            tags: span
                .tags
                .iter()
                .chain(&span.process.tags)
                .map(|kv| Tag {
                    key: kv.key.clone(),
                    value: kv.value.as_text().into_owned(),
                })
                .collect(),
            logs: span
                .logs
                .iter()
                .map(|log| LogRow {
                    offset: format_duration(log.timestamp.saturating_sub(start)),
                    fields: log
                        .fields
                        .iter()
                        .map(|f| format!("{}={}", f.key, f.value.as_text()))
                        .collect::<Vec<_>>()
                        .join(" "),
                })
                .collect(),
            stats,
            stats_class,
            heatmap,
            load_stats,
            more_link: more(&span.span_id.to_string()),
        });
    }
    SpanTable {
        rows,
        total: ordered.len(),
        workloads: options(workloads, &view.span_workload),
        apps: options(apps, &view.span_app),
        components: options(components, &view.span_component),
        operations: options(operations, &view.span_operation),
        error_with: view.span_error == "with",
        error_without: view.span_error == "without",
    }
}
