//! Time series as Prometheus sees them. This crate owns the vocabulary shared by whoever holds
//! series (the store derives them from spans) and whoever evaluates PromQL over them: label sets,
//! samples, label matchers, and the [`SeriesSource`] trait between the two.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod series;
mod source;

pub use series::{Labels, METRIC_NAME, MatchOp, Matcher, Sample, Series};
pub use source::{MetricMetadata, MetricType, SeriesSource, SourceError};
