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

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use foldhash::fast::RandomState;
use meshtrace_mesh::telemetry::{
    Proxy, ProxyKind, Reporter, ServiceKey, SpanTags, Workload, istio_request_with, reporter_of,
};
use meshtrace_model::{Span, SpanId, TraceId};

use super::cell::{Cell, IstioCell, ServiceCell};
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
}

/// What each span of a batch says, and where the other end of its request is.
pub struct Ends<'a> {
    tags: Vec<SpanTags<'a>>,
    reports: Vec<Option<(Reporter, Proxy<'a>)>>,
    remotes: Vec<Remote>,
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

/// Reads every span's tags, learns the proxies' addresses, and finds the other ends.
pub fn find_ends<'a>(spans: &'a [Span], peers: &Mutex<Peers>) -> Ends<'a> {
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
    let mut peers = peers.lock().unwrap_or_else(PoisonError::into_inner);
    for (span, report) in spans.iter().zip(&reports) {
        if let Some((reporter, proxy)) = report
            && proxy.kind != ProxyKind::Waypoint
            && !proxy.ip.is_empty()
        {
            let owned = peers.learn(proxy.ip, &proxy.workload);
            if *reporter == Reporter::Destination
                && let Some(parent) = span.parent_span_id()
            {
                peers.remember_callee(span.trace_id, parent, owned);
            }
        }
    }
    let remotes = spans
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
    Ends {
        tags,
        reports,
        remotes,
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
    type IstioKey<'k> = (u64, [Cow<'k, str>; 25]);
    let mut istio: HashMap<IstioKey<'a>, IstioCell, RandomState> = HashMap::default();
    let mut service: HashMap<(u64, [&'a str; 4]), ServiceCell, RandomState> = HashMap::default();
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
        };
        let request = istio_request_with(span, tags, *report, remote);
        istio
            .entry((bucket, request.labels.clone()))
            .or_default()
            .observe(&request);
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
