//! What the console knows about an Istio mesh, worked out from traces alone (no Kubernetes
//! API): the backend's service name for an app, a workload or a service; which traces belong to
//! a workload or a service; what a span says about the mesh (direction, peer, workload, pod,
//! Envoy response flags); and the inventory of namespaces, apps, workloads and services that
//! the spans reveal; and the Istio standard metrics a span stands for (`telemetry`). Pure
//! functions over the model, as Kiali and Istio do them.

// Every function here reads spans, which come from outside (producers, tracing backends): no
// unwrap or expect, no indexing that can panic and no unchecked arithmetic, crate-wide.
// clippy.toml allows unwrap, expect and indexing in tests; test modules allow arithmetic
// themselves. Every other `#[allow]` says why.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod enrich;
mod filter;
mod inventory;
mod names;
pub mod stats;
pub mod telemetry;
#[cfg(test)]
mod testing;

pub use enrich::{SpanInfo, response_flag_meaning, span_info};
pub use filter::{span_matches_service, span_matches_workload, trace_matches};
pub use inventory::{Counts, Inventory, Item, NamespaceSummary};
pub use names::{Kind, Target, pod_workload, tag_str};
