//! The store as a Prometheus series source: Istio's request metrics as Prometheus would have
//! scraped them from the proxies — `istio_requests_total` and the `_bucket`/`_sum`/`_count`
//! series of the three histograms, cumulative counters (the sum of the buckets since the oldest
//! one kept) sampled at every step's end, plus a sample at the present holding the step in
//! progress. A series has samples from its first request on.
//!
//! Counters are built forwards from the value at the start of the range, so they never
//! decrease (a decrease would read as a counter reset to `rate`). For `rate` and its kin over
//! one window, the same values are reduced as they are walked, without building the samples
//! ([`SeriesSource::select_windows`]).

mod columns;

use meshtrace_mesh::telemetry::ISTIO_LABELS;
use meshtrace_metrics::{
    METRIC_NAME, Matcher, MetricMetadata, MetricType, Sample, SelectLimits, Series, SeriesSource,
    SourceError, Window, WindowSamples,
};

use super::read::{IstioData, ReadError};
use super::series::Family;
use crate::Store;
use columns::{Column, LabelMaker, Member, members, sample_times, visit_series};

/// Label sets one selection may read.
const MAX_SERIES: usize = 50_000;
/// Samples one selection may return.
const MAX_SAMPLES: usize = 5_000_000;

/// A selection read: the sample times, the series returned per label set, the label sets.
struct Selection {
    times: Vec<(i64, u64)>,
    columns: Vec<Column>,
    data: Vec<IstioData>,
    labels: LabelMaker,
}

impl Selection {
    /// How many series (or windows) the selection returns at most.
    fn returned(&self) -> usize {
        self.data.len().saturating_mul(self.columns.len())
    }
}

impl Store {
    /// Reads what a selection of `[start_ms, end_ms]` needs, within the source's own bounds;
    /// None when it selects nothing.
    fn prepare(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<Selection>, SourceError> {
        let Some(derive) = self.derivation() else {
            return Ok(None);
        };
        let start = u64::try_from(start_ms).unwrap_or(0);
        let Ok(end) = u64::try_from(end_ms) else {
            return Ok(None);
        };
        if end < start {
            return Ok(None);
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
            return Ok(None);
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
            return Ok(None);
        };
        let start = start.max(earliest.saturating_sub(step));
        if end < start {
            return Ok(None);
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
            return Ok(None);
        }
        let le_matchers: Vec<&Matcher> = matchers.iter().filter(|m| m.name == "le").collect();
        let columns = columns::columns(&wanted, &le_matchers);
        // The histograms the columns read; the duration always, as whether a series has
        // started (had a request) is its count.
        let mut which = [true, false, false];
        for column in &columns {
            if let Some(slot) = which.get_mut(column.histogram().index()) {
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
                Member::Bucket(_) => meshtrace_mesh::telemetry::ISTIO_BUCKETS
                    .len()
                    .saturating_add(1),
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
            return Ok(None);
        }
        Ok(Some(Selection {
            times,
            columns,
            data,
            labels: LabelMaker::new(),
        }))
    }
}

impl SeriesSource for Store {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, SourceError> {
        let Some(selection) = self.prepare(matchers, start_ms, end_ms)? else {
            return Ok(Vec::new());
        };
        let (times, columns, labels) = (&selection.times, &selection.columns, &selection.labels);
        let mut out = Vec::with_capacity(selection.returned());
        for series in &selection.data {
            let capacity = times.len();
            let mut samples: Vec<Vec<Sample>> = columns
                .iter()
                .map(|_| Vec::with_capacity(capacity))
                .collect();
            let visited = visit_series(series, times, columns, |at, sample| {
                if let Some(samples) = samples.get_mut(at) {
                    samples.push(sample);
                }
            });
            if visited.is_none() {
                continue;
            }
            for (column, samples) in columns.iter().zip(samples) {
                out.push(Series {
                    labels: labels.labels(&series.labels, column),
                    samples,
                });
            }
        }
        Ok(out)
    }

    fn select_windows(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        left_open: bool,
        limits: SelectLimits,
    ) -> Result<Vec<Window>, SourceError> {
        let Some(selection) = self.prepare(matchers, start_ms, end_ms)? else {
            return Ok(Vec::new());
        };
        let (times, columns, labels) = (&selection.times, &selection.columns, &selection.labels);
        let mut out = Vec::with_capacity(selection.returned());
        let mut selected_total = 0usize;
        for series in &selection.data {
            let mut windows: Vec<WindowSamples> =
                columns.iter().map(|_| WindowSamples::default()).collect();
            let visited = visit_series(series, times, columns, |at, sample| {
                // The selection's samples are in `[start_ms, end_ms]`; the window may leave
                // out its start.
                if (!left_open || sample.timestamp_ms > start_ms)
                    && let Some(window) = windows.get_mut(at)
                {
                    window.push(sample);
                }
            });
            let Some(from) = visited else { continue };
            // What `select` would have returned for each column: every time from the first.
            let selected = times.len().saturating_sub(from);
            for (column, samples) in columns.iter().zip(windows) {
                selected_total = selected_total.saturating_add(selected);
                out.push(Window {
                    labels: labels.labels(&series.labels, column),
                    selected,
                    samples,
                });
            }
        }
        if out.len() > limits.max_series || selected_total > limits.max_samples {
            return Err(limits.exceeded(out.len(), selected_total));
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
        use meshtrace_mesh::telemetry::{
            ISTIO_REQUEST_BYTES, ISTIO_REQUEST_DURATION, ISTIO_REQUESTS_TOTAL, ISTIO_RESPONSE_BYTES,
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
