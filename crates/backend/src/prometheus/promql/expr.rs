//! PromQL expressions over [`Selector`]s: function calls, aggregations and binary operators,
//! rendered with a scope so that every selector in the tree gets its matchers.

use std::fmt::{self, Write as _};
use std::time::Duration;

use super::{LabelName, Matcher, PromqlError, Selector, string_literal};

/// PromQL's binary operators: the vocabulary the metrics crate's evaluator reads.
pub use meshtrace_metrics::promql::BinaryOp;

/// The functions the console's queries call: those meshtrace's own PromQL engine evaluates as
/// well as Prometheus, so that a query gives the same numbers from either (add one here when
/// the engine learns it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    Rate,
    Irate,
    Increase,
    Delta,
    HistogramQuantile,
    Round,
}

impl Function {
    fn as_str(self) -> &'static str {
        match self {
            Function::Rate => "rate",
            Function::Irate => "irate",
            Function::Increase => "increase",
            Function::Delta => "delta",
            Function::HistogramQuantile => "histogram_quantile",
            Function::Round => "round",
        }
    }
}

/// The aggregations both engines evaluate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    Sum,
    Avg,
    Min,
    Max,
    Count,
}

impl Aggregation {
    fn as_str(self) -> &'static str {
        match self {
            Aggregation::Sum => "sum",
            Aggregation::Avg => "avg",
            Aggregation::Min => "min",
            Aggregation::Max => "max",
            Aggregation::Count => "count",
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
            Expr::Aggregate { op, grouping, expr } => {
                out.push_str(op.as_str());
                match grouping {
                    Grouping::None => {}
                    Grouping::By(labels) => label_list(out, " by", labels),
                    Grouping::Without(labels) => label_list(out, " without", labels),
                }
                out.push_str(" (");
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
