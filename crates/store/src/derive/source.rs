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

pub(crate) mod cache;
mod columns;

use meshtrace_mesh::telemetry::ISTIO_LABELS;
use meshtrace_metrics::{
    METRIC_NAME, Matcher, MetricMetadata, MetricType, Sample, SelectLimits, Series, SeriesSource,
    SourceError, Window, WindowSamples,
};

use super::Derivation;
use super::read::{IstioData, ReadError};
use super::series::Family;
use crate::Store;
use cache::{Entry, Key, Reduced};
use columns::{
    Column, Histogram, LabelMaker, Member, histograms_read, members, sample_times, visit_series,
};

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

/// What a selection asks, before anything is read: its sample times, the series returned per
/// label set and the label matchers.
struct Plan<'m> {
    start: u64,
    times: Vec<(i64, u64)>,
    columns: Vec<Column>,
    /// The series returned per label set before the `le` matchers (what the bound counts).
    per_series: usize,
    label_matchers: Vec<(Option<usize>, &'m Matcher)>,
}

impl Plan<'_> {
    /// The histogram every column reads, when they read one.
    fn single_histogram(&self) -> Option<Histogram> {
        let first = self.columns.first()?.histogram();
        self.columns
            .iter()
            .all(|c| c.histogram() == first)
            .then_some(first)
    }

    /// Fails when `read` label sets would return more samples than a selection may.
    fn check_samples(&self, read: usize) -> Result<(), SourceError> {
        let samples = read
            .saturating_mul(self.per_series)
            .saturating_mul(self.times.len());
        if samples > MAX_SAMPLES {
            return Err(SourceError::TooLarge(format!(
                "the selection would return {samples} samples (at most {MAX_SAMPLES}): narrow the time range or the label matchers"
            )));
        }
        Ok(())
    }
}

impl Store {
    /// Plans a selection of `[start_ms, end_ms]` within the source's own bounds; None when it
    /// selects nothing.
    fn plan<'m>(
        &self,
        derive: &Derivation,
        matchers: &'m [Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Option<Plan<'m>>, SourceError> {
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
        let per_series = wanted
            .iter()
            .map(|(_, m)| match m {
                Member::Bucket(_) => meshtrace_mesh::telemetry::ISTIO_BUCKETS
                    .len()
                    .saturating_add(1),
                _ => 1,
            })
            .sum::<usize>();
        Ok(Some(Plan {
            start,
            times,
            columns,
            per_series,
            label_matchers,
        }))
    }

    /// Reads the label sets a plan selects, with the histograms `which`.
    fn read_plan(
        &self,
        derive: &Derivation,
        plan: &Plan<'_>,
        which: [bool; 3],
    ) -> Result<Vec<IstioData>, SourceError> {
        derive
            .read_istio(
                self.kv(),
                self.damage(),
                &plan.label_matchers,
                plan.start,
                which,
                MAX_SERIES,
            )
            .map_err(|e| match e {
                ReadError::TooLarge(_) => SourceError::TooLarge(e.to_string()),
                ReadError::Store(e) => SourceError::Failed(e.to_string()),
            })
    }

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
        let Some(plan) = self.plan(derive, matchers, start_ms, end_ms)? else {
            return Ok(None);
        };
        let data = self.read_plan(derive, &plan, histograms_read(&plan.columns))?;
        plan.check_samples(data.len())?;
        if plan.columns.is_empty() {
            return Ok(None);
        }
        Ok(Some(Selection {
            times: plan.times,
            columns: plan.columns,
            data,
            labels: LabelMaker::new(),
        }))
    }

    /// The windows of a selection whose series all read histogram `h`, from the reduction of
    /// every series `h` returns for its label sets: reused while nothing changed.
    fn cached_windows(
        &self,
        derive: &Derivation,
        plan: Plan<'_>,
        h: Histogram,
        (start_ms, end_ms, left_open): (i64, i64, bool),
        limits: SelectLimits,
    ) -> Result<Vec<Window>, SourceError> {
        let label_matchers: Vec<&Matcher> = plan.label_matchers.iter().map(|(_, m)| *m).collect();
        let key = Key {
            labels: Key::labels(&label_matchers),
            histogram: h.index(),
            start_ms,
            end_ms,
            left_open,
            times: plan.times.clone(),
        };
        let all = columns::all_columns(h);
        let changes = derive.changes();
        let entry = derive.windows().get_or_compute(key, changes, || {
            let data = self.read_plan(derive, &plan, histograms_read(all))?;
            Ok(Entry {
                read: data.len(),
                series: reduce(&data, &plan.times, all, start_ms, left_open),
            })
        })?;
        plan.check_samples(entry.read)?;
        let at: Vec<Option<usize>> = plan.columns.iter().map(|c| c.position_in(all)).collect();
        let labels = LabelMaker::new();
        windows(&entry.series, &plan.columns, &at, &labels, limits)
    }
}

/// The reduced windows of every column of every label set of `data` that had a request.
fn reduce(
    data: &[IstioData],
    times: &[(i64, u64)],
    columns: &[Column],
    start_ms: i64,
    left_open: bool,
) -> Vec<Reduced> {
    let mut out = Vec::with_capacity(data.len());
    for series in data {
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
        out.push(Reduced {
            labels: series.labels.clone(),
            // What `select` would have returned for each column: every time from the first.
            selected: times.len().saturating_sub(from),
            windows,
        });
    }
    out
}

/// The windows returned for `columns` (at `at` in the reduced ones), label set by label set,
/// within `limits`.
fn windows(
    reduced: &[Reduced],
    columns: &[Column],
    at: &[Option<usize>],
    labels: &LabelMaker,
    limits: SelectLimits,
) -> Result<Vec<Window>, SourceError> {
    let mut out = Vec::with_capacity(reduced.len().saturating_mul(columns.len()));
    let mut selected_total = 0usize;
    for series in reduced {
        for (column, at) in columns.iter().zip(at) {
            let Some(samples) = at.and_then(|at| series.windows.get(at)) else {
                continue;
            };
            selected_total = selected_total.saturating_add(series.selected);
            out.push(Window {
                labels: labels.labels(&series.labels, column),
                selected: series.selected,
                samples: samples.clone(),
            });
        }
    }
    if out.len() > limits.max_series || selected_total > limits.max_samples {
        return Err(limits.exceeded(out.len(), selected_total));
    }
    Ok(out)
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
        let Some(derive) = self.derivation() else {
            return Ok(Vec::new());
        };
        let Some(plan) = self.plan(derive, matchers, start_ms, end_ms)? else {
            return Ok(Vec::new());
        };
        if let Some(h) = plan.single_histogram() {
            return self.cached_windows(derive, plan, h, (start_ms, end_ms, left_open), limits);
        }
        let data = self.read_plan(derive, &plan, histograms_read(&plan.columns))?;
        plan.check_samples(data.len())?;
        let reduced = reduce(&data, &plan.times, &plan.columns, start_ms, left_open);
        let at: Vec<Option<usize>> = (0..plan.columns.len()).map(Some).collect();
        windows(&reduced, &plan.columns, &at, &LabelMaker::new(), limits)
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
