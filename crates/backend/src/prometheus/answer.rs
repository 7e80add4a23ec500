//! Prometheus's answers, typed: the envelope (`status`, `data`, `errorType`, `error`,
//! `warnings`, `infos`) and the four result types of a query — vector, matrix, scalar, string —
//! with sample values read from Prometheus's strings (`"NaN"`, `"+Inf"`, `"-Inf"`, Go's float
//! formats) and timestamps (seconds, to the millisecond) as milliseconds.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::{self, Deserializer};

/// A series' labels, `__name__` included when Prometheus keeps it.
pub type Labels = BTreeMap<String, String>;

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Milliseconds since the epoch.
    pub timestamp_ms: i64,
    pub value: f64,
}

/// A series of an instant vector, with its one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: Labels,
    pub point: Point,
}

/// A series of a range query's matrix, with its samples in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub metric: Labels,
    pub points: Vec<Point>,
}

/// What a query evaluated to.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
    Scalar(Point),
    String { timestamp_ms: i64, value: String },
}

impl Value {
    /// `vector`, `matrix`, `scalar` or `string`, as Prometheus names them.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
            Value::Scalar(_) => "scalar",
            Value::String { .. } => "string",
        }
    }
}

/// A query's value, and what Prometheus said beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub value: Value,
    /// Prometheus's warnings (the result may be incomplete).
    pub warnings: Vec<String>,
    /// Prometheus's informational notes (Prometheus 3).
    pub infos: Vec<String>,
}

/// `/api/v1/status/buildinfo`: one type for the metrics API that serves it and this client.
pub use meshtrace_metrics::http::BuildInfo;

/// Prometheus's envelope. `data` is whatever the endpoint returns.
#[derive(Deserialize)]
pub(super) struct Envelope<T> {
    pub status: String,
    #[serde(default = "Option::default")]
    pub data: Option<T>,
    #[serde(rename = "errorType", default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub warnings: Vec<String>,
    #[serde(default)]
    pub infos: Vec<String>,
}

/// The envelope of an error, read when the data did not fit the expected shape.
#[derive(Deserialize)]
pub(super) struct ErrorEnvelope {
    pub status: String,
    #[serde(rename = "errorType", default)]
    pub error_type: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
}

/// `data` of `/query` and `/query_range`: `{"resultType": ..., "result": ...}`.
#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
pub(super) enum QueryData {
    Vector(Vec<RawSample>),
    Matrix(Vec<RawSeries>),
    Scalar(PointOf<f64>),
    String(PointOf<String>),
}

#[derive(Deserialize)]
pub(super) struct RawSample {
    #[serde(default)]
    metric: Labels,
    value: Option<PointOf<f64>>,
    /// A native histogram sample (`histogram` instead of `value`).
    #[serde(default)]
    histogram: Option<de::IgnoredAny>,
}

#[derive(Deserialize)]
pub(super) struct RawSeries {
    #[serde(default)]
    metric: Labels,
    #[serde(default)]
    values: Vec<PointOf<f64>>,
    #[serde(default)]
    histograms: Option<de::IgnoredAny>,
}

/// `[timestamp, "value"]`, the value read as `T`.
pub(super) struct PointOf<T> {
    timestamp_ms: i64,
    value: T,
}

impl<'de> Deserialize<'de> for PointOf<f64> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (seconds, text): (f64, Text<'de>) = Deserialize::deserialize(deserializer)?;
        Ok(PointOf {
            timestamp_ms: timestamp_ms(seconds).map_err(de::Error::custom)?,
            value: sample_value(text.as_str()).map_err(de::Error::custom)?,
        })
    }
}

/// A sample value's text, borrowed from the body when it can be (a value has no escapes, so
/// it always can from a body in memory): no allocation per sample.
struct Text<'de>(std::borrow::Cow<'de, str>);

impl Text<'_> {
    fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> de::Visitor<'de> for Visit {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sample value as a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

impl<'de> Deserialize<'de> for PointOf<String> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (seconds, value): (f64, String) = Deserialize::deserialize(deserializer)?;
        Ok(PointOf {
            timestamp_ms: timestamp_ms(seconds).map_err(de::Error::custom)?,
            value,
        })
    }
}

/// The most seconds a timestamp may be from the epoch either way (year ±292,000: what fits
/// in `i64` milliseconds with room to spare, and far past what Prometheus stores).
const MAX_SECONDS: f64 = 9.0e12;

/// Prometheus's timestamp (seconds, with milliseconds after the point) in milliseconds.
fn timestamp_ms(seconds: f64) -> Result<i64, String> {
    if !seconds.is_finite() || seconds.abs() > MAX_SECONDS {
        return Err(format!("the timestamp {seconds} is out of range"));
    }
    // Within ±9e15 ms: exact in f64 and in i64.
    #[allow(clippy::cast_possible_truncation)]
    Ok((seconds * 1000.0).round() as i64)
}

/// A sample value as Prometheus writes it (Go's `FormatFloat(v, 'f', -1, 64)`, `NaN`,
/// `+Inf`, `-Inf`).
pub fn sample_value(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => {
            let short: String = text.chars().take(40).collect();
            // Rust also reads `inf`, `infinity` and `nan` in any case; Prometheus never writes
            // them, and a server that does is not followed there.
            if text
                .bytes()
                .any(|b| b.is_ascii_alphabetic() && b != b'e' && b != b'E')
            {
                return Err(format!("the sample value {short:?} is not a number"));
            }
            text.parse::<f64>()
                .map_err(|_| format!("the sample value {short:?} is not a number"))
        }
    }
}

impl QueryData {
    /// The typed value; `Err` when the answer holds native histograms, which the console does
    /// not read (Istio's metrics are classic histograms).
    pub(super) fn into_value(self) -> Result<Value, String> {
        const NATIVE: &str = "the answer holds native histogram samples, which meshtrace does \
                              not read: query classic histograms (`_bucket` series)";
        Ok(match self {
            QueryData::Vector(samples) => Value::Vector(
                samples
                    .into_iter()
                    .map(|s| match (s.value, s.histogram) {
                        (Some(point), None) => Ok(Sample {
                            metric: s.metric,
                            point: Point {
                                timestamp_ms: point.timestamp_ms,
                                value: point.value,
                            },
                        }),
                        (_, Some(_)) => Err(NATIVE.to_string()),
                        (None, None) => Err("a vector sample has no value".to_string()),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            QueryData::Matrix(series) => Value::Matrix(
                series
                    .into_iter()
                    .map(|s| {
                        if s.histograms.is_some() {
                            return Err(NATIVE.to_string());
                        }
                        Ok(Series {
                            metric: s.metric,
                            points: s
                                .values
                                .into_iter()
                                .map(|p| Point {
                                    timestamp_ms: p.timestamp_ms,
                                    value: p.value,
                                })
                                .collect(),
                        })
                    })
                    .collect::<Result<_, _>>()?,
            ),
            QueryData::Scalar(p) => Value::Scalar(Point {
                timestamp_ms: p.timestamp_ms,
                value: p.value,
            }),
            QueryData::String(p) => Value::String {
                timestamp_ms: p.timestamp_ms,
                value: p.value,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Value, String> {
        let envelope: Envelope<QueryData> =
            serde_json::from_str(body).map_err(|e| e.to_string())?;
        envelope.data.unwrap().into_value()
    }

    #[test]
    fn the_four_result_types() {
        let v = parse(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{"__name__":"up","job":"a"},"value":[1700000000.781,"NaN"]},
                {"metric":{},"value":[1700000001,"-Inf"]}]}}"#,
        )
        .unwrap();
        let Value::Vector(samples) = v else { panic!() };
        assert_eq!(samples[0].metric["job"], "a");
        // A value the body writes with an escape is read as well as one borrowed from it.
        let escaped = parse(
            r#"{"status":"success","data":{"resultType":"vector","result":[
                {"metric":{},"value":[1,"\u0031.5"]}]}}"#,
        )
        .unwrap();
        let Value::Vector(escaped) = escaped else {
            panic!()
        };
        assert_eq!(escaped[0].point.value, 1.5);
        assert_eq!(samples[0].point.timestamp_ms, 1_700_000_000_781);
        assert!(samples[0].point.value.is_nan());
        assert_eq!(samples[1].point.value, f64::NEG_INFINITY);

        // `result` before `resultType` is as good.
        let m = parse(
            r#"{"status":"success","data":{"result":[{"metric":{"a":"b"},
                "values":[[1.5,"+Inf"],[3,"1e-7"],[4.5,"0.30000000000000004"]]}],"resultType":"matrix"}}"#,
        )
        .unwrap();
        let Value::Matrix(series) = m else { panic!() };
        let values: Vec<_> = series[0].points.iter().map(|p| p.value).collect();
        assert_eq!(values, [f64::INFINITY, 1e-7, 0.1 + 0.2]);
        assert_eq!(series[0].points[2].timestamp_ms, 4500);

        assert_eq!(
            parse(r#"{"status":"success","data":{"resultType":"scalar","result":[2,"-0.5"]}}"#)
                .unwrap(),
            Value::Scalar(Point {
                timestamp_ms: 2000,
                value: -0.5
            })
        );
        assert_eq!(
            parse(r#"{"status":"success","data":{"resultType":"string","result":[2,"hi"]}}"#)
                .unwrap(),
            Value::String {
                timestamp_ms: 2000,
                value: "hi".into()
            }
        );
    }

    #[test]
    fn bad_values_and_native_histograms_are_errors() {
        for bad in ["inf", "nan", "1,5", "", "0x10", "infinity"] {
            assert!(sample_value(bad).is_err(), "{bad}");
        }
        let e = parse(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"abc"]}]}}"#)
            .unwrap_err();
        assert!(e.contains("\"abc\" is not a number"), "{e}");
        let e = parse(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1e300,"1"]}]}}"#)
            .unwrap_err();
        assert!(e.contains("out of range"), "{e}");
        let e = parse(r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"histogram":[1,{"count":"1"}]}]}}"#)
            .unwrap_err();
        assert!(e.contains("native histogram"), "{e}");
        assert!(
            parse(r#"{"status":"success","data":{"resultType":"table","result":[]}}"#).is_err()
        );
    }
}
