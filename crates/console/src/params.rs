//! The query parameters of the tracing routes, parsed as Kiali parses them (unknown parameters
//! are refused), with one difference: `startMicros` defaults to ten minutes ago instead of
//! failing.

use std::collections::BTreeMap;

use meshtrace_model::time::now_micros;

use crate::error::ApiError;

/// Kiali's `MaxTracingLimit`.
pub const MAX_LIMIT: usize = 10_000;
/// The window when `startMicros` is not given.
pub const DEFAULT_WINDOW_MICROS: u64 = 10 * 60 * 1_000_000;

#[derive(Debug, Clone, PartialEq)]
pub struct TracingParams {
    pub start: u64,
    pub end: u64,
    pub limit: usize,
    pub min_duration: Option<u64>,
    pub tags: BTreeMap<String, String>,
    pub cluster: Option<String>,
}

/// Splits a raw query string into pairs, refusing names not in `known`.
pub fn pairs(raw: Option<&str>, known: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    for (name, _) in &pairs {
        if !known.contains(&name.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter `{name}`: the parameters are {}",
                known.join(", ")
            )));
        }
    }
    Ok(pairs)
}

fn number(name: &str, value: &str) -> Result<u64, ApiError> {
    value.parse::<u64>().map_err(|_| {
        ApiError::bad_request(format!(
            "query parameter `{name}` must be a non-negative integer, found `{value}`"
        ))
    })
}

impl TracingParams {
    pub const NAMES: [&'static str; 6] = [
        "startMicros",
        "endMicros",
        "limit",
        "minDuration",
        "tags",
        "clusterName",
    ];

    pub fn parse(raw: Option<&str>, default_limit: usize) -> Result<TracingParams, ApiError> {
        let now = now_micros();
        let mut params = TracingParams {
            start: now.saturating_sub(DEFAULT_WINDOW_MICROS),
            end: now,
            limit: default_limit.min(MAX_LIMIT),
            min_duration: None,
            tags: BTreeMap::new(),
            cluster: None,
        };
        let mut start = None;
        for (name, value) in pairs(raw, &Self::NAMES)? {
            match name.as_str() {
                "startMicros" => start = Some(number(&name, &value)?),
                "endMicros" => params.end = number(&name, &value)?,
                "limit" => {
                    let limit = number(&name, &value)?;
                    if limit == 0 {
                        return Err(ApiError::bad_request(
                            "query parameter `limit` must be greater than 0",
                        ));
                    }
                    params.limit = (limit as usize).min(MAX_LIMIT);
                }
                "minDuration" => params.min_duration = Some(number(&name, &value)?),
                "tags" => params.tags = parse_tags(&value)?,
                "clusterName" => params.cluster = Some(value).filter(|v| !v.is_empty()),
                _ => unreachable!("pairs() refuses unknown names"),
            }
        }
        if let Some(start) = start {
            params.start = start;
        } else if params.end < now {
            params.start = params.end.saturating_sub(DEFAULT_WINDOW_MICROS);
        }
        if params.start > params.end {
            return Err(ApiError::bad_request(format!(
                "startMicros ({}) is after endMicros ({})",
                params.start, params.end
            )));
        }
        Ok(params)
    }
}

/// `tags`: a JSON object of strings, as Kiali takes it.
fn parse_tags(value: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let parsed: serde_json::Value = serde_json::from_str(value).map_err(|e| {
        ApiError::bad_request(format!(
            "query parameter `tags` must be a JSON object such as {{\"error\":\"true\"}}: {e}"
        ))
    })?;
    let serde_json::Value::Object(map) = parsed else {
        return Err(ApiError::bad_request(
            "query parameter `tags` must be a JSON object such as {\"error\":\"true\"}",
        ));
    };
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            other => Err(ApiError::bad_request(format!(
                "tag `{k}` in query parameter `tags` must be a string, found {other}"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let p = TracingParams::parse(None, 100).unwrap();
        assert_eq!(p.limit, 100);
        assert_eq!(p.end - p.start, DEFAULT_WINDOW_MICROS);
        let p = TracingParams::parse(
            Some("startMicros=1&endMicros=5&limit=99999&minDuration=7&tags=%7B%22error%22%3A%22true%22%7D&clusterName=east"),
            100,
        )
        .unwrap();
        assert_eq!(
            p,
            TracingParams {
                start: 1,
                end: 5,
                limit: MAX_LIMIT,
                min_duration: Some(7),
                tags: BTreeMap::from([("error".into(), "true".into())]),
                cluster: Some("east".into()),
            }
        );
    }

    #[test]
    fn bad_parameters_are_named() {
        let error = |q: &str| TracingParams::parse(Some(q), 100).unwrap_err().error;
        assert!(error("lmit=5").starts_with("unknown query parameter `lmit`"));
        assert_eq!(
            error("limit=-1"),
            "query parameter `limit` must be a non-negative integer, found `-1`"
        );
        assert_eq!(
            error("limit=0"),
            "query parameter `limit` must be greater than 0"
        );
        assert!(error("tags=null").starts_with("query parameter `tags` must be a JSON object"));
        assert_eq!(
            error("tags=%7B%22a%22%3A1%7D"),
            "tag `a` in query parameter `tags` must be a string, found 1"
        );
        assert_eq!(
            error("startMicros=9&endMicros=5"),
            "startMicros (9) is after endMicros (5)"
        );
    }
}
