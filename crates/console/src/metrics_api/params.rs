//! The query string of Kiali's metrics routes, read as Kiali reads it
//! (`handlers/metrics.go`): its parameter names only (`unsupported query parameter 'x'`
//! otherwise), its defaults (outbound, reporter `source`, the last 30 minutes every 15 s, a
//! `1m` rate window, `rate`, the average and no quantile) and its messages. Two checks are
//! added: a `step` of at least one second, and no more points per series than Prometheus
//! answers (11,000), said before Prometheus is asked.

use std::time::Duration;

use meshtrace_backend::prometheus::promql::{Function, LabelName};

use super::queries::{Direction, TargetKind};

/// The parameters Kiali's app, workload, service and namespace metrics routes take.
const NAMES: [&str; 13] = [
    "avg",
    "byLabels[]",
    "clusterName",
    "direction",
    "duration",
    "filters[]",
    "quantiles[]",
    "queryTime",
    "rateFunc",
    "rateInterval",
    "reporter",
    "requestProtocol",
    "step",
];

/// Prometheus's limit on the points of one series of a range query.
pub const MAX_POINTS: i64 = 11_000;
/// Quantiles one request may ask for (each is one more query per histogram).
pub const MAX_QUANTILES: usize = 10;
/// Labels one request may group by.
pub const MAX_BY_LABELS: usize = 16;

/// A metrics request, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsQuery {
    pub namespace: String,
    /// `None` for the namespace route.
    pub target: Option<(TargetKind, String)>,
    pub cluster: Option<String>,
    /// Kiali metric names; empty means all of them. Unknown names select nothing.
    pub filters: Vec<String>,
    pub direction: Direction,
    /// `None` for `both`.
    pub reporters: Option<Vec<String>>,
    pub request_protocol: Option<String>,
    pub rate_interval: Duration,
    pub rate_func: Function,
    /// Each as given (it names the stat in the answer), with its value.
    pub quantiles: Vec<(String, f64)>,
    pub avg: bool,
    pub by_labels: Vec<LabelName>,
    /// Unix seconds; the start is a multiple of the step.
    pub start: i64,
    pub end: i64,
    pub step: i64,
    /// `duration` as asked (the start is then floored to the step).
    pub duration: i64,
}

fn bad(message: impl Into<String>) -> String {
    message.into()
}

/// Go's `strconv.ParseBool`.
fn go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(text, 10, 64)`: an optional sign and decimal digits.
fn go_int(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Kiali's shape of a rate interval: `^([0-9]+(ms|s|m|h|d|w|y))+$`.
fn kiali_duration_shape(text: &str) -> bool {
    let mut rest = text;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = rest.get(digits..).unwrap_or("");
        let unit = ["ms", "s", "m", "h", "d", "w", "y"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(u) => rest = rest.get(u.len()..).unwrap_or(""),
            None => return false,
        }
    }
    true
}

impl MetricsQuery {
    /// The request for `namespace` (and `target`) with the query string `raw`, at `now`
    /// (Unix seconds). The error is Kiali's message, for a 400.
    pub fn parse(
        namespace: &str,
        target: Option<(TargetKind, String)>,
        raw: Option<&str>,
        now: i64,
    ) -> Result<MetricsQuery, String> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        if let Some((name, _)) = pairs.iter().find(|(n, _)| !NAMES.contains(&n.as_str())) {
            return Err(bad(format!("unsupported query parameter '{name}'")));
        }
        // Go's `Values.Get`: the first value; `Values[name]`: all of them.
        let first = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let all = |name: &str| -> Vec<&str> {
            pairs
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let mut q = MetricsQuery {
            namespace: namespace.to_string(),
            target,
            cluster: first("clusterName").map(str::to_string),
            filters: all("filters[]").into_iter().map(str::to_string).collect(),
            direction: Direction::Outbound,
            reporters: Some(vec!["source".to_string()]),
            request_protocol: first("requestProtocol").map(str::to_string),
            rate_interval: Duration::from_secs(60),
            rate_func: Function::Rate,
            quantiles: Vec::new(),
            avg: true,
            by_labels: Vec::new(),
            start: 0,
            end: now,
            step: 15,
            duration: 1800,
        };
        if let Some(direction) = first("direction") {
            q.direction = Direction::parse(direction).ok_or_else(|| {
                bad("bad request, query parameter 'direction' must be either 'inbound' or 'outbound'")
            })?;
        }
        if let Some(reporter) = first("reporter") {
            q.reporters = parse_reporter(reporter)?;
        }
        if let Some(interval) = first("rateInterval") {
            let invalid = || {
                bad(format!(
                    "bad request, invalid 'rateInterval' value: {interval:?}"
                ))
            };
            if !kiali_duration_shape(interval) {
                return Err(invalid());
            }
            q.rate_interval = meshtrace_model::time::parse_prometheus_duration(interval)
                .filter(|d| d.as_millis() > 0)
                .ok_or_else(invalid)?;
        }
        if let Some(function) = first("rateFunc") {
            q.rate_func = match function {
                "rate" => Function::Rate,
                "irate" => Function::Irate,
                _ => {
                    return Err(bad(
                        "bad request, query parameter 'rateFunc' must be either 'rate' or 'irate'",
                    ));
                }
            };
        }
        if let Some(time) = first("queryTime") {
            q.end = go_int(time)
                .ok_or_else(|| bad("bad request, cannot parse query parameter 'queryTime'"))?;
        }
        if let Some(text) = first("duration") {
            q.duration = go_int(text)
                .ok_or_else(|| bad("bad request, cannot parse query parameter 'duration'"))?;
        }
        if let Some(text) = first("step") {
            q.step = go_int(text)
                .ok_or_else(|| bad("bad request, cannot parse query parameter 'step'"))?;
        }
        let quantiles = all("quantiles[]");
        for text in quantiles {
            let value: f64 = text.parse().map_err(|_| {
                bad("bad request, cannot parse query parameter 'quantiles', float expected")
            })?;
            if !(0.0..=1.0).contains(&value) {
                return Err(bad(
                    "bad request, invalid quantile(s): should be between 0 and 1",
                ));
            }
            if !q.quantiles.iter().any(|(t, _)| t == text) {
                q.quantiles.push((text.to_string(), value));
            }
        }
        if q.quantiles.len() > MAX_QUANTILES {
            return Err(bad(format!(
                "bad request, at most {MAX_QUANTILES} quantiles may be asked at once"
            )));
        }
        if let Some(avg) = first("avg") {
            q.avg = go_bool(avg)
                .ok_or_else(|| bad("bad request, cannot parse query parameter 'avg'"))?;
        }
        for label in all("byLabels[]") {
            let name = LabelName::new(label).map_err(|_| {
                bad(format!(
                    "bad request, invalid label name in 'byLabels': {label:?}"
                ))
            })?;
            if !q.by_labels.contains(&name) {
                q.by_labels.push(name);
            }
        }
        if q.by_labels.len() > MAX_BY_LABELS {
            return Err(bad(format!(
                "bad request, at most {MAX_BY_LABELS} labels may be given in 'byLabels'"
            )));
        }
        q.window()?;
        Ok(q)
    }

    /// Start, end and step checked: the step positive, the start not after the end, then
    /// floored to a multiple of the step (as Kiali does), and no more points per series than
    /// Prometheus answers.
    fn window(&mut self) -> Result<(), String> {
        let duration = self.duration;
        if self.step <= 0 {
            return Err(bad(format!(
                "bad request, query parameter 'step' must be a positive number of seconds, not {}",
                self.step
            )));
        }
        if duration < 0 {
            return Err(bad(format!(
                "bad request, query parameter 'duration' must not be negative, not {duration}"
            )));
        }
        let start = self.end.checked_sub(duration).ok_or_else(|| {
            bad("bad request, query parameters 'queryTime' and 'duration' are out of range")
        })?;
        // Go's integer division truncates toward zero, as `/` does.
        self.start = start
            .checked_div(self.step)
            .and_then(|n| n.checked_mul(self.step))
            .unwrap_or(start);
        let span = self.end.checked_sub(self.start).unwrap_or(i64::MAX);
        let points = span.checked_div(self.step).unwrap_or(i64::MAX);
        if points > MAX_POINTS {
            return Err(bad(format!(
                "bad request, query parameters 'duration' ({duration}s) and 'step' ({}s) ask for \
                 {points} points per series, more than the {MAX_POINTS} Prometheus answers: \
                 raise 'step' or shorten 'duration'",
                self.step
            )));
        }
        Ok(())
    }

    /// The request without its times, for the cache: two requests with the same key ask the
    /// same queries.
    pub fn cache_key(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{}|{}",
            self.namespace,
            self.target,
            self.cluster,
            self.filters,
            self.direction,
            self.reporters,
            self.request_protocol,
            self.rate_interval,
            self.rate_func,
            self.quantiles,
            self.avg,
            self.by_labels,
            self.duration,
            self.step,
        )
    }
}

/// `reporter`: `both`, or a comma-separated list of `source`, `destination`, `waypoint`.
fn parse_reporter(text: &str) -> Result<Option<Vec<String>>, String> {
    if text == "both" {
        return Ok(None);
    }
    let mut reporters = Vec::new();
    for r in text.split(',') {
        if !matches!(r, "source" | "destination" | "waypoint") {
            return Err(bad(format!(
                "bad request, query parameter 'reporter' contains invalid value {r:?}; valid \
                 values are 'source', 'destination', 'waypoint', or 'both'"
            )));
        }
        reporters.push(r.to_string());
    }
    Ok(Some(reporters))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_007;

    fn parse(raw: &str) -> Result<MetricsQuery, String> {
        MetricsQuery::parse("bookinfo", None, Some(raw), NOW)
    }

    #[test]
    fn kiali_defaults() {
        let q = parse("").unwrap();
        assert_eq!(q.direction, Direction::Outbound);
        assert_eq!(q.reporters, Some(vec!["source".to_string()]));
        assert_eq!(q.rate_interval, Duration::from_secs(60));
        assert_eq!(q.rate_func, Function::Rate);
        assert!(q.avg && q.quantiles.is_empty() && q.by_labels.is_empty());
        assert_eq!((q.end, q.step), (NOW, 15));
        // 30 minutes back, floored to a multiple of 15 s.
        assert_eq!(q.start, 1_699_998_195);
    }

    #[test]
    fn every_parameter() {
        let q = parse(
            "filters[]=request_count&filters[]=request_duration_millis&byLabels[]=source_workload\
             &quantiles[]=0.5&quantiles[]=0.99&avg=false&direction=inbound&reporter=destination,waypoint\
             &requestProtocol=http&rateInterval=1m30s&rateFunc=irate&step=60&duration=3600&queryTime=1700000000\
             &clusterName=east",
        )
        .unwrap();
        assert_eq!(q.filters, ["request_count", "request_duration_millis"]);
        assert_eq!(q.by_labels[0].as_str(), "source_workload");
        assert_eq!(
            q.quantiles,
            [("0.5".to_string(), 0.5), ("0.99".to_string(), 0.99)]
        );
        assert!(!q.avg);
        assert_eq!(q.direction, Direction::Inbound);
        assert_eq!(
            q.reporters,
            Some(vec!["destination".to_string(), "waypoint".to_string()])
        );
        assert_eq!(q.request_protocol.as_deref(), Some("http"));
        assert_eq!(q.rate_interval, Duration::from_secs(90));
        assert_eq!(q.rate_func, Function::Irate);
        assert_eq!((q.start, q.end, q.step), (1_699_996_380, 1_700_000_000, 60));
        assert_eq!(q.cluster.as_deref(), Some("east"));
        assert_eq!(parse("reporter=both").unwrap().reporters, None);
    }

    #[test]
    fn kiali_messages() {
        let error = |raw: &str| parse(raw).unwrap_err();
        assert_eq!(error("foo=1"), "unsupported query parameter 'foo'");
        assert_eq!(
            error("includeAmbient=true"),
            "unsupported query parameter 'includeAmbient'"
        );
        assert_eq!(
            error("direction=up"),
            "bad request, query parameter 'direction' must be either 'inbound' or 'outbound'"
        );
        assert!(error("reporter=source,proxy").contains("invalid value \"proxy\""));
        assert_eq!(
            error("rateInterval=5"),
            "bad request, invalid 'rateInterval' value: \"5\""
        );
        assert_eq!(
            error("rateFunc=increase"),
            "bad request, query parameter 'rateFunc' must be either 'rate' or 'irate'"
        );
        assert_eq!(
            error("duration=1h"),
            "bad request, cannot parse query parameter 'duration'"
        );
        assert_eq!(
            error("queryTime=now"),
            "bad request, cannot parse query parameter 'queryTime'"
        );
        assert_eq!(
            error("step=1.5"),
            "bad request, cannot parse query parameter 'step'"
        );
        assert_eq!(
            error("quantiles[]=high"),
            "bad request, cannot parse query parameter 'quantiles', float expected"
        );
        assert_eq!(
            error("quantiles[]=1.5"),
            "bad request, invalid quantile(s): should be between 0 and 1"
        );
        assert_eq!(
            error("quantiles[]=NaN"),
            "bad request, invalid quantile(s): should be between 0 and 1"
        );
        assert_eq!(
            error("avg=yes"),
            "bad request, cannot parse query parameter 'avg'"
        );
        assert_eq!(
            error("byLabels[]=a-b"),
            "bad request, invalid label name in 'byLabels': \"a-b\""
        );
        assert!(error("step=0").contains("'step' must be a positive number"));
        assert!(error("duration=-5").contains("'duration' must not be negative"));
    }

    #[test]
    fn at_most_eleven_thousand_points() {
        // 11,000 steps of 1 s: as many as Prometheus answers.
        assert!(parse("duration=11000&step=1&queryTime=1700000000").is_ok());
        let error = parse("duration=11001&step=1&queryTime=1700000000").unwrap_err();
        assert!(
            error.contains("'duration' (11001s) and 'step' (1s) ask for 11001 points"),
            "{error}"
        );
        assert!(parse("duration=9223372036854775807&queryTime=-5").is_err());
    }

    #[test]
    fn shapes() {
        assert!(kiali_duration_shape("1h30m"));
        assert!(kiali_duration_shape("500ms"));
        assert!(!kiali_duration_shape(""));
        assert!(!kiali_duration_shape("0"));
        assert!(!kiali_duration_shape("m"));
        assert!(!kiali_duration_shape("1.5m"));
        assert_eq!(go_int("+15"), Some(15));
        assert_eq!(go_int("-"), None);
        assert_eq!(go_int("99999999999999999999"), None);
    }
}
