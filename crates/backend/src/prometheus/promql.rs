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

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::fmt::{self, Write as _};
use std::time::Duration;

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

/// The functions the console's queries call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Abs,
    Absent,
    AvgOverTime,
    Ceil,
    ClampMax,
    ClampMin,
    CountOverTime,
    Delta,
    Floor,
    HistogramQuantile,
    Increase,
    Irate,
    MaxOverTime,
    MinOverTime,
    Rate,
    Round,
    Scalar,
    Sort,
    SortDesc,
    SumOverTime,
    Time,
    Timestamp,
    Vector,
}

impl Function {
    fn as_str(self) -> &'static str {
        match self {
            Function::Abs => "abs",
            Function::Absent => "absent",
            Function::AvgOverTime => "avg_over_time",
            Function::Ceil => "ceil",
            Function::ClampMax => "clamp_max",
            Function::ClampMin => "clamp_min",
            Function::CountOverTime => "count_over_time",
            Function::Delta => "delta",
            Function::Floor => "floor",
            Function::HistogramQuantile => "histogram_quantile",
            Function::Increase => "increase",
            Function::Irate => "irate",
            Function::MaxOverTime => "max_over_time",
            Function::MinOverTime => "min_over_time",
            Function::Rate => "rate",
            Function::Round => "round",
            Function::Scalar => "scalar",
            Function::Sort => "sort",
            Function::SortDesc => "sort_desc",
            Function::SumOverTime => "sum_over_time",
            Function::Time => "time",
            Function::Timestamp => "timestamp",
            Function::Vector => "vector",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
    /// Takes a parameter: `topk(k, ...)`.
    Topk,
    Bottomk,
    Quantile,
}

impl Aggregation {
    fn as_str(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Avg => "avg",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Count => "count",
            Aggregation::Group => "group",
            Aggregation::Stddev => "stddev",
            Aggregation::Stdvar => "stdvar",
            Aggregation::Topk => "topk",
            Aggregation::Bottomk => "bottomk",
            Aggregation::Quantile => "quantile",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Grouping {
    #[default]
    None,
    By(Vec<LabelName>),
    Without(Vec<LabelName>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinaryOp {
    fn as_str(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
            BinaryOp::Eq => "==",
            BinaryOp::Ne => "!=",
            BinaryOp::Gt => ">",
            BinaryOp::Lt => "<",
            BinaryOp::Ge => ">=",
            BinaryOp::Le => "<=",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
            BinaryOp::Unless => "unless",
        }
    }
}

/// `on(...)` / `ignoring(...)`, and `group_left(...)` / `group_right(...)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VectorMatching {
    /// `on` when true, `ignoring` when false.
    pub on: bool,
    pub labels: Vec<LabelName>,
    /// `Some((true, labels))` is `group_left(labels)`, `Some((false, ..))` `group_right`.
    pub group: Option<(bool, Vec<LabelName>)>,
}

/// A PromQL expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Number(f64),
    String(String),
    Vector(Selector),
    /// `selector[range]`; the range is at least a millisecond ([`Expr::range`]).
    Range(Selector, Duration),
    Call(Function, Vec<Expr>),
    Aggregate {
        op: Aggregation,
        grouping: Grouping,
        param: Option<Box<Expr>>,
        expr: Box<Expr>,
    },
    Binary {
        op: BinaryOp,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
        /// The `bool` modifier of a comparison.
        return_bool: bool,
        matching: Option<VectorMatching>,
    },
}

impl Expr {
    pub fn vector(selector: Selector) -> Expr {
        Expr::Vector(selector)
    }

    /// `selector[range]`; the range is written in whole milliseconds and must hold one.
    pub fn range(selector: Selector, range: Duration) -> Result<Expr, PromqlError> {
        if range.as_millis() == 0 {
            return Err(PromqlError(format!(
                "a range of {range:?} selects nothing: it must be at least 1ms"
            )));
        }
        Ok(Expr::Range(selector, range))
    }

    pub fn call(function: Function, args: Vec<Expr>) -> Expr {
        Expr::Call(function, args)
    }

    /// `op(expr)`, `op by (labels) (expr)`, ...
    pub fn aggregate(op: Aggregation, grouping: Grouping, expr: Expr) -> Expr {
        Expr::Aggregate {
            op,
            grouping,
            param: None,
            expr: Box::new(expr),
        }
    }

    /// `lhs op rhs`, without modifiers.
    pub fn binary(op: BinaryOp, lhs: Expr, rhs: Expr) -> Expr {
        Expr::Binary {
            op,
            lhs: Box::new(lhs),
            rhs: Box::new(rhs),
            return_bool: false,
            matching: None,
        }
    }

    /// The expression as PromQL, every selector with the scope's matchers added.
    pub fn render(&self, scope: &[Matcher]) -> String {
        let mut out = String::new();
        self.write(&mut out, scope);
        out
    }

    fn write(&self, out: &mut String, scope: &[Matcher]) {
        match self {
            Expr::Number(n) => number(out, *n),
            Expr::String(s) => string_literal(out, s),
            Expr::Vector(selector) => selector.write(out, scope),
            Expr::Range(selector, range) => {
                selector.write(out, scope);
                out.push('[');
                duration(out, *range);
                out.push(']');
            }
            Expr::Call(function, args) => {
                out.push_str(function.as_str());
                out.push('(');
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    arg.write(out, scope);
                }
                out.push(')');
            }
            Expr::Aggregate {
                op,
                grouping,
                param,
                expr,
            } => {
                out.push_str(op.as_str());
                match grouping {
                    Grouping::None => {}
                    Grouping::By(labels) => label_list(out, " by ", labels),
                    Grouping::Without(labels) => label_list(out, " without ", labels),
                }
                out.push_str(" (");
                if let Some(param) = param {
                    param.write(out, scope);
                    out.push_str(", ");
                }
                expr.write(out, scope);
                out.push(')');
            }
            Expr::Binary {
                op,
                lhs,
                rhs,
                return_bool,
                matching,
            } => {
                operand(out, lhs, scope);
                out.push(' ');
                out.push_str(op.as_str());
                if *return_bool {
                    out.push_str(" bool");
                }
                if let Some(m) = matching {
                    label_list(out, if m.on { " on" } else { " ignoring" }, &m.labels);
                    if let Some((left, labels)) = &m.group {
                        let keyword = if *left { " group_left" } else { " group_right" };
                        label_list(out, keyword, labels);
                    }
                }
                out.push(' ');
                operand(out, rhs, scope);
            }
        }
    }
}

impl fmt::Display for Expr {
    /// Without a scope: for messages and tests.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&[]))
    }
}

/// An operand of a binary operator, in parentheses when it is itself a binary expression or a
/// negative number, so that the tree, not PromQL's precedence rules, decides the grouping.
fn operand(out: &mut String, expr: &Expr, scope: &[Matcher]) {
    let wrap = match expr {
        Expr::Binary { .. } => true,
        Expr::Number(n) => n.is_sign_negative(),
        _ => false,
    };
    if wrap {
        out.push('(');
    }
    expr.write(out, scope);
    if wrap {
        out.push(')');
    }
}

fn label_list(out: &mut String, keyword: &str, labels: &[LabelName]) {
    out.push_str(keyword);
    out.push_str(" (");
    for (i, label) in labels.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(label.as_str());
    }
    out.push(')');
}

/// A number as PromQL reads it back exactly: Rust's shortest round-trip form, and
/// `NaN`, `Inf`, `-Inf`.
fn number(out: &mut String, n: f64) {
    if n.is_nan() {
        out.push_str("NaN");
    } else if n.is_infinite() {
        out.push_str(if n > 0.0 { "Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{n:?}");
    }
}

/// A duration in whole milliseconds: `90s`, `1500ms`.
fn duration(out: &mut String, d: Duration) {
    let ms = d.as_millis();
    if ms % 1000 == 0 {
        let _ = write!(out, "{}s", d.as_secs());
    } else {
        let _ = write!(out, "{ms}ms");
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
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn label(name: &str) -> LabelName {
        LabelName::new(name).unwrap()
    }

    #[test]
    fn names_are_checked() {
        for good in ["a", "_", "destination_workload", "A9_"] {
            LabelName::new(good).unwrap();
        }
        for bad in ["", "9a", "a-b", "a b", "é", "a\"", "a}"] {
            let e = LabelName::new(bad).unwrap_err().to_string();
            assert!(e.contains("is not a label name"), "{e}");
        }
        MetricName::new("job:istio_requests:rate5m").unwrap();
        assert!(MetricName::new("a{b}").is_err());
        assert!(LabelName::new("a:b").is_err());
        assert!(LabelName::new(&"a".repeat(MAX_NAME + 1)).is_err());
        // The message shows the name escaped: no raw newline reaches a log line.
        let e = LabelName::new("a\nb").unwrap_err().to_string();
        assert!(e.starts_with("\"a\\nb\" is not"), "{e}");
    }

    #[test]
    fn kiali_shaped_queries_render_with_the_scope_in_every_selector() {
        let sel = |m: &str| {
            Selector::metric(m)
                .unwrap()
                .eq("reporter", "destination")
                .unwrap()
                .eq("destination_service_namespace", "bookinfo")
                .unwrap()
        };
        let rate = |m: &str| {
            Expr::call(
                Function::Rate,
                vec![Expr::range(sel(m), Duration::from_secs(60)).unwrap()],
            )
        };
        let by = Grouping::By(vec![label("destination_workload")]);
        let avg = Expr::binary(
            BinaryOp::Div,
            Expr::aggregate(
                Aggregation::Sum,
                by.clone(),
                rate("istio_request_duration_milliseconds_sum"),
            ),
            Expr::aggregate(
                Aggregation::Sum,
                by,
                rate("istio_request_duration_milliseconds_count"),
            ),
        );
        let query = Expr::binary(BinaryOp::Gt, avg, Expr::Number(0.0));
        let scope = [Matcher::new("mesh_id", MatchOp::Equal, "mesh-1").unwrap()];
        assert_eq!(
            query.render(&scope),
            "(sum by (destination_workload) (rate(istio_request_duration_milliseconds_sum{\
             reporter=\"destination\",destination_service_namespace=\"bookinfo\",mesh_id=\"mesh-1\"}[60s])) \
             / sum by (destination_workload) (rate(istio_request_duration_milliseconds_count{\
             reporter=\"destination\",destination_service_namespace=\"bookinfo\",mesh_id=\"mesh-1\"}[60s]))) > 0.0"
        );
        assert_eq!(
            query.to_string().matches("mesh_id").count(),
            0,
            "Display has no scope"
        );
    }

    #[test]
    fn hostile_values_stay_inside_their_literal() {
        let selector = Selector::metric("up")
            .unwrap()
            .eq("v", "\"} or up{")
            .unwrap()
            .eq("w", "a\\\"b\nc\u{0}\u{7f}\t")
            .unwrap();
        assert_eq!(
            selector.render(&[]),
            r#"up{v="\"} or up{",w="a\\\"b\nc\u0000\u007f\t"}"#
        );
    }

    #[test]
    fn numbers_durations_modifiers_and_parameters() {
        let up = || Expr::vector(Selector::metric("up").unwrap());
        let cases = [
            (Expr::Number(f64::NAN), "NaN"),
            (Expr::Number(f64::NEG_INFINITY), "-Inf"),
            (Expr::Number(1e-7), "1e-7"),
            (Expr::Number(0.001), "0.001"),
            (
                Expr::binary(BinaryOp::Pow, Expr::Number(-2.0), Expr::Number(2.0)),
                "(-2.0) ^ 2.0",
            ),
            (
                Expr::range(Selector::metric("up").unwrap(), Duration::from_millis(1500))
                    .unwrap(),
                "up{}[1500ms]",
            ),
            (
                Expr::Aggregate {
                    op: Aggregation::Topk,
                    grouping: Grouping::Without(vec![label("instance")]),
                    param: Some(Box::new(Expr::Number(5.0))),
                    expr: Box::new(up()),
                },
                "topk without (instance) (5.0, up{})",
            ),
            (
                Expr::Binary {
                    op: BinaryOp::Gt,
                    lhs: Box::new(up()),
                    rhs: Box::new(up()),
                    return_bool: true,
                    matching: Some(VectorMatching {
                        on: false,
                        labels: vec![label("code")],
                        group: Some((true, vec![label("pod")])),
                    }),
                },
                "up{} > bool ignoring (code) group_left (pod) up{}",
            ),
            (
                Expr::call(Function::Round, vec![up(), Expr::Number(0.001)]),
                "round(up{}, 0.001)",
            ),
        ];
        for (expr, text) in cases {
            assert_eq!(expr.to_string(), text);
        }
        assert!(Expr::range(Selector::metric("up").unwrap(), Duration::from_micros(999)).is_err());
    }

    #[test]
    fn regex_literals_escape_re2_metacharacters() {
        assert_eq!(
            regex_literal("reviews.bookinfo(v1)|*"),
            r"reviews\.bookinfo\(v1\)\|\*"
        );
    }
}
