//! Problems found in a configuration: each with its key path, its place in the file, and a
//! message that says what was found and what is allowed.

use std::fmt;

use crate::yaml::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

/// Where a problem stands in the file the user gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Not tied to one place (a missing key, the whole file).
    None,
    /// A line and column of the file.
    File(Pos),
    /// A line and column inside an embedded document (a ConfigMap's `config.yaml` written as a
    /// quoted string), which cannot be mapped back onto the file's lines.
    Embedded { field: String, pos: Pos },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// Dotted key path, e.g. `external_services.tracing.auth.type`; empty for the whole file.
    pub path: String,
    pub location: Location,
    pub message: String,
}

impl Diagnostic {
    pub fn error(path: impl Into<String>, pos: Option<Pos>, message: impl Into<String>) -> Self {
        Self::new(Severity::Error, path, pos, message)
    }

    pub fn warning(path: impl Into<String>, pos: Option<Pos>, message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, path, pos, message)
    }

    fn new(
        severity: Severity,
        path: impl Into<String>,
        pos: Option<Pos>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity,
            path: path.into(),
            location: pos.map_or(Location::None, Location::File),
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The diagnostic as one line, prefixed with the file's name the way compilers do:
    /// `kiali.yaml:12:9: error: external_services.tracing.auth.type: ...`.
    pub fn render(&self, origin: &str) -> String {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let place = match &self.location {
            Location::File(pos) => format!("{origin}:{}:{}", pos.line, pos.col),
            _ => origin.to_string(),
        };
        let path = match (&self.location, self.path.is_empty()) {
            (Location::Embedded { field, pos }, true) => {
                format!("({field} line {}, column {}): ", pos.line, pos.col)
            }
            (Location::Embedded { field, pos }, false) => format!(
                "{} ({field} line {}, column {}): ",
                self.path, pos.line, pos.col
            ),
            (_, true) => String::new(),
            (_, false) => format!("{}: ", self.path),
        };
        format!("{place}: {severity}: {path}{}", self.message)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render("config"))
    }
}

/// The valid key nearest to an unknown one, if any is near enough to be a likely typo
/// (`in_clster_url` → `in_cluster_url`, `internalURL` → `internal_url`).
///
/// The edit distance takes time in the product of the two lengths, so a key whose length
/// alone puts it out of reach is not measured: a megabyte-long key costs nothing here.
pub fn nearest<'a>(unknown: &str, known: &[&'a str]) -> Option<&'a str> {
    let squash = |s: &str| s.replace(['_', '-'], "").to_ascii_lowercase();
    let unknown_squashed = squash(unknown);
    if let Some(same) = known.iter().find(|k| squash(k) == unknown_squashed) {
        return Some(same);
    }
    let limit = (unknown.len() / 3).clamp(1, 3);
    let unknown_chars = unknown.chars().count();
    known
        .iter()
        // Each edit changes the length by one at most.
        .filter(|k| unknown_chars.abs_diff(k.chars().count()) <= limit)
        .map(|k| (strsim::damerau_levenshtein(unknown, k), *k))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k)
}

/// Quotes a value found in the file for a message, cut short if long. Never call it on a secret.
pub fn quote(value: &str) -> String {
    const MAX: usize = 60;
    if value.chars().count() > MAX {
        let cut: String = value.chars().take(MAX).collect();
        format!("\"{cut}…\"")
    } else {
        format!("\"{value}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos_and_other_casings() {
        let known = ["in_cluster_url", "internal_url", "url", "use_grpc"];
        assert_eq!(nearest("in_clster_url", &known), Some("in_cluster_url"));
        assert_eq!(nearest("internalURL", &known), Some("internal_url"));
        assert_eq!(nearest("use-grpc", &known), Some("use_grpc"));
        assert_eq!(nearest("completely_else", &known), None);
        assert_eq!(nearest("ur", &known), Some("url"));
    }

    #[test]
    fn render_puts_the_place_first() {
        let d = Diagnostic::error("a.b", Some(Pos { line: 3, col: 7 }), "bad");
        assert_eq!(d.render("k.yaml"), "k.yaml:3:7: error: a.b: bad");
        let d = Diagnostic::warning("", None, "empty");
        assert_eq!(d.render("k.yaml"), "k.yaml: warning: empty");
    }
}
