//! A reader of the TraceQL the Tempo client sends, written from Tempo's lexer
//! (`pkg/traceql/lexer.go`) and Go's string-literal rules, independently of the builder: it
//! tells what a Tempo would understand, so the tests can check that the query is one spanset
//! `{ c1 && c2 && ... }` followed by `| select(...)`, and what each condition compares.

/// One condition of the spanset: `.key = "value"` (scope `""`), `resource.key = "value"`, or
/// `status = error` (scope `"intrinsic"`, name `status`, value `error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub scope: String,
    pub name: String,
    pub value: String,
}

/// What the query says: its conditions (all joined by `&&` inside the one spanset) and the
/// attributes it selects.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    pub conditions: Vec<Condition>,
    pub selected: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    OpenParen,
    CloseParen,
    Comma,
    And,
    Pipe,
    Eq,
    /// Any other operator (`||`, `!=`, `>`...): never expected in the client's queries.
    Operator(String),
    Str(String),
    /// An attribute with its scope: `.x` → ("", "x"), `resource.x` → ("resource", "x").
    Attribute(String, String),
    Word(String),
}

/// Runes that end an unquoted attribute name (Tempo's `isAttributeRune`).
fn ends_attribute(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '{' | '}' | '(' | ')' | '=' | '~' | '!' | '<' | '>' | '&' | '|' | '^' | ','
        )
}

/// Decodes a Go interpreted string literal starting after its opening quote; returns the value
/// and the rest after the closing quote.
fn go_string(text: &str) -> Result<(String, &str), String> {
    let mut bytes = Vec::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let value = String::from_utf8(bytes).map_err(|e| e.to_string())?;
                return Ok((value, &text[i + 1..]));
            }
            '\n' => return Err("newline in a string literal".into()),
            '\0' => return Err("NUL in a string literal".into()),
            '\u{feff}' => return Err("BOM in a string literal".into()),
            '\\' => {
                let (_, e) = chars.next().ok_or("unterminated escape")?;
                let mut hex = |n: usize| -> Result<u32, String> {
                    let mut v = 0u32;
                    for _ in 0..n {
                        let (_, h) = chars.next().ok_or("short escape")?;
                        v = v * 16 + h.to_digit(16).ok_or("bad hex digit")?;
                    }
                    Ok(v)
                };
                match e {
                    'a' => bytes.push(7),
                    'b' => bytes.push(8),
                    'f' => bytes.push(12),
                    'n' => bytes.push(b'\n'),
                    'r' => bytes.push(b'\r'),
                    't' => bytes.push(b'\t'),
                    'v' => bytes.push(11),
                    '\\' => bytes.push(b'\\'),
                    '"' => bytes.push(b'"'),
                    'x' => bytes.push(u8::try_from(hex(2)?).map_err(|e| e.to_string())?),
                    'u' | 'U' => {
                        let v = hex(if e == 'u' { 4 } else { 8 })?;
                        let c = char::from_u32(v).ok_or("not a code point")?;
                        bytes.extend_from_slice(c.to_string().as_bytes());
                    }
                    '0'..='7' => {
                        let mut v = e.to_digit(8).unwrap_or(0);
                        for _ in 0..2 {
                            let (_, o) = chars.next().ok_or("short octal escape")?;
                            v = v * 8 + o.to_digit(8).ok_or("bad octal digit")?;
                        }
                        bytes.push(u8::try_from(v).map_err(|e| e.to_string())?);
                    }
                    other => return Err(format!("unknown escape \\{other}")),
                }
            }
            c => bytes.extend_from_slice(c.to_string().as_bytes()),
        }
    }
    Err("unterminated string literal".into())
}

/// An attribute name after its scope's dot, as Tempo's `parseAttribute` reads it: unquoted
/// runes up to a terminal one, and quoted parts where only `\\` and `\"` are escapes.
fn attribute_name(text: &str) -> Result<(String, &str), String> {
    let mut name = String::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            let mut chars = rest[1..].char_indices();
            let mut closed = None;
            while let Some((i, q)) = chars.next() {
                match q {
                    '"' => {
                        closed = Some(i + 2);
                        break;
                    }
                    '\\' => match chars.next() {
                        Some((_, e @ ('\\' | '"'))) => name.push(e),
                        _ => return Err("invalid escape sequence in a quoted attribute".into()),
                    },
                    // Go's scanner refuses NUL anywhere in the source.
                    '\0' => return Err("NUL in a quoted attribute".into()),
                    q => name.push(q),
                }
            }
            let end = closed.ok_or("unterminated quoted attribute")?;
            rest = &rest[end..];
        } else if ends_attribute(c) {
            break;
        } else {
            name.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    if name.is_empty() {
        return Err("empty attribute name".into());
    }
    Ok((name, rest))
}

fn tokens(query: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut rest = query;
    loop {
        rest = rest.trim_start();
        let Some(c) = rest.chars().next() else {
            return Ok(out);
        };
        let two = rest.get(..2).unwrap_or("");
        if two == "&&" {
            out.push(Token::And);
            rest = &rest[2..];
            continue;
        }
        if matches!(two, "||" | "!=" | "=~" | "!~" | ">=" | "<=" | ">>" | "<<") {
            out.push(Token::Operator(two.to_string()));
            rest = &rest[2..];
            continue;
        }
        let scopes = ["resource.", "span.", "parent.", "."];
        if let Some(scope) = scopes.iter().find(|s| rest.starts_with(**s)) {
            // Go's scanner reads `.5` as a number, not a dot.
            let after = &rest[scope.len()..];
            if *scope == "." && after.starts_with(|c: char| c.is_ascii_digit()) {
                return Err(format!("`.{after}` starts with a number"));
            }
            let (name, after) = attribute_name(after)?;
            out.push(Token::Attribute(
                scope.trim_end_matches('.').to_string(),
                name,
            ));
            rest = after;
            continue;
        }
        rest = &rest[c.len_utf8()..];
        out.push(match c {
            '{' => Token::Open,
            '}' => Token::Close,
            '(' => Token::OpenParen,
            ')' => Token::CloseParen,
            ',' => Token::Comma,
            '|' => Token::Pipe,
            '=' => Token::Eq,
            '"' => {
                let (value, after) = go_string(rest)?;
                rest = after;
                Token::Str(value)
            }
            c if c.is_alphabetic() || c == '_' => {
                let end = rest
                    .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let word = format!("{c}{}", &rest[..end]);
                rest = &rest[end..];
                Token::Word(word)
            }
            other => Token::Operator(other.to_string()),
        });
    }
}

/// Reads a query of the shape `{ c1 && ... } | select(a1, ...)`; anything else is an error
/// saying where the shape broke.
pub fn parse(query: &str) -> Result<Parsed, String> {
    let tokens = tokens(query)?;
    let mut it = tokens.into_iter().peekable();
    let expect =
        |want: Token, it: &mut std::iter::Peekable<std::vec::IntoIter<Token>>| match it.next() {
            Some(t) if t == want => Ok(()),
            other => Err(format!("expected {want:?}, found {other:?}")),
        };
    expect(Token::Open, &mut it)?;
    let mut conditions = Vec::new();
    loop {
        let condition = match it.next() {
            Some(Token::Attribute(scope, name)) => {
                expect(Token::Eq, &mut it)?;
                match it.next() {
                    Some(Token::Str(value)) => Condition { scope, name, value },
                    other => return Err(format!("expected a string, found {other:?}")),
                }
            }
            Some(Token::Word(w)) if w == "status" => {
                expect(Token::Eq, &mut it)?;
                expect(Token::Word("error".into()), &mut it)?;
                Condition {
                    scope: "intrinsic".into(),
                    name: "status".into(),
                    value: "error".into(),
                }
            }
            other => return Err(format!("expected a condition, found {other:?}")),
        };
        conditions.push(condition);
        match it.next() {
            Some(Token::And) => continue,
            Some(Token::Close) => break,
            other => return Err(format!("expected && or }}, found {other:?}")),
        }
    }
    expect(Token::Pipe, &mut it)?;
    expect(Token::Word("select".into()), &mut it)?;
    expect(Token::OpenParen, &mut it)?;
    let mut selected = Vec::new();
    loop {
        match it.next() {
            Some(Token::Attribute(scope, name)) => selected.push((scope, name)),
            Some(Token::Word(w)) => selected.push(("intrinsic".into(), w)),
            other => return Err(format!("expected an attribute to select, found {other:?}")),
        }
        match it.next() {
            Some(Token::Comma) => continue,
            Some(Token::CloseParen) => break,
            other => return Err(format!("expected , or ), found {other:?}")),
        }
    }
    match it.next() {
        None => Ok(Parsed {
            conditions,
            selected,
        }),
        Some(t) => Err(format!("trailing {t:?} after the select")),
    }
}

#[test]
fn reads_kialis_query_shape() {
    let parsed = parse(
        r#"{ resource.service.name = "reviews.bookinfo" && .istio.cluster_id = "Kubernetes" && status = error } | select(status, .node_id, ."a b", resource.hostname, name)"#,
    )
    .unwrap();
    assert_eq!(parsed.conditions.len(), 3);
    assert_eq!(parsed.conditions[1].name, "istio.cluster_id");
    assert_eq!(parsed.selected[2], (String::new(), "a b".to_string()));
    // The injection the issue reports is not one spanset.
    assert!(parse(r#"{ .mesh_id = "m1" && .x} || { true = "y" } | select(status)"#).is_err());
    assert_eq!(
        parse(r#"{ ."x} || { true" = "a\"\n\u00e9" } | select(status)"#)
            .unwrap()
            .conditions[0],
        Condition {
            scope: String::new(),
            name: "x} || { true".into(),
            value: "a\"\né".into()
        }
    );
}
