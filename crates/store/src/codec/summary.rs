//! The value of a `by_service` index entry: the few fields of a span a search filters on
//! without reading the span — its operation (a dictionary ID when it has one), its duration,
//! and (store layout 3) the values of the tags searched most ([`INDEXED_TAG_KEYS`]).
//!
//! The tag section lets a search with `http.status_code=503` decide from the index alone,
//! instead of one point read of the span per candidate (hundreds per search at 10 M spans).
//! It is written only when it is complete — every indexed tag of the span, its process and its
//! logs, each value short — so that a span without it (an entry written by layout 2, or a span
//! with many or long indexed values) is checked on the span itself, as before.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::borrow::Cow;

use meshtrace_model::Span;

use super::reader::{DICT_STRING, Reader, put_dict_key, put_dict_str, put_varint};
use super::{CorruptError, WantedTag, put_operation};
use crate::dict::Interner;

/// The tag keys whose values an index entry carries: Jaeger's error flag, and what the Istio
/// proxies record of a failed request.
pub const INDEXED_TAG_KEYS: [&str; 3] = ["error", "http.status_code", "response_flags"];
/// At most this many indexed tags in one entry (a span with more is checked on itself).
const MAX_INDEXED_TAGS: usize = 8;
/// The longest value an entry carries, in bytes (a longer one: the span is checked on itself).
const MAX_INDEXED_VALUE: usize = 64;

/// Writes the index entry of `span`.
pub fn encode_summary<'s>(span: &'s Span, strings: &mut Interner<'_, 's>, out: &mut Vec<u8>) {
    put_operation(out, &span.operation_name, strings);
    put_varint(out, span.duration);
    let Some(tags) = indexed_tags(span) else {
        return; // no section: a search reads the span for its tags
    };
    put_varint(out, tags.len() as u64);
    for (key, value) in tags {
        let key_id = strings.key_id(key);
        put_dict_key(out, key_id, key);
        put_dict_str(out, strings.value_id(key_id, &value), &value);
    }
}

/// Every indexed tag of the span (its own, its process's, its logs'), as text, without
/// repeats; None when there are too many or one is too long.
fn indexed_tags(span: &Span) -> Option<Vec<(&str, Cow<'_, str>)>> {
    let mut tags: Vec<(&str, Cow<'_, str>)> = Vec::new();
    let all = span
        .tags
        .iter()
        .chain(&span.process.tags)
        .chain(span.logs.iter().flat_map(|log| &log.fields));
    for kv in all {
        if !INDEXED_TAG_KEYS.contains(&kv.key.as_str()) {
            continue;
        }
        let text = kv.value.as_text();
        if text.len() > MAX_INDEXED_VALUE {
            return None;
        }
        if tags.iter().any(|(k, v)| *k == kv.key && *v == text) {
            continue;
        }
        if tags.len() >= MAX_INDEXED_TAGS {
            return None;
        }
        tags.push((kv.key.as_str(), text));
    }
    Some(tags)
}

/// An operation as an index entry holds it.
#[derive(Debug, PartialEq, Eq)]
pub enum SummaryOperation<'a> {
    Id(u32),
    Inline(&'a str),
}

pub struct Summary<'a> {
    pub operation: SummaryOperation<'a>,
    pub duration: u64,
    /// The encoded tag section; None when the entry has none.
    tags: Option<&'a [u8]>,
}

impl Summary<'_> {
    /// Whether the entry's operation is `name`, whose dictionary ID (if any) is `id`.
    pub fn operation_is(&self, name: &str, id: Option<u32>) -> bool {
        match self.operation {
            SummaryOperation::Id(entry) => Some(entry) == id,
            SummaryOperation::Inline(text) => text == name,
        }
    }

    /// Whether the span has every wanted tag, decided from the entry alone: None when it
    /// cannot be (no tag section, or a wanted key that is not indexed).
    pub fn has_tags(&self, wanted: &[WantedTag]) -> Result<Option<bool>, CorruptError> {
        let Some(section) = self.tags else {
            return Ok(None);
        };
        if !wanted.iter().all(WantedTag::is_indexed) {
            return Ok(None);
        }
        let mut found = vec![false; wanted.len()];
        let mut r = Reader::new(section);
        for _ in 0..r.count()? {
            let key = r.stored_key()?;
            let kind = r.byte()?;
            if kind != DICT_STRING && kind != 0 {
                return Err(CorruptError("bad tag value in an index entry"));
            }
            for (w, slot) in wanted.iter().zip(found.iter_mut()) {
                // Every wanted tag with this key compares the value, each from its start.
                if w.key_matches(&key) && w.value_matches(&mut Reader::new(r.rest()), kind)? {
                    *slot = true;
                }
            }
            r.skip_value(kind)?;
        }
        if !r.is_empty() {
            return Err(CorruptError("bytes after an index entry"));
        }
        Ok(Some(found.iter().all(|f| *f)))
    }
}

pub fn decode_summary(value: &[u8]) -> Result<Summary<'_>, CorruptError> {
    let mut r = Reader::new(value);
    let operation = match r.byte()? {
        DICT_STRING => SummaryOperation::Id(r.varint32()?),
        0 => SummaryOperation::Inline(r.str()?),
        _ => return Err(CorruptError("bad operation in an index entry")),
    };
    let duration = r.varint()?;
    let tags = (!r.is_empty()).then(|| r.rest());
    Ok(Summary {
        operation,
        duration,
        tags,
    })
}
