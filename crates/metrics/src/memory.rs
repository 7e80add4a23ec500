//! [`MemorySource`]: series held in memory, built from samples or loaded from OpenMetrics text.
//! It is what tests evaluate PromQL over, and the reference implementation of the
//! [`SeriesSource`] contract (inclusive time ranges, samples in time order, limits enforced
//! while selecting rather than after).

use crate::FastMap;

use crate::series::{Labels, METRIC_NAME, Matcher, Sample, Series};
use crate::source::{MetricMetadata, SelectLimits, SeriesSource, SourceError};

/// Series in memory, sorted by labels, each with its samples in time order.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    series: Vec<Series>,
    /// Metric name → the indexes of its series in `series`, ascending: a selector naming its
    /// metric (every query of Kiali's graph) looks at that metric's series only, as
    /// Prometheus's postings do, instead of matching every series held.
    by_name: FastMap<String, Vec<usize>>,
    metadata: Vec<MetricMetadata>,
}

impl MemorySource {
    pub fn builder() -> MemorySourceBuilder {
        MemorySourceBuilder::default()
    }

    /// The series held, sorted by labels.
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// How many samples are held over all series.
    pub fn sample_count(&self) -> usize {
        self.series
            .iter()
            .fold(0usize, |n, s| n.saturating_add(s.samples.len()))
    }
}

/// Collects samples and metadata for a [`MemorySource`].
#[derive(Debug, Default)]
pub struct MemorySourceBuilder {
    series: FastMap<Labels, Vec<Sample>>,
    metadata: Vec<MetricMetadata>,
}

impl MemorySourceBuilder {
    /// One sample of the series `labels` (which include `__name__`).
    pub fn sample(mut self, labels: &Labels, timestamp_ms: i64, value: f64) -> Self {
        self.push(labels, timestamp_ms, value);
        self
    }

    /// One sample, by reference (for loops).
    pub fn push(&mut self, labels: &Labels, timestamp_ms: i64, value: f64) {
        self.series.entry(labels.clone()).or_default().push(Sample {
            timestamp_ms,
            value,
        });
    }

    /// What `/api/v1/metadata` says of a metric family; a later entry for a name replaces the
    /// earlier one.
    pub fn metadata(mut self, metadata: MetricMetadata) -> Self {
        self.add_metadata(metadata);
        self
    }

    /// The metadata collected so far for the family `name`.
    pub fn metadata_of(&self, name: &str) -> Option<MetricMetadata> {
        self.metadata.iter().find(|m| m.name == name).cloned()
    }

    pub fn add_metadata(&mut self, metadata: MetricMetadata) {
        self.metadata.retain(|m| m.name != metadata.name);
        self.metadata.push(metadata);
    }

    /// The source: samples sorted by time; of two samples with the same timestamp in a series,
    /// the one added last stays.
    pub fn build(self) -> MemorySource {
        let mut series: Vec<Series> = self
            .series
            .into_iter()
            .filter(|(labels, _)| !labels.is_empty())
            .map(|(labels, mut samples)| {
                // A stable sort keeps equal timestamps in insertion order; keeping the last of
                // each run makes the later sample win.
                samples.sort_by_key(|s| s.timestamp_ms);
                let mut kept: Vec<Sample> = Vec::with_capacity(samples.len());
                for sample in samples {
                    match kept.last_mut() {
                        Some(last) if last.timestamp_ms == sample.timestamp_ms => *last = sample,
                        _ => kept.push(sample),
                    }
                }
                Series {
                    labels,
                    samples: kept,
                }
            })
            .collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let mut by_name: FastMap<String, Vec<usize>> = FastMap::default();
        for (index, s) in series.iter().enumerate() {
            if let Some(name) = s.labels.metric_name() {
                by_name.entry(name.to_string()).or_default().push(index);
            }
        }
        let mut metadata = self.metadata;
        metadata.sort_by(|a, b| a.name.cmp(&b.name));
        MemorySource {
            series,
            by_name,
            metadata,
        }
    }
}

impl SeriesSource for MemorySource {
    fn select(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Series>, SourceError> {
        let unbounded = SelectLimits {
            max_series: usize::MAX,
            max_samples: usize::MAX,
        };
        self.select_bounded(matchers, start_ms, end_ms, unbounded)
    }

    fn metadata(&self) -> Vec<MetricMetadata> {
        self.metadata.clone()
    }

    fn select_bounded(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
        limits: SelectLimits,
    ) -> Result<Vec<Series>, SourceError> {
        let mut out = Vec::new();
        let mut samples_out = 0usize;
        // Only the named metric's series can match a selector that names one (in the same
        // order as the whole list).
        let named = matchers
            .iter()
            .find(|m| m.name == METRIC_NAME)
            .and_then(Matcher::required_value);
        let candidates: Box<dyn Iterator<Item = &Series>> = match named {
            Some(name) => Box::new(
                self.by_name
                    .get(name)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|&i| self.series.get(i)),
            ),
            None => Box::new(self.series.iter()),
        };
        for series in candidates {
            if !series.labels.matches(matchers) {
                continue;
            }
            let from = series
                .samples
                .partition_point(|s| s.timestamp_ms < start_ms);
            let to = series.samples.partition_point(|s| s.timestamp_ms <= end_ms);
            let samples = series.samples.get(from..to).unwrap_or(&[]);
            samples_out = samples_out.saturating_add(samples.len());
            if out.len() >= limits.max_series || samples_out > limits.max_samples {
                return Err(limits.exceeded(out.len().saturating_add(1), samples_out));
            }
            out.push(Series {
                labels: series.labels.clone(),
                samples: samples.to_vec(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::tests::labels;

    #[test]
    fn ranges_are_inclusive_and_later_duplicates_win() {
        let a = labels(&[("__name__", "up"), ("job", "a")]);
        let source = MemorySource::builder()
            .sample(&a, 30, 3.0)
            .sample(&a, 10, 1.0)
            .sample(&a, 20, 2.0)
            .sample(&a, 20, 2.5)
            .build();
        let got = source
            .select(&[Matcher::equal("job", "a")], 10, 20)
            .unwrap();
        assert_eq!(got.len(), 1);
        let values: Vec<f64> = got[0].samples.iter().map(|s| s.value).collect();
        assert_eq!(values, vec![1.0, 2.5]);
    }

    #[test]
    fn a_named_metric_selects_its_series_only_in_label_order() {
        let mut builder = MemorySource::builder();
        // Two metrics whose series interleave by the other labels, and one without a name.
        for job in ["c", "a", "b"] {
            builder.push(&labels(&[("__name__", "up"), ("job", job)]), 10, 1.0);
            builder.push(&labels(&[("__name__", "down"), ("job", job)]), 10, 2.0);
        }
        builder.push(&labels(&[("job", "a")]), 10, 3.0);
        let source = builder.build();
        let jobs = |matchers: &[Matcher]| -> Vec<(String, String)> {
            source
                .select(matchers, 0, 20)
                .unwrap()
                .iter()
                .map(|s| {
                    let name = s.labels.metric_name().unwrap_or("").to_string();
                    (name, s.labels.get("job").unwrap().to_string())
                })
                .collect()
        };
        let up = |job: &str| ("up".to_string(), job.to_string());
        assert_eq!(
            jobs(&[Matcher::equal("__name__", "up")]),
            vec![up("a"), up("b"), up("c")]
        );
        assert_eq!(
            jobs(&[
                Matcher::regex("job", "a|c", false).unwrap(),
                Matcher::equal("__name__", "up")
            ]),
            vec![up("a"), up("c")]
        );
        assert!(jobs(&[Matcher::equal("__name__", "sideways")]).is_empty());
        // Without a name matcher every series is looked at, the nameless one too.
        assert_eq!(jobs(&[Matcher::equal("job", "a")]).len(), 3);
        assert_eq!(
            jobs(&[Matcher::regex("__name__", "up|down", false).unwrap()]).len(),
            6
        );
    }

    #[test]
    fn limits_stop_the_selection() {
        let mut builder = MemorySource::builder();
        for i in 0..10 {
            builder.push(&labels(&[("__name__", "x"), ("i", &i.to_string())]), 0, 1.0);
        }
        let source = builder.build();
        let limits = SelectLimits {
            max_series: 5,
            max_samples: 100,
        };
        let err = source.select_bounded(&[], 0, 0, limits).unwrap_err();
        assert!(matches!(err, SourceError::TooLarge(_)), "{err}");
        let limits = SelectLimits {
            max_series: 100,
            max_samples: 9,
        };
        assert!(source.select_bounded(&[], 0, 0, limits).is_err());
    }
}
