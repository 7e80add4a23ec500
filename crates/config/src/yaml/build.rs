//! Builds the trees of a YAML stream from saphyr-parser's events, within bounds.
//!
//! A configuration may come from anyone (the console's tester parses posted drafts), so three
//! things that grow faster than the text are bounded, each with an error at the place it is
//! crossed:
//! - **Nesting**: at most [`MAX_DEPTH`] levels of lists and mappings, counted after aliases are
//!   resolved. The tree is built, walked and dropped recursively; a deeper one would exhaust the
//!   stack.
//! - **Alias expansion**, by nodes: the rule of Go's yaml.v3 (`allowedAliasRatio` in its
//!   `decode.go`). Every node of the trees counts, and every node an alias brings in counts as
//!   aliased too; once a document holds more than 1,000 nodes and more than 100 aliased ones,
//!   at most 99 % of its nodes may be aliased up to 400,000 nodes, a share that falls evenly to
//!   10 % at 4,000,000 nodes and stays there. A "billion laughs" document (nine levels of
//!   anchors, each aliasing the one before nine times) stops at about 400,000 nodes instead of
//!   growing to 387 million.
//! - **Alias expansion**, by text: aliases may copy at most [`MAX_ALIAS_TEXT`] bytes of scalar
//!   text in all. The node rule alone would let a thousand aliases of one long string through,
//!   and the decoder copies the strings it reads.
//!
//! Duplicate keys are found with one hash lookup per key (YAML forbids them; yaml.v3 rejects
//! them). The first [`MAX_DUPLICATES`] are listed with both positions, the rest only counted.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt::Write as _;
use std::rc::Rc;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, StrInput};

use super::{Duplicate, Node, ParseError, Pos, Stream, Style, SyntaxError, Value, join};

/// The deepest nesting of lists and mappings a document may have, after aliases. A Kiali CR
/// nests about a dozen levels deep where it is deepest (affinity rules).
pub const MAX_DEPTH: usize = 100;

/// The most scalar text, in bytes, that aliases may copy into one stream.
pub const MAX_ALIAS_TEXT: u64 = 1 << 20;

/// How many duplicate keys are listed one by one; past this they are counted.
pub const MAX_DUPLICATES: usize = 1000;

/// yaml.v3's alias rule: below this many nodes, 99 % of them may come from aliases...
const ALIAS_RATIO_RANGE_LOW: u64 = 400_000;
/// ... above this many, 10 %; in between the share falls linearly.
const ALIAS_RATIO_RANGE_HIGH: u64 = 4_000_000;
/// The rule applies once a document holds more nodes than this...
const ALIAS_RULE_MIN_NODES: u64 = 1000;
/// ... and more aliased nodes than this.
const ALIAS_RULE_MIN_ALIASED: u64 = 100;

/// Parses a YAML stream into trees. A syntax error or a crossed bound stops parsing: nothing
/// after it can be trusted.
pub fn parse(source: &str) -> Result<Stream, ParseError> {
    let mut builder = Builder {
        events: Parser::new_from_str(source),
        anchors: HashMap::new(),
        stream: Stream::default(),
        path: Vec::new(),
        nodes: 0,
        aliased: 0,
        text: 0,
        aliased_text: 0,
        deepest: 0,
    };
    builder.stream()?;
    Ok(builder.stream)
}

/// The share of a document's nodes, in millionths, that may come from aliases (yaml.v3's
/// `allowedAliasRatio`, in integers).
fn allowed_aliased_ppm(nodes: u64) -> u64 {
    const MOST: u64 = 990_000;
    const LEAST: u64 = 100_000;
    if nodes <= ALIAS_RATIO_RANGE_LOW {
        return MOST;
    }
    if nodes >= ALIAS_RATIO_RANGE_HIGH {
        return LEAST;
    }
    let into_range = nodes.saturating_sub(ALIAS_RATIO_RANGE_LOW);
    let range = ALIAS_RATIO_RANGE_HIGH.saturating_sub(ALIAS_RATIO_RANGE_LOW);
    let fall = MOST
        .saturating_sub(LEAST)
        .saturating_mul(into_range)
        .checked_div(range)
        .unwrap_or(0);
    MOST.saturating_sub(fall)
}

/// Whether `aliased` of `nodes` breaks yaml.v3's rule.
fn too_many_aliased(aliased: u64, nodes: u64) -> bool {
    if nodes <= ALIAS_RULE_MIN_NODES || aliased <= ALIAS_RULE_MIN_ALIASED {
        return false;
    }
    let share = aliased.checked_mul(1_000_000);
    let allowed = allowed_aliased_ppm(nodes).checked_mul(nodes);
    match (share, allowed) {
        (Some(share), Some(allowed)) => share > allowed,
        // Past u64 there is no document this loader would keep.
        _ => true,
    }
}

/// A share in millionths as a percentage for messages: `99%`, `55.5%`.
fn percent(ppm: u64) -> String {
    let whole = ppm.checked_div(10_000).unwrap_or(0);
    let tenths = ppm
        .checked_div(1_000)
        .unwrap_or(0)
        .checked_rem(10)
        .unwrap_or(0);
    if tenths == 0 {
        format!("{whole}%")
    } else {
        format!("{whole}.{tenths}%")
    }
}

/// What an anchor stands for, and what using it costs.
struct Anchored {
    node: Node,
    /// Nodes in the anchored tree, aliases inside it expanded.
    nodes: u64,
    /// Bytes of scalar text in the anchored tree, aliases inside it expanded.
    text: u64,
    /// Levels of lists and mappings in the anchored tree: 0 for a scalar.
    height: usize,
}

/// A key's text for comparing keys; `None` for a key that is a list or a mapping.
fn key_text(key: &Node) -> Option<Rc<str>> {
    match &key.value {
        Value::Scalar(text, _) => Some(Rc::clone(text)),
        _ => None,
    }
}

/// One step of the path to the node being built, rendered only when a duplicate needs it.
enum Segment {
    Key(Rc<str>),
    /// A key that is a list or a mapping.
    OtherKey,
    Index(usize),
}

struct Builder<'s> {
    events: Parser<'s, StrInput<'s>>,
    anchors: HashMap<usize, Anchored>,
    stream: Stream,
    path: Vec<Segment>,
    /// Nodes built so far, counting every copy an alias makes.
    nodes: u64,
    /// Of those, the nodes aliases brought in.
    aliased: u64,
    /// Bytes of scalar text built so far, counting copies.
    text: u64,
    /// Of those, the bytes aliases brought in.
    aliased_text: u64,
    /// The deepest level reached in the tree being built.
    deepest: usize,
}

fn limit(pos: Pos, message: String) -> ParseError {
    ParseError::Limit(SyntaxError { pos, message })
}

fn syntax(pos: Pos, message: String) -> ParseError {
    ParseError::Syntax(SyntaxError { pos, message })
}

/// A key as it stands in a path: cut short when long, so a path stays readable and small.
fn short_key(key: &str) -> String {
    const MAX: usize = 60;
    match key.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", key.get(..cut).unwrap_or(key)),
        None => key.to_string(),
    }
}

impl<'s> Builder<'s> {
    fn next(&mut self) -> Result<(Event<'s>, Span), ParseError> {
        match self.events.next() {
            Some(Ok(event)) => Ok(event),
            Some(Err(error)) => {
                let pos = Pos {
                    line: error.marker().line(),
                    col: error.marker().col().saturating_add(1),
                };
                Err(syntax(pos, error.info().to_string()))
            }
            None => Err(syntax(
                Pos { line: 1, col: 1 },
                "unexpected end of input".to_string(),
            )),
        }
    }

    fn stream(&mut self) -> Result<(), ParseError> {
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamEnd => return Ok(()),
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::DocumentStart(_) => {
                    let (first, span) = self.next()?;
                    let document = self.node(first, span, 0)?;
                    self.stream.documents.push(document);
                }
                other => {
                    let pos = Pos::from_span(&span);
                    return Err(syntax(pos, format!("unexpected YAML event {other:?}")));
                }
            }
        }
    }

    /// Builds the node that starts with `event`, inside `depth` lists and mappings.
    fn node(&mut self, event: Event<'s>, span: Span, depth: usize) -> Result<Node, ParseError> {
        let pos = Pos::from_span(&span);
        if let Event::Alias(id) = event {
            return self.alias(id, pos, depth);
        }
        let (nodes_before, text_before) = (self.nodes, self.text);
        let outer_deepest = std::mem::replace(&mut self.deepest, depth);
        let built = self.fresh(event, pos, depth);
        let height = self.deepest.saturating_sub(depth);
        self.deepest = self.deepest.max(outer_deepest);
        let (node, anchor) = built?;
        if anchor != 0 {
            let anchored = Anchored {
                node: node.clone(),
                nodes: self.nodes.saturating_sub(nodes_before),
                text: self.text.saturating_sub(text_before),
                height,
            };
            self.anchors.insert(anchor, anchored);
        }
        Ok(node)
    }

    /// Builds a node written out in the source (not an alias); returns it with its anchor id.
    fn fresh(
        &mut self,
        event: Event<'s>,
        pos: Pos,
        depth: usize,
    ) -> Result<(Node, usize), ParseError> {
        self.nodes = self.nodes.saturating_add(1);
        match event {
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
                let bytes = u64::try_from(text.len()).unwrap_or(u64::MAX);
                self.text = self.text.saturating_add(bytes);
                let value = Value::Scalar(Rc::from(&*text), style);
                Ok((Node { value, pos }, anchor))
            }
            Event::SequenceStart(anchor, _) => {
                let level = self.enter(depth, pos)?;
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    self.path.push(Segment::Index(items.len()));
                    let item = self.node(event, span, level)?;
                    self.path.pop();
                    items.push(item);
                }
                let value = Value::Seq(items.into());
                Ok((Node { value, pos }, anchor))
            }
            Event::MappingStart(anchor, _) => {
                let level = self.enter(depth, pos)?;
                Ok((self.mapping(pos, level)?, anchor))
            }
            other => Err(syntax(pos, format!("unexpected YAML event {other:?}"))),
        }
    }

    /// Enters a list or mapping inside `depth` others; returns its level.
    fn enter(&mut self, depth: usize, pos: Pos) -> Result<usize, ParseError> {
        let level = depth.saturating_add(1);
        if level > MAX_DEPTH {
            return Err(limit(
                pos,
                format!(
                    "document nests too deep: lists and mappings more than {MAX_DEPTH} levels \
                     deep"
                ),
            ));
        }
        self.deepest = self.deepest.max(level);
        Ok(level)
    }

    /// Resolves an alias to a copy of its anchored node (a cheap one: the parts are shared),
    /// if the document stays within bounds with it.
    fn alias(&mut self, id: usize, pos: Pos, depth: usize) -> Result<Node, ParseError> {
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(syntax(pos, "alias to an unknown anchor".to_string()));
        };
        let nodes = self.nodes.saturating_add(anchored.nodes);
        let aliased = self.aliased.saturating_add(anchored.nodes);
        if too_many_aliased(aliased, nodes) {
            let allowed = percent(allowed_aliased_ppm(nodes));
            return Err(limit(
                pos,
                format!(
                    "document expands aliases too much: with this alias it would hold {nodes} \
                     nodes, {aliased} of them copies made by aliases; at {nodes} nodes at most \
                     {allowed} may be (the rule of Go's yaml.v3)"
                ),
            ));
        }
        let aliased_text = self.aliased_text.saturating_add(anchored.text);
        if aliased_text > MAX_ALIAS_TEXT {
            return Err(limit(
                pos,
                format!(
                    "document expands aliases too much: with this alias they would copy \
                     {aliased_text} bytes of text; at most {MAX_ALIAS_TEXT} may be copied"
                ),
            ));
        }
        let reach = depth.saturating_add(anchored.height);
        if reach > MAX_DEPTH {
            return Err(limit(
                pos,
                format!(
                    "document nests too deep: with this alias lists and mappings would be \
                     {reach} levels deep; at most {MAX_DEPTH} may be"
                ),
            ));
        }
        let node = anchored.node.clone();
        self.text = self.text.saturating_add(anchored.text);
        self.nodes = nodes;
        self.aliased = aliased;
        self.aliased_text = aliased_text;
        self.deepest = self.deepest.max(reach);
        Ok(node)
    }

    /// Builds a mapping at `level` (its MappingStart was read). A key set twice is recorded as
    /// a duplicate and the later value wins; merge keys (`<<: *base`) then add the entries the
    /// mapping does not set itself, the first source that sets a key winning.
    fn mapping(&mut self, pos: Pos, level: usize) -> Result<Node, ParseError> {
        // A key's slot is emptied when a later duplicate replaces it, so that replacing is O(1)
        // and the order of the other keys is kept.
        let mut entries: Vec<Option<(Node, Node)>> = Vec::new();
        // Where each key stands in `entries`. Keys that are lists or mappings share the `None`
        // slot: they compare as equal, as before (yaml.v3 compares a key's kind and text).
        let mut index: HashMap<Option<Rc<str>>, usize> = HashMap::new();
        let mut merged: Vec<Node> = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let key = self.node(event, span, level)?;
            let text = key_text(&key);
            self.path.push(match &text {
                Some(text) => Segment::Key(Rc::clone(text)),
                None => Segment::OtherKey,
            });
            let (event, span) = self.next()?;
            let value = self.node(event, span, level)?;
            if matches!(&key.value, Value::Scalar(text, Style::Plain) if &**text == "<<") {
                self.path.pop();
                merged.push(value);
                continue;
            }
            match index.entry(text) {
                Entry::Occupied(mut slot) => {
                    let earlier = entries.get_mut(*slot.get()).and_then(Option::take);
                    if let Some((first, _)) = earlier {
                        self.duplicate(key.pos, first.pos);
                    }
                    slot.insert(entries.len());
                }
                Entry::Vacant(slot) => {
                    slot.insert(entries.len());
                }
            }
            self.path.pop();
            entries.push(Some((key, value)));
        }
        for source in &merged {
            let sources = match &source.value {
                Value::Seq(items) => &**items,
                _ => std::slice::from_ref(source),
            };
            for source in sources {
                let Value::Map(source_entries) = &source.value else {
                    continue;
                };
                for (key, value) in source_entries.iter() {
                    let text = key_text(key);
                    if let Entry::Vacant(slot) = index.entry(text) {
                        slot.insert(entries.len());
                        entries.push(Some((key.clone(), value.clone())));
                    }
                }
            }
        }
        let entries: Rc<[(Node, Node)]> = entries.into_iter().flatten().collect();
        Ok(Node {
            value: Value::Map(entries),
            pos,
        })
    }

    /// Records a duplicate key at the current path.
    fn duplicate(&mut self, pos: Pos, first: Pos) {
        if self.stream.duplicates.len() < MAX_DUPLICATES {
            let path = self.render_path();
            self.stream.duplicates.push(Duplicate { path, pos, first });
            return;
        }
        let unlisted = &mut self.stream.unlisted_duplicates;
        match unlisted {
            Some((count, _)) => *count = count.saturating_add(1),
            None => *unlisted = Some((1, pos)),
        }
    }

    /// The dotted path to the node being built, long keys cut short.
    fn render_path(&self) -> String {
        let mut path = String::new();
        for segment in &self.path {
            match segment {
                Segment::Index(i) => {
                    let _ = write!(path, "[{i}]");
                }
                Segment::Key(key) => path = join(&path, &short_key(key)),
                Segment::OtherKey => path = join(&path, "?"),
            }
        }
        path
    }
}
