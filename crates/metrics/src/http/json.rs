//! Prometheus's JSON, byte for byte where clients could tell: the envelope (`status`, `data`,
//! `errorType`, `error`, `warnings`), label maps, timestamps as seconds with up to three
//! decimals, and values as strings formatted as Go formats them (`strconv` 'f' with the
//! shortest digits, 'e' below 1e-6 and from 1e21 on in vectors and matrices; `NaN`, `+Inf`,
//! `-Inf`).

use std::fmt::Write;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::gofloat;
use crate::promql::{QueryError, QueryValue};
use crate::series::Labels;

/// `{"status":"success","data":<data>}`, plus `warnings` when there are some.
pub(crate) fn success(data: &str, warnings: &[String]) -> Response {
    let mut body = String::with_capacity(data.len().saturating_add(64));
    body.push_str("{\"status\":\"success\",\"data\":");
    body.push_str(data);
    if !warnings.is_empty() {
        body.push_str(",\"warnings\":");
        strings(&mut body, warnings.iter().map(String::as_str));
    }
    body.push('}');
    respond(StatusCode::OK, body)
}

/// `{"status":"error","errorType":…,"error":…}` with the status Prometheus gives that type.
pub(crate) fn error(err: &QueryError) -> Response {
    let mut body = String::from("{\"status\":\"error\",\"errorType\":");
    string(&mut body, err.error_type());
    body.push_str(",\"error\":");
    string(&mut body, &err.to_string());
    body.push('}');
    let status = StatusCode::from_u16(err.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    respond(status, body)
}

/// An error with an explicit status (e.g. 413 for an oversized body).
pub(crate) fn error_with_status(status: StatusCode, error_type: &str, message: &str) -> Response {
    let mut body = String::from("{\"status\":\"error\",\"errorType\":");
    string(&mut body, error_type);
    body.push_str(",\"error\":");
    string(&mut body, message);
    body.push('}');
    respond(status, body)
}

fn respond(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `{"resultType":…,"result":…}`.
pub(crate) fn query_data(value: &QueryValue) -> String {
    let mut out = String::from("{\"resultType\":\"");
    out.push_str(value.result_type());
    out.push_str("\",\"result\":");
    match value {
        QueryValue::Vector(samples) => array(&mut out, samples, |out, s| {
            out.push_str("{\"metric\":");
            labels(out, &s.labels);
            out.push_str(",\"value\":");
            point(out, s.timestamp_ms, s.value);
            out.push('}');
        }),
        QueryValue::Matrix(series) => array(&mut out, series, |out, s| {
            out.push_str("{\"metric\":");
            labels(out, &s.labels);
            out.push_str(",\"values\":");
            array(out, &s.points, |out, p| point(out, p.timestamp_ms, p.value));
            out.push('}');
        }),
        QueryValue::Scalar {
            timestamp_ms,
            value,
        } => {
            // Prometheus marshals a scalar with encoding/json: seconds as a float, the value
            // with 'f' formatting whatever its size.
            let _ = write!(out, "[{},", *timestamp_ms as f64 / 1000.0);
            string(&mut out, &go_format_f(*value));
            out.push(']');
        }
        QueryValue::String {
            timestamp_ms,
            value,
        } => {
            let _ = write!(out, "[{},", *timestamp_ms as f64 / 1000.0);
            string(&mut out, value);
            out.push(']');
        }
    }
    out.push('}');
    out
}

/// `[<seconds>,"<value>"]` as Prometheus's jsoniter codec writes a point.
fn point(out: &mut String, timestamp_ms: i64, value: f64) {
    out.push('[');
    timestamp(out, timestamp_ms);
    out.push(',');
    out.push('"');
    out.push_str(&value_string(value));
    out.push('"');
    out.push(']');
}

/// Milliseconds as seconds: the whole part, then `.` and three digits when the fraction is not
/// zero (`1.500`, `1700000000.123`, `-1.500`).
pub(crate) fn timestamp(out: &mut String, ms: i64) {
    if ms < 0 {
        out.push('-');
    }
    let abs = ms.unsigned_abs();
    let _ = write!(out, "{}", abs / 1000);
    let fraction = abs % 1000;
    if fraction != 0 {
        let _ = write!(out, ".{fraction:03}");
    }
}

/// A value as Prometheus writes points: 'e' for magnitudes below 1e-6 or from 1e21, else 'f',
/// always with the shortest digits that read back the same.
pub(crate) fn value_string(v: f64) -> String {
    let abs = v.abs();
    if abs != 0.0 && abs.is_finite() && !(1e-6..1e21).contains(&abs) {
        go_format_e(v)
    } else {
        go_format_f(v)
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
pub(crate) fn go_format_f(v: f64) -> String {
    special(v).unwrap_or_else(|| {
        let (negative, digits, exp) = gofloat::shortest(v);
        gofloat::fixed(negative, &digits, exp)
    })
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: `1e-07`, `1.5e+21` (two exponent digits at least).
fn go_format_e(v: f64) -> String {
    special(v).unwrap_or_else(|| {
        let (negative, digits, exp) = gofloat::shortest(v);
        gofloat::exponent(negative, &digits, exp)
    })
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".to_string())
    } else if v == f64::INFINITY {
        Some("+Inf".to_string())
    } else if v == f64::NEG_INFINITY {
        Some("-Inf".to_string())
    } else {
        None
    }
}

/// A label set as a JSON object, names in order.
pub(crate) fn labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, name);
        out.push(':');
        string(out, value);
    }
    out.push('}');
}

/// A JSON string.
pub(crate) fn string(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("\"\""),
    }
}

/// A JSON array of strings.
pub(crate) fn strings<'a>(out: &mut String, items: impl IntoIterator<Item = &'a str>) {
    let items: Vec<&str> = items.into_iter().collect();
    array(out, &items, |out, s| string(out, s));
}

/// A JSON array of `items`, each written by `write`.
pub(crate) fn array<T>(out: &mut String, items: &[T], write: impl Fn(&mut String, &T)) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write(out, item);
    }
    out.push(']');
}

#[cfg(test)]
// The exact binary values are the point of these tests.
#[allow(clippy::excessive_precision)]
mod tests {
    use super::*;

    #[test]
    fn values_as_go_writes_them() {
        // Each expectation is what Prometheus 2.42 answered for the same number.
        assert_eq!(value_string(1e-7), "1e-07");
        assert_eq!(value_string(1.5e21), "1.5e+21");
        assert_eq!(value_string(-1.5e-9), "-1.5e-09");
        assert_eq!(value_string(123456789012345678.0), "123456789012345680");
        assert_eq!(value_string(-0.0), "-0");
        assert_eq!(value_string(0.1), "0.1");
        assert_eq!(value_string(f64::NAN), "NaN");
        assert_eq!(value_string(f64::NEG_INFINITY), "-Inf");
        assert_eq!(go_format_f(1e-7), "0.0000001");
        assert_eq!(go_format_f(f64::INFINITY), "+Inf");
        // An exact tie between two shortest spellings: Go picks the even digit (as Prometheus
        // 2.42 answered for this value).
        assert_eq!(go_format_f(188217972652763.625), "188217972652763.62");
    }

    #[test]
    fn timestamps_keep_three_decimals() {
        for (ms, text) in [
            (1500, "1.500"),
            (1_700_000_000_123, "1700000000.123"),
            (1_700_000_030_000, "1700000030"),
            (-1500, "-1.500"),
            (-1, "-0.001"),
            (2, "0.002"),
        ] {
            let mut out = String::new();
            timestamp(&mut out, ms);
            assert_eq!(out, text);
        }
    }
}
