//! The overview (`/console/overview`: the namespaces and what runs in them) and the lists of
//! applications, workloads and services (`/console/{applications|workloads|services}`), read
//! from the inventory.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use meshtrace_mesh::{Item, Kind};

use super::enc;
use super::shell::{Shell, Visitor, inventory};
use super::view::View;
use crate::Console;
use crate::error::{no_such_page, page};

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

pub(super) async fn overview(
    State(console): State<Arc<Console>>,
    visitor: Visitor,
    RawQuery(raw): RawQuery,
) -> Response {
    let view = View::parse(raw.as_deref());
    let (snapshot, known, error) = inventory(&console).await;
    let mut shell = Shell::new(
        &console,
        &visitor,
        &view,
        "Overview".into(),
        "overview",
        &known,
    );
    let failed = error.as_ref().map(|e| e.code);
    shell.error = error.map(|e| e.error);
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
    page(
        failed,
        OverviewPage {
            namespaces,
            window_minutes: console.options.inventory_window.as_secs() / 60,
            traces: snapshot.as_ref().map_or(0, |s| s.inventory.traces),
            spans: snapshot.as_ref().map_or(0, |s| s.inventory.spans),
            age: snapshot.as_ref().map_or_else(
                || "never".into(),
                |s| format!("{}s ago", s.taken.elapsed().as_secs()),
            ),
            shell,
        },
    )
}

/// `applications` (Kiali's page name) and the API's kinds.
pub(super) fn page_kind(segment: &str) -> Option<Kind> {
    match segment {
        "applications" => Some(Kind::App),
        "workloads" => Some(Kind::Workload),
        "services" => Some(Kind::Service),
        _ => None,
    }
}

pub(super) fn page_segment(kind: Kind) -> &'static str {
    match kind {
        Kind::App => "applications",
        Kind::Workload => "workloads",
        Kind::Service => "services",
    }
}

pub(super) fn related_heading(kind: Kind) -> &'static str {
    match kind {
        Kind::App => "Workloads",
        Kind::Workload => "App",
        Kind::Service => "Apps",
    }
}

/// An app, workload or service as a list row and on its detail page.
pub(super) struct ItemRow {
    name: String,
    namespace: String,
    href: String,
    pub(super) related: String,
    pub(super) app: String,
    pub(super) clusters: String,
    pub(super) requests: u64,
    pub(super) errors: u64,
    pub(super) error_traces: u64,
}

pub(super) fn item_row(item: &Item, href: String) -> ItemRow {
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

pub(super) async fn list(
    State(console): State<Arc<Console>>,
    Path(segment): Path<String>,
    visitor: Visitor,
    RawQuery(raw): RawQuery,
) -> Response {
    let Some(kind) = page_kind(&segment) else {
        return no_such_page();
    };
    let view = View::parse(raw.as_deref());
    let (snapshot, known, error) = inventory(&console).await;
    let heading = match kind {
        Kind::App => "Applications",
        Kind::Workload => "Workloads",
        Kind::Service => "Services",
    };
    let mut shell = Shell::new(&console, &visitor, &view, heading.into(), &segment, &known);
    let failed = error.as_ref().map(|e| e.code);
    shell.error = error.map(|e| e.error);
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
    page(
        failed,
        ListPage {
            shell,
            heading,
            related_heading: related_heading(kind),
            items,
        },
    )
}
