//! The store's own counters, gathered where the work happens and shown on `/metrics`
//! (`metrics.rs` encodes them): spans and bytes in by protocol, batches and spans refused by
//! reason, batch sizes, write latency, retention passes and query latency by route.
//!
//! The ingest path only touches atomics (fixed arrays indexed by closed enums, histograms of
//! atomic buckets): no lock beyond what ingest already takes. Every label value comes from a
//! closed set or from the router's own route templates, never from a request's bytes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use crate::Store;

/// How spans reached the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    OtlpGrpc,
    OtlpHttp,
    Zipkin,
}

impl Protocol {
    pub const ALL: [Protocol; 3] = [Protocol::OtlpGrpc, Protocol::OtlpHttp, Protocol::Zipkin];

    pub fn label(self) -> &'static str {
        match self {
            Protocol::OtlpGrpc => "otlp_grpc",
            Protocol::OtlpHttp => "otlp_http",
            Protocol::Zipkin => "zipkin",
        }
    }
}

/// Why a whole batch was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchRefusal {
    /// Not valid protobuf / JSON of the protocol (or not gzip when it says so).
    Undecodable,
    /// Past `--max-body`, as sent or inflated.
    TooLarge,
    /// A Content-Type or Content-Encoding the protocol does not take.
    UnsupportedMediaType,
    /// The body could not be read (the client went away, timed out).
    Unreadable,
    /// The engine did not take the write (the client may retry).
    StorageFailure,
}

impl BatchRefusal {
    pub const ALL: [BatchRefusal; 5] = [
        BatchRefusal::Undecodable,
        BatchRefusal::TooLarge,
        BatchRefusal::UnsupportedMediaType,
        BatchRefusal::Unreadable,
        BatchRefusal::StorageFailure,
    ];

    pub fn label(self) -> &'static str {
        match self {
            BatchRefusal::Undecodable => "undecodable",
            BatchRefusal::TooLarge => "too_large",
            BatchRefusal::UnsupportedMediaType => "unsupported_media_type",
            BatchRefusal::Unreadable => "unreadable",
            BatchRefusal::StorageFailure => "storage_failure",
        }
    }
}

/// Why a span of a decoded batch was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanRefusal {
    /// The span itself cannot be stored (no or invalid IDs, times): the rest of its batch is.
    InvalidSpan,
    /// Its batch's write failed.
    StorageFailure,
}

impl SpanRefusal {
    pub const ALL: [SpanRefusal; 2] = [SpanRefusal::InvalidSpan, SpanRefusal::StorageFailure];

    pub fn label(self) -> &'static str {
        match self {
            SpanRefusal::InvalidSpan => "invalid_span",
            SpanRefusal::StorageFailure => "storage_failure",
        }
    }
}

/// Bounds of the batch-size histogram (spans).
pub const BATCH_BOUNDS: [f64; 12] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];
/// Bounds of the latency histograms (seconds): 100 µs to 10 s.
pub const SECONDS_BOUNDS: [f64; 15] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

/// A histogram of fixed bounds whose buckets are atomics: observing takes no lock.
#[derive(Debug)]
pub struct AtomicHistogram {
    bounds: &'static [f64],
    /// Per bucket, not cumulative; the last is above the last bound.
    counts: Box<[AtomicU64]>,
    /// The sum of the values, as f64 bits.
    sum: AtomicU64,
}

/// What a histogram held at one moment: sum, count, and (bound, count) per bucket, the last
/// bound `+Inf`; counts not cumulative (the encoder accumulates them).
#[derive(Debug, Clone)]
pub struct HistogramSnapshot {
    pub sum: f64,
    pub count: u64,
    pub buckets: Vec<(f64, u64)>,
}

impl AtomicHistogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        AtomicHistogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    pub fn observe(&self, value: f64) {
        // Prometheus buckets are `le`: a value on a bound counts in that bound's bucket.
        let at = self
            .bounds
            .iter()
            .position(|bound| value <= *bound)
            .unwrap_or(self.bounds.len());
        if let Some(count) = self.counts.get(at) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = Vec::with_capacity(self.counts.len());
        let mut count = 0u64;
        for (i, n) in self.counts.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            count = count.saturating_add(n);
            buckets.push((self.bounds.get(i).copied().unwrap_or(f64::INFINITY), n));
        }
        HistogramSnapshot {
            sum: f64::from_bits(self.sum.load(Ordering::Relaxed)),
            count,
            buckets,
        }
    }
}

/// Counters of one protocol.
#[derive(Debug, Default)]
struct ProtocolCounters {
    received: AtomicU64,
    stored: AtomicU64,
    bytes: AtomicU64,
    rejected_spans: [AtomicU64; SpanRefusal::ALL.len()],
    rejected_batches: [AtomicU64; BatchRefusal::ALL.len()],
}

type RouteLabels = [(&'static str, String); 1];

/// Everything the store counts about itself.
#[derive(Debug)]
pub struct Stats {
    protocols: [ProtocolCounters; Protocol::ALL.len()],
    batch_spans: [AtomicHistogram; Protocol::ALL.len()],
    write_seconds: AtomicHistogram,
    retention_passes: AtomicU64,
    retention_failures: AtomicU64,
    retention_removed: AtomicU64,
    /// The last pass's duration, as f64 seconds bits.
    retention_last_seconds: AtomicU64,
    /// Per route template: the query path may take the family's lock (ingest never does).
    query_seconds: Family<RouteLabels, Histogram>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            protocols: Default::default(),
            batch_spans: std::array::from_fn(|_| AtomicHistogram::new(&BATCH_BOUNDS)),
            write_seconds: AtomicHistogram::new(&SECONDS_BOUNDS),
            retention_passes: AtomicU64::new(0),
            retention_failures: AtomicU64::new(0),
            retention_removed: AtomicU64::new(0),
            retention_last_seconds: AtomicU64::new(0f64.to_bits()),
            query_seconds: Family::new_with_constructor(|| {
                Histogram::new(SECONDS_BOUNDS.iter().copied())
            }),
        }
    }
}

fn add(counter: Option<&AtomicU64>, n: u64) {
    if let Some(counter) = counter {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn protocol_index(protocol: Protocol) -> usize {
    Protocol::ALL
        .iter()
        .position(|p| *p == protocol)
        .unwrap_or_default()
}

/// The counts of one protocol, read for a scrape.
#[derive(Debug, Clone)]
pub struct ProtocolSnapshot {
    pub protocol: Protocol,
    pub received: u64,
    pub stored: u64,
    pub bytes: u64,
    pub rejected_spans: Vec<(SpanRefusal, u64)>,
    pub rejected_batches: Vec<(BatchRefusal, u64)>,
    pub batch_spans: HistogramSnapshot,
}

/// The retention passes, read for a scrape.
#[derive(Debug, Clone, Copy)]
pub struct RetentionSnapshot {
    pub passes: u64,
    pub failures: u64,
    pub removed: u64,
    pub last_seconds: f64,
}

impl Stats {
    fn counters(&self, protocol: Protocol) -> Option<&ProtocolCounters> {
        self.protocols.get(protocol_index(protocol))
    }

    /// A body of `bytes` bytes was read (after inflating it).
    pub fn body(&self, protocol: Protocol, bytes: usize) {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        add(self.counters(protocol).map(|c| &c.bytes), bytes);
    }

    /// A whole batch was refused before any of its spans was looked at (or its write failed).
    pub fn batch_refused(&self, protocol: Protocol, reason: BatchRefusal) {
        let at = BatchRefusal::ALL.iter().position(|r| *r == reason);
        let counter = self
            .counters(protocol)
            .zip(at)
            .and_then(|(c, at)| c.rejected_batches.get(at));
        add(counter, 1);
    }

    /// A decoded batch: `received` spans of which `invalid` could not be stored.
    pub fn batch_decoded(&self, protocol: Protocol, received: usize, invalid: usize) {
        let Some(counters) = self.counters(protocol) else {
            return;
        };
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        add(Some(&counters.received), n(received));
        self.spans_refused(counters, SpanRefusal::InvalidSpan, n(invalid));
        if let Some(hist) = self.batch_spans.get(protocol_index(protocol)) {
            hist.observe(received as f64);
        }
    }

    /// The outcome of a decoded batch's write: `spans` stored, or refused with the batch.
    pub fn batch_written(&self, protocol: Protocol, spans: usize, stored: bool) {
        let Some(counters) = self.counters(protocol) else {
            return;
        };
        let spans = u64::try_from(spans).unwrap_or(u64::MAX);
        if stored {
            add(Some(&counters.stored), spans);
        } else {
            self.spans_refused(counters, SpanRefusal::StorageFailure, spans);
            self.batch_refused(protocol, BatchRefusal::StorageFailure);
        }
    }

    fn spans_refused(&self, counters: &ProtocolCounters, reason: SpanRefusal, n: u64) {
        if n == 0 {
            return;
        }
        let at = SpanRefusal::ALL.iter().position(|r| *r == reason);
        add(at.and_then(|at| counters.rejected_spans.get(at)), n);
    }

    /// One call of `Store::write`, from its start to the batch being durable (or failing).
    pub fn write_took(&self, took: Duration) {
        self.write_seconds.observe(took.as_secs_f64());
    }

    /// One retention pass.
    pub fn retention_pass(&self, took: Duration, removed: Option<usize>) {
        self.retention_passes.fetch_add(1, Ordering::Relaxed);
        match removed {
            Some(removed) => add(
                Some(&self.retention_removed),
                u64::try_from(removed).unwrap_or(u64::MAX),
            ),
            None => add(Some(&self.retention_failures), 1),
        }
        self.retention_last_seconds
            .store(took.as_secs_f64().to_bits(), Ordering::Relaxed);
    }

    pub fn query_took(&self, route: &str, took: Duration) {
        self.query_seconds
            .get_or_create(&[("route", route.to_string())])
            .observe(took.as_secs_f64());
    }

    pub fn protocols(&self) -> Vec<ProtocolSnapshot> {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Protocol::ALL
            .iter()
            .zip(&self.protocols)
            .zip(&self.batch_spans)
            .map(|((protocol, c), hist)| ProtocolSnapshot {
                protocol: *protocol,
                received: load(&c.received),
                stored: load(&c.stored),
                bytes: load(&c.bytes),
                rejected_spans: SpanRefusal::ALL
                    .iter()
                    .zip(&c.rejected_spans)
                    .map(|(r, n)| (*r, load(n)))
                    .collect(),
                rejected_batches: BatchRefusal::ALL
                    .iter()
                    .zip(&c.rejected_batches)
                    .map(|(r, n)| (*r, load(n)))
                    .collect(),
                batch_spans: hist.snapshot(),
            })
            .collect()
    }

    pub fn write_seconds(&self) -> HistogramSnapshot {
        self.write_seconds.snapshot()
    }

    pub fn retention(&self) -> RetentionSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RetentionSnapshot {
            passes: load(&self.retention_passes),
            failures: load(&self.retention_failures),
            removed: load(&self.retention_removed),
            last_seconds: f64::from_bits(load(&self.retention_last_seconds)),
        }
    }

    /// The query-latency family (registered as is: it is already a prometheus-client family).
    pub fn query_seconds(&self) -> Family<RouteLabels, Histogram> {
        self.query_seconds.clone()
    }
}

/// Times every request of the query HTTP port under its matched route's template (`unmatched`
/// when no route matched: a path never becomes a label value).
pub async fn observe_query(
    State(store): State<Arc<Store>>,
    request: Request,
    next: Next,
) -> Response {
    let route = meshtrace_listen::route_label(&request);
    let started = Instant::now();
    let response = next.run(request).await;
    store.stats().query_took(&route, started.elapsed());
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn atomic_buckets_are_le_and_sum_adds() {
        let hist = AtomicHistogram::new(&BATCH_BOUNDS);
        for v in [1.0, 1.5, 2.0, 6000.0] {
            hist.observe(v);
        }
        let snap = hist.snapshot();
        assert_eq!(snap.count, 4);
        assert_eq!(snap.sum, 6004.5);
        assert_eq!(snap.buckets[0], (1.0, 1));
        assert_eq!(snap.buckets[1], (2.0, 2));
        assert_eq!(snap.buckets[12], (f64::INFINITY, 1));
    }
}
