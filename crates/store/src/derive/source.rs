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

use super::cell::{BUCKETS, Cell, Hist, IstioCell};
use super::read::ReadError;
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

    fn of(self, cell: &IstioCell) -> &Hist {
        match self {
            Histogram::Duration => &cell.duration,
            Histogram::RequestBytes => &cell.request_bytes,
            Histogram::ResponseBytes => &cell.response_bytes,
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
        let data = derive
            .read(
                self.kv(),
                self.damage(),
                Family::Istio,
                &label_matchers,
                (start, u64::MAX),
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
        let le_matchers: Vec<&Matcher> = matchers.iter().filter(|m| m.name == "le").collect();
        let columns = columns(&wanted, &le_matchers);
        if columns.is_empty() {
            return Ok(Vec::new());
        }
        let needs_buckets = Histogram::ALL.map(|h| {
            columns
                .iter()
                .any(|c| matches!(c.value, Value::Bucket(b, _) if b == h))
        });
        let mut out = Vec::new();
        // One row of values per sample time, reused: the row at the last time before the
        // series' first request, and the row being built.
        let mut zero_row = vec![0.0; columns.len()];
        let mut row = vec![0.0; columns.len()];
        for series in data {
            let Some(mut running) = series.total else {
                continue;
            };
            // The counters at the start of the range: the total less every later bucket.
            for cell in series.cells.values() {
                if let Cell::Istio(cell) = cell {
                    running.subtract(cell);
                }
            }
            let mut samples: Vec<Vec<Sample>> = columns
                .iter()
                .map(|_| Vec::with_capacity(times.len()))
                .collect();
            // The last sample time before the series' first request: its counters were 0 then,
            // as a proxy's would read before its first request, so a rate sees that request.
            let mut zero: Option<i64> = None;
            let mut started = false;
            let mut cells = series.cells.iter().peekable();
            for (at, upto) in &times {
                while let Some((bucket, cell)) = cells.peek() {
                    if **bucket > *upto {
                        break;
                    }
                    if let Cell::Istio(cell) = cell {
                        running.add(cell);
                    }
                    cells.next();
                }
                if running.requests() > 0 {
                    if let Some(zero) = zero.take() {
                        push_row(&mut samples, zero, &zero_row);
                    }
                    fill_row(&mut row, &columns, &running, needs_buckets);
                    push_row(&mut samples, *at, &row);
                    started = true;
                } else if !started {
                    fill_row(&mut zero_row, &columns, &running, needs_buckets);
                    zero = Some(*at);
                }
            }
            if !started {
                continue;
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

/// Every column's value for the counters `cell`.
fn fill_row(row: &mut [f64], columns: &[Column], cell: &IstioCell, buckets: [bool; 3]) {
    // Cumulative bucket counts of each histogram a column asks, summed once for the row.
    let mut cumulative = [[0u64; BUCKETS]; 3];
    for ((h, wanted), sums) in Histogram::ALL.iter().zip(buckets).zip(&mut cumulative) {
        if wanted {
            let mut n = 0u64;
            for (sum, count) in sums.iter_mut().zip(&h.of(cell).buckets) {
                n = n.saturating_add(*count);
                *sum = n;
            }
        }
    }
    for (slot, column) in row.iter_mut().zip(columns) {
        *slot = match column.value {
            Value::Requests => cell.requests() as f64,
            Value::Sum(h) => h.of(cell).sum,
            Value::Count(h) => h.of(cell).count() as f64,
            Value::Bucket(h, at) => cumulative
                .get(h.index())
                .and_then(|sums| sums.get(at))
                .copied()
                .unwrap_or(0) as f64,
        };
    }
}

fn push_row(samples: &mut [Vec<Sample>], timestamp_ms: i64, row: &[f64]) {
    for (column, value) in samples.iter_mut().zip(row) {
        column.push(Sample {
            timestamp_ms,
            value: *value,
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
