//! A batch's contribution to the derived series, worked out before the store's state is
//! locked: each span's Istio request (with the other end found, `peers.rs`) and per-service
//! key, summed per label set and time bucket, so that the locked part only adds a few cells.
//!
//! A span counts in the bucket `[k·step, (k+1)·step)` that holds its end (a request is counted
//! when it is over, as Istio counts it); a span that claims to end more than
//! [`MAX_FUTURE_MS`] after the store received it counts at its arrival instead (a skewed or
//! hostile clock cannot make buckets far ahead), and a span that ended before the retention
//! window counts nowhere (it is about to be removed).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use meshtrace_mesh::telemetry::{
    ProxyKind, Reporter, ServiceKey, Workload, istio_request, reporter,
};
use meshtrace_model::{Span, SpanId, TraceId, Value};

use super::cell::{Cell, IstioCell, ServiceCell};
use super::peers::{OwnedWorkload, Peers};
use super::series::Family;

/// How far past its arrival a span may say it ended and still count at its own end time.
pub const MAX_FUTURE_MS: u64 = 5 * 60 * 1000;

/// One label set's delta in one bucket.
pub struct Item {
    pub family: Family,
    /// The bucket's end, ms since the epoch.
    pub bucket: u64,
    pub labels: Vec<Box<str>>,
    pub delta: Cell,
}

#[derive(Default)]
pub struct Prepared {
    pub items: Vec<Item>,
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

pub fn prepare(
    spans: &[Span],
    peers: &Mutex<Peers>,
    step_ms: u64,
    now_ms: u64,
    oldest_ms: u64,
) -> Prepared {
    let reports: Vec<_> = spans.iter().map(reporter).collect();
    // In-batch pairs: a destination's span is the child of its source's span.
    let mut by_id: HashMap<(TraceId, SpanId), usize> = HashMap::new();
    let mut answered_by: HashMap<(TraceId, SpanId), usize> = HashMap::new();
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
    let remotes: Vec<Remote> = {
        let mut peers = peers.lock().unwrap_or_else(PoisonError::into_inner);
        let mut own: Vec<Option<Arc<OwnedWorkload>>> = Vec::with_capacity(spans.len());
        for (span, report) in spans.iter().zip(&reports) {
            let learned = match report {
                Some((reporter, proxy))
                    if proxy.kind != ProxyKind::Waypoint && !proxy.ip.is_empty() =>
                {
                    let owned = peers.learn(proxy.ip, &proxy.workload);
                    if *reporter == Reporter::Destination
                        && let Some(parent) = span.parent_span_id()
                    {
                        peers.remember_callee(span.trace_id, parent, owned.clone());
                    }
                    Some(owned)
                }
                _ => None,
            };
            own.push(learned);
        }
        spans
            .iter()
            .zip(&reports)
            .map(|(span, report)| match report {
                Some((Reporter::Source, _)) => {
                    match answered_by.get(&(span.trace_id, span.span_id)) {
                        Some(at) => Remote::Span(*at),
                        None => peers
                            .callee_of(span.trace_id, span.span_id)
                            .map_or(Remote::Unknown, Remote::Known),
                    }
                }
                Some((Reporter::Destination, _)) => {
                    let parent = span
                        .parent_span_id()
                        .and_then(|p| by_id.get(&(span.trace_id, p)));
                    match parent {
                        Some(at) => Remote::Span(*at),
                        None => peer_address(span)
                            .and_then(|address| peers.at_address(address))
                            .map_or(Remote::Unknown, Remote::Known),
                    }
                }
                _ => Remote::Unknown,
            })
            .collect()
    };

    let mut istio: HashMap<(u64, [Cow<'_, str>; 25]), IstioCell> = HashMap::new();
    let mut service: HashMap<(u64, [&str; 4]), ServiceCell> = HashMap::new();
    let mut prepared = Prepared::default();
    for (span, remote) in spans.iter().zip(&remotes) {
        let Some(bucket) = bucket_of(span, step_ms, now_ms, oldest_ms) else {
            prepared.too_old = prepared.too_old.saturating_add(1);
            continue;
        };
        let key = ServiceKey::of(span);
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
        let remote: Option<Workload<'_>> = match remote {
            Remote::Unknown => None,
            Remote::Span(at) => reports
                .get(*at)
                .and_then(|r| r.as_ref())
                .map(|(_, proxy)| proxy.workload),
            Remote::Known(owned) => Some(owned.view()),
        };
        if let Some(request) = istio_request(span, remote) {
            istio
                .entry((bucket, request.labels.clone()))
                .or_default()
                .observe(&request);
        }
    }
    prepared
        .items
        .reserve(istio.len().saturating_add(service.len()));
    for ((bucket, labels), delta) in istio {
        prepared.items.push(Item {
            family: Family::Istio,
            bucket,
            labels: labels.iter().map(|l| Box::from(l.as_ref())).collect(),
            delta: Cell::Istio(Box::new(delta)),
        });
    }
    for ((bucket, labels), delta) in service {
        prepared.items.push(Item {
            family: Family::Service,
            bucket,
            labels: labels.iter().map(|l| Box::from(*l)).collect(),
            delta: Cell::Service(delta),
        });
    }
    prepared
}

/// Envoy's downstream address of a server span: the caller's pod (an IPv4 `:port` dropped).
fn peer_address(span: &Span) -> Option<&str> {
    let address = match span.tag("peer.address") {
        Some(Value::Str(address)) if !address.is_empty() => address.as_str(),
        _ => return None,
    };
    match address.rsplit_once(':') {
        Some((ip, port)) if ip.contains('.') && port.bytes().all(|b| b.is_ascii_digit()) => {
            Some(ip)
        }
        _ => Some(address),
    }
}
