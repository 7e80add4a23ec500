//! A YAML document as a tree whose every node remembers where it stood in the source.
//!
//! serde stops at the first problem and forgets positions, but a config check must report every
//! problem at once with its line and column. So the loader works on this tree: it is built from
//! the parser's events, resolves aliases and merge keys (`<<`) the way Go's yaml.v3 does, and
//! records duplicate keys as problems instead of failing on them.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle, Span};

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
            col: span.start.col() + 1,
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

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(String, Style),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
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

/// The documents of one YAML stream, and the duplicate keys seen in them.
#[derive(Debug, Default)]
pub struct Stream {
    pub documents: Vec<Node>,
    pub duplicates: Vec<Duplicate>,
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
            if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Scalar(text, Style::Plain) => match text.as_str() {
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
            Value::Scalar(text, Style::Plain) => match text.as_str() {
                "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
                "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
                _ => None,
            },
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        let Value::Scalar(text, Style::Plain) = &self.value else {
            return None;
        };
        let (negative, digits) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text.as_str()),
        };
        let magnitude = if let Some(hex) = digits.strip_prefix("0x") {
            i64::from_str_radix(hex, 16).ok()?
        } else if let Some(octal) = digits.strip_prefix("0o") {
            i64::from_str_radix(octal, 8).ok()?
        } else if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse().ok()?
        } else {
            return None;
        };
        Some(if negative { -magnitude } else { magnitude })
    }

    /// The entries of a mapping.
    pub fn entries(&self) -> Option<&[(Node, Node)]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
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

/// Parses a YAML stream into trees. A syntax error stops parsing: nothing after it can be
/// trusted.
pub fn parse(source: &str) -> Result<Stream, SyntaxError> {
    let mut builder = Builder {
        events: Parser::new_from_str(source),
        anchors: HashMap::new(),
        stream: Stream::default(),
    };
    builder.stream()?;
    Ok(builder.stream)
}

struct Builder<'s> {
    events: Parser<'s, saphyr_parser::StrInput<'s>>,
    anchors: HashMap<usize, Node>,
    stream: Stream,
}

impl<'s> Builder<'s> {
    fn next(&mut self) -> Result<(Event<'s>, Span), SyntaxError> {
        match self.events.next() {
            Some(Ok(event)) => Ok(event),
            Some(Err(error)) => Err(SyntaxError {
                pos: Pos {
                    line: error.marker().line(),
                    col: error.marker().col() + 1,
                },
                message: error.info().to_string(),
            }),
            None => Err(SyntaxError {
                pos: Pos { line: 1, col: 1 },
                message: "unexpected end of input".to_string(),
            }),
        }
    }

    fn stream(&mut self) -> Result<(), SyntaxError> {
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamEnd => return Ok(()),
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::DocumentStart(_) => {
                    let (first, span) = self.next()?;
                    let document = self.node(first, span, "")?;
                    self.stream.documents.push(document);
                }
                other => {
                    return Err(SyntaxError {
                        pos: Pos::from_span(&span),
                        message: format!("unexpected YAML event {other:?}"),
                    });
                }
            }
        }
    }

    fn node(&mut self, event: Event<'s>, span: Span, path: &str) -> Result<Node, SyntaxError> {
        let pos = Pos::from_span(&span);
        let (node, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let style = match style {
                    ScalarStyle::Plain if tag.as_ref().is_some_and(|t| t.suffix == "str") => {
                        Style::Quoted
                    }
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                    ScalarStyle::Literal => Style::Literal,
                    ScalarStyle::Folded => Style::Folded,
                };
                let value = Value::Scalar(text.into_owned(), style);
                (Node { value, pos }, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    let item_path = format!("{path}[{}]", items.len());
                    items.push(self.node(event, span, &item_path)?);
                }
                let value = Value::Seq(items);
                (Node { value, pos }, anchor)
            }
            Event::MappingStart(anchor, _) => (self.mapping(pos, path)?, anchor),
            Event::Alias(id) => {
                return self.anchors.get(&id).cloned().ok_or(SyntaxError {
                    pos,
                    message: "alias to an unknown anchor".to_string(),
                });
            }
            other => {
                return Err(SyntaxError {
                    pos,
                    message: format!("unexpected YAML event {other:?}"),
                });
            }
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn mapping(&mut self, pos: Pos, path: &str) -> Result<Node, SyntaxError> {
        let mut entries: Vec<(Node, Node)> = Vec::new();
        let mut merged: Vec<Node> = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let key = self.node(event, span, path)?;
            let key_text = key.scalar().unwrap_or("?").to_string();
            let child_path = join(path, &key_text);
            let (event, span) = self.next()?;
            let value = self.node(event, span, &child_path)?;
            if key_text == "<<" && matches!(key.value, Value::Scalar(_, Style::Plain)) {
                merged.push(value);
                continue;
            }
            if let Some((first, _)) = entries.iter().find(|(k, _)| k.scalar() == key.scalar()) {
                self.stream.duplicates.push(Duplicate {
                    path: child_path,
                    pos: key.pos,
                    first: first.pos,
                });
                entries.retain(|(k, _)| k.scalar() != key.scalar());
            }
            entries.push((key, value));
        }
        // Merge keys (`<<: *base`) add the entries the mapping does not set itself.
        let sources = merged.into_iter().flat_map(|m| match m.value {
            Value::Seq(items) => items,
            _ => vec![m],
        });
        for source in sources {
            if let Value::Map(source_entries) = source.value {
                for (key, value) in source_entries {
                    if !entries.iter().any(|(k, _)| k.scalar() == key.scalar()) {
                        entries.push((key, value));
                    }
                }
            }
        }
        Ok(Node {
            value: Value::Map(entries),
            pos,
        })
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
        let error = parse("a: [1, 2\nb: c\n").unwrap_err();
        assert!(error.pos.line >= 1);
        assert!(!error.message.is_empty());
    }
}
