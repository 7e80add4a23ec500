//! The other end of a sidecar's request, which its span does not name, found from what the
//! store has seen of the mesh:
//!
//! - the caller of a server span: the client span it is the child of, when both came in the
//!   same batch; else the pod whose address is the server span's `peer.address` (Envoy's
//!   downstream address), known from the `node_id` of that pod's own spans;
//! - the callee of a client span: the server span that is its child, in the same batch or in
//!   an earlier one (a later one: the client span waits for it, `pairing.rs`).
//!
//! A client span's `peer.address` is not used: Envoy writes the downstream there (the app
//! itself, or a gateway's caller), not the upstream. What is not found stays `unknown`.
//!
//! Both tables are bounded: when one is full it starts again empty (what traffic keeps using
//! is learned again at once).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;

use meshtrace_mesh::telemetry::Workload;
use meshtrace_model::{SpanId, TraceId};

/// Pod addresses remembered.
const MAX_ADDRESSES: usize = 65_536;
/// Server spans remembered for client spans that come in later batches.
const MAX_CALLEES: usize = 65_536;
/// Distinct workloads shared by the tables.
const MAX_WORKLOADS: usize = 65_536;

/// A workload's labels, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedWorkload {
    name: Box<str>,
    namespace: Box<str>,
    app: Box<str>,
    version: Box<str>,
    canonical_service: Box<str>,
    canonical_revision: Box<str>,
    cluster: Box<str>,
}

impl OwnedWorkload {
    pub fn of(w: &Workload<'_>) -> OwnedWorkload {
        OwnedWorkload {
            name: w.name.into(),
            namespace: w.namespace.into(),
            app: w.app.into(),
            version: w.version.into(),
            canonical_service: w.canonical_service.into(),
            canonical_revision: w.canonical_revision.into(),
            cluster: w.cluster.into(),
        }
    }

    pub fn view(&self) -> Workload<'_> {
        Workload {
            name: &self.name,
            namespace: &self.namespace,
            app: &self.app,
            version: &self.version,
            canonical_service: &self.canonical_service,
            canonical_revision: &self.canonical_revision,
            cluster: &self.cluster,
        }
    }
}

#[derive(Default)]
pub struct Peers {
    by_address: HashMap<Box<str>, Arc<OwnedWorkload>, RandomState>,
    /// (trace, the client span's ID) → the workload that answered it.
    callees: HashMap<(TraceId, SpanId), Arc<OwnedWorkload>, RandomState>,
    /// One shared copy of each workload, by the hash of its labels.
    workloads: HashMap<u64, Vec<Arc<OwnedWorkload>>, RandomState>,
    hasher: RandomState,
}

impl Peers {
    /// Learns that `address` is a pod of `workload`; returns the shared copy. An address that
    /// moves to another workload (a pod replaced) costs no allocation for a workload known.
    pub fn learn(&mut self, address: &str, workload: &Workload<'_>) -> Arc<OwnedWorkload> {
        if let Some(known) = self.by_address.get(address)
            && known.view() == *workload
        {
            return known.clone();
        }
        let shared = self.intern(workload);
        if let Some(known) = self.by_address.get_mut(address) {
            *known = shared.clone();
            return shared;
        }
        if self.by_address.len() >= MAX_ADDRESSES {
            self.by_address.clear();
        }
        self.by_address.insert(address.into(), shared.clone());
        shared
    }

    /// The shared copy of `workload`.
    pub fn intern(&mut self, workload: &Workload<'_>) -> Arc<OwnedWorkload> {
        let hash = self.hasher.hash_one(workload);
        if let Some(known) = self
            .workloads
            .get(&hash)
            .and_then(|list| list.iter().find(|w| w.view() == *workload))
        {
            return known.clone();
        }
        if self.workloads.len() >= MAX_WORKLOADS {
            self.workloads.clear();
        }
        let owned = Arc::new(OwnedWorkload::of(workload));
        self.workloads.entry(hash).or_default().push(owned.clone());
        owned
    }

    pub fn at_address(&self, address: &str) -> Option<Arc<OwnedWorkload>> {
        self.by_address.get(address).cloned()
    }

    /// Remembers that the client span `parent` of `trace` was answered by `workload`.
    pub fn remember_callee(
        &mut self,
        trace: TraceId,
        parent: SpanId,
        workload: Arc<OwnedWorkload>,
    ) {
        if self.callees.len() >= MAX_CALLEES {
            self.callees.clear();
        }
        self.callees.insert((trace, parent), workload);
    }

    pub fn callee_of(&self, trace: TraceId, client: SpanId) -> Option<Arc<OwnedWorkload>> {
        self.callees.get(&(trace, client)).cloned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_learned_and_replaced() {
        let mut peers = Peers::default();
        let mut w = Workload::UNKNOWN;
        w.name = "reviews-v1";
        peers.learn("10.0.0.1", &w);
        assert_eq!(
            peers.at_address("10.0.0.1").unwrap().view().name,
            "reviews-v1"
        );
        w.name = "reviews-v2";
        peers.learn("10.0.0.1", &w);
        assert_eq!(
            peers.at_address("10.0.0.1").unwrap().view().name,
            "reviews-v2"
        );
        assert!(peers.at_address("10.0.0.2").is_none());
        let owned = peers.learn("10.0.0.3", &w);
        peers.remember_callee(TraceId(1), SpanId(2), owned);
        assert!(peers.callee_of(TraceId(1), SpanId(2)).is_some());
        assert!(peers.callee_of(TraceId(1), SpanId(3)).is_none());
    }
}
