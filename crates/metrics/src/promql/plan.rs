//! From query text to a plan the evaluator runs: a cheap scan that bounds the query's size and
//! nesting before the parser sees it (the parser recurses, and slows down quadratically on long
//! operator chains), `promql-parser` for the syntax and Prometheus's type rules, then a
//! conversion into this engine's own tree that keeps only what it evaluates. Everything else
//! (other functions and aggregations, subqueries, `atan2`) is refused here, before any data is
//! read, with [`QueryError::Unsupported`] naming it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as ParserMatchOp;
use promql_parser::parser::token::{
    T_ADD, T_AVG, T_COUNT, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS,
    T_MAX, T_MIN, T_MOD, T_MUL, T_NEQ, T_POW, T_SUB, T_SUM, TokenType,
};
use promql_parser::parser::{self, Expr, LabelModifier, VectorMatchCardinality, VectorSelector};

use super::{BinaryOp, Compat, Limits, MAX_TIME_MS, MIN_TIME_MS, QueryError};
use crate::series::{METRIC_NAME, Matcher};

/// A selector: which series, and how its evaluation time is shifted.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    /// Index into the data loaded for the query.
    pub id: usize,
    pub matchers: Vec<Matcher>,
    /// `offset`, in milliseconds (negative offsets look ahead).
    pub offset_ms: i64,
    pub at: At,
    /// The range of a range selector (`[5m]`), 0 for an instant selector.
    pub range_ms: i64,
    /// Read only by `rate`, `increase` or `delta`, which need of a window's samples only what
    /// [`crate::WindowSamples`] keeps.
    pub reducible: bool,
}

/// The `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    None,
    Start,
    End,
    Time(i64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeFunc {
    Rate,
    Irate,
    Increase,
    Delta,
}

/// How two vectors' series are paired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Card {
    OneToOne,
    /// `group_left(labels)`: many on the left, the labels copied from the right.
    ManyToOne(Vec<String>),
    /// `group_right(labels)`.
    OneToMany(Vec<String>),
    ManyToMany,
}

#[derive(Debug, Clone)]
pub(crate) struct Binary {
    pub op: BinaryOp,
    pub lhs: Box<Node>,
    pub rhs: Box<Node>,
    pub card: Card,
    /// `on(...)` (true) or `ignoring(...)` (false, also when no modifier was given).
    pub on: bool,
    pub matching: Vec<String>,
    pub return_bool: bool,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Number(f64),
    Str(String),
    Vector(Selector),
    Matrix(Selector),
    Neg(Box<Node>),
    Binary(Binary),
    Aggregate {
        op: AggOp,
        expr: Box<Node>,
        /// `without (...)` (true) or `by (...)`.
        without: bool,
        grouping: Vec<String>,
    },
    RangeFunction {
        func: RangeFunc,
        selector: Selector,
    },
    Round {
        expr: Box<Node>,
        to_nearest: Option<Box<Node>>,
    },
    HistogramQuantile {
        q: Box<Node>,
        expr: Box<Node>,
    },
}

/// The value types of PromQL, named as Prometheus's messages name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueType {
    Scalar,
    Vector,
    Matrix,
    String,
}

impl ValueType {
    pub fn documented(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        }
    }
}

impl Node {
    pub fn value_type(&self) -> ValueType {
        match self {
            Node::Number(_) => ValueType::Scalar,
            Node::Str(_) => ValueType::String,
            Node::Matrix(_) => ValueType::Matrix,
            Node::Neg(inner) => inner.value_type(),
            Node::Binary(b) => match (b.lhs.value_type(), b.rhs.value_type()) {
                (ValueType::Scalar, ValueType::Scalar) => ValueType::Scalar,
                _ => ValueType::Vector,
            },
            _ => ValueType::Vector,
        }
    }
}

/// A parsed, checked query and the selectors it reads.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub root: Node,
    pub selectors: Vec<Selector>,
}

/// Checks `query` against `limits`, parses it and converts it.
pub(crate) fn plan(query: &str, limits: &Limits, compat: Compat) -> Result<Plan, QueryError> {
    super::prescan::prescan(query, limits)?;
    let expr = parse(query)?;
    let mut planner = Planner::new(compat);
    let root = convert(&expr, &mut planner)?;
    Ok(Plan {
        root,
        selectors: planner.selectors,
    })
}

/// What the conversion collects and needs: the selectors met so far, and whether a regular
/// expression's `.` matches a newline (Prometheus ≥ 3 compiles them with `(?s)`).
pub(crate) struct Planner {
    selectors: Vec<Selector>,
    dot_matches_newline: bool,
}

impl Planner {
    fn new(compat: Compat) -> Planner {
        Planner {
            selectors: Vec::new(),
            dot_matches_newline: compat.regex_dot_matches_newline,
        }
    }
}

/// The matchers of a series selector (an instant vector selector without offset or `@`).
pub(crate) fn series_selector(
    text: &str,
    limits: &Limits,
    compat: Compat,
) -> Result<Vec<Matcher>, QueryError> {
    super::prescan::prescan(text, limits)?;
    let expr = parse(text)?;
    match expr {
        Expr::VectorSelector(vs) if vs.offset.is_none() && vs.at.is_none() => {
            Ok(selector(&vs, 0, &mut Planner::new(compat))?.matchers)
        }
        _ => Err(QueryError::BadData(format!(
            "parse error: {text:?} is not a series selector"
        ))),
    }
}

/// `promql-parser`'s parse. It panics on some numbers it cannot turn into durations (an
/// `offset` of `1e300`, `Inf` or `NaN`); [`super::prescan::prescan`] refuses those first, and a panic that
/// still happens is a parse error, not a failed request.
fn parse(query: &str) -> Result<Expr, QueryError> {
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser::parse(query)));
    match parsed {
        Ok(Ok(expr)) => Ok(expr),
        Ok(Err(e)) => Err(QueryError::BadData(format!("parse error: {e}"))),
        Err(_) => Err(QueryError::BadData(
            "parse error: the query holds a number the parser cannot use".to_string(),
        )),
    }
}

fn convert(expr: &Expr, selectors: &mut Planner) -> Result<Node, QueryError> {
    Ok(match expr {
        Expr::NumberLiteral(n) => Node::Number(n.val),
        Expr::StringLiteral(s) => Node::Str(s.val.clone()),
        Expr::Paren(p) => convert(&p.expr, selectors)?,
        Expr::Unary(u) => Node::Neg(Box::new(convert(&u.expr, selectors)?)),
        Expr::VectorSelector(vs) => Node::Vector(selector(vs, 0, selectors)?),
        Expr::MatrixSelector(ms) => {
            Node::Matrix(selector(&ms.vs, range_ms(&ms.range)?, selectors)?)
        }
        Expr::Subquery(_) => return Err(unsupported("subqueries (`[range:step]`)")),
        Expr::Extension(_) => return Err(unsupported("extension expressions")),
        Expr::Aggregate(a) => {
            let op = match a.op.id() {
                T_SUM => AggOp::Sum,
                T_AVG => AggOp::Avg,
                T_MIN => AggOp::Min,
                T_MAX => AggOp::Max,
                T_COUNT => AggOp::Count,
                _ => return Err(unsupported(&format!("the aggregation {}()", a.op))),
            };
            let (without, grouping) = match &a.modifier {
                Some(LabelModifier::Exclude(l)) => (true, l.labels.clone()),
                Some(LabelModifier::Include(l)) => (false, l.labels.clone()),
                None => (false, Vec::new()),
            };
            Node::Aggregate {
                op,
                expr: Box::new(convert(&a.expr, selectors)?),
                without,
                grouping,
            }
        }
        Expr::Binary(b) => binary(b, selectors)?,
        Expr::Call(call) => {
            let args: Vec<&Expr> = call
                .args
                .args
                .iter()
                .map(std::convert::AsRef::as_ref)
                .collect();
            match (call.func.name, args.as_slice()) {
                ("rate" | "irate" | "increase" | "delta", [arg]) => {
                    range_function(call.func.name, arg, selectors)?
                }
                ("histogram_quantile", [q, v]) => Node::HistogramQuantile {
                    q: Box::new(convert(q, selectors)?),
                    expr: Box::new(convert(v, selectors)?),
                },
                ("round", [v]) => Node::Round {
                    expr: Box::new(convert(v, selectors)?),
                    to_nearest: None,
                },
                ("round", [v, to]) => Node::Round {
                    expr: Box::new(convert(v, selectors)?),
                    to_nearest: Some(Box::new(convert(to, selectors)?)),
                },
                (name, _) => return Err(unsupported(&format!("the function {name}()"))),
            }
        }
    })
}

fn unparen(expr: &Expr) -> &Expr {
    match expr {
        Expr::Paren(p) => unparen(&p.expr),
        other => other,
    }
}

fn binary(b: &parser::BinaryExpr, selectors: &mut Planner) -> Result<Node, QueryError> {
    let op = bin_op(b.op)?;
    let (card, on, matching, return_bool) = match &b.modifier {
        Some(m) => {
            if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                return Err(unsupported("fill modifiers of vector matching"));
            }
            let card = match &m.card {
                VectorMatchCardinality::OneToOne => Card::OneToOne,
                VectorMatchCardinality::ManyToOne(l) => Card::ManyToOne(l.labels.clone()),
                VectorMatchCardinality::OneToMany(l) => Card::OneToMany(l.labels.clone()),
                VectorMatchCardinality::ManyToMany => Card::ManyToMany,
            };
            let (on, labels) = match &m.matching {
                Some(LabelModifier::Include(l)) => (true, l.labels.clone()),
                Some(LabelModifier::Exclude(l)) => (false, l.labels.clone()),
                None => (false, Vec::new()),
            };
            (card, on, labels, m.return_bool)
        }
        None => (Card::OneToOne, false, Vec::new(), false),
    };
    // Set operators always match many-to-many, whatever the parser recorded.
    let card = if op.is_set() { Card::ManyToMany } else { card };
    let card = match card {
        Card::ManyToMany if !op.is_set() => Card::OneToOne,
        other => other,
    };
    Ok(Node::Binary(Binary {
        op,
        lhs: Box::new(convert(&b.lhs, selectors)?),
        rhs: Box::new(convert(&b.rhs, selectors)?),
        card,
        on,
        matching,
        return_bool,
    }))
}

/// `rate`, `irate`, `increase` or `delta` (`name`) of `arg`, which must be a range selector;
/// marks the selector reducible for all but `irate` (see [`Selector::reducible`]).
fn range_function(name: &str, arg: &Expr, selectors: &mut Planner) -> Result<Node, QueryError> {
    let func = match name {
        "rate" => RangeFunc::Rate,
        "irate" => RangeFunc::Irate,
        "increase" => RangeFunc::Increase,
        _ => RangeFunc::Delta,
    };
    let Expr::MatrixSelector(ms) = unparen(arg) else {
        return Err(unsupported(&format!(
            "{name}() over anything but a range selector (subqueries)"
        )));
    };
    let mut selector = selector(&ms.vs, range_ms(&ms.range)?, selectors)?;
    if func != RangeFunc::Irate {
        selector.reducible = true;
        if let Some(planned) = selectors.selectors.get_mut(selector.id) {
            planned.reducible = true;
        }
    }
    Ok(Node::RangeFunction { func, selector })
}

fn bin_op(op: TokenType) -> Result<BinaryOp, QueryError> {
    Ok(match op.id() {
        T_ADD => BinaryOp::Add,
        T_SUB => BinaryOp::Sub,
        T_MUL => BinaryOp::Mul,
        T_DIV => BinaryOp::Div,
        T_MOD => BinaryOp::Mod,
        T_POW => BinaryOp::Pow,
        T_EQLC => BinaryOp::Eq,
        T_NEQ => BinaryOp::Ne,
        T_GTR => BinaryOp::Gt,
        T_LSS => BinaryOp::Lt,
        T_GTE => BinaryOp::Ge,
        T_LTE => BinaryOp::Le,
        T_LAND => BinaryOp::And,
        T_LOR => BinaryOp::Or,
        T_LUNLESS => BinaryOp::Unless,
        _ => return Err(unsupported(&format!("the operator {op}"))),
    })
}

fn selector(
    vs: &VectorSelector,
    range_ms: i64,
    selectors: &mut Planner,
) -> Result<Selector, QueryError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(QueryError::BadData(
            "parse error: `or` between label matchers is not PromQL".to_string(),
        ));
    }
    let mut matchers = Vec::with_capacity(vs.matchers.matchers.len().saturating_add(1));
    if let Some(name) = &vs.name {
        matchers.push(Matcher::equal(METRIC_NAME, name));
    }
    for m in &vs.matchers.matchers {
        let bad = |e: regex::Error| {
            QueryError::BadData(format!("parse error: invalid regular expression: {e}"))
        };
        matchers.push(match &m.op {
            ParserMatchOp::Equal => Matcher::equal(&m.name, &m.value),
            ParserMatchOp::NotEqual => Matcher {
                name: m.name.clone(),
                op: crate::series::MatchOp::NotEqual(m.value.clone()),
            },
            ParserMatchOp::Re(_) | ParserMatchOp::NotRe(_) => {
                let negate = matches!(m.op, ParserMatchOp::NotRe(_));
                let pattern = if selectors.dot_matches_newline {
                    format!("(?s:{})", m.value)
                } else {
                    m.value.clone()
                };
                Matcher::regex(&m.name, &pattern, negate).map_err(bad)?
            }
        });
    }
    let offset_ms = match &vs.offset {
        None => 0,
        Some(parser::Offset::Pos(d)) => duration_ms(d)?,
        Some(parser::Offset::Neg(d)) => duration_ms(d)?.saturating_neg(),
    };
    let at = match &vs.at {
        None => At::None,
        Some(parser::AtModifier::Start) => At::Start,
        Some(parser::AtModifier::End) => At::End,
        Some(parser::AtModifier::At(time)) => At::Time(at_ms(*time)?),
    };
    let selector = Selector {
        id: selectors.selectors.len(),
        matchers,
        offset_ms,
        at,
        range_ms,
        reducible: false,
    };
    selectors.selectors.push(selector.clone());
    Ok(selector)
}

/// A duration in milliseconds, refused past what Prometheus can hold (a Go duration: ±292 years).
fn duration_ms(d: &Duration) -> Result<i64, QueryError> {
    if d.as_nanos() > i64::MAX as u128 {
        return Err(QueryError::BadData(format!(
            "parse error: duration {}s is out of range (at most 292 years)",
            d.as_secs()
        )));
    }
    i64::try_from(d.as_millis())
        .map_err(|_| QueryError::BadData("parse error: duration out of range".to_string()))
}

fn range_ms(d: &Duration) -> Result<i64, QueryError> {
    let ms = duration_ms(d)?;
    if ms < 1 {
        return Err(QueryError::BadData(
            "parse error: a range must be at least 1ms".to_string(),
        ));
    }
    Ok(ms)
}

/// The `@` time in milliseconds (rounded as Prometheus rounds `@ <seconds>`), within the
/// timestamps this engine accepts.
fn at_ms(time: SystemTime) -> Result<i64, QueryError> {
    let (nanos, negative) = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_nanos(), false),
        Err(e) => (e.duration().as_nanos(), true),
    };
    let ms = nanos.saturating_add(500_000) / 1_000_000;
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    let ms = if negative { ms.saturating_neg() } else { ms };
    if !(MIN_TIME_MS..=MAX_TIME_MS).contains(&ms) {
        return Err(QueryError::BadData(
            "parse error: timestamp out of bounds for @ modifier".to_string(),
        ));
    }
    Ok(ms)
}

fn unsupported(what: &str) -> QueryError {
    QueryError::Unsupported(format!(
        "{what} is not supported by meshtrace's PromQL engine"
    ))
}
