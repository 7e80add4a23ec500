//! The trait between whoever holds series and the PromQL evaluator.

use crate::series::{Matcher, Series};

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
}
