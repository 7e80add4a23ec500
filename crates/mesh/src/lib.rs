//! What the console knows about an Istio mesh, worked out from traces alone (no Kubernetes
//! API): the backend's service name for an app, a workload or a service; which traces belong to
//! a workload or a service; what a span says about the mesh (direction, peer, workload, pod,
//! Envoy response flags); and the inventory of namespaces, apps, workloads and services that
//! the spans reveal. Pure functions over the model, as Kiali does them.

// No unwrap or expect outside tests (clippy.toml allows them there): every one left says why.
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod enrich;
mod filter;
mod inventory;
mod names;
pub mod stats;
#[cfg(test)]
mod testing;

pub use enrich::{SpanInfo, response_flag_meaning, span_info};
pub use filter::{span_matches_service, span_matches_workload, trace_matches};
pub use inventory::{Counts, Inventory, Item, NamespaceSummary};
pub use names::{Kind, Target, pod_workload, tag_str};
