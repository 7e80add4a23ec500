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
use super::shell::{Shell, Visitor, inventory};
use super::traces_tab::{TabRequest, TracesTab, traces_tab};
use super::view::View;
use crate::Console;
use crate::error::{no_such_page, page};

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
    let target = console.target(kind, namespace.clone(), name.clone()).await;
    let service = target.tracing_service_name(tracing.namespace_selector);
    let item = snapshot
        .as_ref()
        .and_then(|s| s.inventory.get(&namespace, kind, &name))
        .map(|i| item_row(i, String::new()));
    // The overview shows the inventory's error; the page is still there (200).
    if !on_traces {
        shell.error = inventory_error.map(|e| e.error);
    }
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
        None,
        DetailPage {
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
