//! PromQL built from typed parts, never by pasting text: label and metric names are checked
//! when a matcher or selector is made, label values and string arguments are written as PromQL
//! string literals (every quote, backslash and control character escaped), durations and
//! numbers are formatted here. So a value from a request — a namespace, a workload, a
//! `query_scope` value — can only ever be compared with, never become part of the query's
//! syntax.
//!
//! An [`Expr`] is rendered with a scope ([`Expr::render`]): the scope's matchers are added to
//! every selector of the expression, as Kiali adds `query_scope` to every query it sends. The
//! client renders with its configured scope, so no query leaves without it.

use std::fmt::Write as _;

mod expr;

pub use expr::{Aggregation, BinaryOp, Expr, Function, Grouping, VectorMatching};

/// A name or duration that PromQL cannot hold; the message says which and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PromqlError(String);

/// The longest label or metric name accepted (Prometheus has no limit; names this long are
/// not names).
const MAX_NAME: usize = 256;

fn check_name(kind: &str, name: &str, colon: bool) -> Result<(), PromqlError> {
    let ok_first = |c: char| c.is_ascii_alphabetic() || c == '_' || (colon && c == ':');
    let ok_rest = |c: char| ok_first(c) || c.is_ascii_digit();
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(ok_first) && chars.all(ok_rest) && name.len() <= MAX_NAME;
    if valid {
        Ok(())
    } else {
        let shape = if colon {
            "a letter, `_` or `:`, then letters, digits, `_` or `:`"
        } else {
            "a letter or `_`, then letters, digits or `_`"
        };
        Err(PromqlError(format!(
            "{} is not a {kind} ({shape}, at most {MAX_NAME} characters)",
            quote_shown(name)
        )))
    }
}

/// `name` quoted for a message, cut short.
fn quote_shown(name: &str) -> String {
    let cut: String = name.chars().take(64).collect();
    let mut out = String::new();
    string_literal(&mut out, &cut);
    if cut.len() < name.len() {
        out.push('…');
    }
    out
}

/// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LabelName(String);

impl LabelName {
    pub fn new(name: &str) -> Result<LabelName, PromqlError> {
        check_name("label name", name, false)?;
        Ok(LabelName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricName(String);

impl MetricName {
    pub fn new(name: &str) -> Result<MetricName, PromqlError> {
        check_name("metric name", name, true)?;
        Ok(MetricName(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    /// `=~`: the value is an RE2 regular expression, anchored by Prometheus at both ends.
    Regex,
    NotRegex,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// `name op "value"`. The value is any text; it is written as a string literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    pub name: LabelName,
    pub op: MatchOp,
    pub value: String,
}

impl Matcher {
    pub fn new(name: &str, op: MatchOp, value: impl Into<String>) -> Result<Matcher, PromqlError> {
        Ok(Matcher {
            name: LabelName::new(name)?,
            op,
            value: value.into(),
        })
    }

    fn write(&self, out: &mut String) {
        out.push_str(self.name.as_str());
        out.push_str(self.op.as_str());
        string_literal(out, &self.value);
    }
}

/// An instant-vector selector: a metric name and/or matchers (at least one of them, so the
/// selector is never the empty `{}` Prometheus refuses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    metric: Option<MetricName>,
    matchers: Vec<Matcher>,
}

impl Selector {
    /// All series of the metric `name`.
    pub fn metric(name: &str) -> Result<Selector, PromqlError> {
        Ok(Selector {
            metric: Some(MetricName::new(name)?),
            matchers: Vec::new(),
        })
    }

    /// The series `matcher` selects, of any metric.
    pub fn matching(matcher: Matcher) -> Selector {
        Selector {
            metric: None,
            matchers: vec![matcher],
        }
    }

    /// The selector with one more matcher.
    pub fn with(mut self, matcher: Matcher) -> Selector {
        self.matchers.push(matcher);
        self
    }

    /// `name="value"` added.
    pub fn eq(self, name: &str, value: impl Into<String>) -> Result<Selector, PromqlError> {
        Ok(self.with(Matcher::new(name, MatchOp::Equal, value)?))
    }

    /// `name!="value"` added.
    pub fn ne(self, name: &str, value: impl Into<String>) -> Result<Selector, PromqlError> {
        Ok(self.with(Matcher::new(name, MatchOp::NotEqual, value)?))
    }

    /// `name=~"regex"` added (see [`regex_literal`] for literal parts).
    pub fn re(self, name: &str, regex: impl Into<String>) -> Result<Selector, PromqlError> {
        Ok(self.with(Matcher::new(name, MatchOp::Regex, regex)?))
    }

    /// `name!~"regex"` added.
    pub fn not_re(self, name: &str, regex: impl Into<String>) -> Result<Selector, PromqlError> {
        Ok(self.with(Matcher::new(name, MatchOp::NotRegex, regex)?))
    }

    /// The selector as PromQL, with the scope's matchers after its own.
    pub fn render(&self, scope: &[Matcher]) -> String {
        let mut out = String::new();
        self.write(&mut out, scope);
        out
    }

    fn write(&self, out: &mut String, scope: &[Matcher]) {
        if let Some(metric) = &self.metric {
            out.push_str(metric.as_str());
        }
        out.push('{');
        for (i, matcher) in self.matchers.iter().chain(scope).enumerate() {
            if i > 0 {
                out.push(',');
            }
            matcher.write(out);
        }
        out.push('}');
    }
}

/// `text` as a double-quoted PromQL string literal: `"` and `\` escaped, control characters
/// (newlines among them, which a literal cannot hold) as `\n`, `\r`, `\t` or `\uXXXX`.
pub fn string_literal(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `literal` as a regular expression that matches exactly it (RE2's metacharacters escaped,
/// as Go's `regexp.QuoteMeta` does), to be part of an `=~` matcher's value.
pub fn regex_literal(literal: &str) -> String {
    let mut out = String::with_capacity(literal.len());
    for c in literal.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests;
