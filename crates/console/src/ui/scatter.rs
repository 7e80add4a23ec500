//! The Traces tab's scatter chart, laid out on the server: x the trace's start, y its duration
//! (or its spans' average), size `min(30, spans + 2)`, errors red, the selected trace
//! highlighted. The template draws it as SVG; every point is a link that selects its trace.

use meshtrace_mesh::stats::TraceSummary;

use meshtrace_model::time::{format_duration, format_time};

use super::plot::{Frame, nice_ceiling};

pub const WIDTH: f64 = 960.0;
pub const HEIGHT: f64 = 320.0;
/// The margins: left, right, top, bottom.
const MARGINS: [f64; 4] = [70.0, 20.0, 16.0, 40.0];

#[derive(Debug, Clone)]
pub struct Point {
    pub cx: String,
    pub cy: String,
    pub r: String,
    /// `point`, `point error`, with ` selected` for the selected trace.
    pub class: String,
    pub href: String,
    pub trace_id: String,
    /// The hover text: root operation, trace ID prefix, duration, spans, errors.
    pub title: String,
    pub start: u64,
    pub value: u64,
    pub spans: usize,
}

#[derive(Debug, Clone)]
pub struct Tick {
    pub pos: String,
    pub label: String,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub frame: Frame,
    pub points: Vec<Point>,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    pub y_label: &'static str,
}

/// Lays out `traces` over the window `[start, end]` (µs). `href` gives each point's link.
pub fn chart(
    traces: &[TraceSummary],
    window: (u64, u64),
    spans_average: bool,
    selected: &str,
    href: impl Fn(&str) -> String,
) -> Chart {
    let (start, end) = (window.0, window.1.max(window.0.saturating_add(1)));
    let value = |t: &TraceSummary| {
        if spans_average {
            t.average_span
        } else {
            t.duration
        }
    };
    let top_value = traces.iter().map(value).max().unwrap_or(0).max(1000);
    let y_max = nice_ceiling(top_value as f64 * 1.1);
    let frame = Frame::new(WIDTH, HEIGHT, MARGINS);
    let (plot_w, plot_h) = (frame.plot_width(), frame.plot_height());
    let x = |t: u64| {
        frame.left
            + t.clamp(start, end).saturating_sub(start) as f64 / end.saturating_sub(start) as f64
                * plot_w
    };
    let y = |v: u64| frame.bottom - (v as f64 / y_max) * plot_h;

    let mut points: Vec<Point> = traces
        .iter()
        .map(|t| {
            let size = t.spans.saturating_add(2).min(30) as f64;
            let mut class = String::from("point");
            if t.has_error() {
                class.push_str(" error");
            }
            if t.trace_id == selected {
                class.push_str(" selected");
            }
            let name = t
                .root_operation
                .as_deref()
                .unwrap_or("<trace-without-root-span>");
            Point {
                cx: format!("{:.1}", x(t.start)),
                cy: format!("{:.1}", y(value(t))),
                r: format!("{:.1}", (size / 2.0).max(2.5)),
                class,
                href: href(&t.trace_id),
                trace_id: t.trace_id.clone(),
                title: format!(
                    "{name} ({}) — {}, {} spans{}",
                    t.trace_id.get(..7).unwrap_or(&t.trace_id),
                    format_duration(value(t)),
                    t.spans,
                    if t.has_error() {
                        format!(", {} with error", t.error_spans)
                    } else {
                        String::new()
                    }
                ),
                start: t.start,
                value: value(t),
                spans: t.spans,
            }
        })
        .collect();
    // Errors over the others, the selected trace over all.
    points.sort_by_key(|p| (p.class.contains("selected"), p.class.contains("error")));

    let x_ticks = (0..=5)
        .map(|i| {
            let t = start.saturating_add((end.saturating_sub(start) / 5).saturating_mul(i));
            let label = format_time(t);
            let label = if end.saturating_sub(start) <= 86_400_000_000 {
                label.get(11..)
            } else {
                label.get(5..16)
            }
            .unwrap_or(&label)
            .to_string();
            Tick {
                pos: format!("{:.1}", x(t)),
                label,
            }
        })
        .collect();
    let y_ticks = (0..=4)
        .map(|i| {
            let v = (y_max / 4.0 * i as f64) as u64;
            Tick {
                pos: format!("{:.1}", y(v)),
                label: format_duration(v),
            }
        })
        .collect();
    Chart {
        frame,
        points,
        x_ticks,
        y_ticks,
        y_label: if spans_average {
            "spans average duration"
        } else {
            "trace duration"
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn summary(id: &str, start: u64, duration: u64, spans: usize, errors: usize) -> TraceSummary {
        TraceSummary {
            trace_id: id.into(),
            root_operation: Some("GET /productpage".into()),
            root_service: None,
            start,
            duration,
            spans,
            apps: BTreeSet::new(),
            error_spans: errors,
            average_span: duration / 2,
        }
    }

    #[test]
    fn points_are_placed_sized_and_coloured() {
        let traces = [
            summary("aaaaaaaaaa", 1_000_000, 40_000, 8, 0),
            summary("bbbbbbbbbb", 2_000_000, 80_000, 40, 2),
        ];
        let c = chart(&traces, (1_000_000, 3_000_000), false, "aaaaaaaaaa", |id| {
            format!("?traceId={id}")
        });
        // Errors first, the selected one last.
        assert_eq!(c.points[0].trace_id, "bbbbbbbbbb");
        assert_eq!(c.points[0].class, "point error");
        assert_eq!(c.points[0].r, "15.0");
        assert_eq!(c.points[1].class, "point selected");
        assert_eq!(c.points[1].r, "5.0");
        assert_eq!(c.points[1].cx, "70.0");
        assert_eq!(c.points[0].cx, "505.0");
        // y: 80 ms × 1.1 rounds up to 100 ms at the top of the plot.
        assert_eq!(c.y_ticks[4].label, "100.0ms");
        assert_eq!(c.points[0].cy, format!("{:.1}", 16.0 + 264.0 * 0.2));
        assert_eq!(
            c.points[0].title,
            "GET /productpage (bbbbbbb) — 80.0ms, 40 spans, 2 with error"
        );
        assert_eq!(c.points[1].href, "?traceId=aaaaaaaaaa");
    }

    #[test]
    fn a_window_at_the_end_of_time_draws_without_overflow() {
        let traces = [summary("cccccccccc", u64::MAX, u64::MAX, usize::MAX, 1)];
        let c = chart(&traces, (u64::MAX, u64::MAX), true, "", |_| String::new());
        assert_eq!(c.points.len(), 1);
        assert_eq!(c.points[0].r, "15.0");
        assert_eq!(c.x_ticks.len(), 6);
    }
}
