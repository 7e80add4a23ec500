//! The stored form of spans and processes: a compact binary layout with varints, written and read
//! by hand so that what lands on disk is exactly what we chose (and small: most of a span's bytes
//! are its tags, which compress well in the engine's blocks).
//!
//! A span's trace ID, start time and span ID live in its key, and its process is stored once per
//! distinct process and referenced by a 64-bit hash, so a value holds only the rest.
//!
//! Decoding never trusts the bytes (they may be damaged on disk): it returns an error, or a
//! placeholder for a dictionary entry that is missing, never panics.

#[cfg(test)]
mod proptests;
pub(crate) mod reader;
mod search;
mod span_group;
mod summary;

use std::sync::Arc;

use meshtrace_model::{KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};

use crate::dict::{Dictionary, Interner, UNREMEMBERED_SLOT};
use reader::{
    Reader, put_dict_key, put_dict_str, put_kvs, put_str, put_value, put_varint, unzigzag, zigzag,
};
pub use search::{WantedTag, span_has_tags};
pub use span_group::{SpanGroup, group_members, group_without};
pub use summary::{INDEXED_TAG_KEYS, decode_summary, encode_summary};

/// The pseudo tag key under which operation names are interned.
pub(crate) const OPERATION_KEY: &str = "\u{0}operation";

#[derive(Debug, thiserror::Error)]
#[error("stored data is corrupt: {0}")]
pub struct CorruptError(pub &'static str);

/// Marks a reference whose trace is the span's own.
const SAME_TRACE: u8 = 0x80;

/// The fields of a span that are not in its key, with its process by reference.
pub fn encode_span<'s>(
    span: &'s Span,
    process_hash: u64,
    strings: &mut Interner<'_, 's>,
    out: &mut Vec<u8>,
) {
    put_operation(out, &span.operation_name, strings);
    put_varint(out, u64::from(span.flags));
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
    put_dict_kvs(out, &span.tags, strings, OPERATION_SLOT.saturating_add(1));
    put_varint(out, span.logs.len() as u64);
    for log in &span.logs {
        // Log times are close to the span's start: store the difference (zigzag: it may be < 0;
        // wrapping: any two times round-trip, however far apart).
        put_varint(
            out,
            zigzag((log.timestamp as i64).wrapping_sub(span.start_time as i64)),
        );
        put_dict_kvs(out, &log.fields, strings, UNREMEMBERED_SLOT);
    }
    put_varint(out, span.warnings.len() as u64);
    for w in &span.warnings {
        put_str(out, w);
    }
    out.extend_from_slice(&process_hash.to_le_bytes());
}

/// The process hash a stored span refers to (its last 8 bytes).
pub fn span_process_hash(value: &[u8]) -> Result<u64, CorruptError> {
    let (_, tail) = value
        .split_last_chunk::<8>()
        .ok_or(CorruptError("span value too short"))?;
    Ok(u64::from_le_bytes(*tail))
}

/// A decoded span, and how many of its dictionary IDs had no entry (they read as
/// placeholders, and the span carries a warning saying so).
pub fn decode_span(
    trace_id: TraceId,
    start_time: u64,
    span_id: SpanId,
    value: &[u8],
    process: Arc<Process>,
    dict: &Dictionary,
) -> Result<(Span, u32), CorruptError> {
    let mut r = Reader::new(value);
    let operation_name = r.dict_string(dict)?;
    let flags = r.varint32()?;
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
        let timestamp = (start_time as i64).wrapping_add(delta) as u64;
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
    let lost = r.lost_entries;
    if lost > 0 {
        warnings.push(format!(
            "meshtrace: {lost} string(s) of this span were lost from the store's dictionary (damaged journal?) and read as placeholders"
        ));
    }
    let span = Span {
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
    };
    Ok((span, lost))
}

pub fn encode_process(process: &Process, out: &mut Vec<u8>) {
    put_str(out, &process.service_name);
    put_kvs(out, &process.tags);
}

pub fn decode_process(value: &[u8]) -> Result<Process, CorruptError> {
    let mut r = Reader::new(value);
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
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The dictionary ID of an operation name, if it has one (never adds one).
pub fn operation_id(dict: &Dictionary, name: &str) -> Option<u32> {
    dict.lookup(name)
}

/// The tag position of the operation name in an [`Interner`]; a span's tags follow it.
const OPERATION_SLOT: usize = 0;

/// The operation name, as a dictionary ID when it has one.
fn put_operation<'s>(out: &mut Vec<u8>, name: &'s str, strings: &mut Interner<'_, 's>) {
    let op_key = strings.key_id_at(OPERATION_SLOT, OPERATION_KEY);
    put_dict_str(out, strings.value_id_at(OPERATION_SLOT, op_key, name), name);
}

/// Tags with their keys, and the values worth it, as dictionary IDs; the tag at index `i` is
/// looked up at tag position `first_slot + i` of `strings` (a span's own tags are remembered
/// from one span to the next, its logs' fields are not: [`UNREMEMBERED_SLOT`]).
fn put_dict_kvs<'s>(
    out: &mut Vec<u8>,
    kvs: &'s [KeyValue],
    strings: &mut Interner<'_, 's>,
    first_slot: usize,
) {
    put_varint(out, kvs.len() as u64);
    for (i, kv) in kvs.iter().enumerate() {
        let slot = first_slot.saturating_add(i);
        let key = strings.key_id_at(slot, &kv.key);
        put_dict_key(out, key, &kv.key);
        match &kv.value {
            Value::Str(s) => put_dict_str(out, strings.value_id_at(slot, key, s), s),
            other => put_value(out, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dict::Pending;

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
        encode_span(&span, 42, &mut dict.interner(&mut pending), &mut out);
        assert_eq!(span_process_hash(&out).unwrap(), 42);
        let (back, lost) = decode_span(
            TraceId(7),
            span.start_time,
            SpanId(9),
            &out,
            process.clone(),
            &dict,
        )
        .unwrap();
        assert_eq!((back, lost), (span.clone(), 0));
        assert!(!pending.ids.is_empty());

        // With a full dictionary every key and value is inline, and reads back the same.
        let full = Dictionary::new(0);
        let mut inline = Vec::new();
        encode_span(
            &span,
            42,
            &mut full.interner(&mut Pending::default()),
            &mut inline,
        );
        let (back, _) = decode_span(
            TraceId(7),
            span.start_time,
            SpanId(9),
            &inline,
            process.clone(),
            &full,
        )
        .unwrap();
        assert_eq!(back, span);

        // Entries lost from the dictionary read as placeholders, with a warning.
        let empty = Dictionary::default();
        let (back, lost) = decode_span(
            TraceId(7),
            span.start_time,
            SpanId(9),
            &out,
            process,
            &empty,
        )
        .unwrap();
        assert_eq!(lost, 9);
        assert_eq!(back.tags[0].key, "<lost dictionary entry 2>");
        assert!(
            back.warnings
                .last()
                .unwrap()
                .contains("lost from the store's dictionary")
        );
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
        for max_entries in [100, 3] {
            check_tags(&span, &process, &Dictionary::new(max_entries));
        }
    }

    /// With a roomy dictionary, and with one so small that most keys are inline.
    fn check_tags(span: &Span, process: &Process, dict: &Dictionary) {
        let mut out = Vec::new();
        encode_span(
            span,
            1,
            &mut dict.interner(&mut Pending::default()),
            &mut out,
        );
        let check = |tags: &[(&str, &str)]| {
            let wanted: Vec<WantedTag> = tags
                .iter()
                .map(|(k, v)| WantedTag::new(k, v, dict))
                .collect();
            span_has_tags(&out, &wanted, process).unwrap()
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
