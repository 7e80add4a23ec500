//! Tag matching on the encoded form of a span: a search runs it on every candidate span, so
//! it reads the bytes directly (dictionary IDs compared as numbers, no strings built).

use meshtrace_model::{Process, Value};

use super::reader::{DICT_STRING, Reader, StoredKey, unzigzag};
use super::{CorruptError, SAME_TRACE};
use crate::dict::Dictionary;

/// A tag a search asks for, with what the dictionary knows of it, prepared once per query.
pub struct WantedTag {
    pub key: String,
    pub value: String,
    key_id: Option<u32>,
    value_id: Option<u32>,
    /// Whether index entries carry this key's values (`summary.rs`).
    indexed: bool,
}

impl WantedTag {
    pub fn new(key: &str, value: &str, dict: &Dictionary) -> WantedTag {
        WantedTag {
            key: key.to_string(),
            value: value.to_string(),
            key_id: dict.lookup(key),
            value_id: dict.lookup(value),
            indexed: super::INDEXED_TAG_KEYS.contains(&key),
        }
    }

    /// Whether an index entry's tag section can say if a span has this tag.
    pub fn is_indexed(&self) -> bool {
        self.indexed
    }

    /// Whether a stored key is this tag's key: by ID, or as text when it was stored inline.
    pub(super) fn key_matches(&self, key: &StoredKey<'_>) -> bool {
        match key {
            StoredKey::Id(id) => self.key_id == Some(*id),
            StoredKey::Inline(text) => *text == self.key,
        }
    }

    /// Whether a stored value equals the wanted one, compared as text (Jaeger's rule).
    pub(super) fn value_matches(&self, r: &mut Reader<'_>, kind: u8) -> Result<bool, CorruptError> {
        Ok(match kind {
            DICT_STRING => Some(r.varint32()?) == self.value_id,
            0 => r.str()? == self.value,
            1 => self.value == "false",
            2 => self.value == "true",
            3 => unzigzag(r.varint()?).to_string() == self.value,
            4 => f64::from_le_bytes(r.array::<8>()?).to_string() == self.value,
            5 => {
                let n = r.count()?;
                let bytes = r.take(n)?;
                Value::Binary(bytes.to_vec()).as_text() == self.value.as_str()
            }
            _ => return Err(CorruptError("unknown value type")),
        })
    }
}

/// Whether every wanted tag is found on the encoded span: in its tags, its log fields or its
/// process's tags.
pub fn span_has_tags(
    value: &[u8],
    wanted: &[WantedTag],
    process: &Process,
) -> Result<bool, CorruptError> {
    let mut found: Vec<bool> = wanted
        .iter()
        .map(|w| {
            process
                .tags
                .iter()
                .any(|kv| kv.key == w.key && kv.value.as_text() == w.value.as_str())
        })
        .collect();
    if found.iter().all(|f| *f) {
        return Ok(true);
    }
    let mut r = Reader::new(value);
    // operation, flags, duration
    r.skip_dict_string()?;
    r.varint()?;
    r.varint()?;
    for _ in 0..r.count()? {
        let flags = r.byte()?;
        r.take(if flags & SAME_TRACE != 0 { 8 } else { 24 })?;
    }
    scan_tags(&mut r, wanted, &mut found)?;
    for _ in 0..r.count()? {
        r.varint()?;
        scan_tags(&mut r, wanted, &mut found)?;
    }
    Ok(found.iter().all(|f| *f))
}

fn scan_tags(
    r: &mut Reader<'_>,
    wanted: &[WantedTag],
    found: &mut [bool],
) -> Result<(), CorruptError> {
    for _ in 0..r.count()? {
        let key = r.stored_key()?;
        let kind = r.byte()?;
        match wanted.iter().position(|w| w.key_matches(&key)) {
            Some(i) => {
                let matched = match wanted.get(i) {
                    Some(w) => w.value_matches(r, kind)?,
                    None => false,
                };
                if let (true, Some(slot)) = (matched, found.get_mut(i)) {
                    *slot = true;
                }
            }
            None => r.skip_value(kind)?,
        }
    }
    Ok(())
}
