//! The metrics tabs' line charts, laid out on the server as Kiali's Istio dashboard draws them:
//! one chart a metric, x the query's window, y from zero to a round maximum, each series a
//! polyline (a gap where Prometheus answered `NaN`), ticks with the chart's unit, and on the
//! duration chart the Spans overlay's points. The template writes the SVG; every text is
//! escaped there.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use super::plot::{Frame, nice_ceiling};

pub const WIDTH: f64 = 620.0;
pub const HEIGHT: f64 = 260.0;
/// The margins: left, right, top, bottom.
const MARGINS: [f64; 4] = [72.0, 12.0, 12.0, 34.0];
/// Series drawn on one chart; the rest are counted, not drawn.
pub const MAX_SERIES: usize = 12;
/// Span points drawn on the duration chart.
pub const MAX_SPAN_POINTS: usize = 5000;

/// How a chart's values read (Kiali's dashboard units).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unit {
    /// Requests a second.
    Ops,
    Seconds,
    Bytes,
    /// Bits a second.
    Bitrate,
    /// Connections a second.
    ConnRate,
    /// Messages a second.
    MsgRate,
}

impl Unit {
    pub fn label(self) -> &'static str {
        match self {
            Unit::Ops => "ops/s",
            Unit::Seconds => "seconds",
            Unit::Bytes => "bytes",
            Unit::Bitrate => "bit/s",
            Unit::ConnRate => "connections/s",
            Unit::MsgRate => "messages/s",
        }
    }

    /// A value of this unit as a tick or tooltip says it.
    pub fn format(self, v: f64) -> String {
        let scaled = |steps: &[(f64, &str)], suffix: &str| {
            let (div, prefix) = steps
                .iter()
                .rev()
                .find(|(d, _)| v.abs() >= *d)
                .copied()
                .unwrap_or((1.0, ""));
            format!("{}{prefix}{suffix}", short(v / div))
        };
        match self {
            Unit::Ops => short(v),
            Unit::ConnRate | Unit::MsgRate => format!("{}/s", short(v)),
            Unit::Seconds if v != 0.0 && v.abs() < 1.0 => format!("{}ms", short(v * 1000.0)),
            Unit::Seconds => format!("{}s", short(v)),
            Unit::Bytes => scaled(&[(1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "G")], "B"),
            Unit::Bitrate => scaled(&[(1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "G")], "bit/s"),
        }
    }
}

/// At most three significant decimals, no trailing zeros.
fn short(v: f64) -> String {
    let text = format!("{v:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// One series as given: its legend text and `(unix seconds, value)` points.
pub struct Input {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// One span of the overlay: start (unix seconds), duration (seconds), error, link and ids.
pub struct SpanInput {
    pub start: f64,
    pub duration: f64,
    pub error: bool,
    pub href: String,
    pub trace_id: String,
    pub span_id: String,
    pub title: String,
}

#[derive(Debug, Clone)]
pub struct Tick {
    pub pos: String,
    pub label: String,
    /// The tick's value in the chart's unit (seconds since the epoch on the x axis).
    pub value: String,
}

#[derive(Debug, Clone)]
pub struct Drawn {
    pub label: String,
    /// `series series-<n>`.
    pub class: String,
    /// One polyline a run of finite values.
    pub lines: Vec<String>,
    pub last: Option<(String, String)>,
    pub last_text: String,
}

#[derive(Debug, Clone)]
pub struct SpanPoint {
    pub cx: String,
    pub cy: String,
    pub class: &'static str,
    pub href: String,
    pub trace_id: String,
    pub span_id: String,
    pub title: String,
}

#[derive(Debug, Clone)]
pub struct Chart {
    /// The Kiali metric name, also the chart's element id (`chart-<id>`).
    pub id: &'static str,
    pub title: &'static str,
    pub unit: &'static str,
    pub frame: Frame,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    pub series: Vec<Drawn>,
    /// Series not drawn past [`MAX_SERIES`].
    pub hidden: usize,
    pub spans: Vec<SpanPoint>,
    pub spans_hidden: usize,
    pub empty: bool,
}

/// Lays out one chart over `[start, end]` (unix seconds).
pub fn chart(
    (id, title, unit): (&'static str, &'static str, Unit),
    window: (f64, f64),
    inputs: Vec<Input>,
    spans: &[SpanInput],
) -> Chart {
    let (start, end) = (window.0, window.1.max(window.0 + 1.0));
    let frame = Frame::new(WIDTH, HEIGHT, MARGINS);
    let (plot_w, plot_h) = (frame.plot_width(), frame.plot_height());
    let hidden = inputs.len().saturating_sub(MAX_SERIES);
    let drawn_inputs: Vec<Input> = inputs.into_iter().take(MAX_SERIES).collect();
    let span_list = spans.get(..MAX_SPAN_POINTS.min(spans.len())).unwrap_or(&[]);
    let max = drawn_inputs
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(span_list.iter().map(|s| s.duration))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    // A round step near a quarter of the range.
    let step = nice_ceiling(max / 4.0);
    let top_value = if max <= 0.0 {
        step * 4.0
    } else {
        (max / step).ceil() * step
    };
    let x = |t: f64| frame.left + (t - start) / (end - start) * plot_w;
    let y = |v: f64| frame.bottom - v / top_value * plot_h;
    let mut y_ticks = Vec::new();
    let mut v = 0.0;
    while v <= top_value * 1.000_001 {
        y_ticks.push(Tick {
            pos: format!("{:.1}", y(v)),
            label: unit.format(v),
            value: format!("{v}"),
        });
        v += step;
    }
    let x_step = nice_time_step(end - start);
    let mut x_ticks = Vec::new();
    let mut t = (start / x_step).ceil() * x_step;
    while t <= end {
        x_ticks.push(Tick {
            pos: format!("{:.1}", x(t)),
            label: clock(t, x_step),
            value: format!("{t}"),
        });
        t += x_step;
    }
    let mut empty = true;
    let series = drawn_inputs
        .into_iter()
        .enumerate()
        .map(|(index, input)| {
            let mut lines = Vec::new();
            let mut current = String::new();
            let mut last = None;
            let mut last_text = String::new();
            for (t, v) in &input.points {
                if v.is_finite() && t.is_finite() {
                    empty = false;
                    let (px, py) = (format!("{:.2}", x(*t)), format!("{:.2}", y(*v)));
                    if !current.is_empty() {
                        current.push(' ');
                    }
                    current.push_str(&format!("{px},{py}"));
                    last = Some((px, py));
                    last_text = unit.format(*v);
                } else if !current.is_empty() {
                    lines.push(std::mem::take(&mut current));
                }
            }
            if !current.is_empty() {
                lines.push(current);
            }
            Drawn {
                label: input.label,
                class: format!("series series-{}", index % 10),
                lines,
                last,
                last_text,
            }
        })
        .collect();
    let span_points = span_list
        .iter()
        .filter(|s| s.duration.is_finite() && s.start.is_finite())
        .map(|s| SpanPoint {
            cx: format!("{:.2}", x(s.start.clamp(start, end))),
            cy: format!("{:.2}", y(s.duration)),
            class: if s.error {
                "span-point error"
            } else {
                "span-point"
            },
            href: s.href.clone(),
            trace_id: s.trace_id.clone(),
            span_id: s.span_id.clone(),
            title: s.title.clone(),
        })
        .collect();
    Chart {
        id,
        title,
        unit: unit.label(),
        frame,
        x_ticks,
        y_ticks,
        series,
        hidden,
        spans: span_points,
        spans_hidden: spans.len().saturating_sub(MAX_SPAN_POINTS),
        empty,
    }
}

/// A round time step giving four to eight ticks over `range` seconds.
fn nice_time_step(range: f64) -> f64 {
    [
        15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0,
        43200.0, 86400.0,
    ]
    .into_iter()
    .find(|s| range / s <= 8.0)
    .unwrap_or(86400.0)
}

/// `HH:MM` (UTC), with seconds when ticks are less than a minute apart; the date for days.
fn clock(t: f64, step: f64) -> String {
    #[allow(clippy::cast_possible_truncation)]
    let secs = (t as i64).rem_euclid(86_400);
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if step < 60.0 {
        format!("{h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_as_kiali_shows_them() {
        assert_eq!(Unit::Seconds.format(0.25), "250ms");
        assert_eq!(Unit::Seconds.format(1.5), "1.5s");
        assert_eq!(Unit::Bytes.format(2048.0), "2.048kB");
        assert_eq!(Unit::Bitrate.format(8.0e6), "8Mbit/s");
        assert_eq!(Unit::Ops.format(0.0), "0");
    }

    #[test]
    fn ticks_are_round_and_cover_the_values() {
        let input = Input {
            label: "avg".into(),
            points: vec![(0.0, 1.0), (30.0, f64::NAN), (60.0, 7.3), (90.0, 2.0)],
        };
        let c = chart(("x", "X", Unit::Ops), (0.0, 90.0), vec![input], &[]);
        let labels: Vec<&str> = c.y_ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0", "2", "4", "6", "8"]);
        // The NaN splits the line in two.
        assert_eq!(c.series[0].lines.len(), 2);
        assert!(!c.empty);
    }
}
