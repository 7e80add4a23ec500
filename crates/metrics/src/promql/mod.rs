//! A PromQL evaluator over any [`SeriesSource`], with Prometheus's semantics for what it
//! supports: instant and range selectors (`=`, `!=`, `=~`, `!~`, `offset`, `@`), `rate`,
//! `irate`, `increase`, `delta`, `histogram_quantile` over classic buckets, `round`, the `sum`,
//! `avg`, `min`, `max` and `count` aggregations with `by`/`without`, and the arithmetic,
//! comparison and set operators with `on`/`ignoring`, `group_left`/`group_right` and `bool`.
//! Anything else is refused with [`QueryError::Unsupported`] before any data is read: an
//! unsupported query never gets a wrong number.
//!
//! Where Prometheus versions disagree (window boundaries, rate extrapolation near the zero
//! point of a counter, histogram bucket tolerance, summation), [`Compat`] picks the behaviour;
//! the default is the current one.
//!
//! Bounds: the query's size and nesting ([`Limits`]), the series and samples read from the
//! source, the points held during evaluation, and a deadline checked while evaluating.

mod aggregate;
mod binary;
mod eval;
mod functions;
mod op;
mod plan;
mod prescan;
mod steps;

use std::time::{Duration, Instant};

use crate::series::{Labels, Sample};
use crate::source::SeriesSource;

pub(crate) use eval::window;
pub use functions::quantile_out_of_range;
pub use op::BinaryOp;

/// The earliest timestamp (ms) a query may name: Prometheus's `minTime`.
pub const MIN_TIME_MS: i64 = (i64::MIN / 1000 + 62_135_596_801) * 1000;
/// The latest timestamp (ms) a query may name: Prometheus's `maxTime`.
pub const MAX_TIME_MS: i64 = (i64::MAX / 1000 - 62_135_596_801) * 1000 + 999;

/// The most points a range query may produce per series, as Prometheus's API enforces it.
pub const MAX_POINTS_PER_SERIES: i64 = 11_000;

/// Which Prometheus release's behaviour to reproduce where releases differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compat {
    /// Range selectors and the lookback window exclude their start (Prometheus ≥ 3.0);
    /// before, both ends were included.
    pub left_open_windows: bool,
    /// `rate`/`increase` check the extrapolation threshold before capping the extrapolation at
    /// the counter's zero point (≥ 2.51); before, the cap came first.
    pub zero_cap_after_threshold: bool,
    /// `histogram_quantile` treats bucket counts within 1e-12 of each other as equal (≥ 2.49).
    pub bucket_tolerance: bool,
    /// `sum` uses Kahan–Neumaier summation (≥ 2.54).
    pub kahan_sum: bool,
    /// `avg` divides a compensated sum (≥ 2.55), rather than updating a running mean.
    pub direct_mean: bool,
    /// `.` in a label matcher's regular expression matches a newline too (≥ 3.0).
    pub regex_dot_matches_newline: bool,
}

impl Compat {
    /// Prometheus 3 (current).
    pub const LATEST: Compat = Compat {
        left_open_windows: true,
        zero_cap_after_threshold: true,
        bucket_tolerance: true,
        kahan_sum: true,
        direct_mean: true,
        regex_dot_matches_newline: true,
    };

    /// The behaviour of Prometheus `major.minor`.
    pub fn prometheus(major: u32, minor: u32) -> Compat {
        let at_least = |ma: u32, mi: u32| (major, minor) >= (ma, mi);
        Compat {
            left_open_windows: at_least(3, 0),
            zero_cap_after_threshold: at_least(2, 51),
            bucket_tolerance: at_least(2, 49),
            kahan_sum: at_least(2, 54),
            direct_mean: at_least(2, 55),
            regex_dot_matches_newline: at_least(3, 0),
        }
    }
}

impl Default for Compat {
    fn default() -> Self {
        Compat::LATEST
    }
}

/// Bounds on one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest query text, in bytes.
    pub max_query_bytes: usize,
    /// Deepest nesting of brackets (`(`, `[`, `{`).
    pub max_nesting: usize,
    /// Most operators (arithmetic, comparison, set) in one query.
    pub max_operators: usize,
    /// Most series read from the source, over all selectors.
    pub max_series: usize,
    /// Most samples read from the source, over all selectors.
    pub max_samples: usize,
    /// Most points the evaluation may produce, over all steps of all intermediate results.
    pub max_points: usize,
    /// Longest evaluation; a request's `timeout` can only shorten it.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_query_bytes: 16 * 1024,
            max_nesting: 64,
            max_operators: 256,
            max_series: 100_000,
            max_samples: 10_000_000,
            max_points: 10_000_000,
            timeout: Duration::from_secs(30),
        }
    }
}

/// How queries are evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    pub compat: Compat,
    /// How far back an instant selector looks for a sample (Prometheus's default: 5 minutes).
    pub lookback_delta: Duration,
    pub limits: Limits,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            compat: Compat::default(),
            lookback_delta: Duration::from_secs(300),
            limits: Limits::default(),
        }
    }
}

/// Why a query has no result; each kind maps to Prometheus's `errorType` and HTTP status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The query or a parameter is wrong (`bad_data`, 400).
    #[error("{0}")]
    BadData(String),
    /// The query uses something this engine does not evaluate (`execution`, 422).
    #[error("{0}")]
    Unsupported(String),
    /// The evaluation failed, as Prometheus's would (duplicate series, too many samples)
    /// (`execution`, 422).
    #[error("{0}")]
    Execution(String),
    /// The deadline passed (`timeout`, 503).
    #[error("{0}")]
    Timeout(String),
    /// The source failed (`internal`, 500).
    #[error("{0}")]
    Internal(String),
}

impl QueryError {
    /// Prometheus's `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::BadData(_) => "bad_data",
            QueryError::Unsupported(_) | QueryError::Execution(_) => "execution",
            QueryError::Timeout(_) => "timeout",
            QueryError::Internal(_) => "internal",
        }
    }

    /// The HTTP status Prometheus answers with.
    pub fn status(&self) -> u16 {
        match self {
            QueryError::BadData(_) => 400,
            QueryError::Unsupported(_) | QueryError::Execution(_) => 422,
            QueryError::Timeout(_) => 503,
            QueryError::Internal(_) => 500,
        }
    }
}

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct InstantSample {
    pub labels: Labels,
    pub timestamp_ms: i64,
    pub value: f64,
}

/// One series of a range vector.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: Labels,
    pub points: Vec<Sample>,
}

/// A query's result, in Prometheus's four result types. Vectors and matrices are sorted by
/// labels.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryValue {
    Vector(Vec<InstantSample>),
    Matrix(Vec<RangeSeries>),
    Scalar { timestamp_ms: i64, value: f64 },
    String { timestamp_ms: i64, value: String },
}

impl QueryValue {
    /// `resultType` in Prometheus's answer.
    pub fn result_type(&self) -> &'static str {
        match self {
            QueryValue::Vector(_) => "vector",
            QueryValue::Matrix(_) => "matrix",
            QueryValue::Scalar { .. } => "scalar",
            QueryValue::String { .. } => "string",
        }
    }
}

/// Evaluates `query` at `time_ms`, stopping at `deadline`.
pub fn instant_query(
    source: &dyn SeriesSource,
    query: &str,
    time_ms: i64,
    options: &EngineOptions,
    deadline: Instant,
) -> Result<QueryValue, QueryError> {
    check_time(time_ms)?;
    let plan = plan::plan(query, &options.limits, options.compat)?;
    eval::run(source, &plan, time_ms, time_ms, 1, options, deadline, true)
}

/// Evaluates `query` at every `step_ms` from `start_ms` to `end_ms`; the result is a matrix.
pub fn range_query(
    source: &dyn SeriesSource,
    query: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    options: &EngineOptions,
    deadline: Instant,
) -> Result<QueryValue, QueryError> {
    check_time(start_ms)?;
    check_time(end_ms)?;
    if end_ms < start_ms {
        return Err(QueryError::BadData(
            "end timestamp must not be before start time".to_string(),
        ));
    }
    if step_ms <= 0 {
        return Err(QueryError::BadData(
            "zero or negative query resolution step widths are not accepted. Try a positive integer"
                .to_string(),
        ));
    }
    if end_ms
        .saturating_sub(start_ms)
        .checked_div(step_ms)
        .unwrap_or(i64::MAX)
        > MAX_POINTS_PER_SERIES
    {
        return Err(too_many_points());
    }
    let plan = plan::plan(query, &options.limits, options.compat)?;
    let root_type = plan.root.value_type();
    if !matches!(root_type, plan::ValueType::Scalar | plan::ValueType::Vector) {
        return Err(QueryError::BadData(format!(
            "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
            root_type.documented()
        )));
    }
    eval::run(
        source, &plan, start_ms, end_ms, step_ms, options, deadline, false,
    )
}

/// The matchers of a series selector such as `up{job="x"}` (the `match[]` of `/series` and
/// `/labels`).
pub fn series_selector(
    text: &str,
    options: &EngineOptions,
) -> Result<Vec<crate::series::Matcher>, QueryError> {
    plan::series_selector(text, &options.limits, options.compat)
}

/// Prometheus's answer to a range query of more than 11,000 points per series.
pub fn too_many_points() -> QueryError {
    QueryError::BadData(
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
            .to_string(),
    )
}

fn check_time(ms: i64) -> Result<(), QueryError> {
    if (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms) {
        Ok(())
    } else {
        Err(QueryError::BadData(format!(
            "timestamp {ms}ms is outside the range Prometheus accepts"
        )))
    }
}
