//! What the store's Prometheus source returns for each label set it read: the metric names of
//! the Istio families (`columns`: one per name asked, and per `le` bound for `_bucket`), their
//! label sets built from the registry's shared strings, the sample times of a range, and the
//! values of every column at those times, walked once from the cells (see [`visit_series`]).

use std::sync::{Arc, OnceLock};

use meshtrace_mesh::telemetry::{
    ISTIO_BUCKETS, ISTIO_LABELS, ISTIO_REQUEST_BYTES, ISTIO_REQUEST_DURATION, ISTIO_REQUESTS_TOTAL,
    ISTIO_RESPONSE_BYTES,
};
use meshtrace_metrics::{Labels, METRIC_NAME, Matcher, Sample};

use super::super::cell::{BUCKETS, Hist};
use super::super::read::{HistData, IstioData};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Histogram {
    Duration,
    RequestBytes,
    ResponseBytes,
}

impl Histogram {
    pub(super) const ALL: [Histogram; 3] = [
        Histogram::Duration,
        Histogram::RequestBytes,
        Histogram::ResponseBytes,
    ];

    fn name(self) -> &'static str {
        match self {
            Histogram::Duration => ISTIO_REQUEST_DURATION,
            Histogram::RequestBytes => ISTIO_REQUEST_BYTES,
            Histogram::ResponseBytes => ISTIO_RESPONSE_BYTES,
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            Histogram::Duration => 0,
            Histogram::RequestBytes => 1,
            Histogram::ResponseBytes => 2,
        }
    }
}

/// One metric name of the Istio families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Member {
    Requests,
    Bucket(Histogram),
    Sum(Histogram),
    Count(Histogram),
}

impl Member {
    /// The histogram the member is read from (`istio_requests_total`: the duration's count).
    fn histogram(self) -> Histogram {
        match self {
            Member::Requests => Histogram::Duration,
            Member::Bucket(h) | Member::Sum(h) | Member::Count(h) => h,
        }
    }
}

/// Every series a label set returns for histogram `h` (every name read from it, every
/// bound): what a reused reduction holds. Built once per histogram.
pub(super) fn all_columns(h: Histogram) -> &'static [Column] {
    static ALL: OnceLock<[Vec<Column>; 3]> = OnceLock::new();
    let all = ALL.get_or_init(|| {
        Histogram::ALL.map(|h| {
            let wanted: Vec<(String, Member)> = members()
                .into_iter()
                .filter(|(_, m)| m.histogram() == h)
                .collect();
            columns(&wanted, &[])
        })
    });
    all.get(h.index()).map_or(&[], Vec::as_slice)
}

/// The histograms `columns` read, by index; the duration always, as whether a series has
/// started (had a request) is its count.
pub(super) fn histograms_read(columns: &[Column]) -> [bool; 3] {
    let mut which = [true, false, false];
    for column in columns {
        if let Some(slot) = which.get_mut(column.histogram().index()) {
            *slot = true;
        }
    }
    which
}

pub(super) fn members() -> Vec<(String, Member)> {
    let mut all = vec![(ISTIO_REQUESTS_TOTAL.to_string(), Member::Requests)];
    for h in Histogram::ALL {
        all.push((format!("{}_bucket", h.name()), Member::Bucket(h)));
        all.push((format!("{}_sum", h.name()), Member::Sum(h)));
        all.push((format!("{}_count", h.name()), Member::Count(h)));
    }
    all
}

/// A bucket bound as Envoy writes it in `le` (`0.5`, `1`, `3600000`).
fn le(bound: f64) -> String {
    format!("{bound}")
}

/// The sample times in `[start, end]` (ms): every step's end up to the present, each with the
/// last bucket end it includes; and the present itself (holding the step in progress).
pub(super) fn sample_times(start: u64, end: u64, step: u64, now: u64) -> Vec<(i64, u64)> {
    let step = step.max(1);
    let mut times = Vec::new();
    let first = start.div_ceil(step).saturating_mul(step);
    let mut t = first;
    while t <= end && t <= now {
        if let Ok(at) = i64::try_from(t) {
            times.push((at, t));
        }
        match t.checked_add(step) {
            Some(next) => t = next,
            None => break,
        }
    }
    if now >= start && now <= end && now.checked_rem(step) != Some(0) {
        let open = now
            .checked_div(step)
            .unwrap_or(0)
            .saturating_add(1)
            .saturating_mul(step);
        if let Ok(at) = i64::try_from(now) {
            times.push((at, open));
        }
    }
    times
}

/// What one returned series holds at each sample time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Requests,
    Sum(Histogram),
    Count(Histogram),
    /// The cumulative count of the buckets up to this one (its index in `ISTIO_BUCKETS`, or
    /// past them for `+Inf`).
    Bucket(Histogram, usize),
}

impl Value {
    /// The histogram the value is read from (`istio_requests_total`: the duration's count).
    fn histogram(self) -> Histogram {
        match self {
            Value::Requests => Histogram::Duration,
            Value::Sum(h) | Value::Count(h) | Value::Bucket(h, _) => h,
        }
    }
}

/// One series returned for each label set: its metric name, `le` and value.
pub(super) struct Column {
    name: Arc<str>,
    le: Option<Arc<str>>,
    value: Value,
}

impl Column {
    pub(super) fn histogram(&self) -> Histogram {
        self.value.histogram()
    }

    /// Where `columns` has the series of the same value (name and bound) as this one.
    pub(super) fn position_in(&self, columns: &[Column]) -> Option<usize> {
        columns.iter().position(|c| c.value == self.value)
    }
}

/// The series each label set returns for the members asked, in the order they are returned:
/// per member, and for a `_bucket` member per bound that the `le` matchers keep.
pub(super) fn columns(wanted: &[(String, Member)], le_matchers: &[&Matcher]) -> Vec<Column> {
    let keeps = |le: &str| le_matchers.iter().all(|m| m.matches(le));
    let mut out = Vec::new();
    for (name, member) in wanted {
        let name: Arc<str> = Arc::from(name.as_str());
        let single = match member {
            Member::Requests => Some(Value::Requests),
            Member::Sum(h) => Some(Value::Sum(*h)),
            Member::Count(h) => Some(Value::Count(*h)),
            Member::Bucket(_) => None,
        };
        if let Some(value) = single {
            if keeps("") {
                out.push(Column {
                    name,
                    le: None,
                    value,
                });
            }
            continue;
        }
        let Member::Bucket(h) = member else {
            continue;
        };
        for at in 0..=ISTIO_BUCKETS.len() {
            let bound = ISTIO_BUCKETS.get(at).map_or("+Inf".to_string(), |b| le(*b));
            if keeps(&bound) {
                out.push(Column {
                    name: name.clone(),
                    le: Some(Arc::from(bound)),
                    value: Value::Bucket(*h, at),
                });
            }
        }
    }
    out
}

/// Builds the label sets of the returned series from the registry's shared values: the label
/// names once per selection, in the order a label set keeps them, so no string is copied and
/// no pair sorted per series.
pub(super) struct LabelMaker {
    /// Every name a series may have, sorted, with where its value comes from.
    order: Vec<(Arc<str>, Slot)>,
}

/// Where a label's value comes from.
#[derive(Clone, Copy)]
enum Slot {
    /// The label set's value at this position of [`ISTIO_LABELS`].
    Istio(usize),
    MetricName,
    Le,
}

impl LabelMaker {
    pub(super) fn new() -> LabelMaker {
        let mut order: Vec<(Arc<str>, Slot)> = ISTIO_LABELS
            .iter()
            .enumerate()
            .map(|(at, name)| (Arc::from(*name), Slot::Istio(at)))
            .collect();
        order.push((Arc::from(METRIC_NAME), Slot::MetricName));
        order.push((Arc::from("le"), Slot::Le));
        order.sort_by(|a, b| a.0.cmp(&b.0));
        LabelMaker { order }
    }

    /// The labels of `column` of the label set `values` (in [`ISTIO_LABELS`] order).
    pub(super) fn labels(&self, values: &[Arc<str>], column: &Column) -> Labels {
        Labels::from_shared(self.order.iter().filter_map(|(name, slot)| {
            let value = match slot {
                Slot::Istio(at) => values.get(*at)?,
                Slot::MetricName => &column.name,
                Slot::Le => column.le.as_ref()?,
            };
            Some((name.clone(), value.clone()))
        }))
    }
}

/// Visits the samples of every column of `series` at `times`, from the series' first: the
/// time before its first request on (its counters were 0 then, as a proxy's would read before
/// its first request, so a rate sees that request; counters never decrease, so every later
/// time has one too). Calls `out(column index, sample)`, in time order per column, and
/// returns the index of the first time visited, or None when the series had no request up to
/// the last time (it then returns no series).
pub(super) fn visit_series(
    series: &IstioData,
    times: &[(i64, u64)],
    columns: &[Column],
    mut out: impl FnMut(usize, Sample),
) -> Option<usize> {
    let [Some(duration), ..] = &series.hists else {
        return None;
    };
    let mut first = None;
    walk(duration, times, |i, running| {
        if first.is_none() && running.count() > 0 {
            first = Some(i);
        }
    });
    let from = first?.saturating_sub(1);
    for (h, data) in Histogram::ALL.iter().zip(&series.hists) {
        let Some(data) = data else { continue };
        if !columns.iter().any(|c| c.value.histogram() == *h) {
            continue;
        }
        let buckets = columns
            .iter()
            .any(|c| matches!(c.value, Value::Bucket(b, _) if b == *h));
        walk(data, times, |i, running| {
            let Some((at, _)) = times.get(i).filter(|_| i >= from) else {
                return;
            };
            values(columns, *h, *at, running, buckets, &mut out);
        });
    }
    Some(from)
}

/// Visits the counters of histogram `data` at every sample time (by index in `times`): its
/// total less every cell read, then the cells added up to each time's last bucket. The same
/// additions in the same order at every read, so the values are the same at every read.
fn walk(data: &HistData, times: &[(i64, u64)], mut visit: impl FnMut(usize, &Hist)) {
    let mut running = data.total.clone();
    for (_, cell) in &data.cells {
        running.subtract(cell);
    }
    let mut cells = data.cells.iter().peekable();
    for (i, (_, upto)) in times.iter().enumerate() {
        while let Some((bucket, cell)) = cells.peek() {
            if *bucket > *upto {
                break;
            }
            running.add(cell);
            cells.next();
        }
        visit(i, &running);
    }
}

/// Hands `out` the sample at `timestamp_ms` of every column of histogram `h`, given its
/// counters `running` (`buckets`: whether a column asks its cumulative buckets).
fn values(
    columns: &[Column],
    h: Histogram,
    timestamp_ms: i64,
    running: &Hist,
    buckets: bool,
    out: &mut impl FnMut(usize, Sample),
) {
    let mut cumulative = [0u64; BUCKETS];
    if buckets {
        let mut n = 0u64;
        for (sum, count) in cumulative.iter_mut().zip(&running.buckets) {
            n = n.saturating_add(*count);
            *sum = n;
        }
    }
    for (at, column) in columns.iter().enumerate() {
        if column.value.histogram() != h {
            continue;
        }
        let value = match column.value {
            Value::Requests | Value::Count(_) => running.count() as f64,
            Value::Sum(_) => running.sum,
            Value::Bucket(_, at) => cumulative.get(at).copied().unwrap_or(0) as f64,
        };
        out(
            at,
            Sample {
                timestamp_ms,
                value,
            },
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_at_step_ends_and_now() {
        assert_eq!(
            sample_times(0, 100, 15, 50),
            vec![(0, 0), (15, 15), (30, 30), (45, 45), (50, 60)]
        );
        assert_eq!(sample_times(16, 40, 15, 1000), vec![(30, 30)]);
        assert_eq!(le(0.5), "0.5");
        assert_eq!(le(3_600_000.0), "3600000");
    }
}
