//! The store as a Prometheus series source: Istio's request metrics as Prometheus would have
//! scraped them from the proxies — `istio_requests_total` and the `_bucket`/`_sum`/`_count`
//! series of the three histograms, cumulative counters (the sum of the buckets since the oldest
//! one kept) sampled at every step's end, plus a sample at the present holding the step in
//! progress. A series has samples from its first request on.
//!
//! Counters are built forwards from the value at the start of the range, so they never
//! decrease (a decrease would read as a counter reset to `rate`).

use meshtrace_mesh::telemetry::{
    ISTIO_BUCKETS, ISTIO_LABELS, ISTIO_REQUEST_BYTES, ISTIO_REQUEST_DURATION, ISTIO_REQUESTS_TOTAL,
    ISTIO_RESPONSE_BYTES,
};
use meshtrace_metrics::{
    Labels, METRIC_NAME, Matcher, MetricMetadata, MetricType, Sample, Series, SeriesSource,
    SourceError,
};

use super::cell::{BUCKETS, Hist};
use super::read::{HistData, ReadError};
use super::series::Family;
use crate::Store;

/// Label sets one selection may read.
const MAX_SERIES: usize = 50_000;
/// Samples one selection may return.
const MAX_SAMPLES: usize = 5_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Histogram {
    Duration,
    RequestBytes,
    ResponseBytes,
}

impl Histogram {
    const ALL: [Histogram; 3] = [
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

    fn index(self) -> usize {
        match self {
            Histogram::Duration => 0,
            Histogram::RequestBytes => 1,
            Histogram::ResponseBytes => 2,
        }
    }
}

/// One metric name of the Istio families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Requests,
    Bucket(Histogram),
    Sum(Histogram),
    Count(Histogram),
}

fn members() -> Vec<(String, Member)> {
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

impl SeriesSource for Store {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, SourceError> {
        let Some(derive) = self.derivation() else {
            return Ok(Vec::new());
        };
        let start = u64::try_from(start_ms).unwrap_or(0);
        let Ok(end) = u64::try_from(end_ms) else {
            return Ok(Vec::new());
        };
        if end < start {
            return Ok(Vec::new());
        }
        let wanted: Vec<(String, Member)> = members()
            .into_iter()
            .filter(|(name, _)| {
                matchers
                    .iter()
                    .filter(|m| m.name == METRIC_NAME)
                    .all(|m| m.matches(name))
            })
            .collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let label_matchers: Vec<(Option<usize>, &Matcher)> = matchers
            .iter()
            .filter(|m| m.name != METRIC_NAME && m.name != "le")
            .map(|m| (ISTIO_LABELS.iter().position(|l| *l == m.name), m))
            .collect();
        let step = derive.step_ms();
        let now = meshtrace_model::time::now_micros() / 1000;
        // Nothing exists before the earliest bucket kept: no sample times before it.
        let Some(earliest) = derive.earliest_bucket(Family::Istio) else {
            return Ok(Vec::new());
        };
        let start = start.max(earliest.saturating_sub(step));
        if end < start {
            return Ok(Vec::new());
        }
        let points = end
            .saturating_sub(start)
            .checked_div(step)
            .unwrap_or(u64::MAX)
            .saturating_add(2);
        if points > MAX_SAMPLES as u64 {
            return Err(SourceError::TooLarge(format!(
                "the selection spans {points} steps of {step} ms (at most {MAX_SAMPLES}): narrow the time range"
            )));
        }
        let times = sample_times(start, end, step, now);
        if times.is_empty() {
            return Ok(Vec::new());
        }
        let le_matchers: Vec<&Matcher> = matchers.iter().filter(|m| m.name == "le").collect();
        let columns = columns(&wanted, &le_matchers);
        // The histograms the columns read; the duration always, as whether a series has
        // started (had a request) is its count.
        let mut which = [true, false, false];
        for column in &columns {
            if let Some(slot) = which.get_mut(column.value.histogram().index()) {
                *slot = true;
            }
        }
        let data = derive
            .read_istio(
                self.kv(),
                self.damage(),
                &label_matchers,
                start,
                which,
                MAX_SERIES,
            )
            .map_err(|e| match e {
                ReadError::TooLarge(_) => SourceError::TooLarge(e.to_string()),
                ReadError::Store(e) => SourceError::Failed(e.to_string()),
            })?;
        let per_series = wanted
            .iter()
            .map(|(_, m)| match m {
                Member::Bucket(_) => ISTIO_BUCKETS.len().saturating_add(1),
                _ => 1,
            })
            .sum::<usize>();
        let samples = data
            .len()
            .saturating_mul(per_series)
            .saturating_mul(times.len());
        if samples > MAX_SAMPLES {
            return Err(SourceError::TooLarge(format!(
                "the selection would return {samples} samples (at most {MAX_SAMPLES}): narrow the time range or the label matchers"
            )));
        }
        if columns.is_empty() {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(data.len().saturating_mul(columns.len()));
        for series in data {
            let [Some(duration), ..] = &series.hists else {
                continue;
            };
            // The series has samples from the first time it had a request on, and one at the
            // time before (its counters were 0 then, as a proxy's would read before its first
            // request, so a rate sees that request). Counters never decrease, so every later
            // time has one too.
            let mut first = None;
            walk(duration, &times, |i, running| {
                if first.is_none() && running.count() > 0 {
                    first = Some(i);
                }
            });
            let Some(first) = first else {
                continue;
            };
            let from = first.saturating_sub(1);
            let mut samples: Vec<Vec<Sample>> = columns
                .iter()
                .map(|_| Vec::with_capacity(times.len().saturating_sub(from)))
                .collect();
            for (h, data) in Histogram::ALL.iter().zip(&series.hists) {
                let Some(data) = data else { continue };
                if !columns.iter().any(|c| c.value.histogram() == *h) {
                    continue;
                }
                let buckets = columns
                    .iter()
                    .any(|c| matches!(c.value, Value::Bucket(b, _) if b == *h));
                walk(data, &times, |i, running| {
                    let Some((at, _)) = times.get(i).filter(|_| i >= from) else {
                        return;
                    };
                    push_values(&mut samples, &columns, *h, *at, running, buckets);
                });
            }
            let base: Vec<(String, String)> = ISTIO_LABELS
                .iter()
                .zip(series.labels.iter())
                .map(|(name, value)| (name.to_string(), value.to_string()))
                .collect();
            for (column, samples) in columns.iter().zip(samples) {
                let mut pairs = Vec::with_capacity(base.len().saturating_add(2));
                pairs.extend(base.iter().cloned());
                pairs.push((METRIC_NAME.to_string(), column.name.clone()));
                if let Some(le) = &column.le {
                    pairs.push(("le".to_string(), le.clone()));
                }
                out.push(Series {
                    labels: Labels::new(pairs),
                    samples,
                });
            }
        }
        Ok(out)
    }

    fn metadata(&self) -> Vec<MetricMetadata> {
        if self.derivation().is_none() {
            return Vec::new();
        }
        let family = |name: &str, kind, help: &str, unit: &str| MetricMetadata {
            name: name.to_string(),
            kind,
            help: help.to_string(),
            unit: unit.to_string(),
        };
        vec![
            family(
                ISTIO_REQUESTS_TOTAL,
                MetricType::Counter,
                "Requests handled by an Istio proxy (derived from its spans)",
                "",
            ),
            family(
                ISTIO_REQUEST_DURATION,
                MetricType::Histogram,
                "Duration of requests, in milliseconds (derived from spans)",
                "milliseconds",
            ),
            family(
                ISTIO_REQUEST_BYTES,
                MetricType::Histogram,
                "HTTP request body sizes, in bytes (derived from spans)",
                "bytes",
            ),
            family(
                ISTIO_RESPONSE_BYTES,
                MetricType::Histogram,
                "HTTP response body sizes, in bytes (derived from spans)",
                "bytes",
            ),
        ]
    }
}

/// The sample times in `[start, end]` (ms): every step's end up to the present, each with the
/// last bucket end it includes; and the present itself (holding the step in progress).
fn sample_times(start: u64, end: u64, step: u64, now: u64) -> Vec<(i64, u64)> {
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
struct Column {
    name: String,
    le: Option<String>,
    value: Value,
}

/// The series each label set returns for the members asked, in the order they are returned:
/// per member, and for a `_bucket` member per bound that the `le` matchers keep.
fn columns(wanted: &[(String, Member)], le_matchers: &[&Matcher]) -> Vec<Column> {
    let keeps = |le: &str| le_matchers.iter().all(|m| m.matches(le));
    let mut out = Vec::new();
    for (name, member) in wanted {
        let single = match member {
            Member::Requests => Some(Value::Requests),
            Member::Sum(h) => Some(Value::Sum(*h)),
            Member::Count(h) => Some(Value::Count(*h)),
            Member::Bucket(_) => None,
        };
        if let Some(value) = single {
            if keeps("") {
                out.push(Column {
                    name: name.clone(),
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
                    le: Some(bound),
                    value: Value::Bucket(*h, at),
                });
            }
        }
    }
    out
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

/// Appends, at `timestamp_ms`, the value of every column of histogram `h` given its
/// counters `running` (`buckets`: whether a column asks its cumulative buckets).
fn push_values(
    samples: &mut [Vec<Sample>],
    columns: &[Column],
    h: Histogram,
    timestamp_ms: i64,
    running: &Hist,
    buckets: bool,
) {
    let mut cumulative = [0u64; BUCKETS];
    if buckets {
        let mut n = 0u64;
        for (sum, count) in cumulative.iter_mut().zip(&running.buckets) {
            n = n.saturating_add(*count);
            *sum = n;
        }
    }
    for (out, column) in samples.iter_mut().zip(columns) {
        if column.value.histogram() != h {
            continue;
        }
        let value = match column.value {
            Value::Requests | Value::Count(_) => running.count() as f64,
            Value::Sum(_) => running.sum,
            Value::Bucket(_, at) => cumulative.get(at).copied().unwrap_or(0) as f64,
        };
        out.push(Sample {
            timestamp_ms,
            value,
        });
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
