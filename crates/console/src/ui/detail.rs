//! The page of an app, workload or service (`/console/namespaces/{ns}/{kind}/{name}`): its
//! overview from the inventory, and with native charts its Traces tab ([`super::traces_tab`]);
//! without them, a link to the backend's own UI.

use std::collections::BTreeMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use meshtrace_mesh::Kind;

use super::enc;
use super::links::Links;
use super::lists::{ItemRow, item_row, page_kind, page_segment, related_heading};
use super::metrics_tab::{MetricsRequest, MetricsTab, metrics_tab};
use super::shell::{Shell, Visitor, inventory};
use super::traces_tab::{TabRequest, TracesTab, traces_tab};
use super::view::View;
use crate::Console;
use crate::error::{ErrorCode, no_such_page, page};

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
    /// The Traces tab, when it is the one shown.
    tab: Option<TracesTab>,
    /// The metrics tabs (Kiali's names and URL values) and the one shown.
    metrics_tabs: Vec<(&'static str, &'static str, String, bool)>,
    metrics: Option<MetricsTab>,
}

/// Kiali's metrics tabs of each kind: URL value, title, inbound.
fn metrics_tab_names(kind: Kind) -> &'static [(&'static str, &'static str, bool)] {
    match kind {
        Kind::Service => &[("metrics", "Inbound Metrics", true)],
        Kind::App | Kind::Workload => &[
            ("in_metrics", "Inbound Metrics", true),
            ("out_metrics", "Outbound Metrics", false),
        ],
    }
}

pub(super) async fn detail(
    State(console): State<Arc<Console>>,
    Path((namespace, segment, name)): Path<(String, String, String)>,
    visitor: Visitor,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(kind) = page_kind(&segment) else {
        return no_such_page();
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
        &visitor,
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
    let metrics_tab_on = metrics_tab_names(kind)
        .iter()
        .find(|(value, _, _)| view.tab == *value);
    let on_metrics = metrics_tab_on.is_some();
    let target = console.target(kind, namespace.clone(), name.clone()).await;
    let service = target.tracing_service_name(tracing.namespace_selector);
    let item = snapshot
        .as_ref()
        .and_then(|s| s.inventory.get(&namespace, kind, &name))
        .map(|i| item_row(i, String::new()));
    // The overview shows the inventory's error; the page is still there (200).
    if !on_traces && !on_metrics {
        shell.error = inventory_error.map(|e| e.error);
    }
    let metrics = match metrics_tab_on {
        Some((value, _, inbound)) => Some(
            metrics_tab(MetricsRequest {
                console: &console,
                view: &view,
                raw: raw.as_deref().unwrap_or(""),
                kind,
                namespace: &namespace,
                name: &name,
                inbound: *inbound,
                base: &base,
                tab: value,
                root: &shell.root,
            })
            .await,
        ),
        None => None,
    };
    let status = metrics
        .as_ref()
        .and_then(|m| m.bad.as_ref())
        .map(|_| ErrorCode::BadRequest);
    let metrics_tabs = metrics_tab_names(kind)
        .iter()
        .map(|(value, title, _)| {
            (
                *value,
                *title,
                format!(
                    "{base}{}",
                    view.navigation()
                        .query(&[("tab", Some((*value).to_string()))])
                ),
                view.tab == *value,
            )
        })
        .collect();
    let tab = if on_traces {
        Some(
            traces_tab(TabRequest {
                console: &console,
                view: &view,
                kind,
                namespace: &namespace,
                name: &name,
                base: &base,
                links: links.as_ref(),
            })
            .await,
        )
    } else {
        None
    };

    page(
        status,
        DetailPage {
            metrics_tabs,
            metrics,
            kind_label,
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
            tab,
            name,
            namespace,
            shell,
        },
    )
}
