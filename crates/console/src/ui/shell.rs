//! What every page shows around its content (`base.html`): the masthead with the tracing mode
//! and who is signed in, the navigation, the toolbar (namespaces, time range, refresh) and the page's error or
//! notice; and the inventory the lists and detail pages read.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use meshtrace_config::AuthStrategy;

use super::links::Links;
use super::view::{RANGES, REFRESH, View};
use super::{Choice, root};
use crate::Console;
use crate::auth::User;
use crate::error::ApiError;

/// Who a page is for, as the auth gate found them: nobody with the anonymous strategy.
pub(super) struct Visitor(Option<User>);

impl Visitor {
    pub(super) fn of(request: &axum::extract::Request) -> Visitor {
        Visitor(request.extensions().get::<User>().cloned())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Visitor, Infallible> {
        Ok(Visitor(parts.extensions.get::<User>().cloned()))
    }
}

/// The masthead's user: a name, and where to sign out when the console holds the session.
pub(super) struct Account {
    pub(super) name: String,
    /// `None` behind an authenticating proxy, which owns the session.
    pub(super) logout: Option<String>,
    /// The CSRF token the page's forms and scripts send back (`auth::csrf`).
    pub(super) csrf: Option<String>,
}

pub(super) struct NavItem {
    pub(super) label: &'static str,
    pub(super) href: String,
    pub(super) active: bool,
}

pub(super) struct NamespaceOption {
    pub(super) name: String,
    pub(super) selected: bool,
}

/// What every page shows around its content.
pub(super) struct Shell {
    pub(super) title: String,
    pub(super) root: String,
    pub(super) mode: String,
    pub(super) account: Option<Account>,
    /// The view's query string, for links that keep it.
    pub(super) query: String,
    pub(super) nav: Vec<NavItem>,
    pub(super) tracing_home: Option<String>,
    pub(super) namespace_options: Vec<NamespaceOption>,
    pub(super) ranges: Vec<Choice>,
    pub(super) refreshes: Vec<Choice>,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) refresh: u64,
    /// Hidden fields the toolbar keeps (the tab and its options).
    pub(super) keep: Vec<(String, String)>,
    pub(super) error: Option<String>,
    /// Not an error: what this mode cannot show.
    pub(super) notice: Option<String>,
}

impl Shell {
    /// The signed-in user's CSRF token, for the page's forms.
    pub(super) fn csrf_token(&self) -> Option<&str> {
        self.account.as_ref()?.csrf.as_deref()
    }

    pub(super) fn new(
        console: &Console,
        visitor: &Visitor,
        view: &View,
        title: String,
        active: &str,
        known: &[String],
    ) -> Shell {
        let root = root(console);
        // Navigation keeps the namespaces and time range, not a page's own options.
        let nav_view = view.navigation();
        let query = nav_view.query(&[]);
        let nav = [
            ("Overview", "overview"),
            ("Traffic Graph", "graph/namespaces"),
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
            account: visitor.0.as_ref().map(|user| Account {
                name: user.name.clone(),
                logout: (console.auth.strategy() == AuthStrategy::OpenId)
                    .then(|| format!("{root}/logout")),
                csrf: console.auth.csrf_token(user),
            }),
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
                .map(|(value, label)| {
                    Choice::new(
                        &value.to_string(),
                        label,
                        !view.custom() && *value == view.duration,
                    )
                })
                .collect(),
            refreshes: REFRESH
                .iter()
                .map(|(value, label)| {
                    Choice::new(&value.to_string(), label, *value == view.refresh)
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

/// The namespaces the toolbar offers on a page that reads no inventory of its own (a trace,
/// the search, the tester); a failing inventory offers none and says nothing, as the page's
/// own content does not depend on it.
pub(super) async fn known_namespaces(console: &Console) -> Vec<String> {
    inventory(console).await.1
}

/// The inventory and the namespaces it knows, or the error to show.
pub(super) async fn inventory(
    console: &Console,
) -> (
    Option<Arc<crate::inventory::Snapshot>>,
    Vec<String>,
    Option<ApiError>,
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
        Err(error) => (None, Vec::new(), Some(error)),
    }
}
