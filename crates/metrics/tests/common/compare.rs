//! Compares two answers of Prometheus's query API value for value: the same status and
//! `errorType`; the same `resultType`; the same series (by label set); the same timestamps;
//! values equal (NaN equals NaN) or within 1e-9 relative, and spelled the same when equal.

use std::collections::BTreeMap;

use serde_json::Value;

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    pub async fn get(client: &reqwest::Client, url: &str, params: &[(&str, String)]) -> Answer {
        let response = client.get(url).query(params).send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{url} answered {status} with non-JSON ({e}): {text}"));
        Answer { status, body }
    }

    /// Whether the answer holds no series (or is an error).
    pub fn is_empty(&self) -> bool {
        match self.body["data"]["result"].as_array() {
            Some(result) => result.is_empty(),
            None => self.body["data"]["result"].is_null(),
        }
    }

    pub fn result_type(&self) -> &str {
        self.body["data"]["resultType"].as_str().unwrap_or("")
    }
}

/// `Ok` when the answers agree; otherwise what differs.
pub fn compare(ours: &Answer, theirs: &Answer) -> Result<(), String> {
    if ours.status != theirs.status {
        return Err(format!(
            "status {} vs Prometheus's {}: ours {} / theirs {}",
            ours.status, theirs.status, ours.body, theirs.body
        ));
    }
    if theirs.status != 200 {
        let (a, b) = (&ours.body["errorType"], &theirs.body["errorType"]);
        return if a == b {
            Ok(())
        } else {
            Err(format!(
                "errorType {a} vs {b}: {} / {}",
                ours.body, theirs.body
            ))
        };
    }
    if ours.result_type() != theirs.result_type() {
        return Err(format!(
            "resultType {} vs {}",
            ours.result_type(),
            theirs.result_type()
        ));
    }
    let (a, b) = (&ours.body["data"]["result"], &theirs.body["data"]["result"]);
    match theirs.result_type() {
        "vector" | "matrix" => {
            let (ours_series, theirs_series) = (by_labels(a)?, by_labels(b)?);
            let ours_keys: Vec<&String> = ours_series.keys().collect();
            let theirs_keys: Vec<&String> = theirs_series.keys().collect();
            if ours_keys != theirs_keys {
                return Err(format!(
                    "series differ:\n ours   {ours_keys:?}\n theirs {theirs_keys:?}"
                ));
            }
            for (labels, points) in &theirs_series {
                let ours_points = &ours_series[labels];
                if ours_points.len() != points.len() {
                    return Err(format!(
                        "{labels}: {} points vs {}:\n ours   {ours_points:?}\n theirs {points:?}",
                        ours_points.len(),
                        points.len()
                    ));
                }
                for (p, q) in ours_points.iter().zip(points) {
                    point_eq(p, q).map_err(|e| format!("{labels}: {e}"))?;
                }
            }
            Ok(())
        }
        _ => point_eq(a, b),
    }
}

/// Series of a vector or matrix result by their labels' JSON, each with its points.
fn by_labels(result: &Value) -> Result<BTreeMap<String, Vec<Value>>, String> {
    let mut out = BTreeMap::new();
    for item in result.as_array().ok_or("result is not an array")? {
        let labels = item["metric"].to_string();
        let points = match (&item["value"], &item["values"]) {
            (Value::Array(_), _) => vec![item["value"].clone()],
            (_, Value::Array(values)) => values.clone(),
            _ => return Err(format!("no value in {item}")),
        };
        if out.insert(labels.clone(), points).is_some() {
            return Err(format!("two series labelled {labels}"));
        }
    }
    Ok(out)
}

/// `[t, "v"]` pairs: the same time, the same value (within 1e-9 relative), and the same
/// spelling when the values are equal.
fn point_eq(a: &Value, b: &Value) -> Result<(), String> {
    let (ta, tb) = (a[0].as_f64(), b[0].as_f64());
    if ta != tb {
        return Err(format!("time {a} vs {b}"));
    }
    let (sa, sb) = (a[1].as_str().unwrap_or(""), b[1].as_str().unwrap_or(""));
    let (va, vb) = (parse(sa), parse(sb));
    let same = (va.is_nan() && vb.is_nan()) || va == vb;
    if same {
        return if sa == sb {
            Ok(())
        } else {
            Err(format!(
                "value {sa:?} spelled differently from Prometheus's {sb:?}"
            ))
        };
    }
    let scale = va.abs().max(vb.abs());
    if va.is_finite() && vb.is_finite() && (va - vb).abs() <= 1e-9 * scale {
        Ok(())
    } else {
        Err(format!("value {sa} vs Prometheus's {sb} at {}", a[0]))
    }
}

fn parse(text: &str) -> f64 {
    match text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().unwrap_or(f64::NAN),
    }
}
