//! The primitives of the stored form: varints, length-prefixed bytes, typed values, and
//! strings that are either inline or a dictionary ID. The `Reader` never trusts what it reads:
//! every length is checked against what is left, so damaged bytes give an error, never a
//! panic or a huge allocation, and a dictionary ID with no entry reads as a placeholder that
//! says so (counted in `lost_entries`) instead of failing the whole span.

use meshtrace_model::{KeyValue, Value};

use super::CorruptError;
use crate::dict::Dictionary;

/// Kinds of value in a dictionary-coded tag (the plain layout of processes uses 0–5 alike).
pub const DICT_STRING: u8 = 6;

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub fn put_f64(out: &mut Vec<u8>, v: f64) {
    out.extend_from_slice(&v.to_le_bytes());
}

pub fn zigzag(v: i64) -> u64 {
    (v.wrapping_shl(1) ^ (v >> 63)) as u64
}

pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ ((v & 1) as i64).wrapping_neg()
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A string as a dictionary ID when it has one, inline otherwise.
pub fn put_dict_str(out: &mut Vec<u8>, id: Option<u32>, text: &str) {
    match id {
        Some(id) => {
            out.push(DICT_STRING);
            put_varint(out, u64::from(id));
        }
        None => {
            out.push(0);
            put_str(out, text);
        }
    }
}

/// A tag key: `id << 1` when interned, `len << 1 | 1` and the bytes when inline (the
/// dictionary is bounded, so a key may not have an ID).
pub fn put_dict_key(out: &mut Vec<u8>, id: Option<u32>, text: &str) {
    match id {
        Some(id) => put_varint(out, u64::from(id) << 1),
        None => {
            put_varint(out, ((text.len() as u64) << 1) | 1);
            out.extend_from_slice(text.as_bytes());
        }
    }
}

pub fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Str(s) => {
            out.push(0);
            put_str(out, s);
        }
        Value::Bool(b) => out.push(if *b { 2 } else { 1 }),
        Value::I64(i) => {
            out.push(3);
            put_varint(out, zigzag(*i));
        }
        Value::F64(f) => {
            out.push(4);
            out.extend_from_slice(&f.to_le_bytes());
        }
        Value::Binary(b) => {
            out.push(5);
            put_bytes(out, b);
        }
    }
}

pub fn put_kvs(out: &mut Vec<u8>, kvs: &[KeyValue]) {
    put_varint(out, kvs.len() as u64);
    for kv in kvs {
        put_str(out, &kv.key);
        put_value(out, &kv.value);
    }
}

/// A tag key as stored: an ID, or the text inline.
pub enum StoredKey<'a> {
    Id(u32),
    Inline(&'a str),
}

pub struct Reader<'a> {
    data: &'a [u8],
    /// Dictionary IDs met that had no entry (read as placeholders).
    pub lost_entries: u32,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader {
            data,
            lost_entries: 0,
        }
    }

    /// True when everything was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// What is left to read.
    pub fn rest(&self) -> &'a [u8] {
        self.data
    }

    /// An f64 written by [`put_f64`].
    pub fn f64(&mut self) -> Result<f64, CorruptError> {
        self.array::<8>().map(f64::from_le_bytes)
    }

    pub fn byte(&mut self) -> Result<u8, CorruptError> {
        let (first, rest) = self.data.split_first().ok_or(CorruptError("truncated"))?;
        self.data = rest;
        Ok(*first)
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], CorruptError> {
        let (head, rest) = self
            .data
            .split_first_chunk::<N>()
            .ok_or(CorruptError("truncated"))?;
        self.data = rest;
        Ok(*head)
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], CorruptError> {
        let (head, rest) = self
            .data
            .split_at_checked(n)
            .ok_or(CorruptError("truncated"))?;
        self.data = rest;
        Ok(head)
    }

    pub fn varint(&mut self) -> Result<u64, CorruptError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f)
                .checked_shl(shift)
                .ok_or(CorruptError("varint too long"))?;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(CorruptError("varint too long"))
    }

    /// A varint that must fit in 32 bits (dictionary IDs, flags).
    pub fn varint32(&mut self) -> Result<u32, CorruptError> {
        u32::try_from(self.varint()?).map_err(|_| CorruptError("a 32-bit number is too large"))
    }

    /// A length that must fit in what is left (guards allocations against corrupt input).
    pub fn count(&mut self) -> Result<usize, CorruptError> {
        let n = usize::try_from(self.varint()?).unwrap_or(usize::MAX);
        if n > self.data.len() {
            return Err(CorruptError("count larger than the value"));
        }
        Ok(n)
    }

    pub fn str(&mut self) -> Result<&'a str, CorruptError> {
        let n = self.count()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| CorruptError("invalid UTF-8"))
    }

    pub fn string(&mut self) -> Result<String, CorruptError> {
        self.str().map(str::to_string)
    }

    pub fn kvs(&mut self) -> Result<Vec<KeyValue>, CorruptError> {
        let count = self.count()?;
        let mut kvs = Vec::with_capacity(count);
        for _ in 0..count {
            let key = self.string()?;
            let kind = self.byte()?;
            kvs.push(KeyValue {
                key,
                value: self.value(kind)?,
            });
        }
        Ok(kvs)
    }

    pub fn value(&mut self, kind: u8) -> Result<Value, CorruptError> {
        Ok(match kind {
            0 => Value::Str(self.string()?),
            1 => Value::Bool(false),
            2 => Value::Bool(true),
            3 => Value::I64(unzigzag(self.varint()?)),
            4 => Value::F64(f64::from_le_bytes(self.array::<8>()?)),
            5 => {
                let n = self.count()?;
                Value::Binary(self.take(n)?.to_vec())
            }
            _ => return Err(CorruptError("unknown value type")),
        })
    }

    /// Skips a value of `kind` (a dictionary-coded one included).
    pub fn skip_value(&mut self, kind: u8) -> Result<(), CorruptError> {
        match kind {
            DICT_STRING | 3 => {
                self.varint()?;
            }
            0 | 5 => {
                let n = self.count()?;
                self.take(n)?;
            }
            4 => {
                self.take(8)?;
            }
            1 | 2 => {}
            _ => return Err(CorruptError("unknown value type")),
        }
        Ok(())
    }

    /// The text of a dictionary ID, or a placeholder naming the ID when its entry is lost.
    fn dict_entry(&mut self, id: u32, dict: &Dictionary) -> String {
        match dict.get(id) {
            Some(text) => text.to_string(),
            None => {
                self.lost_entries = self.lost_entries.saturating_add(1);
                format!("<lost dictionary entry {id}>")
            }
        }
    }

    pub fn stored_key(&mut self) -> Result<StoredKey<'a>, CorruptError> {
        let tagged = self.varint()?;
        if tagged & 1 == 0 {
            let id = u32::try_from(tagged >> 1).map_err(|_| CorruptError("bad key ID"))?;
            return Ok(StoredKey::Id(id));
        }
        let n = usize::try_from(tagged >> 1).unwrap_or(usize::MAX);
        let bytes = self.take(n)?;
        std::str::from_utf8(bytes)
            .map(StoredKey::Inline)
            .map_err(|_| CorruptError("invalid UTF-8"))
    }

    pub fn dict_string(&mut self, dict: &Dictionary) -> Result<String, CorruptError> {
        match self.byte()? {
            DICT_STRING => {
                let id = self.varint32()?;
                Ok(self.dict_entry(id, dict))
            }
            0 => self.string(),
            _ => Err(CorruptError(
                "a string is neither inline nor in the dictionary",
            )),
        }
    }

    /// Skips a string written by `put_dict_str`.
    pub fn skip_dict_string(&mut self) -> Result<(), CorruptError> {
        match self.byte()? {
            DICT_STRING => self.varint().map(drop),
            0 => self.str().map(drop),
            _ => Err(CorruptError(
                "a string is neither inline nor in the dictionary",
            )),
        }
    }

    pub fn dict_kvs(&mut self, dict: &Dictionary) -> Result<Vec<KeyValue>, CorruptError> {
        let count = self.count()?;
        let mut kvs = Vec::with_capacity(count);
        for _ in 0..count {
            let key = match self.stored_key()? {
                StoredKey::Id(id) => self.dict_entry(id, dict),
                StoredKey::Inline(text) => text.to_string(),
            };
            let value = match self.byte()? {
                DICT_STRING => {
                    let id = self.varint32()?;
                    Value::Str(self.dict_entry(id, dict))
                }
                kind => self.value(kind)?,
            };
            kvs.push(KeyValue { key, value });
        }
        Ok(kvs)
    }
}
