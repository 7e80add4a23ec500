//! What the Traces tab asks the metrics: the response-time stats of the workloads an Envoy span
//! went through ("Compared with metrics", the span table's heatmaps) and the percentiles of the
//! percentile filter. The queries are Kiali's (`buildQueriesFromSpans`, `fetchPercentiles`) and
//! go through the same code as `POST /api/stats/metrics` (in process, no HTTP call), so the
//! pages show exactly what that route answers. Names from span tags travel as JSON data into
//! the stats code, which escapes them as PromQL label values.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::collections::{BTreeSet, HashMap};

use meshtrace_mesh::{Kind, span_info, tag_str};
use meshtrace_model::Span;
use serde_json::{Value, json};

use crate::Console;

/// The intervals of the trace and span heatmaps (rows).
pub(super) const INTERVALS: [&str; 3] = ["10m", "60m", "3h"];
/// The compact map of the scatter's tooltip: Kiali's `compactStatsIntervals` (rows) and
/// `compactStatsQuantilesWithAvg` (columns).
pub(super) const COMPACT_INTERVALS: [&str; 2] = ["60m", "3h"];
pub(super) const COMPACT_STATS: [(&str, &str); 3] =
    [("avg", "avg"), ("0.5", "p50"), ("0.9", "p90")];
/// The stats compared with (columns): Kiali's names and labels.
pub(super) const STATS: [(&str, &str); 4] = [
    ("avg", "avg"),
    ("0.5", "p50"),
    ("0.9", "p90"),
    ("0.99", "p99"),
];
/// Distinct workloads (and directions) asked for a trace without being asked: Kiali's bound of
/// 8 Envoy spans, here counted after removing the spans that ask the same thing.
pub(super) const MAX_TARGETS: usize = 8;
/// Spans whose statistics a page may ask for on top ("Load statistics").
pub(super) const MAX_LOADED: usize = 8;

/// The workload an Envoy span is compared with: Kiali's `workload` kind, no peer, the
/// direction from `upstream_cluster`, and the waypoint reporter for an ambient waypoint span.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct StatsTarget {
    pub(super) namespace: String,
    pub(super) workload: String,
    pub(super) direction: &'static str,
    pub(super) waypoint: bool,
}

impl StatsTarget {
    /// The target of `span`, when it is an Envoy span whose workload and direction are known.
    pub(super) fn of(span: &Span) -> Option<StatsTarget> {
        let info = span_info(span);
        if info.component != "proxy" || info.direction.is_empty() {
            return None;
        }
        let waypoint = tag_str(span, "node_id").is_some_and(|n| n.starts_with("waypoint~"));
        let (namespace, workload) = if waypoint {
            // A waypoint's span is about the workloads on both ends; its direction says which.
            let side = if info.direction == "inbound" {
                "destination"
            } else {
                "source"
            };
            (
                tag_str(span, &format!("istio.{side}_namespace"))?.to_string(),
                tag_str(span, &format!("istio.{side}_workload"))?.to_string(),
            )
        } else {
            (info.namespace, info.workload)
        };
        (!namespace.is_empty() && !workload.is_empty()).then_some(StatsTarget {
            namespace,
            workload,
            direction: info.direction,
            waypoint,
        })
    }

    fn reporters(&self) -> Vec<&'static str> {
        let side = if self.direction == "outbound" {
            "source"
        } else {
            "destination"
        };
        // Kiali's key lists them sorted: `destination,waypoint`, `source,waypoint`.
        if self.waypoint {
            vec![side, "waypoint"]
        } else {
            vec![side]
        }
    }

    /// Kiali's `genStatsKey`, which the stats answer is keyed by.
    pub(super) fn key(&self, interval: &str) -> String {
        format!(
            "{}:workload:{}::{}:{interval}:{}",
            self.namespace,
            self.workload,
            self.direction,
            self.reporters().join(",")
        )
    }

    fn query(&self, interval: &str, query_time: i64, quantiles: &[&str]) -> Value {
        json!({
            "target": {"namespace": self.namespace, "name": self.workload, "kind": "workload"},
            "reporters": self.reporters(),
            "queryTime": query_time,
            "interval": interval,
            "direction": self.direction,
            "avg": true,
            "quantiles": quantiles,
        })
    }
}

/// The stats answered, by Kiali's key: each stat's name and value in ms.
#[derive(Debug, Default)]
pub(super) struct Stats {
    by_key: HashMap<String, Vec<(String, f64)>>,
}

impl Stats {
    fn read(answer: &Value) -> Stats {
        let mut by_key = HashMap::new();
        if let Some(stats) = answer.get("stats").and_then(Value::as_object) {
            for (key, value) in stats {
                let times = value
                    .get("responseTimes")
                    .and_then(Value::as_array)
                    .map(|times| {
                        times
                            .iter()
                            .filter_map(|t| {
                                Some((
                                    t.get("name")?.as_str()?.to_string(),
                                    t.get("value")?.as_f64()?,
                                ))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                by_key.insert(key.clone(), times);
            }
        }
        Stats { by_key }
    }

    /// The stats of `target` over `interval`; `None` when they were not asked or not answered
    /// (no traffic: Prometheus has no sample).
    pub(super) fn get(&self, target: &StatsTarget, interval: &str) -> Option<&[(String, f64)]> {
        self.by_key
            .get(&target.key(interval))
            .map(Vec::as_slice)
            .filter(|times| !times.is_empty())
    }
}

fn now_seconds() -> i64 {
    i64::try_from(meshtrace_model::time::now_micros() / 1_000_000).unwrap_or(i64::MAX)
}

/// The stats of `targets` over every interval of the heatmaps. An error says which metrics
/// source failed and why.
pub(super) async fn fetch(
    console: &Console,
    targets: &BTreeSet<StatsTarget>,
) -> Result<Stats, String> {
    fetch_over(console, targets, &INTERVALS, &["0.5", "0.9", "0.99"]).await
}

/// The stats of `targets` over the compact map's intervals, with its quantiles (Kiali's
/// `buildQueriesFromSpans(…, isCompact = true)`): at most [`MAX_TARGETS`] × 2 queries.
pub(super) async fn fetch_compact(
    console: &Console,
    targets: &BTreeSet<StatsTarget>,
) -> Result<Stats, String> {
    fetch_over(console, targets, &COMPACT_INTERVALS, &["0.5", "0.9"]).await
}

async fn fetch_over(
    console: &Console,
    targets: &BTreeSet<StatsTarget>,
    intervals: &[&str],
    quantiles: &[&str],
) -> Result<Stats, String> {
    if targets.is_empty() {
        return Ok(Stats::default());
    }
    let time = now_seconds();
    let queries: Vec<Value> = targets
        .iter()
        .flat_map(|t| intervals.iter().map(move |i| t.query(i, time, quantiles)))
        .collect();
    let answer = crate::metrics_api::stats_answer(console, &queries)
        .await
        .map_err(|e| e.error)?;
    Ok(Stats::read(&answer))
}

/// The targets a trace's page asks for: those of its first Envoy spans, up to
/// [`MAX_TARGETS`] distinct ones, plus those of the spans named in `loaded` (at most
/// [`MAX_LOADED`]).
pub(super) fn targets<'a>(
    spans: impl Iterator<Item = &'a Span>,
    loaded: &[String],
) -> BTreeSet<StatsTarget> {
    let mut first = BTreeSet::new();
    let mut extra = BTreeSet::new();
    for span in spans {
        let Some(target) = StatsTarget::of(span) else {
            continue;
        };
        if first.len() < MAX_TARGETS {
            first.insert(target);
        } else if extra.len() < MAX_LOADED
            && loaded.iter().any(|id| *id == span.span_id.to_string())
        {
            extra.insert(target);
        }
    }
    first.extend(extra);
    first
}

/// The percentile filter's values in ms (`p75`, `p90`, `p99`) from the metrics of the page's
/// app, workload or service over the last hour: inbound, plus outbound unless a service, the
/// mean of both when both answer (Kiali's `fetchPercentiles`). A value missing from the answer
/// is missing from the map; an error says which metrics source failed and why.
pub(super) async fn percentiles(
    console: &Console,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> Result<HashMap<&'static str, f64>, String> {
    let kind = match kind {
        Kind::App => "app",
        Kind::Workload => "workload",
        Kind::Service => "service",
    };
    let directions: &[&str] = if kind == "service" {
        &["inbound"]
    } else {
        &["inbound", "outbound"]
    };
    let time = now_seconds();
    let queries: Vec<Value> = directions
        .iter()
        .map(|direction| {
            json!({
                "target": {"namespace": namespace, "name": name, "kind": kind},
                "queryTime": time,
                "interval": "1h",
                "direction": direction,
                "avg": false,
                "quantiles": ["0.75", "0.9", "0.99"],
            })
        })
        .collect();
    let answer = crate::metrics_api::stats_answer(console, &queries)
        .await
        .map_err(|e| e.error)?;
    let stats = Stats::read(&answer);
    let side = |direction: &str| {
        let reporter = if direction == "outbound" {
            "source"
        } else {
            "destination"
        };
        stats.by_key.get(&format!(
            "{namespace}:{kind}:{name}::{direction}:1h:{reporter}"
        ))
    };
    let mut out = HashMap::new();
    for (quantile, label) in [("0.75", "p75"), ("0.9", "p90"), ("0.99", "p99")] {
        let value = |direction: &str| {
            side(direction)?
                .iter()
                .find(|(n, _)| n == quantile)
                .map(|(_, v)| *v)
                // Kiali takes a zero as no value.
                .filter(|v| *v != 0.0 && v.is_finite())
        };
        let merged = match (value("inbound"), value("outbound")) {
            (Some(a), Some(b)) => Some((a + b) / 2.0),
            (a, b) => a.or(b),
        };
        if let Some(v) = merged {
            out.insert(label, v);
        }
    }
    Ok(out)
}
