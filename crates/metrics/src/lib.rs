//! Time series as Prometheus sees them. This crate owns the vocabulary shared by whoever holds
//! series (the store derives them from spans) and whoever evaluates PromQL over them: label sets,
//! samples, label matchers, and the [`SeriesSource`] trait between the two; the PromQL evaluator
//! ([`promql`]), Prometheus's HTTP query API over any source ([`http::router`]), and an
//! in-memory source ([`MemorySource`]).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

pub mod http;
mod memory;
mod openmetrics;
pub mod promql;
mod series;
mod source;

/// The maps and sets keyed by label sets on the evaluation path: foldhash, seeded per map, hashes
/// a label set several times faster than the standard library's SipHash, and its random seed
/// keeps keys chosen by a producer from colliding on purpose.
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

pub use memory::{MemorySource, MemorySourceBuilder};
pub use openmetrics::OpenMetricsError;
pub use series::{Labels, METRIC_NAME, MatchOp, Matcher, Sample, Series};
pub use source::{
    MetricMetadata, MetricType, SelectLimits, SeriesSource, SourceError, Window, WindowSamples,
};
