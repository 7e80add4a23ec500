//! The evaluator: loads each selector's series once for the whole query (bounded), then
//! evaluates the plan bottom-up over all steps, checking the deadline and the point budget as
//! it goes. Selectors and the final result live here; operators in their own modules.

use std::time::{Duration, Instant};

use super::plan::{At, Node, Plan, Selector};
use super::steps::{StepSeries, Val, check_distinct};
use super::{EngineOptions, InstantSample, QueryError, QueryValue, RangeSeries};
use crate::series::Labels;
use crate::series::{Sample, Series};
use crate::source::{SelectLimits, SeriesSource, SourceError, Window};

/// The state of one query's evaluation.
pub(crate) struct Ctx<'a> {
    pub options: &'a EngineOptions,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    /// How many evaluation steps (1 for an instant query).
    pub steps: usize,
    deadline: Instant,
    data: Vec<Vec<Series>>,
    /// Per selector, the windows the source reduced in place of its samples (see
    /// [`Ctx::take_windows`]).
    windows: Vec<Option<Vec<Window>>>,
    points: usize,
    ticks: u32,
}

/// Evaluates `plan` from `start` to `end` every `step` ms; `instant` gives an instant query's
/// result types.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    source: &dyn SeriesSource,
    plan: &Plan,
    start: i64,
    end: i64,
    step: i64,
    options: &EngineOptions,
    deadline: Instant,
    instant: bool,
) -> Result<QueryValue, QueryError> {
    let span = end.saturating_sub(start);
    let steps = usize::try_from(span.checked_div(step.max(1)).unwrap_or(0))
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut ctx = Ctx {
        options,
        start,
        end,
        step: step.max(1),
        steps,
        deadline,
        data: Vec::with_capacity(plan.selectors.len()),
        windows: Vec::with_capacity(plan.selectors.len()),
        points: 0,
        ticks: 0,
    };
    ctx.load(source, &plan.selectors)?;
    let value = ctx.eval(&plan.root)?;
    Ok(ctx.result(value, instant))
}

impl Ctx<'_> {
    /// The timestamp of step `i`.
    pub fn time(&self, i: usize) -> i64 {
        let i = i64::try_from(i).unwrap_or(i64::MAX);
        self.start.saturating_add(i.saturating_mul(self.step))
    }

    /// The time a selector is evaluated at, at step `i`, before its offset.
    fn selector_time(&self, selector: &Selector, i: usize) -> i64 {
        match selector.at {
            At::None => self.time(i),
            At::Start => self.start,
            At::End => self.end,
            At::Time(t) => t,
        }
    }

    /// The end of a selector's window at step `i`: its evaluation time less its offset.
    pub fn reference_time(&self, selector: &Selector, i: usize) -> i64 {
        self.selector_time(selector, i)
            .saturating_sub(selector.offset_ms)
    }

    fn lookback_ms(&self) -> i64 {
        duration_ms(self.options.lookback_delta)
    }

    /// Reads every selector's series, within the query's limits on series and samples.
    fn load(
        &mut self,
        source: &dyn SeriesSource,
        selectors: &[Selector],
    ) -> Result<(), QueryError> {
        if Instant::now() > self.deadline {
            return Err(timed_out());
        }
        let limits = &self.options.limits;
        let (mut series_left, mut samples_left) = (limits.max_series, limits.max_samples);
        for selector in selectors {
            let (first, last) = match selector.at {
                At::None => (self.start, self.end),
                _ => {
                    let t = self.selector_time(selector, 0);
                    (t, t)
                }
            };
            let reach = if selector.range_ms > 0 {
                selector.range_ms
            } else {
                self.lookback_ms()
            };
            let from = first
                .saturating_sub(selector.offset_ms)
                .saturating_sub(reach);
            let to = last.saturating_sub(selector.offset_ms);
            let bounds = SelectLimits {
                max_series: series_left,
                max_samples: samples_left,
            };
            let too_large = |e| match e {
                SourceError::TooLarge(detail) => QueryError::Execution(format!(
                    "query processing would load too many samples into memory in query execution: {detail}"
                )),
                SourceError::Failed(detail) => QueryError::Internal(detail),
            };
            // One window to read (an instant query), and only `rate`,
            // `increase` or `delta` reading it: the source reduces it without building its
            // samples. The same selection, so the same limits.
            let reference = self.reference_time(selector, 0);
            let one_window = self.steps == 1
                && selector.range_ms > 0
                && from == reference.saturating_sub(selector.range_ms)
                && to == reference;
            if selector.reducible && one_window {
                let left_open = self.options.compat.left_open_windows;
                let windows = source
                    .select_windows(&selector.matchers, from, to, left_open, bounds)
                    .map_err(too_large)?;
                let samples = windows
                    .iter()
                    .fold(0usize, |n, w| n.saturating_add(w.selected));
                series_left = series_left.saturating_sub(windows.len());
                samples_left = samples_left.saturating_sub(samples);
                self.data.push(Vec::new());
                self.windows.push(Some(windows));
                self.tick()?;
                continue;
            }
            let series = source
                .select_bounded(&selector.matchers, from, to, bounds)
                .map_err(too_large)?;
            let samples = series
                .iter()
                .fold(0usize, |n, s| n.saturating_add(s.samples.len()));
            series_left = series_left.saturating_sub(series.len());
            samples_left = samples_left.saturating_sub(samples);
            self.data.push(series);
            self.windows.push(None);
            self.tick()?;
        }
        Ok(())
    }

    /// Checks the deadline every so often; call it once per unit of work.
    pub fn tick(&mut self) -> Result<(), QueryError> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks % 1024 == 1 && Instant::now() > self.deadline {
            return Err(timed_out());
        }
        Ok(())
    }

    /// Counts `n` more points held; past the limit the query fails as Prometheus's does.
    pub fn charge(&mut self, n: usize) -> Result<(), QueryError> {
        self.points = self.points.saturating_add(n);
        if self.points > self.options.limits.max_points {
            return Err(QueryError::Execution(format!(
                "query processing would load too many samples into memory in query execution (more than {} points)",
                self.options.limits.max_points
            )));
        }
        Ok(())
    }

    /// Counts the points of `series` as held (see [`Ctx::charge`]).
    pub fn charge_series(&mut self, series: &[StepSeries]) -> Result<(), QueryError> {
        self.charge(
            series
                .iter()
                .fold(0usize, |n, s| n.saturating_add(s.points.len())),
        )
    }

    /// The result series made of `points` for loaded series `index` of `selector` (none when
    /// there are no points), with or without its metric name; its points count as held.
    pub fn output_series(
        &mut self,
        selector: &Selector,
        index: usize,
        points: Vec<(u32, f64)>,
        drop_name: bool,
    ) -> Result<Option<StepSeries>, QueryError> {
        let labels = self
            .data(selector)
            .get(index)
            .map(|s| s.labels.clone())
            .unwrap_or_default();
        self.output_labeled(&labels, points, drop_name)
    }

    /// A result series of `labels` (without the metric name when `drop_name`) made of
    /// `points` (none when there are no points); its points count as held.
    pub fn output_labeled(
        &mut self,
        labels: &Labels,
        points: Vec<(u32, f64)>,
        drop_name: bool,
    ) -> Result<Option<StepSeries>, QueryError> {
        self.charge(points.len())?;
        if points.is_empty() {
            return Ok(None);
        }
        let labels = if drop_name {
            labels.without_name()
        } else {
            labels.clone()
        };
        Ok(Some(StepSeries { labels, points }))
    }

    /// The windows the source reduced for `selector`, when it read them so (a selector is
    /// read once, by its one range function).
    pub fn take_windows(&mut self, selector: &Selector) -> Option<Vec<Window>> {
        self.windows.get_mut(selector.id).and_then(Option::take)
    }

    /// The series a selector loaded.
    pub fn data(&self, selector: &Selector) -> &[Series] {
        self.data.get(selector.id).map_or(&[], Vec::as_slice)
    }

    pub fn eval(&mut self, node: &Node) -> Result<Val, QueryError> {
        self.tick()?;
        match node {
            Node::Number(v) => Ok(Val::Scalar(vec![*v; self.steps])),
            Node::Str(s) => Ok(Val::Str(s.clone())),
            Node::Vector(selector) => self.vector_selector(selector).map(Val::Vector),
            Node::Matrix(selector) => self.matrix_selector(selector).map(Val::Matrix),
            Node::Neg(inner) => match self.eval(inner)? {
                Val::Scalar(values) => Ok(Val::Scalar(values.into_iter().map(|v| -v).collect())),
                Val::Vector(mut series) => {
                    for s in &mut series {
                        s.labels = s.labels.without_name();
                        for p in &mut s.points {
                            p.1 = -p.1;
                        }
                    }
                    check_distinct(&series)?;
                    Ok(Val::Vector(series))
                }
                _ => Err(QueryError::Execution(
                    "unary minus applies to scalars and instant vectors only".to_string(),
                )),
            },
            Node::Binary(b) => super::binary::eval(self, b),
            Node::Aggregate {
                op,
                expr,
                without,
                grouping,
            } => super::aggregate::eval(self, *op, expr, *without, grouping),
            Node::RangeFunction { func, selector } => {
                super::functions::range_function(self, *func, selector).map(Val::Vector)
            }
            Node::Round { expr, to_nearest } => {
                super::functions::round(self, expr, to_nearest.as_deref())
            }
            Node::HistogramQuantile { q, expr } => {
                super::functions::histogram_quantile(self, q, expr)
            }
        }
    }

    /// Evaluates `node`, which the parser typed as a scalar, into one value per step.
    pub fn eval_scalar(&mut self, node: &Node) -> Result<Vec<f64>, QueryError> {
        match self.eval(node)? {
            Val::Scalar(values) => Ok(values),
            _ => Err(QueryError::Execution("expected a scalar".to_string())),
        }
    }

    /// Evaluates `node`, which the parser typed as an instant vector.
    pub fn eval_vector(&mut self, node: &Node) -> Result<Vec<StepSeries>, QueryError> {
        match self.eval(node)? {
            Val::Vector(series) => Ok(series),
            _ => Err(QueryError::Execution(
                "expected an instant vector".to_string(),
            )),
        }
    }

    /// An instant selector: at each step, the latest sample within the lookback window.
    fn vector_selector(&mut self, selector: &Selector) -> Result<Vec<StepSeries>, QueryError> {
        let lookback = self.lookback_ms();
        let left_open = self.options.compat.left_open_windows;
        let mut out = Vec::new();
        for index in 0..self.data(selector).len() {
            let mut points = Vec::new();
            let mut next = 0usize; // first sample after the reference time
            for i in 0..self.steps {
                self.tick()?;
                let reference = self.reference_time(selector, i);
                let samples = self
                    .data
                    .get(selector.id)
                    .and_then(|d| d.get(index))
                    .map_or(&[][..], |s| s.samples.as_slice());
                // Times only grow with the step unless `@` pins them; then restart the scan.
                if matches!(selector.at, At::None) {
                    while samples
                        .get(next)
                        .is_some_and(|s| s.timestamp_ms <= reference)
                    {
                        next = next.saturating_add(1);
                    }
                } else {
                    next = samples.partition_point(|s| s.timestamp_ms <= reference);
                }
                let Some(latest) = next.checked_sub(1).and_then(|at| samples.get(at)) else {
                    continue;
                };
                let oldest = reference.saturating_sub(lookback);
                let inside = if left_open {
                    latest.timestamp_ms > oldest
                } else {
                    latest.timestamp_ms >= oldest
                };
                if inside {
                    points.push((step_index(i), latest.value));
                }
            }
            out.extend(self.output_series(selector, index, points, false)?);
        }
        Ok(out)
    }

    /// A range selector at the top of an instant query: the raw samples in its window.
    fn matrix_selector(&mut self, selector: &Selector) -> Result<Vec<Series>, QueryError> {
        let reference = self.reference_time(selector, 0);
        let mut out = Vec::new();
        for series in self.data(selector) {
            let window = window(
                &series.samples,
                reference,
                selector.range_ms,
                self.options.compat.left_open_windows,
            );
            if !window.is_empty() {
                out.push(Series {
                    labels: series.labels.clone(),
                    samples: window.to_vec(),
                });
            }
        }
        let held = out
            .iter()
            .fold(0usize, |n, s| n.saturating_add(s.samples.len()));
        self.charge(held)?;
        Ok(out)
    }

    /// The query's answer from the root's value.
    fn result(&self, value: Val, instant: bool) -> QueryValue {
        match value {
            Val::Scalar(values) if instant => QueryValue::Scalar {
                timestamp_ms: self.start,
                value: values.first().copied().unwrap_or(f64::NAN),
            },
            Val::Scalar(values) => QueryValue::Matrix(vec![RangeSeries {
                labels: Default::default(),
                points: values
                    .iter()
                    .enumerate()
                    .map(|(i, &value)| Sample {
                        timestamp_ms: self.time(i),
                        value,
                    })
                    .collect(),
            }]),
            Val::Str(value) => QueryValue::String {
                timestamp_ms: self.start,
                value,
            },
            Val::Vector(series) if instant => {
                let mut samples: Vec<InstantSample> = series
                    .into_iter()
                    .filter_map(|s| {
                        s.points.first().map(|&(_, value)| InstantSample {
                            labels: s.labels,
                            timestamp_ms: self.start,
                            value,
                        })
                    })
                    .collect();
                samples.sort_by(|a, b| a.labels.cmp(&b.labels));
                QueryValue::Vector(samples)
            }
            Val::Vector(series) => sorted_matrix(
                series
                    .into_iter()
                    .map(|s| RangeSeries {
                        points: s
                            .points
                            .iter()
                            .map(|&(i, value)| Sample {
                                timestamp_ms: self.time(i as usize),
                                value,
                            })
                            .collect(),
                        labels: s.labels,
                    })
                    .collect(),
            ),
            Val::Matrix(series) => sorted_matrix(
                series
                    .into_iter()
                    .map(|s| RangeSeries {
                        labels: s.labels,
                        points: s.samples,
                    })
                    .collect(),
            ),
        }
    }
}

fn sorted_matrix(mut matrix: Vec<RangeSeries>) -> QueryValue {
    matrix.sort_by(|a, b| a.labels.cmp(&b.labels));
    QueryValue::Matrix(matrix)
}

/// The samples of a range selector's window ending at `reference`: `(reference - range,
/// reference]` when `left_open` (Prometheus ≥ 3), `[reference - range, reference]` before.
pub(crate) fn window(
    samples: &[Sample],
    reference: i64,
    range_ms: i64,
    left_open: bool,
) -> &[Sample] {
    let start = reference.saturating_sub(range_ms);
    let from = if left_open {
        samples.partition_point(|s| s.timestamp_ms <= start)
    } else {
        samples.partition_point(|s| s.timestamp_ms < start)
    };
    let to = samples.partition_point(|s| s.timestamp_ms <= reference);
    samples.get(from..to.max(from)).unwrap_or(&[])
}

fn timed_out() -> QueryError {
    QueryError::Timeout("query timed out in expression evaluation".to_string())
}

pub(crate) fn step_index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
