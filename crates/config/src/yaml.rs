//! A YAML document as a tree whose every node remembers where it stood in the source.
//!
//! serde stops at the first problem and forgets positions, but a config check must report every
//! problem at once with its line and column. So the loader works on this tree: it is built from
//! the parser's events (in [`build`]), resolves aliases and merge keys (`<<`) the way Go's
//! yaml.v3 does, and records duplicate keys as problems instead of failing on them.
//!
//! The input may come from anyone (the console's configuration tester parses posted drafts), so
//! the tree is built within limits: see [`build`] for the bounds on nesting and on alias
//! expansion. Children and scalar text are shared (`Rc`), so an alias costs a pointer, not a
//! copy.

mod build;
#[cfg(test)]
mod limits_tests;

use std::rc::Rc;

use saphyr_parser::Span;

pub use build::{MAX_ALIAS_TEXT, MAX_DEPTH, MAX_DUPLICATES, parse};

/// A position in the source: line and column, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    fn from_span(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            col: span.start.col().saturating_add(1),
        }
    }
}

/// How a scalar was written. Only plain scalars are resolved to null, bool or int; a quoted
/// one is always a string, as in YAML's core schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Plain,
    Quoted,
    /// A `|` block; the loader maps positions inside an embedded `config.yaml` through it.
    Literal,
    Folded,
}

/// A node's value. Cloning one is cheap: an alias shares the anchored node's parts.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(Rc<str>, Style),
    Seq(Rc<[Node]>),
    Map(Rc<[(Node, Node)]>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
}

/// A duplicate key found while building the tree: YAML forbids them and yaml.v3 rejects them.
#[derive(Debug, Clone, PartialEq)]
pub struct Duplicate {
    pub path: String,
    pub pos: Pos,
    pub first: Pos,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Why a stream could not be turned into trees.
#[derive(Debug, Clone, PartialEq)]
pub enum ParseError {
    /// Not YAML: the parser's own message.
    Syntax(SyntaxError),
    /// YAML, but past one of the loader's bounds (nesting, alias expansion).
    Limit(SyntaxError),
}

/// The documents of one YAML stream, and the duplicate keys seen in them.
#[derive(Debug, Default)]
pub struct Stream {
    pub documents: Vec<Node>,
    /// The first [`MAX_DUPLICATES`] duplicate keys, in the order they were met.
    pub duplicates: Vec<Duplicate>,
    /// How many more duplicate keys there were, and where the first of them stood.
    pub unlisted_duplicates: Option<(usize, Pos)>,
}

impl Node {
    /// The text of a scalar, whatever its style.
    pub fn scalar(&self) -> Option<&str> {
        match &self.value {
            Value::Scalar(text, _) => Some(text),
            _ => None,
        }
    }

    /// True for `~`, `null`, an empty value, or a missing one.
    pub fn is_null(&self) -> bool {
        matches!(&self.value, Value::Scalar(text, Style::Plain)
            if matches!(&**text, "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Scalar(text, Style::Plain) => match &**text {
                "true" | "True" | "TRUE" => Some(true),
                "false" | "False" | "FALSE" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// A boolean as Go's yaml.v3 reads one into a `bool` field: YAML 1.1's `yes`/`no`/`on`/
    /// `off` (and `y`/`n`) are accepted there for compatibility, so Kiali accepts them too.
    pub fn as_typed_bool(&self) -> Option<bool> {
        if let Some(value) = self.as_bool() {
            return Some(value);
        }
        match &self.value {
            Value::Scalar(text, Style::Plain) => match &**text {
                "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
                "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    /// A plain scalar read as YAML's core schema reads an int: decimal, `0x` hex or `0o` octal,
    /// with an optional sign in front. `None` when it is not one or does not fit an `i64`.
    pub fn as_int(&self) -> Option<i64> {
        let Value::Scalar(text, Style::Plain) = &self.value else {
            return None;
        };
        let (negative, digits) = if let Some(rest) = text.strip_prefix('-') {
            (true, rest)
        } else {
            (false, text.strip_prefix('+').unwrap_or(text))
        };
        let (radix, digits) = if let Some(hex) = digits.strip_prefix("0x") {
            (16, hex)
        } else if let Some(octal) = digits.strip_prefix("0o") {
            (8, octal)
        } else {
            (10, digits)
        };
        // `from_str_radix` takes a sign of its own: refuse one here, it would be a second sign.
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let magnitude = i64::from_str_radix(digits, radix).ok()?;
        if negative {
            magnitude.checked_neg()
        } else {
            Some(magnitude)
        }
    }

    /// The entries of a mapping.
    pub fn entries(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The items of a list.
    pub fn items(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|(k, _)| k.scalar() == Some(key))
            .map(|(_, v)| v)
    }

    /// What kind of value this is, for messages: never the value itself.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Map(_) => "a mapping",
            Value::Seq(_) => "a list",
            Value::Scalar(_, Style::Plain) if self.is_null() => "null",
            Value::Scalar(_, Style::Plain) if self.as_bool().is_some() => "a boolean",
            Value::Scalar(_, Style::Plain) if self.as_int().is_some() => "a number",
            Value::Scalar(text, Style::Plain) if text.parse::<f64>().is_ok() => "a number",
            Value::Scalar(..) => "a string",
        }
    }
}

/// Joins a key onto a dotted path; keys that hold a dot are quoted, as in `data."config.yaml"`.
pub fn join(path: &str, key: &str) -> String {
    let key = if key.contains('.') {
        format!("\"{key}\"")
    } else {
        key.to_string()
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(source: &str) -> Node {
        parse(source).unwrap().documents.remove(0)
    }

    #[test]
    fn positions_are_one_based() {
        let doc = one("a:\n  b: 1\n");
        let b = doc.get("a").unwrap().get("b").unwrap();
        assert_eq!(b.pos, Pos { line: 2, col: 6 });
        assert_eq!(b.as_int(), Some(1));
    }

    #[test]
    fn scalars_resolve_only_when_plain() {
        let doc = one("a: true\nb: 'true'\nc: ~\nd: 0x1F\ne: \"5\"\nf: -3\n");
        assert_eq!(doc.get("a").unwrap().as_bool(), Some(true));
        assert_eq!(doc.get("b").unwrap().as_bool(), None);
        assert!(doc.get("c").unwrap().is_null());
        assert_eq!(doc.get("d").unwrap().as_int(), Some(31));
        assert_eq!(doc.get("e").unwrap().as_int(), None);
        assert_eq!(doc.get("f").unwrap().as_int(), Some(-3));
        assert_eq!(doc.get("e").unwrap().kind(), "a string");
        // A second sign, or one past i64, is not a number (and no panic).
        let doc = one("a: -0x-8000000000000000\nb: 0x+1\nc: -9223372036854775808\nd: -0o17\n");
        assert_eq!(doc.get("a").unwrap().as_int(), None);
        assert_eq!(doc.get("b").unwrap().as_int(), None);
        assert_eq!(doc.get("c").unwrap().as_int(), None);
        assert_eq!(doc.get("d").unwrap().as_int(), Some(-15));
        let doc = one("a: yes\nb: Off\nc: 'yes'\n");
        assert_eq!(doc.get("a").unwrap().as_bool(), None);
        assert_eq!(doc.get("a").unwrap().as_typed_bool(), Some(true));
        assert_eq!(doc.get("b").unwrap().as_typed_bool(), Some(false));
        assert_eq!(doc.get("c").unwrap().as_typed_bool(), None);
    }

    #[test]
    fn duplicates_are_recorded_and_the_last_wins() {
        let stream = parse("x:\n  y: 1\n  y: 2\n").unwrap();
        assert_eq!(stream.duplicates.len(), 1);
        assert_eq!(stream.duplicates[0].path, "x.y");
        assert_eq!(stream.duplicates[0].first.line, 2);
        let doc = &stream.documents[0];
        assert_eq!(doc.get("x").unwrap().get("y").unwrap().as_int(), Some(2));
    }

    #[test]
    fn aliases_and_merge_keys_resolve() {
        let doc = one("base: &b {port: 1, host: h}\nother:\n  <<: *b\n  port: 2\n");
        let other = doc.get("other").unwrap();
        assert_eq!(other.get("port").unwrap().as_int(), Some(2));
        assert_eq!(other.get("host").unwrap().scalar(), Some("h"));
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let ParseError::Syntax(error) = parse("a: [1, 2\nb: c\n").unwrap_err() else {
            panic!("a syntax error");
        };
        assert!(error.pos.line >= 1);
        assert!(!error.message.is_empty());
    }
}
