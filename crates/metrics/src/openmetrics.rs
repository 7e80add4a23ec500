//! Loads OpenMetrics text (the format `promtool tsdb create-blocks-from openmetrics` reads) into
//! a [`MemorySource`]: `# TYPE`/`# HELP`/`# UNIT` lines become metadata, sample lines become
//! samples. Every sample needs a timestamp (seconds, fractions allowed); it becomes milliseconds
//! the way promtool converts it (`int64(seconds * 1000)`, truncated), so both hold the same
//! samples. Exemplars are skipped.

use crate::memory::{MemorySource, MemorySourceBuilder};
use crate::series::{Labels, METRIC_NAME};
use crate::source::{MetricMetadata, MetricType};

/// Why the text is not OpenMetrics this loader understands; `line` counts from 1.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct OpenMetricsError {
    pub line: usize,
    pub message: String,
}

impl MemorySource {
    /// The samples and metadata of OpenMetrics `text`; input after `# EOF` is an error.
    pub fn from_openmetrics(text: &str) -> Result<MemorySource, OpenMetricsError> {
        let mut builder = MemorySource::builder();
        let mut eof = false;
        for (index, line) in text.lines().enumerate() {
            let line_no = index.saturating_add(1);
            let fail = |message: String| OpenMetricsError {
                line: line_no,
                message,
            };
            if eof {
                if line.trim().is_empty() {
                    continue;
                }
                return Err(fail("content after # EOF".to_string()));
            }
            if line.trim().is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                eof = comment.trim() == "EOF";
                if !eof {
                    metadata_line(&mut builder, comment).map_err(fail)?;
                }
                continue;
            }
            let (labels, timestamp_ms, value) = sample_line(line).map_err(fail)?;
            builder.push(&labels, timestamp_ms, value);
        }
        Ok(builder.build())
    }
}

fn metadata_line(builder: &mut MemorySourceBuilder, comment: &str) -> Result<(), String> {
    let mut parts = comment.trim_start().splitn(3, ' ');
    let keyword = parts.next().unwrap_or("");
    let (Some(family), Some(rest)) = (parts.next(), parts.next()) else {
        // Other comments carry nothing a source needs.
        return Ok(());
    };
    let mut entry = builder_entry(builder, family);
    match keyword {
        "TYPE" => {
            entry.kind = match rest.trim() {
                "counter" => MetricType::Counter,
                "gauge" => MetricType::Gauge,
                "histogram" | "gaugehistogram" => MetricType::Histogram,
                "summary" => MetricType::Summary,
                "unknown" | "info" | "stateset" => MetricType::Unknown,
                other => return Err(format!("unknown metric type {other:?}")),
            }
        }
        "HELP" => entry.help = unescape(rest)?,
        "UNIT" => entry.unit = rest.trim().to_string(),
        _ => return Ok(()),
    }
    builder.add_metadata(entry);
    Ok(())
}

/// The metadata already collected for `family`, or a fresh entry.
fn builder_entry(builder: &MemorySourceBuilder, family: &str) -> MetricMetadata {
    builder.metadata_of(family).unwrap_or(MetricMetadata {
        name: family.to_string(),
        kind: MetricType::Unknown,
        help: String::new(),
        unit: String::new(),
    })
}

fn sample_line(line: &str) -> Result<(Labels, i64, f64), String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let (name, mut rest) = line.split_at(name_end);
    if !is_metric_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut pairs = vec![(METRIC_NAME.to_string(), name.to_string())];
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = label_pairs(after_brace, &mut pairs)?;
    }
    // An exemplar follows " # "; it is not a sample.
    let rest = rest.split(" # ").next().unwrap_or("");
    let mut fields = rest.split_ascii_whitespace();
    let value = fields
        .next()
        .ok_or_else(|| "sample without a value".to_string())
        .and_then(parse_float)?;
    let seconds = fields
        .next()
        .ok_or_else(|| "sample without a timestamp (one is needed to place it)".to_string())
        .and_then(parse_float)?;
    if fields.next().is_some() {
        return Err("unexpected text after the timestamp".to_string());
    }
    if !seconds.is_finite() || seconds.abs() > 9.2e15 {
        return Err(format!("timestamp {seconds} is out of range"));
    }
    // promtool's conversion, truncation included.
    let timestamp_ms = (seconds * 1000.0) as i64;
    Ok((Labels::new(pairs), timestamp_ms, value))
}

/// Parses `a="x",b="y"}` into `pairs`; returns the text after the closing brace.
fn label_pairs<'a>(
    mut rest: &'a str,
    pairs: &mut Vec<(String, String)>,
) -> Result<&'a str, String> {
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('}') {
            return Ok(after);
        }
        let eq = rest
            .find('=')
            .ok_or_else(|| "label without '='".to_string())?;
        let (name, after_name) = rest.split_at(eq);
        let name = name.trim();
        if !is_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        let quoted = after_name
            .get(1..)
            .and_then(|s| s.strip_prefix('"'))
            .ok_or_else(|| format!("label {name} has no quoted value"))?;
        let (value, after_value) = quoted_value(quoted)?;
        pairs.push((name.to_string(), value));
        rest = after_value.trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
}

/// The value up to the closing quote, unescaped, and the text after that quote.
fn quoted_value(text: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((value, text.get(at.saturating_add(1)..).unwrap_or(""))),
            '\\' => match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, '"')) => value.push('"'),
                Some((_, '\\')) => value.push('\\'),
                Some((_, other)) => return Err(format!("invalid escape \\{other}")),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err("unterminated label value".to_string())
}

fn unescape(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                other => return Err(format!("invalid escape in HELP: {other:?}")),
            },
            (c, false) => out.push(c),
        }
    }
    Ok(out)
}

/// A float as OpenMetrics writes them: decimals, exponents, `NaN`, `+Inf`, `-Inf`.
fn parse_float(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .map_err(|_| format!("{text:?} is not a number"))
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeriesSource;
    use crate::series::Matcher;

    #[test]
    fn loads_samples_metadata_and_escapes() {
        let text = "# TYPE req counter\n# HELP req Requests \\\"served\\\".\n\
                    req_total{code=\"200\",path=\"a\\\"b\\\\c\"} 1 1700000000.123\n\
                    req_total{code=\"200\",path=\"a\\\"b\\\\c\"} 2.5 1700000015 # {trace_id=\"x\"} 1 1700000015\n\
                    weird{} NaN 1\nweird{} +Inf 2\n# EOF\n";
        let source = MemorySource::from_openmetrics(text).unwrap();
        let series = source
            .select(&[Matcher::equal("code", "200")], i64::MIN, i64::MAX)
            .unwrap();
        assert_eq!(series.len(), 1);
        assert_eq!(series[0].labels.get("path"), Some("a\"b\\c"));
        assert_eq!(series[0].labels.metric_name(), Some("req_total"));
        let times: Vec<i64> = series[0].samples.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(times, vec![1_700_000_000_123, 1_700_000_015_000]);
        let weird = source
            .select(&[Matcher::equal("__name__", "weird")], 0, 2000)
            .unwrap();
        assert!(weird[0].samples[0].value.is_nan());
        assert_eq!(weird[0].samples[1].value, f64::INFINITY);
        let meta = source.metadata();
        assert_eq!(meta[0].name, "req");
        assert_eq!(meta[0].kind, MetricType::Counter);
        assert_eq!(meta[0].help, "Requests \"served\".");
    }

    #[test]
    fn rejects_what_it_cannot_place() {
        for (text, line) in [
            ("up 1\n", 1),
            ("ok 1 1\nup{a=\"x} 1 1\n", 2),
            ("up{1a=\"x\"} 1 1\n", 1),
            ("up 1 1\n# EOF\nup 2 2\n", 3),
            ("up 1 inf\n", 1),
            ("9up 1 1\n", 1),
        ] {
            let err = MemorySource::from_openmetrics(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
        }
    }
}
