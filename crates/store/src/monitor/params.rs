//! The parameters of Jaeger's metrics API as Jaeger's query service reads them, in its order
//! and with its messages (`unable to parse param 'step': strconv.ParseInt: parsing "x":
//! invalid syntax`). Where Jaeger would overflow (a lookback of `9e18` ms) or hand Prometheus
//! a query it refuses (a step of 0), the answer here is a 400 that names the parameter.

use std::num::IntErrorKind;

use meshtrace_mesh::telemetry::SpanKind;

/// The most points a series may have, as Prometheus allows a range query.
pub const MAX_POINTS: i64 = 11_000;
/// The largest time or duration in milliseconds that Jaeger's nanosecond durations hold.
const MAX_MS: i64 = i64::MAX / 1_000_000;

const DEFAULT_LOOKBACK_MS: i64 = 3_600_000;
const DEFAULT_STEP_MS: i64 = 5_000;
const DEFAULT_RATE_PER_MS: i64 = 600_000;

/// A parsed metrics request.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsQuery {
    pub services: Vec<String>,
    pub group_by_operation: bool,
    pub span_kinds: Vec<SpanKind>,
    pub end_ms: i64,
    pub lookback_ms: i64,
    pub step_ms: i64,
    pub rate_per_ms: i64,
}

/// The query string's pairs, in order (a key may repeat).
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: Option<&str>) -> Params {
        Params(
            form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// Every value of `key` (None: the key is absent).
    fn all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then_some(values)
    }

    /// The first value of `key`, "" when absent (Go's `Query().Get`).
    pub fn get(&self, key: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map_or("", |(_, v)| v.as_str())
    }
}

fn param_error(param: &str, detail: impl std::fmt::Display) -> String {
    format!("unable to parse param '{param}': {detail}")
}

/// `quantile`, read before anything else as Jaeger does.
pub fn quantile(params: &Params) -> Result<f64, String> {
    let text = params.get("quantile");
    let invalid = || {
        param_error(
            "quantile",
            format_args!(
                "strconv.ParseFloat: parsing {}: invalid syntax",
                go_quote(text)
            ),
        )
    };
    let value: f64 = text.parse().map_err(|_| invalid())?;
    if value.is_infinite() && !text.to_ascii_lowercase().contains("inf") {
        return Err(param_error(
            "quantile",
            format_args!(
                "strconv.ParseFloat: parsing {}: value out of range",
                go_quote(text)
            ),
        ));
    }
    Ok(value)
}

/// The parameters every metrics route takes; `now_ms` is the default end.
pub fn metrics_query(params: &Params, now_ms: i64) -> Result<MetricsQuery, String> {
    let services = params
        .all("service")
        .ok_or_else(|| param_error("service", "please provide at least one service name"))?
        .into_iter()
        .map(str::to_string)
        .collect();
    let group_by_operation = match params.get("groupByOperation") {
        "" => false,
        "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
        "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
        other => {
            return Err(param_error(
                "groupByOperation",
                format_args!(
                    "strconv.ParseBool: parsing {}: invalid syntax",
                    go_quote(other)
                ),
            ));
        }
    };
    let span_kinds = match params.all("spanKind") {
        None => vec![SpanKind::Server],
        Some(kinds) => kinds
            .into_iter()
            .map(|k| {
                SpanKind::from_tag(k).ok_or_else(|| {
                    param_error("spanKind", format_args!("unsupported span kind: '{k}'"))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let end_ms = millis(params, "endTs", now_ms)?;
    let lookback_ms = millis(params, "lookback", DEFAULT_LOOKBACK_MS)?;
    let step_ms = millis(params, "step", DEFAULT_STEP_MS)?;
    let rate_per_ms = millis(params, "ratePer", DEFAULT_RATE_PER_MS)?;
    // What Prometheus would refuse, refused here by name.
    if end_ms < 0 {
        return Err(param_error("endTs", "the end must not be before 1970"));
    }
    if lookback_ms < 0 || lookback_ms > end_ms {
        return Err(param_error(
            "lookback",
            format_args!("the lookback must be between 0 and endTs ({end_ms} ms)"),
        ));
    }
    if step_ms <= 0 {
        return Err(param_error(
            "step",
            "the step must be a positive number of milliseconds",
        ));
    }
    if lookback_ms.checked_div(step_ms).unwrap_or(i64::MAX) >= MAX_POINTS {
        return Err(param_error(
            "step",
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    if rate_per_ms <= 0 {
        return Err(param_error(
            "ratePer",
            "the rate window must be a positive number of milliseconds",
        ));
    }
    Ok(MetricsQuery {
        services,
        group_by_operation,
        span_kinds,
        end_ms,
        lookback_ms,
        step_ms,
        rate_per_ms,
    })
}

/// A number of milliseconds (or a Unix time in ms) as Jaeger parses it: Go's `ParseInt`, then
/// bounded so that Jaeger's conversion to nanoseconds could not overflow.
fn millis(params: &Params, name: &str, default: i64) -> Result<i64, String> {
    let text = params.get(name);
    if text.is_empty() {
        return Ok(default);
    }
    let value: i64 = text.parse().map_err(|e: std::num::ParseIntError| {
        let why = match e.kind() {
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => "value out of range",
            _ => "invalid syntax",
        };
        param_error(
            name,
            format_args!("strconv.ParseInt: parsing {}: {why}", go_quote(text)),
        )
    })?;
    if !(-MAX_MS..=MAX_MS).contains(&value) {
        return Err(param_error(
            name,
            format_args!("{value} ms is out of range (at most {MAX_MS} ms either way)"),
        ));
    }
    Ok(value)
}

/// A string quoted as Go's `%q` writes it.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len().saturating_add(2));
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<MetricsQuery, String> {
        metrics_query(&Params::parse(Some(q)), 1_000_000_000)
    }

    #[test]
    fn defaults_and_messages_are_jaegers() {
        let q = parse("service=a&service=b").unwrap();
        assert_eq!(q.services, vec!["a", "b"]);
        assert_eq!(q.span_kinds, vec![SpanKind::Server]);
        assert_eq!(
            (q.end_ms, q.lookback_ms, q.step_ms, q.rate_per_ms),
            (1_000_000_000, 3_600_000, 5_000, 600_000)
        );
        assert!(!q.group_by_operation);
        assert_eq!(
            parse("").unwrap_err(),
            "unable to parse param 'service': please provide at least one service name"
        );
        assert_eq!(
            parse("service=a&groupByOperation=yes").unwrap_err(),
            "unable to parse param 'groupByOperation': strconv.ParseBool: parsing \"yes\": invalid syntax"
        );
        assert_eq!(
            parse("service=a&spanKind=client&spanKind=bogus").unwrap_err(),
            "unable to parse param 'spanKind': unsupported span kind: 'bogus'"
        );
        assert_eq!(
            parse("service=a&step=x").unwrap_err(),
            "unable to parse param 'step': strconv.ParseInt: parsing \"x\": invalid syntax"
        );
        assert_eq!(
            parse("service=a&endTs=99999999999999999999").unwrap_err(),
            "unable to parse param 'endTs': strconv.ParseInt: parsing \"99999999999999999999\": value out of range"
        );
        assert!(
            parse("service=a&lookback=9223372036854775807")
                .unwrap_err()
                .starts_with("unable to parse param 'lookback': ")
        );
        assert!(
            parse("service=a&step=0")
                .unwrap_err()
                .starts_with("unable to parse param 'step': ")
        );
        assert!(
            parse("service=a&step=1&lookback=3600000")
                .unwrap_err()
                .contains("11,000 points")
        );
        assert!(
            parse("service=a&ratePer=-1")
                .unwrap_err()
                .starts_with("unable to parse param 'ratePer': ")
        );
        let q =
            parse("service=a&groupByOperation=True&spanKind=CLIENT&spanKind=unspecified").unwrap();
        assert!(q.group_by_operation);
        assert_eq!(q.span_kinds, vec![SpanKind::Client, SpanKind::Unspecified]);

        let p = Params::parse(Some("quantile="));
        assert_eq!(
            quantile(&p).unwrap_err(),
            "unable to parse param 'quantile': strconv.ParseFloat: parsing \"\": invalid syntax"
        );
        assert!(
            quantile(&Params::parse(Some("quantile=1e999")))
                .unwrap_err()
                .ends_with("value out of range")
        );
        assert_eq!(
            quantile(&Params::parse(Some("quantile=0.95"))).unwrap(),
            0.95
        );
        assert_eq!(go_quote("a\"\\\n\u{1}"), "\"a\\\"\\\\\\n\\x01\"");
    }
}
