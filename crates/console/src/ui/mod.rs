//! The web console: server-rendered pages (askama templates, checked at compile time), SVG
//! charts drawn on the server, one small JS file for what needs a browser (tooltips,
//! auto-refresh). Page URLs follow Kiali's: `<web_root>/console/overview`,
//! `/console/applications|workloads|services`, `/console/namespaces/{ns}/{kind}/{name}`, with
//! `?tab=traces&traceId=<id>`. All assets are embedded in the binary.

mod jaeger;
mod links;
mod scatter;
mod spans;
mod tester;
mod timeline;
mod view;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use meshtrace_mesh::stats::{TraceSummary, percentile, similar};
use meshtrace_mesh::{Item, Kind};
use meshtrace_model::{Trace, TraceId};

use crate::Console;
use links::Links;
use view::{LIMITS, PERCENTILES, RANGES, REFRESH, View, ago, format_duration, format_time};

/// No inline script or style may run: everything comes from our own `/static/`.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn routes() -> Router<Arc<Console>> {
    Router::new()
        .route("/", get(home))
        .route("/console", get(home))
        .route("/console/overview", get(overview))
        .route("/console/{list}", get(list))
        .route("/console/namespaces/{namespace}/{kind}/{name}", get(detail))
        .route("/static/meshtrace.css", get(css))
        .route("/static/meshtrace.js", get(js))
        .route("/static/timeline.js", get(timeline_js))
        .merge(jaeger::routes())
        .route("/console/tracing", get(tester::show).post(tester::check))
        .route("/console/traces/{trace_id}", get(trace_page))
        .route(
            "/console/traces/{trace_id}/timeline.json",
            get(timeline_data),
        )
        .route("/console/traces/{trace_id}/spans/{span_id}", get(span_data))
        .layer(axum::middleware::map_response(secure))
}

async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../static/meshtrace.css"),
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/meshtrace.js"),
    )
}

async fn timeline_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../static/timeline.js"),
    )
}

/// The last few traces read for the timeline, so its page, its data and its span panels read
/// the backend once.
#[derive(Default)]
pub struct TraceCache {
    recent: std::sync::Mutex<std::collections::VecDeque<(TraceId, std::time::Instant, Arc<Trace>)>>,
}

const TRACE_CACHE_SIZE: usize = 4;
const TRACE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl Console {
    /// A trace by ID, from the cache or the backend; `Ok(None)` when the backend does not know it.
    pub(crate) async fn trace(&self, id: TraceId) -> Result<Option<Arc<Trace>>, crate::ApiError> {
        {
            let mut recent = self.traces.recent.lock().unwrap();
            recent.retain(|(_, at, _)| at.elapsed() < TRACE_CACHE_TTL);
            if let Some((_, _, trace)) = recent.iter().find(|(t, _, _)| *t == id) {
                return Ok(Some(trace.clone()));
            }
        }
        let backend = self.backend()?;
        let Some(trace) = self.timed("TraceDetail", backend.get_trace(id)).await? else {
            return Ok(None);
        };
        let trace = Arc::new(trace);
        let mut recent = self.traces.recent.lock().unwrap();
        if recent.len() >= TRACE_CACHE_SIZE {
            recent.pop_front();
        }
        recent.push_back((id, std::time::Instant::now(), trace.clone()));
        Ok(Some(trace))
    }
}

fn root(console: &Console) -> String {
    console.config.server.path_prefix().to_string()
}

async fn home(State(console): State<Arc<Console>>) -> Redirect {
    Redirect::to(&format!("{}/console/overview", root(&console)))
}

// ---- the shell ----------------------------------------------------------------------------

struct NavItem {
    label: &'static str,
    href: String,
    active: bool,
}

struct Choice {
    value: String,
    label: String,
    selected: bool,
}

struct NamespaceOption {
    name: String,
    selected: bool,
}

/// What every page shows around its content.
struct Shell {
    title: String,
    root: String,
    mode: String,
    /// The view's query string, for links that keep it.
    query: String,
    nav: Vec<NavItem>,
    tracing_home: Option<String>,
    namespace_options: Vec<NamespaceOption>,
    ranges: Vec<Choice>,
    refreshes: Vec<Choice>,
    from: String,
    to: String,
    refresh: u64,
    /// Hidden fields the toolbar keeps (the tab and its options).
    keep: Vec<(String, String)>,
    error: Option<String>,
    /// Not an error: what this mode cannot show.
    notice: Option<String>,
}

impl Shell {
    fn new(console: &Console, view: &View, title: String, active: &str, known: &[String]) -> Shell {
        let root = root(console);
        // Navigation keeps the namespaces and time range, not a page's own options.
        let nav_view = view.navigation();
        let query = nav_view.query(&[]);
        let nav = [
            ("Overview", "overview"),
            ("Applications", "applications"),
            ("Workloads", "workloads"),
            ("Services", "services"),
        ]
        .into_iter()
        .map(|(label, path)| NavItem {
            label,
            href: format!("{root}/console/{path}{query}"),
            active: path == active,
        })
        .collect();
        let mut names: BTreeSet<String> = known.iter().cloned().collect();
        names.extend(view.namespaces.iter().cloned());
        let keep = view
            .tab_options()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Shell {
            title,
            mode: meshtrace_config::mode(&console.config.tracing),
            query,
            nav,
            tracing_home: Links::new(&console.config.tracing).map(|l| l.home()),
            namespace_options: names
                .into_iter()
                .map(|name| NamespaceOption {
                    selected: view.namespaces.contains(&name),
                    name,
                })
                .collect(),
            ranges: RANGES
                .iter()
                .map(|(value, label)| Choice {
                    value: value.to_string(),
                    label: label.to_string(),
                    selected: !view.custom() && *value == view.duration,
                })
                .collect(),
            refreshes: REFRESH
                .iter()
                .map(|(value, label)| Choice {
                    value: value.to_string(),
                    label: label.to_string(),
                    selected: *value == view.refresh,
                })
                .collect(),
            from: view.from.clone(),
            to: view.to.clone(),
            refresh: view.refresh,
            keep,
            error: None,
            notice: notice(&console.config.tracing),
            root,
        }
    }
}

/// What a mode without native charts cannot show, said once on every page.
fn notice(tracing: &meshtrace_config::TracingConfig) -> Option<String> {
    if !tracing.enabled {
        Some(
            "Tracing is disabled (external_services.tracing.enabled: false): no traces and no \
             tracing links."
                .into(),
        )
    } else if tracing.internal_url.is_empty() {
        Some(
            "Without internal_url the console reads no traces, so it cannot list what runs in \
             the mesh; the tracing UI has them (Distributed Tracing, View in Tracing)."
                .into(),
        )
    } else {
        None
    }
}

fn page(status: StatusCode, template: impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page could not be rendered: {e}"),
        )
            .into_response(),
    }
}

/// The inventory and the namespaces it knows, or the error to show.
async fn inventory(
    console: &Console,
) -> (
    Option<Arc<crate::inventory::Snapshot>>,
    Vec<String>,
    Option<String>,
) {
    if !console.config.tracing.has_native_charts() {
        // Links-only or disabled: nothing to read, and nothing wrong (the shell says so).
        return (None, Vec::new(), None);
    }
    match console.inventory().await {
        Ok(snapshot) => {
            let names = snapshot
                .inventory
                .namespaces()
                .into_iter()
                .map(|n| n.name)
                .collect();
            (Some(snapshot), names, None)
        }
        Err(error) => (None, Vec::new(), Some(error.error)),
    }
}

// ---- overview and lists -------------------------------------------------------------------

struct NamespaceRow {
    name: String,
    apps: usize,
    workloads: usize,
    services: usize,
    error_traces: u64,
    clusters: String,
    apps_href: String,
    workloads_href: String,
    services_href: String,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    shell: Shell,
    namespaces: Vec<NamespaceRow>,
    window_minutes: u64,
    traces: u64,
    spans: u64,
    age: String,
}

async fn overview(State(console): State<Arc<Console>>, RawQuery(raw): RawQuery) -> Response {
    let view = View::parse(raw.as_deref());
    let (snapshot, known, error) = inventory(&console).await;
    let mut shell = Shell::new(&console, &view, "Overview".into(), "overview", &known);
    shell.error = error;
    let root = shell.root.clone();
    let namespaces = snapshot
        .as_ref()
        .map(|s| s.inventory.namespaces())
        .unwrap_or_default()
        .into_iter()
        .filter(|n| view.namespaces.is_empty() || view.namespaces.contains(&n.name))
        .map(|n| {
            let q = view.query(&[("namespaces", Some(n.name.clone()))]);
            NamespaceRow {
                apps_href: format!("{root}/console/applications{q}"),
                workloads_href: format!("{root}/console/workloads{q}"),
                services_href: format!("{root}/console/services{q}"),
                clusters: n.clusters.into_iter().collect::<Vec<_>>().join(", "),
                name: n.name,
                apps: n.apps,
                workloads: n.workloads,
                services: n.services,
                error_traces: n.error_traces,
            }
        })
        .collect();
    let status = if shell.error.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    page(
        status,
        OverviewPage {
            namespaces,
            window_minutes: console.options.inventory_window.as_secs() / 60,
            traces: snapshot.as_ref().map_or(0, |s| s.inventory.traces),
            spans: snapshot.as_ref().map_or(0, |s| s.inventory.spans),
            age: snapshot
                .as_ref()
                .map(|s| format!("{}s ago", s.taken.elapsed().as_secs()))
                .unwrap_or_else(|| "never".into()),
            shell,
        },
    )
}

/// `applications` (Kiali's page name) and the API's kinds.
fn page_kind(segment: &str) -> Option<Kind> {
    match segment {
        "applications" => Some(Kind::App),
        "workloads" => Some(Kind::Workload),
        "services" => Some(Kind::Service),
        _ => None,
    }
}

fn page_segment(kind: Kind) -> &'static str {
    match kind {
        Kind::App => "applications",
        Kind::Workload => "workloads",
        Kind::Service => "services",
    }
}

fn related_heading(kind: Kind) -> &'static str {
    match kind {
        Kind::App => "Workloads",
        Kind::Workload => "App",
        Kind::Service => "Apps",
    }
}

struct ItemRow {
    name: String,
    namespace: String,
    href: String,
    related: String,
    app: String,
    clusters: String,
    requests: u64,
    errors: u64,
    error_traces: u64,
}

fn item_row(item: &Item, href: String) -> ItemRow {
    ItemRow {
        name: item.name.clone(),
        namespace: item.namespace.clone(),
        href,
        related: item.related.iter().cloned().collect::<Vec<_>>().join(", "),
        app: item.app.clone(),
        clusters: item.clusters.iter().cloned().collect::<Vec<_>>().join(", "),
        requests: item.counts.requests,
        errors: item.counts.errors,
        error_traces: item.error_traces,
    }
}

#[derive(Template)]
#[template(path = "list.html")]
struct ListPage {
    shell: Shell,
    heading: &'static str,
    related_heading: &'static str,
    items: Vec<ItemRow>,
}

async fn list(
    State(console): State<Arc<Console>>,
    Path(segment): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(kind) = page_kind(&segment) else {
        return (StatusCode::NOT_FOUND, "no such page").into_response();
    };
    let view = View::parse(raw.as_deref());
    let (snapshot, known, error) = inventory(&console).await;
    let heading = match kind {
        Kind::App => "Applications",
        Kind::Workload => "Workloads",
        Kind::Service => "Services",
    };
    let mut shell = Shell::new(&console, &view, heading.into(), &segment, &known);
    shell.error = error;
    let namespaces: Vec<String> = if view.namespaces.is_empty() {
        known.clone()
    } else {
        view.namespaces.clone()
    };
    let q = shell.query.clone();
    let mut items = Vec::new();
    if let Some(snapshot) = &snapshot {
        for ns in &namespaces {
            for item in snapshot.inventory.list(ns, kind) {
                let href = format!(
                    "{}/console/namespaces/{}/{}/{}{q}",
                    shell.root,
                    enc(ns),
                    segment,
                    enc(&item.name)
                );
                items.push(item_row(item, href));
            }
        }
    }
    let status = if shell.error.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    page(
        status,
        ListPage {
            shell,
            heading,
            related_heading: related_heading(kind),
            items,
        },
    )
}

/// A query string (`?a=1&b=2`) as hidden form fields.
fn form_fields(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.trim_start_matches('?').as_bytes())
        .into_owned()
        .collect()
}

fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

// ---- detail pages and the Traces tab -------------------------------------------------------

struct Similar {
    trace_id: String,
    short: String,
    href: String,
    duration_diff: String,
    duration_class: &'static str,
    average_diff: String,
    average_class: &'static str,
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
    timeline_href: String,
    /// The span filter form keeps the page's other parameters.
    span_keep: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "detail.html")]
struct DetailPage {
    shell: Shell,
    kind_label: &'static str,
    name: String,
    namespace: String,
    related_heading: &'static str,
    item: Option<ItemRow>,
    overview_href: String,
    traces_href: String,
    traces_tab: bool,
    on_traces: bool,
    view_in_tracing: Option<String>,
    // The Traces tab.
    keep: Vec<(String, String)>,
    limits: Vec<Choice>,
    errors_only: bool,
    spans_average: bool,
    percentiles: Vec<Choice>,
    search_link: Option<String>,
    coverage: Option<String>,
    partial: Option<String>,
    traces_error: Option<String>,
    chart: scatter::Chart,
    details: Option<Details>,
    missing_trace: Option<String>,
}

/// `+12.3ms` / `−4.0ms`, and a class for the heatmap cell.
fn difference(this: u64, other: u64) -> (String, &'static str) {
    let diff = this as i64 - other as i64;
    let text = format!(
        "{}{}",
        if diff >= 0 { "+" } else { "−" },
        format_duration(diff.unsigned_abs())
    );
    let relative = diff as f64 / other.max(1) as f64;
    let class = if relative > 0.1 {
        "slower"
    } else if relative < -0.1 {
        "faster"
    } else {
        "same"
    };
    (text, class)
}

async fn detail(
    State(console): State<Arc<Console>>,
    Path((namespace, segment, name)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(kind) = page_kind(&segment) else {
        return (StatusCode::NOT_FOUND, "no such page").into_response();
    };
    let view = View::parse(raw.as_deref());
    let tracing = &console.config.tracing;
    let integration = tracing.has_native_charts();
    let links = Links::new(tracing);
    let (snapshot, known, inventory_error) = inventory(&console).await;
    let kind_label = match kind {
        Kind::App => "App",
        Kind::Workload => "Workload",
        Kind::Service => "Service",
    };
    let mut shell = Shell::new(
        &console,
        &view,
        format!("{kind_label} {name}"),
        page_segment(kind),
        &known,
    );
    let base = format!(
        "{}/console/namespaces/{}/{}/{}",
        shell.root,
        enc(&namespace),
        segment,
        enc(&name)
    );
    let on_traces = integration && view.tab == "traces";
    let target = console.target(kind, namespace.clone(), name.clone()).await;
    let service = target.tracing_service_name(tracing.namespace_selector);
    let item = snapshot
        .as_ref()
        .and_then(|s| s.inventory.get(&namespace, kind, &name))
        .map(|i| item_row(i, String::new()));
    if !on_traces {
        shell.error = inventory_error;
    }

    let mut detail = DetailPage {
        kind_label,
        name: name.clone(),
        namespace: namespace.clone(),
        related_heading: related_heading(kind),
        item,
        overview_href: format!("{base}{}", view.query(&[("tab", None), ("traceId", None)])),
        traces_href: format!("{base}{}", view.query(&[("tab", Some("traces".into()))])),
        traces_tab: integration,
        on_traces,
        // Without native charts, the page links to the backend's UI instead (for all three
        // kinds; Kiali does it for apps).
        view_in_tracing: if integration {
            None
        } else {
            links
                .as_ref()
                .map(|l| l.search(&service, None, None, &BTreeMap::new()))
        },
        keep: Vec::new(),
        limits: Vec::new(),
        errors_only: view.errors_only,
        spans_average: view.spans_average,
        percentiles: Vec::new(),
        search_link: None,
        coverage: None,
        partial: None,
        traces_error: None,
        chart: scatter::chart(&[], (0, 1), false, "", |_| String::new()),
        details: None,
        missing_trace: None,
        shell,
    };
    if on_traces {
        traces_tab(
            &console,
            &mut detail,
            &view,
            kind,
            &namespace,
            &name,
            &base,
            links.as_ref(),
        )
        .await;
    }
    page(StatusCode::OK, detail)
}

#[allow(clippy::too_many_arguments)]
async fn traces_tab(
    console: &Console,
    page: &mut DetailPage,
    view: &View,
    kind: Kind,
    namespace: &str,
    name: &str,
    base: &str,
    links: Option<&Links>,
) {
    let limit = view
        .limit
        .unwrap_or((console.config.ui_tracing_limit as usize).clamp(1, 1000));
    let (start, end) = view.window();
    let mut tags = BTreeMap::new();
    if view.errors_only {
        tags.insert("error".to_string(), "true".to_string());
    }
    let raw = format!(
        "startMicros={start}&endMicros={end}&limit={limit}{}",
        if tags.is_empty() {
            String::new()
        } else {
            format!(
                "&tags={}",
                enc(&serde_json::to_string(&tags).unwrap_or_default())
            )
        }
    );
    // The options form keeps the page's namespaces, time range and refresh.
    page.keep = form_fields(&view.navigation().query(&[("tab", Some("traces".into()))]));
    page.limits = LIMITS
        .iter()
        .map(|l| Choice {
            value: l.to_string(),
            label: l.to_string(),
            selected: *l == limit,
        })
        .collect();

    let asked =
        match crate::tracing_api::ask(console, namespace.into(), kind, name.into(), Some(&raw))
            .await
        {
            Ok(asked) => asked,
            Err(error) => {
                page.traces_error = Some(error.error);
                page.percentiles = percentile_choices(view, &[]);
                return;
            }
        };
    page.search_link =
        links.map(|l| l.search(&asked.service, Some(limit), Some((start, end)), &tags));
    page.partial = asked.found.partial.clone();
    let summaries: Vec<TraceSummary> = asked.found.traces.iter().map(TraceSummary::of).collect();
    let durations: Vec<u64> = summaries.iter().map(|s| s.duration).collect();
    page.percentiles = percentile_choices(view, &durations);
    let floor = view
        .percentile
        .strip_prefix('p')
        .and_then(|p| p.parse::<f64>().ok())
        .and_then(|p| percentile(&durations, p));
    let shown: Vec<TraceSummary> = summaries
        .into_iter()
        .filter(|s| floor.is_none_or(|f| s.duration >= f))
        .collect();
    // Kiali's banner: the traces fetched cover less than 85 % of the period.
    if let Some(oldest) = shown.iter().map(|s| s.start).min() {
        let covered = (end.saturating_sub(oldest)) as f64 / (end - start).max(1) as f64;
        if covered < 0.85 {
            page.coverage = Some(format!(
                "The {} traces cover only {:.0}% of the time period. You may want to increase the fetch limit, reduce the time range, or define a custom time range.",
                shown.len(),
                covered * 100.0
            ));
        }
    }
    page.chart = scatter::chart(
        &shown,
        (start, end),
        view.spans_average,
        &view.trace_id,
        |id| select_href(base, view, id),
    );

    if view.trace_id.is_empty() {
        return;
    }
    let Ok(id) = TraceId::from_hex(&view.trace_id) else {
        page.missing_trace = Some(format!("`{}` is not a trace ID", view.trace_id));
        return;
    };
    let fetched = asked
        .found
        .traces
        .iter()
        .find(|t| t.trace_id() == Some(id))
        .cloned();
    let trace: Option<Trace> = match fetched {
        Some(trace) => Some(trace),
        None => match console.backend() {
            Ok(backend) => console
                .timed("TraceDetail", backend.get_trace(id))
                .await
                .unwrap_or_else(|e| {
                    page.missing_trace = Some(e.to_string());
                    None
                }),
            Err(e) => {
                page.missing_trace = Some(e.error);
                None
            }
        },
    };
    let Some(trace) = trace else {
        if page.missing_trace.is_none() {
            page.missing_trace = Some(format!("Trace {} not found", view.trace_id));
        }
        return;
    };
    let root = root(console);
    page.details = Some(details(
        &trace,
        &asked.found.traces,
        links,
        view,
        &root,
        |id| select_href(base, view, id),
    ));
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
        ])
    )
}

fn percentile_choices(view: &View, durations: &[u64]) -> Vec<Choice> {
    let mut choices = vec![Choice {
        value: String::new(),
        label: "All".into(),
        selected: view.percentile.is_empty(),
    }];
    for p in PERCENTILES {
        let value = percentile(durations, p[1..].parse().unwrap_or(100.0));
        choices.push(Choice {
            value: p.to_string(),
            label: match value {
                Some(v) => format!("{p} ({}+)", format_duration(v)),
                None => p.to_string(),
            },
            selected: view.percentile == p,
        });
    }
    choices
}

fn details(
    trace: &Trace,
    among: &[Trace],
    links: Option<&Links>,
    view: &View,
    root: &str,
    href: impl Fn(&str) -> String,
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
        if similar.is_empty() {
            0
        } else {
            similar.iter().map(f).sum::<u64>() / similar.len() as u64
        }
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
        timeline_href: format!("{root}/console/traces/{trace_hex}"),
        span_keep,
    }
}

// ---- the trace timeline ----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "trace.html")]
struct TracePage {
    shell: Shell,
    name: String,
    trace_id: String,
    spans: usize,
    services: usize,
    error_spans: usize,
    duration: String,
    duration_micros: u64,
    started: String,
    ago: String,
    data_url: String,
    span_url: String,
    ui_find: String,
    back: Option<String>,
}

/// The trace ID of a path, or the 400/404 page's text.
fn parse_trace_id(text: &str) -> Result<TraceId, crate::ApiError> {
    let valid = !text.is_empty() && text.len() <= 32 && text.bytes().all(|b| b.is_ascii_hexdigit());
    match TraceId::from_hex(text) {
        Ok(id) if valid && !id.is_zero() => Ok(id),
        _ => Err(crate::ApiError::bad_request(format!(
            "Invalid trace ID format: `{}` is not 1 to 32 hex digits",
            text.chars().take(64).collect::<String>()
        ))),
    }
}

pub(crate) async fn trace_page(
    State(console): State<Arc<Console>>,
    Path(trace_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    render_trace_page(&console, &trace_id, raw.as_deref(), None).await
}

pub(crate) async fn render_trace_page(
    console: &Console,
    trace_id: &str,
    raw: Option<&str>,
    back: Option<String>,
) -> Response {
    let id = match parse_trace_id(trace_id) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    let view = View::parse(raw);
    let ui_find = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "uiFind")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut shell = Shell::new(console, &view, format!("Trace {trace_id}"), "", &[]);
    let trace = match console.trace(id).await {
        Ok(Some(trace)) => trace,
        Ok(None) => {
            shell.error = Some(format!("Trace {trace_id} not found"));
            return page(StatusCode::NOT_FOUND, missing_trace(shell, id));
        }
        Err(error) => {
            shell.error = Some(error.error);
            return page(StatusCode::SERVICE_UNAVAILABLE, missing_trace(shell, id));
        }
    };
    let summary = TraceSummary::of(&trace);
    let services: BTreeSet<&str> = trace
        .spans
        .iter()
        .map(|s| s.process.service_name.as_str())
        .collect();
    let hex = id.to_hex32();
    let base = format!("{}/console/traces/{hex}", shell.root);
    page(
        StatusCode::OK,
        TracePage {
            name: summary.name(),
            spans: summary.spans,
            services: services.len(),
            error_spans: summary.error_spans,
            duration: format_duration(summary.duration),
            duration_micros: summary.duration,
            started: format_time(summary.start),
            ago: ago(summary.start),
            data_url: format!("{base}/timeline.json"),
            span_url: format!("{base}/spans/SPAN"),
            ui_find,
            back,
            trace_id: hex,
            shell,
        },
    )
}

fn missing_trace(shell: Shell, id: TraceId) -> TracePage {
    TracePage {
        name: "(trace not available)".into(),
        trace_id: id.to_hex32(),
        spans: 0,
        services: 0,
        error_spans: 0,
        duration: String::new(),
        duration_micros: 0,
        started: String::new(),
        ago: String::new(),
        data_url: String::new(),
        span_url: String::new(),
        ui_find: String::new(),
        back: None,
        shell,
    }
}

async fn timeline_data(
    State(console): State<Arc<Console>>,
    Path(trace_id): Path<String>,
) -> Response {
    let id = match parse_trace_id(&trace_id) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    match console.trace(id).await {
        Ok(Some(trace)) => (
            [(header::CONTENT_TYPE, "application/json")],
            timeline::data(&trace),
        )
            .into_response(),
        Ok(None) => {
            crate::ApiError::not_found(format!("Trace {trace_id} not found")).into_response()
        }
        Err(error) => error.into_response(),
    }
}

async fn span_data(
    State(console): State<Arc<Console>>,
    Path((trace_id, span_id)): Path<(String, String)>,
) -> Response {
    let id = match parse_trace_id(&trace_id) {
        Ok(id) => id,
        Err(error) => return error.into_response(),
    };
    let Ok(span_id) = meshtrace_model::SpanId::from_hex(&span_id) else {
        return crate::ApiError::bad_request("the span ID is not 1 to 16 hex digits")
            .into_response();
    };
    match console.trace(id).await {
        Ok(Some(trace)) => {
            let (start, _) = trace.bounds();
            match trace.spans.iter().find(|s| s.span_id == span_id) {
                Some(span) => axum::Json(timeline::span_json(span, start)).into_response(),
                None => {
                    crate::ApiError::not_found(format!("span {span_id} is not in trace {trace_id}"))
                        .into_response()
                }
            }
        }
        Ok(None) => {
            crate::ApiError::not_found(format!("Trace {trace_id} not found")).into_response()
        }
        Err(error) => error.into_response(),
    }
}
