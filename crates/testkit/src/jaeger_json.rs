//! Reading spans of the Jaeger UI's JSON (`/api/traces`, the console's trace answers): a
//! span's tags are a list of `{key, type, value}` objects.

use serde_json::Value;

/// The string value of `span`'s tag `key`; `None` when the span has no such tag or its value
/// is not a string.
pub fn tag<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["tags"].as_array()?.iter().find(|t| t["key"] == key)?["value"].as_str()
}

/// Whether `span` is marked `error=true`: as a bool (OTLP's ERROR status, converted by the
/// store) or as Envoy's string.
pub fn has_error(span: &Value) -> bool {
    span["tags"].as_array().is_some_and(|tags| {
        tags.iter()
            .any(|t| t["key"] == "error" && (t["value"] == true || t["value"] == "true"))
    })
}
