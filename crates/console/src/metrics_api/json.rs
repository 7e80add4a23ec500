//! Kiali's JSON for metrics (`models/metrics.go`): a `Metric` is
//! `{"labels", "datapoints", "stat"?, "name"}`, its datapoints Prometheus's sample pairs —
//! `[<seconds>, "<value>"]`, the time a JSON number of seconds with the milliseconds after the
//! point, the value a string in Go's `FormatFloat(v, 'f', -1)` form (`"NaN"`, `"+Inf"`).

use meshtrace_backend::prometheus::{Point, Series};
use serde_json::{Map, Number, Value};

/// A value as Go's `strconv.FormatFloat(v, 'f', -1, 64)` writes it: the shortest decimal that
/// reads back as `v`, never an exponent.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        // Rust's `Display` is the shortest round-trip form, without an exponent.
        format!("{v}")
    }
}

/// Milliseconds since the epoch as Prometheus's `model.Time` writes itself: seconds, with the
/// milliseconds after the point when there are any.
pub fn seconds(ms: i64) -> Number {
    if ms.checked_rem(1000) == Some(0) {
        Number::from(ms.checked_div(1000).unwrap_or(0))
    } else {
        // Below 2^53 ms the division is exact to the millisecond, and serde_json writes the
        // shortest form, as Go does.
        #[allow(clippy::cast_precision_loss)]
        let s = ms as f64 / 1000.0;
        Number::from_f64(s).unwrap_or_else(|| Number::from(0))
    }
}

fn datapoint(point: &Point) -> Value {
    Value::Array(vec![
        Value::Number(seconds(point.timestamp_ms)),
        Value::String(go_float(point.value)),
    ])
}

/// One Kiali `Metric` from one series of a range query.
pub fn metric(series: &Series, name: &str, stat: Option<&str>) -> Value {
    let labels: Map<String, Value> = series
        .metric
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut out = Map::new();
    out.insert("labels".into(), Value::Object(labels));
    out.insert(
        "datapoints".into(),
        Value::Array(series.points.iter().map(datapoint).collect()),
    );
    if let Some(stat) = stat {
        out.insert("stat".into(), Value::String(stat.to_string()));
    }
    out.insert("name".into(), Value::String(name.to_string()));
    Value::Object(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn values_as_go_formats_them() {
        assert_eq!(go_float(1.0), "1");
        assert_eq!(go_float(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(go_float(1e21), "1000000000000000000000");
        assert_eq!(go_float(1.5e-7), "0.00000015");
        assert_eq!(go_float(f64::NAN), "NaN");
        assert_eq!(go_float(f64::INFINITY), "+Inf");
        assert_eq!(go_float(f64::NEG_INFINITY), "-Inf");
    }

    #[test]
    fn times_as_prometheus_writes_them() {
        assert_eq!(seconds(1_700_000_000_000).to_string(), "1700000000");
        assert_eq!(seconds(1_700_000_000_781).to_string(), "1700000000.781");
        assert_eq!(seconds(1_700_000_000_500).to_string(), "1700000000.5");
        let series = Series {
            metric: [("source_workload".to_string(), "productpage-v1".to_string())].into(),
            points: vec![Point {
                timestamp_ms: 1_700_000_015_000,
                value: 0.25,
            }],
        };
        assert_eq!(
            metric(&series, "request_count", None).to_string(),
            r#"{"labels":{"source_workload":"productpage-v1"},"datapoints":[[1700000015,"0.25"]],"name":"request_count"}"#
        );
        assert_eq!(
            metric(&series, "request_duration_millis", Some("0.99")).to_string(),
            r#"{"labels":{"source_workload":"productpage-v1"},"datapoints":[[1700000015,"0.25"]],"stat":"0.99","name":"request_duration_millis"}"#
        );
    }
}
