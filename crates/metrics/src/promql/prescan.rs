//! The scan every query passes before the parser sees it. It bounds the query's length, how
//! deep its brackets nest and how many operators it has (the parser recurses, and slows down
//! quadratically on long operator chains; the evaluator recurses too), and it refuses offsets and
//! ranges written as numbers no duration can hold (on which the parser panics).

use super::{Limits, QueryError};

/// Longest offset written as a number of seconds: what a Go duration holds (±292 years).
const MAX_OFFSET_SECONDS: f64 = 9.2e9;

/// Bounds the query before parsing: its length, how deep brackets nest, and how many operators
/// it has (each operator can add a level to the tree the parser and the evaluator recurse on).
pub(crate) fn prescan(query: &str, limits: &Limits) -> Result<(), QueryError> {
    if query.trim().is_empty() {
        return Err(QueryError::BadData(
            "parse error: no expression found in input".to_string(),
        ));
    }
    if query.len() > limits.max_query_bytes {
        return Err(QueryError::BadData(format!(
            "the query is {} bytes long; the limit is {} bytes",
            query.len(),
            limits.max_query_bytes
        )));
    }
    let mut depth = 0usize;
    let mut max_depth = 0usize;
    let mut braces = 0usize;
    let mut operators = 0usize;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut word = String::new();
    let mut after_offset: Option<String> = None;
    // The text of the current `[range]` or `[range:step]` part, checked like an offset.
    let mut bracket: Option<String> = None;
    for c in query.chars() {
        if quote.is_none() {
            match (c, bracket.as_mut()) {
                ('[', _) => bracket = Some(String::new()),
                (':' | ']', Some(token)) => {
                    check_seconds(token.trim())?;
                    bracket = if c == ':' { Some(String::new()) } else { None };
                }
                (_, Some(token)) => token.push(c),
                _ => {}
            }
        }
        // The token after `offset`, when it is a bare number, must be a sane duration.
        if let Some(token) = after_offset.as_mut() {
            if quote.is_none() && (c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '-' | '_'))
            {
                token.push(c);
                continue;
            }
            if !(token.is_empty() && c.is_whitespace()) {
                check_seconds(token)?;
                after_offset = None;
            }
        }
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if braces == 0 && matches!(word.as_str(), "and" | "or" | "unless" | "atan2") {
            operators = operators.saturating_add(1);
        }
        if word == "offset" && quote.is_none() {
            after_offset = Some(String::new());
            word.clear();
            if c.is_whitespace() {
                continue;
            }
            after_offset = None;
        }
        word.clear();
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => {
                depth = depth.saturating_add(1);
                max_depth = max_depth.max(depth);
                if c == '{' {
                    braces = braces.saturating_add(1);
                }
            }
            ')' | ']' | '}' => {
                depth = depth.saturating_sub(1);
                if c == '}' {
                    braces = braces.saturating_sub(1);
                }
            }
            '+' | '-' | '*' | '/' | '%' | '^' | '=' | '!' | '<' | '>' if braces == 0 => {
                operators = operators.saturating_add(1);
            }
            _ => {}
        }
    }
    if let Some(token) = &after_offset {
        check_seconds(token)?;
    }
    if max_depth > limits.max_nesting {
        return Err(QueryError::BadData(format!(
            "the query nests {max_depth} levels of brackets; the limit is {}",
            limits.max_nesting
        )));
    }
    if operators > limits.max_operators {
        return Err(QueryError::BadData(format!(
            "the query has {operators} operators; the limit is {}",
            limits.max_operators
        )));
    }
    Ok(())
}

/// An `offset` or a range given as a bare number of seconds: finite and within ±292 years.
fn check_seconds(token: &str) -> Result<(), QueryError> {
    let unsigned = token.trim_start_matches(['+', '-']);
    let numeric = unsigned
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '.')
        || unsigned.eq_ignore_ascii_case("inf")
        || unsigned.eq_ignore_ascii_case("nan");
    let has_unit = unsigned.ends_with(|c: char| c.is_ascii_alphabetic())
        && !unsigned.eq_ignore_ascii_case("inf")
        && !unsigned.eq_ignore_ascii_case("nan")
        && !unsigned.to_ascii_lowercase().starts_with("0x");
    if !numeric || has_unit {
        return Ok(());
    }
    match unsigned.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds.abs() <= MAX_OFFSET_SECONDS => Ok(()),
        _ => Err(QueryError::BadData(format!(
            "parse error: the duration {token} is not a finite number of seconds within 292 years"
        ))),
    }
}
