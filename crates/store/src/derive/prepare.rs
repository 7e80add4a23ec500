//! A batch's contribution to the derived series, worked out before the store's state is
//! locked: each span's tags read once, its Istio request (with the other end found,
//! `peers.rs`) and per-service key, summed per label set and time bucket, so that the locked
//! part only adds a few cells. The label values stay borrowed from the spans.
//!
//! A span counts in the bucket `[k·step, (k+1)·step)` that holds its end (a request is counted
//! when it is over, as Istio counts it); a span that claims to end more than
//! [`MAX_FUTURE_MS`] after the store received it counts at its arrival instead (a skewed or
//! hostile clock cannot make buckets far ahead), and a span that ended before the retention
//! window counts nowhere (it is about to be removed).
//!
//! A client span whose callee is not known yet waits for its server span (`pairing.rs`): its
//! per-service key counts at once, its Istio request when the callee is found or the wait is
//! over — with a later batch, in the bucket fixed at its arrival.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use foldhash::fast::RandomState;
use meshtrace_mesh::telemetry::{
    Proxy, ProxyKind, Reporter, RequestInputs, RequestNumbers, ServiceKey, SpanTags, Workload,
    istio_request_with, reporter_of,
};
use meshtrace_model::{Span, SpanId, TraceId};

use super::cell::{Cell, IstioCell, ServiceCell};
use super::pairing::{Dictionary, Late, Release, Waiting, may_be_answered};
use super::peers::{OwnedWorkload, Peers};
use super::series::Family;

/// How far past its arrival a span may say it ended and still count at its own end time.
pub const MAX_FUTURE_MS: u64 = 5 * 60 * 1000;

/// The label values of an item, in its family's order.
pub enum ItemLabels<'a> {
    Istio(Box<[Cow<'a, str>; 25]>),
    Service([&'a str; 4]),
}

impl ItemLabels<'_> {
    pub fn as_strs(&self) -> Vec<&str> {
        match self {
            ItemLabels::Istio(labels) => labels.iter().map(std::convert::AsRef::as_ref).collect(),
            ItemLabels::Service(labels) => labels.to_vec(),
        }
    }
}

/// One label set's delta in one bucket.
pub struct Item<'a> {
    pub family: Family,
    /// The bucket's end, ms since the epoch.
    pub bucket: u64,
    pub labels: ItemLabels<'a>,
    /// The labels' hash under the registry's hasher.
    pub hash: u64,
    pub delta: Cell,
}

#[derive(Default)]
pub struct Prepared<'a> {
    pub items: Vec<Item<'a>>,
    /// Spans that ended before the retention window (not counted).
    pub too_old: u64,
}

/// Where the other end of a span's request was found.
enum Remote {
    Unknown,
    /// The reporting proxy of another span of the batch.
    Span(usize),
    Known(Arc<OwnedWorkload>),
    /// Not known yet: the request waits for its server span (`pairing.rs`).
    Held,
}

/// What each span of a batch says, and where the other end of its request is; and the
/// requests of earlier client spans counted with this batch (answered, or done waiting).
pub struct Ends<'a> {
    tags: Vec<SpanTags<'a>>,
    reports: Vec<Option<(Reporter, Proxy<'a>)>>,
    remotes: Vec<Remote>,
    late: Vec<Late>,
}

/// Where client spans without a callee wait, and until when.
pub struct Hold<'w> {
    pub waiting: &'w Mutex<Waiting>,
    pub deadline: Instant,
    pub step_ms: u64,
    pub now_ms: u64,
    pub oldest_ms: u64,
}

impl Ends<'static> {
    /// No batch: only requests let go from the wait (their wait is over, or the store closes).
    pub fn released(waiting: &Mutex<Waiting>, which: Release) -> Ends<'static> {
        let mut late = Vec::new();
        waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .release(Instant::now(), which, &mut late);
        Ends {
            tags: Vec::new(),
            reports: Vec::new(),
            remotes: Vec::new(),
            late,
        }
    }
}

impl Ends<'_> {
    /// Requests of earlier client spans counted with this batch.
    pub fn late_count(&self) -> usize {
        self.late.len()
    }

    /// After a failed write of `spans`: the requests it took from the wait wait again, and
    /// those of its own client spans (not stored) are let go.
    pub fn undo(self, spans: &[Span], waiting: &Mutex<Waiting>) {
        let mut waiting = waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let held = spans
            .iter()
            .zip(&self.remotes)
            .filter(|(_, r)| matches!(r, Remote::Held))
            .map(|(span, _)| (span.trace_id, span.span_id));
        waiting.forget(held);
        waiting.put_back(self.late);
    }
}

/// The bucket end (ms) a span counts in, or None when it ended before `oldest_ms`.
pub fn bucket_of(span: &Span, step_ms: u64, now_ms: u64, oldest_ms: u64) -> Option<u64> {
    let mut end_ms = span.end_time() / 1000;
    if end_ms > now_ms.saturating_add(MAX_FUTURE_MS) {
        end_ms = now_ms;
    }
    if end_ms < oldest_ms {
        return None;
    }
    let step = step_ms.max(1);
    end_ms.checked_div(step)?.checked_add(1)?.checked_mul(step)
}

/// Reads every span's tags, learns the proxies' addresses, and finds the other ends; with
/// `hold`, client spans whose callee is not known wait for it, and the batch's server spans
/// answer those that wait.
pub fn find_ends<'a>(spans: &'a [Span], peers: &Mutex<Peers>, hold: Option<Hold<'_>>) -> Ends<'a> {
    let tags: Vec<SpanTags<'a>> = spans.iter().map(SpanTags::of).collect();
    let reports: Vec<_> = tags.iter().map(reporter_of).collect();
    // In-batch pairs: a destination's span is the child of its source's span.
    let mut by_id: HashMap<(TraceId, SpanId), usize, RandomState> = HashMap::default();
    let mut answered_by: HashMap<(TraceId, SpanId), usize, RandomState> = HashMap::default();
    for (at, (span, report)) in spans.iter().zip(&reports).enumerate() {
        match report {
            Some((Reporter::Source, _)) => {
                by_id.insert((span.trace_id, span.span_id), at);
            }
            Some((Reporter::Destination, _)) => {
                if let Some(parent) = span.parent_span_id() {
                    answered_by.insert((span.trace_id, parent), at);
                }
            }
            _ => {}
        }
    }
    // The requests of client spans that may have to wait, built before any lock is taken (the
    // label work is most of a wait's cost); those whose callee turns out to be known are
    // dropped unused.
    // When the wait is already full, none is built: its client spans are counted at once
    // (as `hold_or_count` would have decided after building them).
    let full = hold.as_ref().is_some_and(|hold| {
        hold.waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_full()
    });
    let candidates: Vec<(usize, Late)> = match &hold {
        Some(hold) if !full => waiting_candidates(spans, &tags, &reports, &answered_by, hold),
        _ => Vec::new(),
    };
    let overflowed = match &hold {
        Some(hold) if full => spans
            .iter()
            .zip(&tags)
            .zip(&reports)
            .filter(|((span, tags), report)| {
                matches!(report, Some((Reporter::Source, _)))
                    && may_wait(span, tags, &answered_by, hold).is_some()
            })
            .count(),
        _ => 0,
    };
    let mut peers = peers.lock().unwrap_or_else(PoisonError::into_inner);
    // The workload each server span's proxy was learned as (shared), to name a waiting
    // request's callee.
    let mut learned: Vec<Option<Arc<OwnedWorkload>>> = Vec::new();
    // A batch mostly holds runs of spans of one proxy: its address is learned once per run.
    let mut last: Option<(&str, Workload<'a>, Arc<OwnedWorkload>)> = None;
    for (at, (span, report)) in spans.iter().zip(&reports).enumerate() {
        if let Some((reporter, proxy)) = report
            && proxy.kind != ProxyKind::Waypoint
            && !proxy.ip.is_empty()
        {
            let owned = match &last {
                Some((ip, workload, owned)) if *ip == proxy.ip && *workload == proxy.workload => {
                    Arc::clone(owned)
                }
                _ => {
                    let owned = peers.learn(proxy.ip, &proxy.workload);
                    last = Some((proxy.ip, proxy.workload, Arc::clone(&owned)));
                    owned
                }
            };
            // A client span of the batch finds its callee in the batch; one of a later batch
            // finds it remembered.
            if *reporter == Reporter::Destination
                && let Some(parent) = span.parent_span_id()
                && !by_id.contains_key(&(span.trace_id, parent))
            {
                peers.remember_callee(span.trace_id, parent, Arc::clone(&owned));
                if hold.is_some() {
                    learned.resize(at, None);
                    learned.push(Some(owned));
                }
            }
        }
    }
    let mut remotes: Vec<Remote> = spans
        .iter()
        .zip(&reports)
        .zip(&tags)
        .map(|((span, report), tags)| match report {
            Some((Reporter::Source, _)) => match answered_by.get(&(span.trace_id, span.span_id)) {
                Some(at) => Remote::Span(*at),
                None => peers
                    .callee_of(span.trace_id, span.span_id)
                    .map_or(Remote::Unknown, Remote::Known),
            },
            Some((Reporter::Destination, _)) => {
                let parent = span
                    .parent_span_id()
                    .and_then(|p| by_id.get(&(span.trace_id, p)));
                match parent {
                    Some(at) => Remote::Span(*at),
                    None => peer_address(tags.peer_address)
                        .and_then(|address| peers.at_address(address))
                        .map_or(Remote::Unknown, Remote::Known),
                }
            }
            _ => Remote::Unknown,
        })
        .collect();
    let mut late = Vec::new();
    if let Some(hold) = &hold {
        // Taken before `peers` is let go: a server span remembered after this batch looked
        // for its client spans' callees then finds them waiting.
        let mut waiting = hold.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        if !waiting.is_empty() {
            answer_waiting(
                spans,
                &reports,
                &learned,
                &mut peers,
                &mut waiting,
                &mut late,
            );
            waiting.release(Instant::now(), Release::Due, &mut late);
        }
        drop(peers);
        waiting.count_overflow(overflowed);
        waiting.reserve(candidates.len());
        for (at, candidate) in candidates {
            if let Some(remote) = remotes.get_mut(at)
                && matches!(remote, Remote::Unknown)
                && waiting.hold_or_count(candidate)
            {
                *remote = Remote::Held;
            }
        }
    }
    Ends {
        tags,
        reports,
        remotes,
        late,
    }
}

/// The waiting requests of the batch's client spans not answered in it, with their indexes.
fn waiting_candidates(
    spans: &[Span],
    tags: &[SpanTags<'_>],
    reports: &[Option<(Reporter, Proxy<'_>)>],
    answered_by: &HashMap<(TraceId, SpanId), usize, RandomState>,
    hold: &Hold<'_>,
) -> Vec<(usize, Late)> {
    let mut out = Vec::new();
    let mut dictionary = Dictionary::default();
    for (at, ((span, tags), report)) in spans.iter().zip(tags).zip(reports).enumerate() {
        if let Some(report @ (Reporter::Source, _)) = report
            && let Some(bucket) = may_wait(span, tags, answered_by, hold)
        {
            let request = istio_request_with(span, tags, *report, None);
            let key = (span.trace_id, span.span_id);
            // Labels too long to hold: counted at once.
            if let Some(text) = dictionary.intern(&request) {
                out.push((at, Late::new(key, hold.deadline, bucket, text, &request)));
            }
        }
    }
    out
}

/// The bucket a client span (a source report) would wait to be counted in: None when it is
/// answered in its own batch, cannot be answered, or ended before the retention window.
fn may_wait(
    span: &Span,
    tags: &SpanTags<'_>,
    answered_by: &HashMap<(TraceId, SpanId), usize, RandomState>,
    hold: &Hold<'_>,
) -> Option<u64> {
    if answered_by.contains_key(&(span.trace_id, span.span_id)) || !may_be_answered(tags) {
        return None;
    }
    bucket_of(span, hold.step_ms, hold.now_ms, hold.oldest_ms)
}

/// Takes the requests the batch's server spans answer out of the wait, with their callee
/// (`learned`: the workload each server span's proxy was learned as, by span).
fn answer_waiting(
    spans: &[Span],
    reports: &[Option<(Reporter, Proxy<'_>)>],
    learned: &[Option<Arc<OwnedWorkload>>],
    peers: &mut Peers,
    waiting: &mut Waiting,
    late: &mut Vec<Late>,
) {
    for (at, (span, report)) in spans.iter().zip(reports).enumerate() {
        if let Some((Reporter::Destination, proxy)) = report
            && let Some(parent) = span.parent_span_id()
            && let Some(mut answered) = waiting.answered(span.trace_id, parent)
        {
            let callee = match learned.get(at) {
                Some(Some(owned)) => Arc::clone(owned),
                _ => peers.intern(&proxy.workload),
            };
            answered.callee = Some(callee);
            late.push(answered);
        }
    }
}

/// The batch's deltas per label set and bucket; label hashes under `hasher` (the registry's).
pub fn aggregate<'a>(
    spans: &'a [Span],
    ends: &'a Ends<'a>,
    hasher: &RandomState,
    step_ms: u64,
    (now_ms, oldest_ms): (u64, u64),
) -> Prepared<'a> {
    // Spans are summed per bucket and per what their labels are made of (a handful of
    // borrowed strings); the 25 labels are written once per distinct key below, not per span.
    let expected = spans.len().min(64);
    let mut by_inputs: HashMap<(u64, RequestInputs<'a>), usize, RandomState> =
        HashMap::with_capacity_and_hasher(expected, RandomState::default());
    let mut cells: Vec<IstioCell> = Vec::with_capacity(expected);
    let mut service: HashMap<(u64, [&'a str; 4]), ServiceCell, RandomState> =
        HashMap::with_capacity_and_hasher(expected, RandomState::default());
    let mut prepared = Prepared::default();
    let spans_ends = spans
        .iter()
        .zip(&ends.tags)
        .zip(&ends.reports)
        .zip(&ends.remotes);
    for (((span, tags), report), remote) in spans_ends {
        let Some(bucket) = bucket_of(span, step_ms, now_ms, oldest_ms) else {
            prepared.too_old = prepared.too_old.saturating_add(1);
            continue;
        };
        let key = ServiceKey::with_tags(span, tags);
        service
            .entry((
                bucket,
                [
                    key.service,
                    key.operation,
                    key.kind.otel(),
                    key.status.otel(),
                ],
            ))
            .or_default()
            .observe(span.duration);
        let Some(report) = report else {
            continue;
        };
        let remote: Option<Workload<'a>> = match remote {
            Remote::Unknown => None,
            Remote::Span(at) => ends
                .reports
                .get(*at)
                .and_then(|r| r.as_ref())
                .map(|(_, proxy)| proxy.workload),
            Remote::Known(owned) => Some(owned.view()),
            Remote::Held => continue,
        };
        let inputs = RequestInputs::of(span, tags, *report, remote);
        let at = *by_inputs.entry((bucket, inputs)).or_insert_with(|| {
            cells.push(IstioCell::default());
            cells.len().saturating_sub(1)
        });
        if let Some(cell) = cells.get_mut(at) {
            cell.observe(&RequestNumbers::of(span, tags));
        }
    }
    // Different inputs may still give the same labels (a status code written as text by one
    // span and as a number by another): the label sets are merged.
    type IstioKey<'k> = (u64, [Cow<'k, str>; 25]);
    let mut istio: HashMap<IstioKey<'a>, IstioCell, RandomState> =
        HashMap::with_capacity_and_hasher(by_inputs.len(), RandomState::default());
    for ((bucket, inputs), at) in by_inputs {
        if let Some(cell) = cells.get(at) {
            istio
                .entry((bucket, inputs.labels()))
                .or_default()
                .add(cell);
        }
    }
    // Requests that waited with one shared label text and callee, in one bucket, are summed
    // first: their labels are hashed once.
    type LateGroups<'l> = HashMap<(u64, (usize, usize)), (&'l Late, IstioCell), RandomState>;
    let mut late_groups: LateGroups<'a> = HashMap::default();
    for late in &ends.late {
        // Its bucket ended before the retention window while it waited.
        if late.bucket <= oldest_ms {
            prepared.too_old = prepared.too_old.saturating_add(1);
            continue;
        }
        late_groups
            .entry((late.bucket, late.label_identity()))
            .or_insert_with(|| (late, IstioCell::default()))
            .1
            .observe(late.numbers());
    }
    for ((bucket, _), (late, cell)) in late_groups {
        let request = late.request();
        istio
            .entry((bucket, request.labels))
            .or_default()
            .add(&cell);
    }
    prepared
        .items
        .reserve(istio.len().saturating_add(service.len()));
    for ((bucket, labels), delta) in istio {
        let strs: Vec<&str> = labels.iter().map(std::convert::AsRef::as_ref).collect();
        let hash = hasher.hash_one(strs.as_slice());
        prepared.items.push(Item {
            family: Family::Istio,
            bucket,
            labels: ItemLabels::Istio(Box::new(labels)),
            hash,
            delta: Cell::Istio(Box::new(delta)),
        });
    }
    for ((bucket, labels), delta) in service {
        let hash = hasher.hash_one(labels.as_slice());
        prepared.items.push(Item {
            family: Family::Service,
            bucket,
            labels: ItemLabels::Service(labels),
            hash,
            delta: Cell::Service(delta),
        });
    }
    prepared
}

/// Envoy's downstream address of a server span: the caller's pod (an IPv4 `:port` dropped).
fn peer_address(address: Option<&str>) -> Option<&str> {
    let address = address.filter(|a| !a.is_empty())?;
    match address.rsplit_once(':') {
        Some((ip, port)) if ip.contains('.') && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(ip)
        }
        _ => Some(address),
    }
}
