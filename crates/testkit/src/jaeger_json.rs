//! Reading traces and spans of the Jaeger UI's JSON (`/api/traces`, the console's trace
//! answers): a span's tags are a list of `{key, type, value}` objects.

use serde_json::Value;

/// The string value of `span`'s tag `key`; `None` when the span has no such tag or its value
/// is not a string.
pub fn tag<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    tag_value(span, key)?.as_str()
}

/// The value of `span`'s tag `key`, whatever its type; `None` when the span has no such tag.
pub fn tag_value<'a>(span: &'a Value, key: &str) -> Option<&'a Value> {
    span["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .map(|t| &t["value"])
}

/// Whether `span` is marked `error=true`: as a bool (OTLP's ERROR status, converted by the
/// store) or as Envoy's string.
pub fn has_error(span: &Value) -> bool {
    span["tags"].as_array().is_some_and(|tags| {
        tags.iter()
            .any(|t| t["key"] == "error" && (t["value"] == true || t["value"] == "true"))
    })
}

/// The trace with the most spans in a `{"data": [trace, ...]}` answer (the last of the longest
/// on a tie); the test fails when there is none.
pub fn longest_trace(body: &Value) -> &Value {
    body["data"]
        .as_array()
        .expect("a list of traces in `data`")
        .iter()
        .max_by_key(|t| t["spans"].as_array().expect("a trace's spans").len())
        .expect("at least one trace")
}
