//! The trait between whoever holds series and the PromQL evaluator.

use crate::series::{Labels, Matcher, Series};

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
/// the HTTP layer calls them on a blocking thread.
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
