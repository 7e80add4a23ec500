//! Serving a build of the Jaeger UI from a directory on the query HTTP port (`--jaeger-ui`), as
//! Jaeger's own query service serves it: the files under `/static/`, and `index.html` for every
//! other path outside `/api/` (the UI routes in the browser), with what the backend knows
//! written into it.
//!
//! The UI learns what the backend offers from assignments in `index.html` that the query
//! service rewrites (facts from Jaeger's `static_handler.go`, v1.76 to v2.20):
//! - `JAEGER_STORAGE_CAPABILITIES = DEFAULT_STORAGE_CAPABILITIES;` (UI ≤ v2.19) and
//!   `JAEGER_BACKEND_CAPABILITIES = DEFAULT_BACKEND_CAPABILITIES;` (v2.20): without
//!   `metricsStorage: true` the UI hides its Monitor tab, and without `archiveStorage: true` its
//!   "Archive Trace" button;
//! - `JAEGER_VERSION = DEFAULT_VERSION;`: what "About Jaeger" shows;
//! - `JAEGER_CONFIG = DEFAULT_CONFIG;` with a JSON config file, or the line `// JAEGER_CONFIG_JS`
//!   and the line after it with a JavaScript one (`--jaeger-ui-config`).
//!
//! Everything is read and written once, at start: a directory without a readable `index.html`,
//! or a config that is not what its extension says, stops the start with the reason.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::path::{Path, PathBuf};

use axum::Router;
use axum::http::{Method, Uri, header};
use axum::response::IntoResponse;
use tower_http::services::ServeDir;

use crate::error::unknown_route;

/// The largest `index.html` or config file read (a Jaeger UI's `index.html` is about 5 KB).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Why a Jaeger UI directory or config cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum JaegerUiError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path} is not UTF-8 text")]
    NotText { path: PathBuf },
    #[error("the Jaeger UI config {path} is not a JSON object: {reason}")]
    BadJson { path: PathBuf, reason: String },
    #[error("the Jaeger UI config {path} must end in .json or .js (as Jaeger's --query.ui-config)")]
    UnknownConfigKind { path: PathBuf },
}

/// A Jaeger UI build ready to serve: where its files are, and its `index.html` with the config
/// file's part already written in (the capabilities are written when the routes are built).
#[derive(Debug, Clone)]
pub struct JaegerUi {
    static_dir: PathBuf,
    index: String,
}

impl JaegerUi {
    /// Reads `dir/index.html` and, when given, the UI config (`.json`: a JSON object; `.js`: a
    /// script defining `UIConfig()`, as Jaeger takes them).
    pub fn load(dir: &Path, config: Option<&Path>) -> Result<JaegerUi, JaegerUiError> {
        let mut index = read_text(&dir.join("index.html"))?;
        if let Some(path) = config {
            index = with_config(&index, path, &read_text(path)?)?;
        }
        Ok(JaegerUi {
            static_dir: dir.join("static"),
            index,
        })
    }

    /// The UI's routes, merged under the query API's: `/static/*` from the directory, and
    /// `index.html` for the other GET paths outside `/api/` (those keep the API's 404).
    pub fn routes<S: Clone + Send + Sync + 'static>(&self, metrics_storage: bool) -> Router<S> {
        // Shared, not copied, by every request's answer.
        let index = axum::body::Bytes::from(backend_facts(&self.index, metrics_storage));
        Router::new()
            .nest_service("/static", ServeDir::new(&self.static_dir))
            .fallback(move |method: Method, uri: Uri| async move {
                let page = method == Method::GET || method == Method::HEAD;
                if page && !uri.path().starts_with("/api/") {
                    (
                        [
                            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                            (header::CACHE_CONTROL, "no-cache"),
                        ],
                        index,
                    )
                        .into_response()
                } else {
                    unknown_route()
                }
            })
    }
}

fn read_text(path: &Path) -> Result<String, JaegerUiError> {
    let read = |source| JaegerUiError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read)?.len();
    if len > MAX_FILE_BYTES {
        return Err(JaegerUiError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    let bytes = std::fs::read(path).map_err(read)?;
    String::from_utf8(bytes).map_err(|_| JaegerUiError::NotText {
        path: path.to_path_buf(),
    })
}

/// Writes the config file's content where the UI reads it.
fn with_config(index: &str, path: &Path, text: &str) -> Result<String, JaegerUiError> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("json") => {
            let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
                .map_err(|e| JaegerUiError::BadJson {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
            let json = script_safe_json(&serde_json::Value::Object(object));
            Ok(replace_assignment(
                index,
                "JAEGER_CONFIG",
                "DEFAULT_CONFIG",
                &json,
            ))
        }
        Some("js") => Ok(replace_config_js(index, text)),
        _ => Err(JaegerUiError::UnknownConfigKind {
            path: path.to_path_buf(),
        }),
    }
}

/// The capabilities and version, written into the page.
fn backend_facts(index: &str, metrics_storage: bool) -> String {
    let storage = serde_json::json!({
        "archiveStorage": true,
        "metricsStorage": metrics_storage,
    });
    let backend = serde_json::json!({
        "archiveStorage": true,
        "metricsStorage": metrics_storage,
        "searchWithoutServiceName": false,
        "aiAssistant": false,
    });
    let version = serde_json::json!({
        "gitCommit": "",
        "gitVersion": concat!("meshtrace ", env!("CARGO_PKG_VERSION")),
        "buildDate": "",
    });
    let index = replace_assignment(
        index,
        "JAEGER_STORAGE_CAPABILITIES",
        "DEFAULT_STORAGE_CAPABILITIES",
        &storage.to_string(),
    );
    let index = replace_assignment(
        &index,
        "JAEGER_BACKEND_CAPABILITIES",
        "DEFAULT_BACKEND_CAPABILITIES",
        &backend.to_string(),
    );
    replace_assignment(
        &index,
        "JAEGER_VERSION",
        "DEFAULT_VERSION",
        &version.to_string(),
    )
}

/// JSON that cannot end the inline `<script>` it is written into: every `<` is escaped
/// (`\u003c` means the same character to a JSON or JavaScript reader).
fn script_safe_json(value: &serde_json::Value) -> String {
    value.to_string().replace('<', "\\u003c")
}

/// Replaces every `NAME = DEFAULT;` (any number of spaces around `=`) with `NAME = value;`.
fn replace_assignment(text: &str, name: &str, default: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len().saturating_add(value.len()));
    let mut rest = text;
    while let Some(at) = rest.find(name) {
        let (before, from_name) = rest.split_at(at);
        out.push_str(before);
        let after_name = from_name.get(name.len()..).unwrap_or_default();
        let matched = after_name
            .trim_start_matches(' ')
            .strip_prefix('=')
            .map(|t| t.trim_start_matches(' '))
            .and_then(|t| t.strip_prefix(default))
            .and_then(|t| t.strip_prefix(';'));
        match matched {
            Some(tail) => {
                out.push_str(name);
                out.push_str(" = ");
                out.push_str(value);
                out.push(';');
                rest = tail;
            }
            None => {
                out.push_str(name);
                rest = after_name;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Replaces the line `// JAEGER_CONFIG_JS` (any indentation and case, anything after it) and
/// the line after it with `script`, as Jaeger does with a `.js` config.
fn replace_config_js(index: &str, script: &str) -> String {
    let mut out = String::with_capacity(index.len().saturating_add(script.len()));
    let mut lines = index.split_inclusive('\n');
    let mut replaced = false;
    while let Some(line) = lines.next() {
        if !replaced && is_config_js_marker(line) {
            replaced = true;
            let next = lines.next();
            out.push_str(script);
            // The replaced pair ended a line; keep what follows on its own line.
            if next.is_some_and(|l| l.ends_with('\n')) {
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

fn is_config_js_marker(line: &str) -> bool {
    line.trim_start()
        .strip_prefix("//")
        .map(str::trim_start)
        .and_then(|t| t.get(..16))
        .is_some_and(|t| t.eq_ignore_ascii_case("JAEGER_CONFIG_JS"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_are_replaced_only_when_whole() {
        let text = "a JAEGER_VERSION = DEFAULT_VERSION; b JAEGER_VERSION=DEFAULT_VERSION; \
                    c JAEGER_VERSION = OTHER; d JAEGER_VERSION";
        assert_eq!(
            replace_assignment(text, "JAEGER_VERSION", "DEFAULT_VERSION", "{}"),
            "a JAEGER_VERSION = {}; b JAEGER_VERSION = {}; c JAEGER_VERSION = OTHER; d JAEGER_VERSION"
        );
    }

    #[test]
    fn the_config_js_marker_and_the_next_line_are_replaced() {
        let index = "<script>\n  // JAEGER_CONFIG_JS\n  placeholder();\n  keep();\n</script>\n";
        assert_eq!(
            replace_config_js(index, "function UIConfig() { return {}; }"),
            "<script>\nfunction UIConfig() { return {}; }\n  keep();\n</script>\n"
        );
        assert_eq!(replace_config_js("no marker\n", "x"), "no marker\n");
    }

    #[test]
    fn json_in_a_script_cannot_close_it() {
        let value = serde_json::json!({"menu": "</script><script>alert(1)</script>"});
        let json = script_safe_json(&value);
        assert!(!json.contains('<'), "{json}");
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, value);
    }
}
