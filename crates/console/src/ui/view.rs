//! The state of a page, all of it in the URL so every view can be bookmarked and shared:
//! namespaces, time range, refresh interval, and on detail pages the tab and the Traces tab's
//! options (Kiali's names: `tab`, `traceId`, `limit`, `errs`, `showSpansAvg`, `percentile`).

use meshtrace_model::time::{now_micros, parse_minute};
// The page modules import their formats from the view too; they live in the model.
pub use meshtrace_model::time::{ago, format_duration, format_time};

/// The time ranges offered, in seconds, with their labels.
pub const RANGES: [(u64, &str); 8] = [
    (300, "Last 5m"),
    (600, "Last 10m"),
    (1800, "Last 30m"),
    (3600, "Last 1h"),
    (10800, "Last 3h"),
    (21600, "Last 6h"),
    (86400, "Last 1d"),
    (604800, "Last 7d"),
];
pub const REFRESH: [(u64, &str); 5] = [
    (0, "Pause"),
    (10, "Every 10s"),
    (30, "Every 30s"),
    (60, "Every 1m"),
    (300, "Every 5m"),
];
pub const LIMITS: [usize; 4] = [20, 100, 500, 1000];
pub const PERCENTILES: [&str; 3] = ["p75", "p90", "p99"];

#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub namespaces: Vec<String>,
    /// Seconds back from now, unless `from`/`to` are set.
    pub duration: u64,
    /// A custom range, `YYYY-MM-DDTHH:MM` in UTC (what a datetime-local input sends).
    pub from: String,
    pub to: String,
    pub refresh: u64,
    pub tab: String,
    pub trace_id: String,
    pub limit: Option<usize>,
    pub errors_only: bool,
    pub spans_average: bool,
    pub percentile: String,
    /// Span table filters.
    pub span_workload: String,
    pub span_app: String,
    pub span_component: String,
    pub span_operation: String,
    /// `with` or `without` (errors), or empty.
    pub span_error: String,
    /// Spans whose metrics statistics were asked for ("Load statistics"), bounded.
    pub stats_spans: Vec<String>,
}

impl View {
    pub fn parse(raw: Option<&str>) -> View {
        let mut view = View {
            namespaces: Vec::new(),
            duration: 600,
            from: String::new(),
            to: String::new(),
            refresh: 0,
            tab: String::new(),
            trace_id: String::new(),
            limit: None,
            errors_only: false,
            spans_average: false,
            percentile: String::new(),
            span_workload: String::new(),
            span_app: String::new(),
            span_component: String::new(),
            span_operation: String::new(),
            span_error: String::new(),
            stats_spans: Vec::new(),
        };
        for (key, value) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            match key.as_ref() {
                "namespaces" => view.namespaces.extend(
                    value
                        .split(',')
                        .filter(|n| !n.is_empty())
                        .map(str::to_string),
                ),
                "duration" => {
                    if let Some(d) = value
                        .parse()
                        .ok()
                        .filter(|d| RANGES.iter().any(|r| r.0 == *d))
                    {
                        view.duration = d;
                    }
                }
                "from" => view.from = value.into_owned(),
                "to" => view.to = value.into_owned(),
                "refresh" => view.refresh = value.parse().unwrap_or(0),
                "tab" => view.tab = value.into_owned(),
                "traceId" => view.trace_id = value.into_owned(),
                "limit" => view.limit = value.parse().ok().filter(|l| LIMITS.contains(l)),
                "errs" => view.errors_only = value == "true",
                "showSpansAvg" => view.spans_average = value == "true",
                "spanWorkload" => view.span_workload = value.into_owned(),
                "spanApp" => view.span_app = value.into_owned(),
                "spanComponent" => view.span_component = value.into_owned(),
                "spanOperation" => view.span_operation = value.into_owned(),
                "statsSpans" => {
                    view.stats_spans = value
                        .split(',')
                        .filter(|id| (1..=16).contains(&id.len()))
                        .take(super::metrics_stats::MAX_LOADED)
                        .map(str::to_string)
                        .collect();
                }
                "spanError" if value == "with" || value == "without" => {
                    view.span_error = value.into_owned();
                }
                "percentile" if PERCENTILES.contains(&value.as_ref()) => {
                    view.percentile = value.into_owned();
                }
                _ => {}
            }
        }
        view.namespaces.sort();
        view.namespaces.dedup();
        view
    }

    /// The Traces tab and its display options that are set, as query pairs.
    pub fn tab_options(&self) -> Vec<(&'static str, String)> {
        let flag = |on: bool| {
            if on {
                "true".to_string()
            } else {
                String::new()
            }
        };
        [
            ("tab", self.tab.clone()),
            (
                "limit",
                self.limit.map(|l| l.to_string()).unwrap_or_default(),
            ),
            ("errs", flag(self.errors_only)),
            ("showSpansAvg", flag(self.spans_average)),
            ("percentile", self.percentile.clone()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect()
    }

    /// What navigation keeps: namespaces, time range and refresh, none of a page's options.
    pub fn navigation(&self) -> View {
        View {
            namespaces: self.namespaces.clone(),
            duration: self.duration,
            from: self.from.clone(),
            to: self.to.clone(),
            refresh: self.refresh,
            ..View::parse(None)
        }
    }

    /// The window in µs since the epoch: the custom range when both ends parse, else the last
    /// `duration` seconds.
    pub fn window(&self) -> (u64, u64) {
        if let (Some(from), Some(to)) = (parse_minute(&self.from), parse_minute(&self.to))
            && from < to
        {
            return (from, to);
        }
        let now = now_micros();
        (
            now.saturating_sub(self.duration.saturating_mul(1_000_000)),
            now,
        )
    }

    pub fn custom(&self) -> bool {
        parse_minute(&self.from).is_some() && parse_minute(&self.to).is_some()
    }

    /// The query string of this view with some keys replaced (`None` drops a key).
    pub fn query(&self, changes: &[(&str, Option<String>)]) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if !self.namespaces.is_empty() {
            pairs.push(("namespaces", self.namespaces.join(",")));
        }
        if self.custom() {
            pairs.push(("from", self.from.clone()));
            pairs.push(("to", self.to.clone()));
        } else if self.duration != 600 {
            pairs.push(("duration", self.duration.to_string()));
        }
        if self.refresh != 0 {
            pairs.push(("refresh", self.refresh.to_string()));
        }
        pairs.extend(self.tab_options());
        for (key, value) in [
            ("traceId", self.trace_id.clone()),
            ("spanWorkload", self.span_workload.clone()),
            ("spanApp", self.span_app.clone()),
            ("spanComponent", self.span_component.clone()),
            ("spanOperation", self.span_operation.clone()),
            ("spanError", self.span_error.clone()),
            ("statsSpans", self.stats_spans.join(",")),
        ] {
            if !value.is_empty() {
                pairs.push((key, value));
            }
        }
        for (key, value) in changes {
            pairs.retain(|(k, _)| k != key);
            if let Some(value) = value {
                pairs.push((key, value.clone()));
            }
        }
        if pairs.is_empty() {
            return String::new();
        }
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            out.append_pair(k, &v);
        }
        format!("?{}", out.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_round_trip_through_the_url() {
        let view = View::parse(Some(
            "namespaces=travel,bookinfo&duration=3600&tab=traces&limit=500&errs=true&traceId=ab&unknown=1",
        ));
        assert_eq!(view.namespaces, ["bookinfo", "travel"]);
        assert_eq!(view.duration, 3600);
        assert!(view.errors_only);
        assert_eq!(
            view.query(&[("traceId", Some("cd".into()))]),
            "?namespaces=bookinfo%2Ctravel&duration=3600&tab=traces&limit=500&errs=true&traceId=cd"
        );
        assert_eq!(View::parse(Some("limit=7&duration=5")).query(&[]), "");
    }

    #[test]
    fn times_convert_both_ways() {
        let view = View::parse(Some("from=2026-11-24T07:00&to=2026-11-24T08:00"));
        assert_eq!(view.window().1 - view.window().0, 3_600_000_000);
    }

    #[test]
    fn hostile_dates_are_no_custom_range() {
        for from in [
            "9223372036854775807-01-01T00:00",
            "2026-11-24T-9223372036854775808:00",
        ] {
            let view = View::parse(Some(&format!("from={from}&to=2026-11-24T08:00")));
            assert!(!view.custom(), "{from}");
            let (start, end) = view.window();
            assert!(start < end, "{from}: the last ten minutes");
        }
    }
}
