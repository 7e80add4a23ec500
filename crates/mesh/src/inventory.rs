//! The mesh as the traces show it: namespaces, apps (Istio canonical services), workloads (pods
//! grouped by workload) and services (from Envoy's upstream clusters and operation names), with
//! the requests and errors seen. Built from a sample of traces, so it shows what was traced,
//! not what is deployed.

use std::collections::{BTreeMap, BTreeSet};

use meshtrace_model::{Span, Trace};

use crate::enrich::span_info;
use crate::names::{Kind, tag_str};

/// Requests seen arriving (inbound spans) and how many of them failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
}

impl Counts {
    fn add(&mut self, error: bool) {
        self.requests = self.requests.saturating_add(1);
        self.errors = self.errors.saturating_add(u64::from(error));
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
    /// The app: itself for an app, the app of a workload's pods, the app serving a service.
    pub app: String,
    /// An app's workloads, a workload's app, a service's apps.
    pub related: BTreeSet<String>,
    pub clusters: BTreeSet<String>,
    pub counts: Counts,
    /// Traces with an error in which this item takes part.
    pub error_traces: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSummary {
    pub name: String,
    pub apps: usize,
    pub workloads: usize,
    pub services: usize,
    pub error_traces: u64,
    pub clusters: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    items: BTreeMap<(String, Kind, String), Item>,
    namespace_error_traces: BTreeMap<String, u64>,
    pub traces: u64,
    pub spans: u64,
}

impl Inventory {
    pub fn from_traces<'a>(traces: impl IntoIterator<Item = &'a Trace>) -> Inventory {
        let mut inventory = Inventory::default();
        for trace in traces {
            inventory.add_trace(trace);
        }
        inventory
    }

    pub fn add_trace(&mut self, trace: &Trace) {
        self.traces = self.traces.saturating_add(1);
        let failed = trace.spans.iter().any(Span::has_error);
        let mut touched: BTreeSet<(String, Kind, String)> = BTreeSet::new();
        for span in &trace.spans {
            self.spans = self.spans.saturating_add(1);
            touched.extend(self.add_span(span));
        }
        if failed {
            let mut namespaces = BTreeSet::new();
            for key in touched {
                namespaces.insert(key.0.clone());
                if let Some(item) = self.items.get_mut(&key) {
                    item.error_traces = item.error_traces.saturating_add(1);
                }
            }
            for ns in namespaces {
                let count = self.namespace_error_traces.entry(ns).or_default();
                *count = count.saturating_add(1);
            }
        }
    }

    /// Records what one span shows; returns the items it touched.
    fn add_span(&mut self, span: &Span) -> Vec<(String, Kind, String)> {
        let info = span_info(span);
        let error = span.has_error();
        let inbound = info.direction == "inbound";
        let mut touched = Vec::new();
        if !info.namespace.is_empty() && !info.app.is_empty() {
            let app = self.item(Kind::App, &info.namespace, &info.app, &info.app);
            app.clusters.extend(non_empty(&info.cluster));
            if !info.workload.is_empty() {
                app.related.insert(info.workload.clone());
            }
            if inbound {
                app.counts.add(error);
            }
            touched.push((info.namespace.clone(), Kind::App, info.app.clone()));
        }
        if !info.namespace.is_empty() && !info.workload.is_empty() {
            let workload = self.item(Kind::Workload, &info.namespace, &info.workload, &info.app);
            workload.clusters.extend(non_empty(&info.cluster));
            workload.related.extend(non_empty(&info.app));
            if inbound {
                workload.counts.add(error);
            }
            touched.push((
                info.namespace.clone(),
                Kind::Workload,
                info.workload.clone(),
            ));
        }
        // The service called: an outbound span's upstream cluster, an inbound span's operation.
        let service = if inbound {
            service_of_operation(&span.operation_name)
        } else {
            tag_str(span, "upstream_cluster").and_then(service_of_upstream)
        };
        if let Some((name, ns)) = service {
            let serving = if inbound {
                info.app.clone()
            } else {
                String::new()
            };
            let item = self.item(Kind::Service, ns, name, &serving);
            item.clusters.extend(non_empty(&info.cluster));
            if inbound {
                item.counts.add(error);
                item.related.extend(non_empty(&serving));
                if item.app.is_empty() {
                    item.app = serving;
                }
            }
            touched.push((ns.to_string(), Kind::Service, name.to_string()));
        }
        touched
    }

    fn item(&mut self, kind: Kind, namespace: &str, name: &str, app: &str) -> &mut Item {
        self.items
            .entry((namespace.to_string(), kind, name.to_string()))
            .or_insert_with(|| Item {
                kind,
                namespace: namespace.to_string(),
                name: name.to_string(),
                app: app.to_string(),
                related: BTreeSet::new(),
                clusters: BTreeSet::new(),
                counts: Counts::default(),
                error_traces: 0,
            })
    }

    pub fn namespaces(&self) -> Vec<NamespaceSummary> {
        let mut out: BTreeMap<&str, NamespaceSummary> = BTreeMap::new();
        for ((ns, kind, _), item) in &self.items {
            let summary = out.entry(ns).or_insert_with(|| NamespaceSummary {
                name: ns.clone(),
                error_traces: self.namespace_error_traces.get(ns).copied().unwrap_or(0),
                ..Default::default()
            });
            summary.clusters.extend(item.clusters.iter().cloned());
            match kind {
                Kind::App => summary.apps = summary.apps.saturating_add(1),
                Kind::Workload => summary.workloads = summary.workloads.saturating_add(1),
                Kind::Service => summary.services = summary.services.saturating_add(1),
            }
        }
        out.into_values().collect()
    }

    /// The items of one kind in a namespace, by name.
    pub fn list(&self, namespace: &str, kind: Kind) -> Vec<&Item> {
        self.items
            .iter()
            .filter(|((ns, k, _), _)| ns == namespace && *k == kind)
            .map(|(_, item)| item)
            .collect()
    }

    pub fn get(&self, namespace: &str, kind: Kind, name: &str) -> Option<&Item> {
        self.items
            .get(&(namespace.to_string(), kind, name.to_string()))
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// `outbound|9080||reviews.bookinfo.svc.cluster.local` → (`reviews`, `bookinfo`).
fn service_of_upstream(upstream: &str) -> Option<(&str, &str)> {
    let fqdn = upstream.strip_prefix("outbound|")?.rsplit('|').next()?;
    service_of_fqdn(fqdn)
}

/// `reviews.bookinfo.svc.cluster.local:9080/*` → (`reviews`, `bookinfo`).
fn service_of_operation(operation: &str) -> Option<(&str, &str)> {
    let host = operation.split([':', '/']).next()?;
    service_of_fqdn(host)
}

fn service_of_fqdn(fqdn: &str) -> Option<(&str, &str)> {
    let mut parts = fqdn.splitn(3, '.');
    let (name, ns, rest) = (parts.next()?, parts.next()?, parts.next()?);
    (rest.starts_with("svc") && !name.is_empty() && !ns.is_empty()).then_some((name, ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_come_from_envoy_strings() {
        assert_eq!(
            service_of_upstream("outbound|9080||reviews.bookinfo.svc.cluster.local"),
            Some(("reviews", "bookinfo"))
        );
        assert_eq!(service_of_upstream("inbound|9080||"), None);
        assert_eq!(
            service_of_operation("ratings.bookinfo.svc.cluster.local:9080/*"),
            Some(("ratings", "bookinfo"))
        );
        assert_eq!(service_of_operation("GET /products"), None);
    }
}
