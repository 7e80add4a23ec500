//! The trait between whoever holds series and the PromQL evaluator.

use crate::series::{Labels, Matcher, Sample, Series};

/// Why a source could not answer.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The selection would exceed a bound (series or samples); the message says which.
    #[error("{0}")]
    TooLarge(String),
    /// The source failed (storage error); the message is safe to show.
    #[error("{0}")]
    Failed(String),
}

/// Prometheus's metric types, as `/api/v1/metadata` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Unknown,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Unknown => "unknown",
        }
    }
}

/// What `/api/v1/metadata` says of one metric family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricMetadata {
    pub name: String,
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

/// Anything that holds series: the store's derived metrics, or samples loaded by a test.
///
/// Times are milliseconds since the Unix epoch, both ends inclusive. Sources are synchronous:
/// the HTTP layer calls them on a thread of their own, off the async runtime.
pub trait SeriesSource: Send + Sync {
    /// Every series whose labels satisfy all `matchers`, with its samples in `[start_ms, end_ms]`
    /// in time order. Series without a sample in the range may be left out.
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, SourceError>;

    /// The metric families this source can hold, for `/api/v1/metadata`.
    fn metadata(&self) -> Vec<MetricMetadata>;

    /// [`SeriesSource::select`] within `limits`: more series or samples than they allow is
    /// [`SourceError::TooLarge`]. The default selects everything, then counts; a source that can
    /// stop early should.
    fn select_bounded(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        limits: SelectLimits,
    ) -> Result<Vec<Series>, SourceError> {
        let series = self.select(matchers, start_ms, end_ms)?;
        let samples = series
            .iter()
            .fold(0usize, |n, s| n.saturating_add(s.samples.len()));
        if series.len() > limits.max_series || samples > limits.max_samples {
            return Err(limits.exceeded(series.len(), samples));
        }
        Ok(series)
    }

    /// What `rate`, `increase` and `delta` read of each series that satisfies `matchers`, over
    /// the window ending at `end_ms` that starts at `start_ms` (left out when `left_open`, as
    /// Prometheus ≥ 3 does): the window's first and last samples, how many there are and its
    /// counter resets. An instant query's evaluator asks this instead of the samples. The
    /// default selects the samples of `[start_ms, end_ms]` within `limits` and reduces them;
    /// a source that can reduce them without building them should, with the same values and
    /// the same limits (every sample of `[start_ms, end_ms]` counts).
    fn select_windows(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        left_open: bool,
        limits: SelectLimits,
    ) -> Result<Vec<Window>, SourceError> {
        let series = self.select_bounded(matchers, start_ms, end_ms, limits)?;
        let range_ms = end_ms.saturating_sub(start_ms);
        Ok(series
            .into_iter()
            .map(|s| {
                let inside = crate::promql::window(&s.samples, end_ms, range_ms, left_open);
                Window {
                    selected: s.samples.len(),
                    samples: WindowSamples::of(inside),
                    labels: s.labels,
                }
            })
            .collect())
    }

    /// The label sets of the series that satisfy `matchers` (every series when `matchers` is
    /// empty) and have a sample in `[start_ms, end_ms]`, for `/api/v1/series`, `/labels` and
    /// `/label/{name}/values`. The default goes through [`SeriesSource::select_bounded`].
    fn series_labels(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        limits: SelectLimits,
    ) -> Result<Vec<Labels>, SourceError> {
        Ok(self
            .select_bounded(matchers, start_ms, end_ms, limits)?
            .into_iter()
            .filter(|s| !s.samples.is_empty())
            .map(|s| s.labels)
            .collect())
    }
}

/// Bounds on what one call may return, so a query cannot make a source load without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectLimits {
    /// Most series the call may return.
    pub max_series: usize,
    /// Most samples, over all returned series, the call may return.
    pub max_samples: usize,
}

impl SelectLimits {
    /// The error a source returns when a selection passes these limits.
    pub fn exceeded(&self, series: usize, samples: usize) -> SourceError {
        SourceError::TooLarge(format!(
            "the selection holds more than {} series or {} samples (at least {series} series and {samples} samples)",
            self.max_series, self.max_samples
        ))
    }
}

/// One series as [`SeriesSource::select_windows`] returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub labels: Labels,
    /// How many samples the series has in the whole selection (what the limits count).
    pub selected: usize,
    pub samples: WindowSamples,
}

/// What the extrapolated rate functions read of a window's samples, gathered one sample at a
/// time in time order: the first and the last, how many, and the value before each decrease
/// (a counter reset), kept in order so that adding them gives the same float as adding them
/// while walking the samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowSamples {
    first: Option<Sample>,
    last: Option<Sample>,
    count: usize,
    resets: Vec<f64>,
}

impl WindowSamples {
    /// The reduction of `samples` (in time order).
    pub fn of(samples: &[Sample]) -> WindowSamples {
        let mut out = WindowSamples::default();
        for sample in samples {
            out.push(*sample);
        }
        out
    }

    /// Adds the next sample in time order.
    #[inline]
    pub fn push(&mut self, sample: Sample) {
        match self.last {
            None => self.first = Some(sample),
            Some(previous) if sample.value < previous.value => self.resets.push(previous.value),
            Some(_) => {}
        }
        self.last = Some(sample);
        self.count = self.count.saturating_add(1);
    }

    /// The first and last samples, when there are at least two.
    pub fn ends(&self) -> Option<(Sample, Sample)> {
        match (self.first, self.last) {
            (Some(first), Some(last)) if self.count >= 2 => Some((first, last)),
            _ => None,
        }
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// The values before each decrease, in time order.
    pub fn resets(&self) -> &[f64] {
        &self.resets
    }
}
