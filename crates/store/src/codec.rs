//! The stored form of spans and processes: a compact binary layout with varints, written and read
//! by hand so that what lands on disk is exactly what we chose (and small: most of a span's bytes
//! are its tags, which compress well in the engine's blocks).
//!
//! A span's trace ID, start time and span ID live in its key, and its process is stored once per
//! distinct process and referenced by a 64-bit hash, so a value holds only the rest.

use std::sync::Arc;

use meshtrace_model::{KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};

use crate::dict::{Dictionary, Pending};

/// The pseudo tag key under which operation names are interned.
const OPERATION_KEY: &str = "\u{0}operation";

#[derive(Debug, thiserror::Error)]
#[error("stored data is corrupt: {0}")]
pub struct CorruptError(pub &'static str);

/// Marks a reference whose trace is the span's own.
const SAME_TRACE: u8 = 0x80;

/// The fields of a span that are not in its key, with its process by reference.
pub fn encode_span(
    span: &Span,
    process_hash: u64,
    dict: &Dictionary,
    pending: &mut Pending,
    out: &mut Vec<u8>,
) {
    let op_key = dict.key_id(OPERATION_KEY, pending);
    put_dict_str(
        out,
        dict.value_id(op_key, &span.operation_name, pending),
        &span.operation_name,
    );
    put_varint(out, span.flags as u64);
    put_varint(out, span.duration);
    put_varint(out, span.references.len() as u64);
    for r in &span.references {
        // A reference inside the same trace (nearly all of them) does not repeat the trace ID.
        let same_trace = r.trace_id == span.trace_id;
        out.push(
            match r.ref_type {
                RefType::ChildOf => 0,
                RefType::FollowsFrom => 1,
            } | if same_trace { SAME_TRACE } else { 0 },
        );
        if !same_trace {
            out.extend_from_slice(&r.trace_id.to_bytes());
        }
        out.extend_from_slice(&r.span_id.to_bytes());
    }
    put_dict_kvs(out, &span.tags, dict, pending);
    put_varint(out, span.logs.len() as u64);
    for log in &span.logs {
        // Log times are close to the span's start: store the difference (zigzag: it may be < 0).
        put_varint(out, zigzag(log.timestamp as i64 - span.start_time as i64));
        put_dict_kvs(out, &log.fields, dict, pending);
    }
    put_varint(out, span.warnings.len() as u64);
    for w in &span.warnings {
        put_str(out, w);
    }
    out.extend_from_slice(&process_hash.to_le_bytes());
}

/// The process hash a stored span refers to (its last 8 bytes).
pub fn span_process_hash(value: &[u8]) -> Result<u64, CorruptError> {
    let tail = value
        .len()
        .checked_sub(8)
        .ok_or(CorruptError("span value too short"))?;
    Ok(u64::from_le_bytes(
        value[tail..].try_into().expect("8 bytes"),
    ))
}

pub fn decode_span(
    trace_id: TraceId,
    start_time: u64,
    span_id: SpanId,
    value: &[u8],
    process: Arc<Process>,
    dict: &Dictionary,
) -> Result<Span, CorruptError> {
    let mut r = Reader(value);
    let operation_name = r.dict_string(dict)?;
    let flags = r.varint()? as u32;
    let duration = r.varint()?;
    let count = r.count()?;
    let mut references = Vec::with_capacity(count);
    for _ in 0..count {
        let flags = r.byte()?;
        let ref_type = match flags & !SAME_TRACE {
            0 => RefType::ChildOf,
            _ => RefType::FollowsFrom,
        };
        let trace = if flags & SAME_TRACE != 0 {
            trace_id
        } else {
            TraceId(u128::from_be_bytes(r.array::<16>()?))
        };
        let span = SpanId(u64::from_be_bytes(r.array::<8>()?));
        references.push(SpanRef {
            ref_type,
            trace_id: trace,
            span_id: span,
        });
    }
    let tags = r.dict_kvs(dict)?;
    let count = r.count()?;
    let mut logs = Vec::with_capacity(count);
    for _ in 0..count {
        let delta = unzigzag(r.varint()?);
        let timestamp = (start_time as i64 + delta) as u64;
        logs.push(Log {
            timestamp,
            fields: r.dict_kvs(dict)?,
        });
    }
    let count = r.count()?;
    let mut warnings = Vec::with_capacity(count);
    for _ in 0..count {
        warnings.push(r.string()?);
    }
    Ok(Span {
        trace_id,
        span_id,
        operation_name,
        references,
        flags,
        start_time,
        duration,
        tags,
        logs,
        process,
        warnings,
    })
}

pub fn encode_process(process: &Process, out: &mut Vec<u8>) {
    put_str(out, &process.service_name);
    put_kvs(out, &process.tags);
}

pub fn decode_process(value: &[u8]) -> Result<Process, CorruptError> {
    let mut r = Reader(value);
    Ok(Process {
        service_name: r.string()?,
        tags: r.kvs()?,
    })
}

/// A stable 64-bit hash of an encoded process (FNV-1a: stable across builds and platforms,
/// unlike std's hasher, which matters because the hash is stored).
pub fn process_hash(encoded: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in encoded {
        hash ^= *byte as u64;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The few fields an index entry keeps so that a search can filter without reading the span:
/// its operation (a dictionary ID when it has one) and duration; the service is in the key.
pub fn encode_summary(
    operation: &str,
    duration: u64,
    dict: &Dictionary,
    pending: &mut Pending,
    out: &mut Vec<u8>,
) {
    let op_key = dict.key_id(OPERATION_KEY, pending);
    put_dict_str(out, dict.value_id(op_key, operation, pending), operation);
    put_varint(out, duration);
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
}

impl Summary<'_> {
    /// Whether the entry's operation is `name`, whose dictionary ID (if any) is `id`.
    pub fn operation_is(&self, name: &str, id: Option<u32>) -> bool {
        match self.operation {
            SummaryOperation::Id(entry) => Some(entry) == id,
            SummaryOperation::Inline(text) => text == name,
        }
    }
}

pub fn decode_summary(value: &[u8]) -> Result<Summary<'_>, CorruptError> {
    let mut r = Reader(value);
    let operation = match r.byte()? {
        DICT_STRING => SummaryOperation::Id(r.varint()? as u32),
        0 => SummaryOperation::Inline(r.str()?),
        _ => return Err(CorruptError("bad operation in an index entry")),
    };
    Ok(Summary {
        operation,
        duration: r.varint()?,
    })
}

/// The dictionary ID of an operation name, if it has one (never adds one).
pub fn operation_id(dict: &Dictionary, name: &str) -> Option<u32> {
    dict.lookup(name)
}

/// A tag a search asks for, with what the dictionary knows of it, prepared once per query.
pub struct WantedTag {
    pub key: String,
    pub value: String,
    key_id: Option<u32>,
    value_id: Option<u32>,
}

impl WantedTag {
    pub fn new(key: &str, value: &str, dict: &Dictionary) -> WantedTag {
        WantedTag {
            key: key.to_string(),
            value: value.to_string(),
            key_id: dict.lookup(key),
            value_id: dict.lookup(value),
        }
    }

    /// Whether a stored value equals the wanted one, compared as text (Jaeger's rule).
    fn value_matches(&self, r: &mut Reader<'_>, kind: u8) -> Result<bool, CorruptError> {
        Ok(match kind {
            DICT_STRING => Some(r.varint()? as u32) == self.value_id,
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
/// process's tags. Reads the encoded form directly (no strings are built), because a search
/// runs this on every candidate span.
pub fn span_has_tags(
    value: &[u8],
    wanted: &[WantedTag],
    process: &Process,
) -> Result<bool, CorruptError> {
    let mut found = vec![false; wanted.len()];
    for (i, w) in wanted.iter().enumerate() {
        found[i] = process
            .tags
            .iter()
            .any(|kv| kv.key == w.key && kv.value.as_text() == w.value.as_str());
    }
    if found.iter().all(|f| *f) {
        return Ok(true);
    }
    let mut r = Reader(value);
    // operation, flags, duration
    match r.byte()? {
        DICT_STRING => {
            r.varint()?;
        }
        _ => {
            r.str()?;
        }
    }
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
        let key = r.varint()? as u32;
        let kind = r.byte()?;
        match wanted.iter().position(|w| w.key_id == Some(key)) {
            Some(i) => {
                if wanted[i].value_matches(r, kind)? {
                    found[i] = true;
                }
            }
            None => skip_value(r, kind)?,
        }
    }
    Ok(())
}

fn skip_value(r: &mut Reader<'_>, kind: u8) -> Result<(), CorruptError> {
    match kind {
        DICT_STRING | 3 => {
            r.varint()?;
        }
        0 | 5 => {
            let n = r.count()?;
            r.take(n)?;
        }
        4 => {
            r.take(8)?;
        }
        1 | 2 => {}
        _ => return Err(CorruptError("unknown value type")),
    }
    Ok(())
}

/// Kinds of value in a dictionary-coded tag (the plain layout of processes uses 0–5 alike).
const DICT_STRING: u8 = 6;

fn put_dict_str(out: &mut Vec<u8>, id: Option<u32>, text: &str) {
    match id {
        Some(id) => {
            out.push(DICT_STRING);
            put_varint(out, id as u64);
        }
        None => {
            out.push(0);
            put_str(out, text);
        }
    }
}

/// Tags with their keys, and the values worth it, as dictionary IDs.
fn put_dict_kvs(out: &mut Vec<u8>, kvs: &[KeyValue], dict: &Dictionary, pending: &mut Pending) {
    put_varint(out, kvs.len() as u64);
    for kv in kvs {
        let key = dict.key_id(&kv.key, pending);
        put_varint(out, key as u64);
        match &kv.value {
            Value::Str(s) => put_dict_str(out, dict.value_id(key, s, pending), s),
            other => put_value(out, other),
        }
    }
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
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

fn put_kvs(out: &mut Vec<u8>, kvs: &[KeyValue]) {
    put_varint(out, kvs.len() as u64);
    for kv in kvs {
        put_str(out, &kv.key);
        put_value(out, &kv.value);
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bytes(out, s.as_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, CorruptError> {
        let (first, rest) = self.0.split_first().ok_or(CorruptError("truncated"))?;
        self.0 = rest;
        Ok(*first)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CorruptError> {
        let bytes = self.take(N)?;
        Ok(bytes.try_into().expect("N bytes"))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CorruptError> {
        if self.0.len() < n {
            return Err(CorruptError("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn varint(&mut self) -> Result<u64, CorruptError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= ((byte & 0x7f) as u64) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(CorruptError("varint too long"))
    }

    /// A length that must fit in what is left (guards allocations against corrupt input).
    fn count(&mut self) -> Result<usize, CorruptError> {
        let n = self.varint()? as usize;
        if n > self.0.len() {
            return Err(CorruptError("count larger than the value"));
        }
        Ok(n)
    }

    fn str(&mut self) -> Result<&'a str, CorruptError> {
        let n = self.count()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| CorruptError("invalid UTF-8"))
    }

    fn string(&mut self) -> Result<String, CorruptError> {
        self.str().map(str::to_string)
    }

    fn kvs(&mut self) -> Result<Vec<KeyValue>, CorruptError> {
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

    fn value(&mut self, kind: u8) -> Result<Value, CorruptError> {
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

    fn dict_entry(&mut self, dict: &Dictionary) -> Result<String, CorruptError> {
        let id = self.varint()?;
        let text = dict
            .get(id as u32)
            .ok_or(CorruptError("a dictionary ID is not in the dictionary"))?;
        Ok(text.to_string())
    }

    fn dict_string(&mut self, dict: &Dictionary) -> Result<String, CorruptError> {
        match self.byte()? {
            DICT_STRING => self.dict_entry(dict),
            0 => self.string(),
            _ => Err(CorruptError(
                "a string is neither inline nor in the dictionary",
            )),
        }
    }

    fn dict_kvs(&mut self, dict: &Dictionary) -> Result<Vec<KeyValue>, CorruptError> {
        let count = self.count()?;
        let mut kvs = Vec::with_capacity(count);
        for _ in 0..count {
            let key = self.dict_entry(dict)?;
            let value = match self.byte()? {
                DICT_STRING => Value::Str(self.dict_entry(dict)?),
                kind => self.value(kind)?,
            };
            kvs.push(KeyValue { key, value });
        }
        Ok(kvs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_round_trip() {
        let process = Arc::new(Process {
            service_name: "reviews.bookinfo".into(),
            tags: vec![KeyValue::string("ip", "10.0.0.1")],
        });
        let span = Span {
            trace_id: TraceId(7),
            span_id: SpanId(9),
            operation_name: "reviews.bookinfo.svc.cluster.local:9080/*".into(),
            references: vec![
                SpanRef {
                    ref_type: RefType::ChildOf,
                    trace_id: TraceId(7),
                    span_id: SpanId(1),
                },
                SpanRef {
                    ref_type: RefType::FollowsFrom,
                    trace_id: TraceId(8),
                    span_id: SpanId(2),
                },
            ],
            flags: 1,
            start_time: 1_700_000_000_000_000,
            duration: 1234,
            tags: vec![
                KeyValue::string("component", "proxy"),
                KeyValue::new("error", Value::Bool(true)),
                KeyValue::new("http.status_code", Value::I64(-503)),
                KeyValue::new("ratio", Value::F64(0.5)),
                KeyValue::new("blob", Value::Binary(vec![0, 1, 2])),
            ],
            logs: vec![Log {
                timestamp: 1_699_999_999_999_000,
                fields: vec![KeyValue::string("event", "early")],
            }],
            process: process.clone(),
            warnings: vec!["clock skew".into()],
        };
        let mut out = Vec::new();
        let dict = Dictionary::default();
        let mut pending = Pending::default();
        encode_span(&span, 42, &dict, &mut pending, &mut out);
        assert_eq!(span_process_hash(&out).unwrap(), 42);
        let back =
            decode_span(TraceId(7), span.start_time, SpanId(9), &out, process, &dict).unwrap();
        assert_eq!(back, span);
        assert!(!pending.ids.is_empty());
    }

    #[test]
    fn tags_are_matched_on_the_encoded_span_as_on_the_decoded_one() {
        let process = Process {
            service_name: "svc".into(),
            tags: vec![KeyValue::string("pod", "a-1")],
        };
        let span = Span {
            trace_id: TraceId(1),
            span_id: SpanId(2),
            operation_name: "op".into(),
            references: vec![SpanRef {
                ref_type: RefType::ChildOf,
                trace_id: TraceId(1),
                span_id: SpanId(1),
            }],
            flags: 0,
            start_time: 100,
            duration: 5,
            tags: vec![
                KeyValue::string("http.status_code", "503"),
                KeyValue::new("error", Value::Bool(true)),
                KeyValue::new("retries", Value::I64(2)),
                KeyValue::string("guid", "x".repeat(300)),
            ],
            logs: vec![Log {
                timestamp: 101,
                fields: vec![KeyValue::string("event", "reset")],
            }],
            process: Arc::new(process.clone()),
            warnings: vec![],
        };
        let dict = Dictionary::default();
        let mut out = Vec::new();
        encode_span(&span, 1, &dict, &mut Pending::default(), &mut out);
        let check = |tags: &[(&str, &str)]| {
            let wanted: Vec<WantedTag> = tags
                .iter()
                .map(|(k, v)| WantedTag::new(k, v, &dict))
                .collect();
            span_has_tags(&out, &wanted, &process).unwrap()
        };
        assert!(check(&[("http.status_code", "503")]));
        assert!(check(&[("error", "true"), ("retries", "2")]));
        assert!(check(&[("event", "reset"), ("pod", "a-1")]));
        assert!(check(&[("guid", &"x".repeat(300))]));
        assert!(!check(&[("http.status_code", "200")]));
        assert!(!check(&[("error", "true"), ("pod", "a-2")]));
        assert!(!check(&[("never.seen", "x")]));
    }

    #[test]
    fn corrupt_values_are_errors_not_panics() {
        let mut out = Vec::new();
        encode_process(&Process::default(), &mut out);
        for cut in 0..out.len() {
            let _ = decode_process(&out[..cut]);
        }
        assert!(decode_process(&[0xff, 0xff, 0xff]).is_err());
        let dict = Dictionary::default();
        assert!(decode_span(TraceId(1), 0, SpanId(1), &[200], Arc::default(), &dict).is_err());
        assert!(decode_span(TraceId(1), 0, SpanId(1), &[6, 99], Arc::default(), &dict).is_err());
    }
}
