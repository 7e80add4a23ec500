//! Client spans waiting for their server span. In a mesh each proxy exports its own spans in
//! its own batches, so a sidecar's client span often reaches the store before the server span
//! that names its callee. Deriving it at once would count its request under
//! `destination_workload="unknown"`; instead its request is held here, with the labels it
//! already knows, until the server span comes (any later batch) or its wait is over. Either way
//! it is counted once, in the bucket of its own end, so no counter ever has to be taken back.
//!
//! Bounded: at most `max` requests and [`MAX_BYTES`] of label text wait; past either, a client
//! span is derived at once with `unknown` (counted). Waits are measured on the monotonic clock,
//! not the spans' (a skewed producer cannot make one wait longer).

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::Instant;

use foldhash::fast::RandomState;
use meshtrace_mesh::telemetry::{ISTIO_LABELS, IstioRequest, RequestNumbers, SpanTags, Workload};
use meshtrace_model::{SpanId, TraceId};

use super::peers::OwnedWorkload;

/// Label text of all the requests waiting (a request's own share is its text and
/// [`ENTRY_OVERHEAD`]).
pub const MAX_BYTES: usize = 64 << 20;
/// What a waiting request costs besides its label text: the entry, its map slot, its place in
/// the queue.
const ENTRY_OVERHEAD: usize = 192;
/// A request whose labels are longer than this is not held (its values would be folded into
/// `__overflow__` anyway).
const MAX_TEXT: usize = 4096;

/// Envoy's response flags of a request that reached no upstream: no server span will come.
const NEVER_FORWARDED: [&str; 14] = [
    "UH", "UF", "UO", "NR", "NC", "FI", "RL", "UAEX", "RLSE", "IH", "DPE", "OM", "DF", "NFCF",
];

/// Whether a client span's request can have a server span at all: not when it went out of the
/// mesh (`PassthroughCluster`, `BlackHoleCluster`) or Envoy never forwarded it (its flags).
pub fn may_be_answered(tags: &SpanTags<'_>) -> bool {
    if matches!(
        tags.upstream_cluster,
        Some("PassthroughCluster" | "BlackHoleCluster")
    ) {
        return false;
    }
    let flags = tags.response_flags.unwrap_or("");
    !flags
        .split(',')
        .any(|f| NEVER_FORWARDED.contains(&f.trim()))
}

type Key = (TraceId, SpanId);

/// The labels a waiting request knows, packed in one string; one copy is shared by the
/// requests of a batch that have the same labels ([`Dictionary`]), and they are counted
/// together when they are let go.
pub struct LabelText {
    text: Box<str>,
    /// Where each label's value ends in `text`.
    ends: [u32; 25],
}

impl LabelText {
    /// The labels of `request`; None when they are too long to hold.
    fn of(request: &IstioRequest<'_>) -> Option<LabelText> {
        let length = request
            .labels
            .iter()
            .fold(0usize, |n, l| n.saturating_add(l.len()));
        if length > MAX_TEXT {
            return None;
        }
        let mut text = String::with_capacity(length);
        let mut ends = [0u32; 25];
        for (label, end) in request.labels.iter().zip(ends.iter_mut()) {
            text.push_str(label);
            *end = u32::try_from(text.len()).ok()?;
        }
        Some(LabelText {
            text: text.into_boxed_str(),
            ends,
        })
    }

    /// The label values, in [`ISTIO_LABELS`]' order.
    fn values(&self) -> impl Iterator<Item = &str> {
        let mut start = 0usize;
        self.ends.iter().map(move |end| {
            let end = *end as usize;
            let value = self.text.get(start..end).unwrap_or("");
            start = end;
            value
        })
    }

    fn is(&self, request: &IstioRequest<'_>) -> bool {
        self.values()
            .zip(request.labels.iter())
            .all(|(own, label)| own == label.as_ref())
    }
}

/// The label texts of one batch's waiting requests, one per distinct label set. It lives only
/// while a batch is prepared, outside every lock, so it needs no bound of its own (at most one
/// text per span of the batch).
#[derive(Default)]
pub struct Dictionary {
    by_hash: HashMap<u64, Vec<Arc<LabelText>>, RandomState>,
    hasher: RandomState,
}

impl Dictionary {
    /// The shared text of `request`'s labels; None when they are too long to hold.
    pub fn intern(&mut self, request: &IstioRequest<'_>) -> Option<Arc<LabelText>> {
        let hash = self.hasher.hash_one(&request.labels);
        let same = self.by_hash.entry(hash).or_default();
        if let Some(known) = same.iter().find(|t| t.is(request)) {
            return Some(Arc::clone(known));
        }
        let text = Arc::new(LabelText::of(request)?);
        same.push(Arc::clone(&text));
        Some(text)
    }
}

/// A client span's request, waiting for its callee: the labels it knows (shared), its numbers.
pub struct Late {
    key: Key,
    deadline: Instant,
    /// The bucket end (ms) its span counts in, fixed at its arrival.
    pub bucket: u64,
    labels: Arc<LabelText>,
    numbers: RequestNumbers,
    /// The workload that answered it, once its server span came.
    pub callee: Option<Arc<OwnedWorkload>>,
}

impl Late {
    /// The request of `key` (labels with the callee unknown, `labels` its text from the
    /// batch's [`Dictionary`]) to wait until `deadline`.
    pub fn new(
        key: Key,
        deadline: Instant,
        bucket: u64,
        labels: Arc<LabelText>,
        request: &IstioRequest<'_>,
    ) -> Late {
        Late {
            key,
            deadline,
            bucket,
            labels,
            numbers: request.numbers,
            callee: None,
        }
    }

    /// What it is counted against the wait's bounds: its labels' text (as if it were its own)
    /// and its entry.
    fn weight(&self) -> usize {
        self.labels.text.len().saturating_add(ENTRY_OVERHEAD)
    }

    /// Which requests are counted with the same labels (in one bucket): the same shared text
    /// and the same callee.
    pub fn label_identity(&self) -> (usize, usize) {
        (
            Arc::as_ptr(&self.labels).addr(),
            self.callee.as_ref().map_or(0, |c| Arc::as_ptr(c).addr()),
        )
    }

    /// Its numbers, without labels (to add it to a cell of its label set).
    pub fn numbers(&self) -> &RequestNumbers {
        &self.numbers
    }

    /// The request as it is counted: its own labels, the callee's where it is known.
    pub fn request(&self) -> IstioRequest<'_> {
        let callee = self.callee.as_deref().map(OwnedWorkload::view);
        let mut own = self.labels.values();
        let labels: [Cow<'_, str>; 25] = std::array::from_fn(|at| {
            let own = own.next().unwrap_or("");
            let name = ISTIO_LABELS.get(at).copied().unwrap_or("");
            Cow::Borrowed(callee.and_then(|w| callee_label(&w, name)).unwrap_or(own))
        });
        IstioRequest {
            labels,
            numbers: self.numbers,
        }
    }
}

/// The value the callee gives `label` of a source-reported request (None: not a callee label).
fn callee_label<'w>(callee: &Workload<'w>, label: &str) -> Option<&'w str> {
    Some(match label {
        "destination_workload" => callee.name,
        "destination_workload_namespace" => callee.namespace,
        "destination_app" => callee.app,
        "destination_version" => callee.version,
        "destination_cluster" => callee.cluster,
        "destination_canonical_service" => callee.canonical_service,
        "destination_canonical_revision" => callee.canonical_revision,
        _ => return None,
    })
}

/// Why a request was let go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// Its wait was over (counted with `unknown`).
    Due,
    /// Everything is let go (a clean close).
    All,
}

/// The requests waiting, by their client span, and the order their waits end in.
pub struct Waiting {
    by_span: HashMap<Key, Late, RandomState>,
    /// (deadline, span); an entry whose span was answered stays until it reaches the front.
    queue: VecDeque<(Instant, Key)>,
    bytes: usize,
    max: usize,
    pub paired: u64,
    pub unpaired: u64,
    /// Client spans derived at once because the wait was full.
    pub overflow: u64,
}

impl Waiting {
    pub fn new(max: usize) -> Waiting {
        Waiting {
            by_span: HashMap::default(),
            queue: VecDeque::new(),
            bytes: 0,
            max,
            paired: 0,
            unpaired: 0,
            overflow: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.by_span.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_span.is_empty()
    }

    /// The bytes counted against [`MAX_BYTES`]: the waiting requests' label text and entries.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether no request can be held now: a batch then builds none and counts its client
    /// spans at once ([`Waiting::count_overflow`]).
    pub fn is_full(&self) -> bool {
        self.by_span.len() >= self.max || self.bytes.saturating_add(ENTRY_OVERHEAD) > MAX_BYTES
    }

    /// Counts `spans` client spans derived at once because the wait was full.
    pub fn count_overflow(&mut self, spans: usize) {
        self.overflow = self
            .overflow
            .saturating_add(u64::try_from(spans).unwrap_or(u64::MAX));
    }

    /// Makes room for `more` requests in one step (at most up to the cap).
    pub fn reserve(&mut self, more: usize) {
        let room = self.max.saturating_sub(self.by_span.len()).min(more);
        self.by_span.reserve(room);
        self.queue.reserve(room);
    }

    /// Holds `late`; false when the wait is full (or its span already waits: a span sent
    /// twice is counted twice, as it is when nothing waits).
    fn hold(&mut self, late: Late) -> bool {
        let weight = late.weight();
        if self.by_span.len() >= self.max
            || self.bytes.saturating_add(weight) > MAX_BYTES
            || self.by_span.contains_key(&late.key)
        {
            return false;
        }
        self.bytes = self.bytes.saturating_add(weight);
        self.queue.push_back((late.deadline, late.key));
        self.by_span.insert(late.key, late);
        true
    }

    /// Holds `late` or counts it as not held; true when held.
    pub fn hold_or_count(&mut self, late: Late) -> bool {
        let held = self.hold(late);
        if !held {
            self.overflow = self.overflow.saturating_add(1);
        }
        held
    }

    /// The request waiting for the client span `parent` of `trace`, now answered.
    pub fn answered(&mut self, trace: TraceId, parent: SpanId) -> Option<Late> {
        let late = self.remove(&(trace, parent))?;
        self.paired = self.paired.saturating_add(1);
        Some(late)
    }

    fn remove(&mut self, key: &Key) -> Option<Late> {
        let late = self.by_span.remove(key)?;
        self.bytes = self.bytes.saturating_sub(late.weight());
        Some(late)
    }

    /// Whether a wait is over at `now` (or the queue's front is the place of an answered span,
    /// which a release drops).
    pub fn any_due(&self, now: Instant) -> bool {
        self.queue
            .front()
            .is_some_and(|(deadline, _)| *deadline <= now)
    }

    /// Moves the requests whose wait is over (or every one) into `out`.
    pub fn release(&mut self, now: Instant, which: Release, out: &mut Vec<Late>) {
        while let Some((deadline, key)) = self.queue.front().copied() {
            if which == Release::Due && deadline > now {
                break;
            }
            self.queue.pop_front();
            // Only the entry this queue place was made for (not one put back since).
            if self
                .by_span
                .get(&key)
                .is_some_and(|late| late.deadline == deadline)
                && let Some(late) = self.remove(&key)
            {
                if late.callee.is_none() {
                    self.unpaired = self.unpaired.saturating_add(1);
                }
                out.push(late);
            }
        }
        // Answered spans leave their queue places behind: drop them before they outnumber the
        // waiting ones (the queue stays within twice the cap).
        if self.queue.len() > self.by_span.len().saturating_mul(2).saturating_add(1024) {
            let by_span = &self.by_span;
            self.queue.retain(|(_, key)| by_span.contains_key(key));
        }
    }

    /// Puts back requests a failed write took out (their spans were stored before).
    pub fn put_back(&mut self, late: Vec<Late>) {
        for late in late {
            if !self.hold(late) {
                self.overflow = self.overflow.saturating_add(1);
                tracing::warn!(
                    "a client span's request could not wait again after a failed write: not counted"
                );
            }
        }
    }

    /// Lets go of the requests of client spans a failed write did not store.
    pub fn forget(&mut self, keys: impl Iterator<Item = Key>) {
        for key in keys {
            self.remove(&key);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn request(name: &str) -> IstioRequest<'_> {
        let mut labels: [Cow<'_, str>; 25] = std::array::from_fn(|_| Cow::Borrowed("unknown"));
        labels[1] = Cow::Borrowed(name);
        labels[17] = Cow::Borrowed("reviews.bookinfo.svc.cluster.local");
        IstioRequest {
            labels,
            numbers: RequestNumbers {
                duration_ms: 1.5,
                request_bytes: 0,
                response_bytes: 10,
            },
        }
    }

    #[test]
    fn a_held_request_keeps_its_labels_and_takes_the_callees() {
        let now = Instant::now();
        let request = request("productpage-v1");
        let text = Dictionary::default().intern(&request).unwrap();
        let mut late = Late::new((TraceId(1), SpanId(2)), now, 15_000, text, &request);
        let labels = late.request().labels;
        assert_eq!(labels[1], "productpage-v1");
        assert_eq!(labels[9], "unknown");
        assert_eq!(labels[17], "reviews.bookinfo.svc.cluster.local");
        let mut callee = Workload::UNKNOWN;
        callee.name = "reviews-v2";
        callee.namespace = "bookinfo";
        callee.version = "v2";
        late.callee = Some(Arc::new(OwnedWorkload::of(&callee)));
        let labels = late.request().labels;
        assert_eq!(ISTIO_LABELS[9], "destination_workload");
        assert_eq!(labels[9], "reviews-v2");
        assert_eq!(labels[10], "bookinfo");
        assert_eq!(labels[12], "v2");
        assert_eq!(labels[13], "unknown", "the principal is in no span");
        assert_eq!(labels[1], "productpage-v1");
        assert_eq!(labels[17], "reviews.bookinfo.svc.cluster.local");
    }

    #[test]
    fn waits_end_in_order_and_the_cap_holds() {
        let start = Instant::now();
        let mut waiting = Waiting::new(2);
        let mut dictionary = Dictionary::default();
        for (id, after) in [(1u64, 1u64), (2, 2), (3, 3)] {
            let request = request("a");
            let text = dictionary.intern(&request).unwrap();
            let late = Late::new(
                (TraceId(1), SpanId(id)),
                start + Duration::from_secs(after),
                0,
                text,
                &request,
            );
            let held = waiting.hold_or_count(late);
            assert_eq!(held, id < 3);
        }
        assert_eq!(waiting.overflow, 1);
        assert!(
            waiting.is_full(),
            "a batch builds no request while the cap is reached"
        );
        waiting.count_overflow(3);
        assert_eq!(waiting.overflow, 4);
        waiting.overflow = 1;
        assert!(waiting.answered(TraceId(1), SpanId(1)).is_some());
        assert!(!waiting.any_due(start + Duration::from_millis(500)));
        let mut out = Vec::new();
        waiting.release(start + Duration::from_millis(1500), Release::Due, &mut out);
        assert!(
            out.is_empty(),
            "the answered span's place is dropped, nothing counted"
        );
        assert!(!waiting.any_due(start + Duration::from_millis(1500)));
        waiting.release(start + Duration::from_secs(2), Release::Due, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((waiting.paired, waiting.unpaired, waiting.len()), (1, 1, 0));
        assert!(!waiting.is_full());
        assert_eq!(waiting.bytes, 0);
    }

    #[test]
    fn a_batch_shares_one_text_per_label_set() {
        let mut dictionary = Dictionary::default();
        let a = dictionary.intern(&request("productpage-v1")).unwrap();
        let b = dictionary.intern(&request("productpage-v1")).unwrap();
        let c = dictionary.intern(&request("reviews-v2")).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(c.values().nth(1), Some("reviews-v2"));
        let mut long = request("x");
        long.labels[2] = Cow::Owned("v".repeat(MAX_TEXT));
        assert!(dictionary.intern(&long).is_none(), "too long to hold");
    }

    #[test]
    fn requests_that_reached_no_upstream_do_not_wait() {
        let mut tags = SpanTags::default();
        assert!(may_be_answered(&tags));
        tags.response_flags = Some("UF,URX");
        assert!(!may_be_answered(&tags));
        tags.response_flags = Some("-");
        tags.upstream_cluster = Some("PassthroughCluster");
        assert!(!may_be_answered(&tags));
    }
}
