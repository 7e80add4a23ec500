//! The "Compared with metrics" heatmaps: rows of intervals, columns of stats (avg, p50, p90,
//! p99; avg, p50, p90 in the scatter's compact tooltip map), each cell how many ms a span was longer (+) or shorter (−) than the stat of its
//! workload — for one span (the span table) or the mean over a trace's Envoy spans (Kiali's
//! `reduceMetricsStats`, the trace details). Cells are coloured on Kiali's −10…+10 ms scale
//! by a class a millisecond (`hm0`…`hm20`, in meshtrace.css: the CSP allows no inline style).

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use meshtrace_model::{Span, Trace};

use super::metrics_stats::{Stats, StatsTarget};

pub(super) struct Cell {
    /// The column's label (`avg`, `p50`…).
    pub(super) stat: &'static str,
    /// `+1.2`, `-0.4`, or `n/a`.
    pub(super) text: String,
    pub(super) class: String,
    pub(super) title: String,
    /// The difference in ms at full precision (empty for `n/a`), for the tests and tools.
    pub(super) value: String,
}

pub(super) struct Row {
    pub(super) interval: &'static str,
    pub(super) cells: Vec<Cell>,
}

pub(super) struct Heatmap {
    pub(super) columns: Vec<&'static str>,
    pub(super) rows: Vec<Row>,
}

fn stat_words(stat: &str) -> &'static str {
    match stat {
        "avg" => "average",
        "0.5" => "median",
        "0.9" => "90th percentile",
        "0.99" => "99th percentile",
        _ => "statistic",
    }
}

/// The class of a difference on Kiali's −10…+10 ms scale.
fn class(diff: f64) -> String {
    let clamped = diff.clamp(-10.0, 10.0).round();
    // In −10…10 after the clamp: the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    let step = clamped as i64;
    format!("hm{}", step.saturating_add(10))
}

fn text(diff: f64) -> String {
    let rounded = (diff * 10.0).round() / 10.0;
    if rounded == 0.0 {
        "0.0".to_string()
    } else {
        format!("{rounded:+.1}")
    }
}

fn cell(stat: &'static str, diff: Option<f64>, title: impl Fn(f64) -> String) -> Cell {
    match diff {
        Some(d) if d.is_finite() => Cell {
            stat,
            text: text(d),
            class: class(d),
            title: title(d),
            value: d.to_string(),
        },
        _ => Cell {
            stat,
            text: "n/a".into(),
            class: "hm-na".into(),
            title: "No statistics".into(),
            value: String::new(),
        },
    }
}

fn slower(d: f64) -> (f64, &'static str) {
    (d.abs(), if d > 0.0 { "slower" } else { "faster" })
}

/// The stat named `name` among `times`.
fn stat(times: &[(String, f64)], name: &str) -> Option<f64> {
    times.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

/// The span's heatmap over `intervals` (`n/a` where the metrics have no sample).
pub(super) fn span_heatmap(
    span: &Span,
    target: &StatsTarget,
    stats: &Stats,
    intervals: &[&'static str],
    columns: &[(&'static str, &'static str)],
) -> Heatmap {
    let found: Vec<Option<&[(String, f64)]>> =
        intervals.iter().map(|i| stats.get(target, i)).collect();
    let ms = span.duration as f64 / 1000.0;
    let to = if target.direction == "inbound" {
        "to"
    } else {
        "from"
    };
    grid(
        intervals,
        columns,
        |row, name| {
            let times = found.get(row).copied().flatten()?;
            stat(times, name).map(|s| ms - s)
        },
        |interval, name, d| {
            let (abs, word) = slower(d);
            format!(
                "This request has been {abs:.2} ms {word} than the {} of all {} requests {to} {} in the last {interval}",
                stat_words(name),
                target.direction,
                target.workload,
            )
        },
    )
}

/// A heatmap of `value(row, stat)` over `intervals` × `columns`.
fn grid(
    intervals: &[&'static str],
    columns: &[(&'static str, &'static str)],
    value: impl Fn(usize, &str) -> Option<f64>,
    title: impl Fn(&str, &str, f64) -> String,
) -> Heatmap {
    let rows = intervals
        .iter()
        .enumerate()
        .map(|(i, interval)| Row {
            interval,
            cells: columns
                .iter()
                .map(|(name, label)| cell(label, value(i, name), |d| title(interval, name, d)))
                .collect(),
        })
        .collect();
    Heatmap {
        columns: columns.iter().map(|(_, label)| *label).collect(),
        rows,
    }
}

/// The trace's heatmap: each cell the mean over its Envoy spans of (duration − stat); and
/// whether some Envoy span had no stats at all ("Incomplete data").
pub(super) struct TraceComparison {
    pub(super) heatmap: Heatmap,
    pub(super) incomplete: bool,
    /// Envoy spans compared (with stats) and in all.
    pub(super) compared: usize,
    pub(super) envoy: usize,
}

pub(super) fn trace_heatmap(
    trace: &Trace,
    stats: &Stats,
    intervals: &[&'static str],
    columns: &[(&'static str, &'static str)],
) -> TraceComparison {
    let mut sums = vec![vec![(0.0f64, 0u32); columns.len()]; intervals.len()];
    let (mut envoy, mut compared) = (0usize, 0usize);
    for span in &trace.spans {
        // Kiali counts the Envoy spans; a span whose workload is unknown counts as missing.
        if meshtrace_mesh::tag_str(span, "component") != Some("proxy") {
            continue;
        }
        envoy = envoy.saturating_add(1);
        let Some(target) = StatsTarget::of(span) else {
            continue;
        };
        let ms = span.duration as f64 / 1000.0;
        let mut any = false;
        for (interval, row) in intervals.iter().zip(sums.iter_mut()) {
            let Some(times) = stats.get(&target, interval) else {
                continue;
            };
            for ((name, _), slot) in columns.iter().zip(row.iter_mut()) {
                if let Some(s) = stat(times, name) {
                    slot.0 += ms - s;
                    slot.1 = slot.1.saturating_add(1);
                    any = true;
                }
            }
        }
        if any {
            compared = compared.saturating_add(1);
        }
    }
    let heatmap = grid(
        intervals,
        columns,
        |row, name| {
            let column = columns.iter().position(|(n, _)| *n == name)?;
            let (sum, n) = *sums.get(row)?.get(column)?;
            (n > 0).then(|| sum / f64::from(n))
        },
        |interval, name, d| {
            let (abs, word) = slower(d);
            format!(
                "Trace requests have been, in average, {abs:.2} ms {word} than the {} of the requests involving the same workloads in the last {interval}",
                stat_words(name)
            )
        },
    );
    TraceComparison {
        heatmap,
        incomplete: compared < envoy,
        compared,
        envoy,
    }
}

#[cfg(test)]
mod tests {
    use super::{class, text};

    #[test]
    fn cells_read_kialis_scale() {
        assert_eq!(class(-25.0), "hm0");
        assert_eq!(class(-10.0), "hm0");
        assert_eq!(class(0.2), "hm10");
        assert_eq!(class(3.6), "hm14");
        assert_eq!(class(1e300), "hm20");
        assert_eq!(text(1.26), "+1.3");
        assert_eq!(text(-0.04), "0.0");
        assert_eq!(text(-4.0), "-4.0");
    }
}
