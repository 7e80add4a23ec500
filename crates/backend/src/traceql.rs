//! The TraceQL of a Tempo search, as Kiali builds it — service and tags as conditions of one
//! span set, `error=true` as the span status — written so that no key or value can leave its
//! condition: tags come from the console's `?tags=` and a key such as `x} || { true` must not
//! close the span set and take `query_scope` out of the query.
//!
//! Values are TraceQL string literals (Go's syntax, which Tempo's lexer reads with
//! `strconv.Unquote`), with quotes, backslashes and control characters escaped. Keys are
//! written bare when Tempo's lexer reads them whole (`.istio.cluster_id`), quoted otherwise
//! (`."x} || { true"`, Tempo 2.4 and later, where only `\\` and `\"` are escapes), and refused
//! when TraceQL cannot name them at all (empty, or with control characters or U+FEFF, which
//! Go's scanner refuses). The compared keys
//! are selected too, so that Tempo returns them and the client can check its answer against
//! them ([`compared`]).

use crate::{BackendError, TraceQuery};

/// What Kiali selects for its span views.
const SELECTED: [&str; 13] = [
    "status",
    ".node_id",
    ".component",
    ".upstream_cluster",
    ".http.method",
    ".http.status_code",
    ".response_flags",
    ".istio.source_workload",
    ".istio.source_namespace",
    ".istio.destination_workload",
    ".istio.destination_namespace",
    "resource.hostname",
    "name",
];

/// How much of a refused key an error quotes.
const SHOWN_KEY_CHARS: usize = 100;

/// The TraceQL of `query`, or why one of its tag keys cannot be searched.
pub fn traceql(query: &TraceQuery) -> Result<String, BackendError> {
    let mut conditions = vec![format!(
        "resource.service.name = {}",
        string(&query.service)
    )];
    let mut selected: Vec<String> = SELECTED
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    for (key, value) in &query.tags {
        if is_error_status(key, value) {
            conditions.push("status = error".to_string());
            continue;
        }
        let attribute = attribute(key)?;
        conditions.push(format!("{attribute} = {}", string(value)));
        if !selected.contains(&attribute) {
            selected.push(attribute);
        }
    }
    Ok(format!(
        "{{ {} }} | select({})",
        conditions.join(" && "),
        selected.join(", ")
    ))
}

/// Kiali's `error=true` tag is the span status in Tempo.
fn is_error_status(key: &str, value: &str) -> bool {
    key == "error" && value == "true"
}

/// The tags `query` compares as string attributes: every span Tempo matched carries them.
pub(crate) fn compared(query: &TraceQuery) -> Vec<(&str, &str)> {
    query
        .tags
        .iter()
        .filter(|(k, v)| !is_error_status(k, v))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// `key` as an unscoped TraceQL attribute (span or resource).
fn attribute(key: &str) -> Result<String, BackendError> {
    if key.is_empty() || key.chars().any(|c| c.is_control() || c == '\u{feff}') {
        let shown: String = key.escape_debug().take(SHOWN_KEY_CHARS).collect();
        return Err(BackendError::InvalidQuery(format!(
            "tag key `{shown}` cannot be searched in Tempo: TraceQL cannot name an attribute \
             that is empty or holds control characters (or U+FEFF)"
        )));
    }
    if is_bare(key) {
        return Ok(format!(".{key}"));
    }
    let mut quoted = String::with_capacity(key.len().saturating_add(4));
    quoted.push_str(".\"");
    for c in key.chars() {
        if matches!(c, '"' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    Ok(quoted)
}

/// Whether Tempo's lexer reads `.key` as the whole key: it starts like a name (not a digit,
/// which Go's scanner would read as a number) and holds only characters that never end an
/// attribute or start a quoted part. Stricter than Tempo's rule, so every usual key
/// (`http.status_code`, `istio.cluster_id`, `k8s.pod/name`) stays bare and works with Tempo
/// versions that predate quoted attributes.
fn is_bare(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/' | ':'))
}

/// `value` as a TraceQL string literal.
fn string(value: &str) -> String {
    let mut literal = String::with_capacity(value.len().saturating_add(2));
    literal.push('"');
    for c in value.chars() {
        match c {
            '"' => literal.push_str("\\\""),
            '\\' => literal.push_str("\\\\"),
            '\n' => literal.push_str("\\n"),
            '\r' => literal.push_str("\\r"),
            '\t' => literal.push_str("\\t"),
            // Go's scanner refuses NUL and a byte-order mark in the source, and a newline ends
            // a literal: the other control characters are escaped alike.
            c if c.is_control() || c == '\u{feff}' => {
                literal.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => literal.push(c),
        }
    }
    literal.push('"');
    literal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bare_quoted_or_refused() {
        assert_eq!(attribute("istio.cluster_id").unwrap(), ".istio.cluster_id");
        assert_eq!(attribute("x} || { true").unwrap(), ".\"x} || { true\"");
        assert_eq!(attribute("a\"b\\").unwrap(), ".\"a\\\"b\\\\\"");
        assert_eq!(attribute("5xx").unwrap(), ".\"5xx\"");
        assert!(attribute("").is_err());
        assert!(attribute("a\u{0}").is_err());
    }

    #[test]
    fn values_are_go_string_literals() {
        assert_eq!(
            string("a\"\\\n\u{0}\u{7f}é"),
            "\"a\\\"\\\\\\n\\u0000\\u007fé\""
        );
    }
}
