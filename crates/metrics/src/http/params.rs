//! Request parameters as Prometheus's API reads them: the form (URL query and, for POST, an
//! urlencoded body, body first as Go's `FormValue` does), times as Unix seconds with a fraction
//! or RFC 3339, durations as float seconds or `1h30m`, with Prometheus's error messages.

use meshtrace_model::time::parse_prometheus_duration;

use crate::promql::{MAX_TIME_MS, MIN_TIME_MS, QueryError};

/// The parameters of one request, in the order Go's `r.Form` holds them.
#[derive(Debug, Default)]
pub(crate) struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    /// `body` (when urlencoded) then `query`.
    pub fn new(query: Option<&str>, body: Option<&[u8]>) -> Form {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(body) = body {
            pairs.extend(form_urlencoded::parse(body).into_owned());
        }
        if let Some(query) = query {
            pairs.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
        }
        Form { pairs }
    }

    /// The first value of `name`, empty when absent (as Go's `FormValue`).
    pub fn value(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of `name`.
    pub fn values(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// `invalid parameter "<name>": <message>`, Prometheus's wording for a bad parameter.
pub(crate) fn invalid(name: &str, message: impl std::fmt::Display) -> QueryError {
    QueryError::BadData(format!("invalid parameter {name:?}: {message}"))
}

/// The time parameter `name`, or `default` when it is absent.
pub(crate) fn time_param(form: &Form, name: &str, default: i64) -> Result<i64, QueryError> {
    let value = form.value(name);
    if value.is_empty() {
        return Ok(default);
    }
    parse_time(value).map_err(|e| invalid(name, format!("invalid time value for '{name}': {e}")))
}

/// A time in milliseconds: Unix seconds (rounded to the millisecond as Prometheus rounds them)
/// or RFC 3339, within Prometheus's minimum and maximum times.
pub(crate) fn parse_time(text: &str) -> Result<i64, String> {
    let cannot = || format!("cannot parse {text:?} to a valid timestamp");
    if let Some(seconds) = parse_go_float(text) {
        if !seconds.is_finite() || seconds.abs() > (MAX_TIME_MS / 1000) as f64 {
            return Err(cannot());
        }
        // Prometheus: whole seconds, plus the fraction rounded to ms then scaled to ns and
        // truncated; the result floored to ms.
        let whole = seconds.trunc();
        let fraction = seconds - whole;
        let nanos = ((fraction * 1000.0).round() / 1000.0 * 1e9) as i64;
        let ms = (whole as i64)
            .saturating_mul(1000)
            .saturating_add(nanos.div_euclid(1_000_000));
        return Ok(ms);
    }
    rfc3339_ms(text).ok_or_else(cannot)
}

/// A duration parameter: float seconds or a Prometheus duration (`5m`, `1h30m`, `250ms`),
/// in milliseconds (negative allowed for float seconds, as Prometheus allows them).
pub(crate) fn parse_duration_ms(text: &str) -> Result<i64, String> {
    if let Some(seconds) = parse_go_float(text) {
        let ns = seconds * 1e9;
        if !ns.is_finite() || ns > i64::MAX as f64 || ns < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {text:?} to a valid duration. It overflows int64"
            ));
        }
        // Go truncates to ns, then the engine to ms.
        return Ok((ns as i64) / 1_000_000);
    }
    parse_prometheus_duration(text)
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .ok_or_else(|| format!("cannot parse {text:?} to a valid duration"))
}

/// `strconv.ParseFloat` for the forms a client sends: decimals with optional exponent, sign,
/// `Inf`/`NaN`; not hexadecimal.
fn parse_go_float(text: &str) -> Option<f64> {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    if body.is_empty() || body.starts_with("0x") || body.starts_with("0X") {
        return None;
    }
    text.parse::<f64>().ok()
}

/// RFC 3339 (`2006-01-02T15:04:05.999999999Z07:00`) to milliseconds, as Go's `time.Parse`
/// reads it; `None` when it is not one. Every field is a bounded number of digits, so the
/// arithmetic cannot overflow.
#[allow(clippy::arithmetic_side_effects)]
fn rfc3339_ms(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let s = text.get(from..from.checked_add(len)?)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let sep = |at: usize, c: u8| b.get(at) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':') && sep(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    // chrono checks the calendar (month lengths, leap years) and the clock (no 24:00, no
    // leap second, as Go refuses them).
    let local_seconds = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(year).ok()?,
        u32::try_from(month).ok()?,
        u32::try_from(day).ok()?,
    )?
    .and_hms_opt(
        u32::try_from(hour).ok()?,
        u32::try_from(minute).ok()?,
        u32::try_from(second).ok()?,
    )?
    .and_utc()
    .timestamp();
    let mut at = 19usize;
    let mut nanos: i64 = 0;
    if sep(at, b'.') || sep(at, b',') {
        let digits = text.get(at.saturating_add(1)..)?;
        let len = digits
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(digits.len());
        if len == 0 {
            return None;
        }
        for (i, c) in digits.bytes().take(len).enumerate() {
            if i < 9 {
                nanos = nanos
                    .saturating_mul(10)
                    .saturating_add(i64::from(c.saturating_sub(b'0')));
            }
        }
        for _ in len..9 {
            nanos = nanos.saturating_mul(10);
        }
        at = at.saturating_add(1).saturating_add(len);
    }
    let zone = text.get(at..)?;
    let offset_seconds = if zone == "Z" {
        0
    } else {
        let sign = match zone.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return None,
        };
        if zone.len() != 6 || zone.as_bytes().get(3) != Some(&b':') {
            return None;
        }
        let (h, m) = (num(at.saturating_add(1), 2)?, num(at.saturating_add(4), 2)?);
        if h > 23 || m > 59 {
            return None;
        }
        sign * (h * 3600 + m * 60)
    };
    let seconds = local_seconds - offset_seconds;
    Some(seconds * 1000 + nanos / 1_000_000)
}

/// Whether `name` is a valid label name.
pub(crate) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The default bounds of `/series` and `/labels` when a request gives none.
pub(crate) const DEFAULT_START: i64 = MIN_TIME_MS;
pub(crate) const DEFAULT_END: i64 = MAX_TIME_MS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_like_prometheus() {
        assert_eq!(parse_time("1.5").unwrap(), 1500);
        assert_eq!(parse_time("1.0005").unwrap(), 1000);
        assert_eq!(parse_time("1.0015").unwrap(), 1002);
        assert_eq!(parse_time("-1.5").unwrap(), -1500);
        assert_eq!(parse_time("-0.0005").unwrap(), -1);
        assert_eq!(parse_time("1e3").unwrap(), 1_000_000);
        assert_eq!(
            parse_time("2023-11-14T22:13:20.5Z").unwrap(),
            1_700_000_000_500
        );
        assert_eq!(
            parse_time("2023-11-14T23:13:20+01:00").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(parse_time("1970-01-01T00:00:00.0019Z").unwrap(), 1);
        for bad in [
            "0x10",
            "Inf",
            "NaN",
            "9e18",
            "2023-02-30T00:00:00Z",
            "2023-11-14 22:13:20Z",
            "",
            "abc",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("15").unwrap(), 15_000);
        assert_eq!(parse_duration_ms("0.5").unwrap(), 500);
        assert_eq!(parse_duration_ms("1h30m").unwrap(), 5_400_000);
        assert_eq!(parse_duration_ms("250ms").unwrap(), 250);
        assert_eq!(parse_duration_ms("1m5ms").unwrap(), 60_005);
        for bad in ["abc", "1x", "m", "5m1h", "1e300", "1ns", "300000000y"] {
            assert!(parse_duration_ms(bad).is_err(), "{bad}");
        }
    }
}
