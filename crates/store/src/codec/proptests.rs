//! Property tests of the stored form: any span round-trips through encode ↔ decode, with a
//! roomy dictionary or one so small that most strings are inline; and no byte string, however
//! damaged, makes a decoder panic.

use std::sync::Arc;

use meshtrace_model::{KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value};
use proptest::prelude::*;

use super::*;
use crate::dict::{Dictionary, Pending};

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        ".{0,300}".prop_map(Value::Str),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::I64),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
            .prop_map(Value::F64),
        proptest::collection::vec(any::<u8>(), 0..20).prop_map(Value::Binary),
    ]
}

fn tags() -> impl Strategy<Value = Vec<KeyValue>> {
    proptest::collection::vec(
        ("[a-z.\\x00]{0,12}|.{0,300}", value()).prop_map(|(key, value)| KeyValue { key, value }),
        0..8,
    )
}

fn span() -> impl Strategy<Value = Span> {
    let references = proptest::collection::vec(
        (any::<bool>(), any::<bool>(), any::<u128>(), any::<u64>()),
        0..3,
    );
    let logs = proptest::collection::vec((any::<u64>(), tags()), 0..3);
    (
        (any::<u128>(), any::<u64>(), ".{0,40}", any::<u32>()),
        (any::<u64>(), any::<u64>(), references, tags()),
        (logs, proptest::collection::vec(".{0,20}", 0..2)),
    )
        .prop_map(
            |((trace, id, name, flags), (start, duration, references, tags), (logs, warnings))| {
                Span {
                    trace_id: TraceId(trace),
                    span_id: SpanId(id),
                    operation_name: name,
                    references: references
                        .into_iter()
                        .map(|(follows, same, t, s)| SpanRef {
                            ref_type: if follows {
                                RefType::FollowsFrom
                            } else {
                                RefType::ChildOf
                            },
                            trace_id: if same { TraceId(trace) } else { TraceId(t) },
                            span_id: SpanId(s),
                        })
                        .collect(),
                    flags,
                    start_time: start,
                    duration,
                    tags,
                    logs: logs
                        .into_iter()
                        .map(|(timestamp, fields)| Log { timestamp, fields })
                        .collect(),
                    process: Arc::new(Process::default()),
                    warnings,
                }
            },
        )
}

/// Spans whose operation and tags come from small pools, so that one position sees the same
/// key and value again, the same value under another key, and strings too long to intern.
fn repeating_spans() -> impl Strategy<Value = Vec<Span>> {
    let long = "l".repeat(300);
    let tag = (0..3usize, 0..4usize).prop_map(move |(k, v)| KeyValue {
        key: ["a", "b", "c"][k].to_string(),
        value: Value::Str(["x", "y", "a", long.as_str()][v].to_string()),
    });
    let one = (span(), 0..3usize, proptest::collection::vec(tag, 0..6)).prop_map(
        |(mut span, name, tags)| {
            span.operation_name = ["get", "put", "x"][name].to_string();
            span.tags = tags;
            span
        },
    );
    proptest::collection::vec(one, 1..8)
}

proptest! {
    /// A batch encoded through one interner (as `Store::write` does) reads back whole from a
    /// dictionary holding only the entries the batch says it must write: every ID it used is
    /// one of them (or was already on disk), and names the string it stood for.
    #[test]
    fn a_batch_through_one_interner_reads_back_from_what_it_writes(
        spans in repeating_spans(),
        max_entries in 0u32..8,
    ) {
        let dict = Dictionary::new(max_entries);
        let mut pending = Pending::default();
        let mut strings = dict.interner(&mut pending);
        let mut encoded = Vec::new();
        for span in &spans {
            let mut value = Vec::new();
            encode_span(span, 1, &mut strings, &mut value);
            let mut summary = Vec::new();
            encode_summary(span, &mut strings, &mut summary);
            strings.release();
            encoded.push((value, summary));
        }
        drop(strings);
        let written = dict
            .entries_to_write(&pending)
            .into_iter()
            .map(|(id, text)| (id, text.to_string()))
            .collect();
        let reopened = Dictionary::from_entries(written, 0, max_entries);
        for (span, (value, summary)) in spans.iter().zip(&encoded) {
            let (back, lost) = decode_span(
                span.trace_id, span.start_time, span.span_id, value, span.process.clone(), &reopened,
            )
            .unwrap();
            prop_assert_eq!(lost, 0);
            prop_assert_eq!(&back, span);
            let summary = decode_summary(summary).unwrap();
            let id = operation_id(&reopened, &span.operation_name);
            prop_assert!(summary.operation_is(&span.operation_name, id));
        }
    }

    #[test]
    fn spans_round_trip(span in span(), max_entries in 0u32..64, hash in any::<u64>()) {
        let dict = Dictionary::new(max_entries);
        let mut out = Vec::new();
        encode_span(&span, hash, &mut dict.interner(&mut Pending::default()), &mut out);
        prop_assert_eq!(span_process_hash(&out).unwrap(), hash);
        let (back, lost) =
            decode_span(span.trace_id, span.start_time, span.span_id, &out, span.process.clone(), &dict)
                .unwrap();
        prop_assert_eq!(lost, 0);
        prop_assert_eq!(back, span);
    }

    #[test]
    fn processes_round_trip(name in ".{0,40}", tags in tags()) {
        let process = Process { service_name: name, tags };
        let mut out = Vec::new();
        encode_process(&process, &mut out);
        prop_assert_eq!(decode_process(&out).unwrap(), process);
    }

    #[test]
    fn no_bytes_make_a_decoder_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let dict = Dictionary::new(4);
        let mut pending = Pending::default();
        for key in ["a", "b", "c"] {
            dict.key_id(key, &mut pending);
        }
        let _ = decode_span(TraceId(1), u64::MAX, SpanId(1), &bytes, Arc::default(), &dict);
        let _ = decode_process(&bytes);
        let _ = decode_summary(&bytes);
        let _ = span_process_hash(&bytes);
        let wanted = [WantedTag::new("a", "x", &dict), WantedTag::new("zz", "1", &dict)];
        let _ = span_has_tags(&bytes, &wanted, &Process::default());
    }

    #[test]
    fn damaged_spans_are_errors_or_placeholders(span in span(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        let dict = Dictionary::new(16);
        let mut out = Vec::new();
        encode_span(&span, 7, &mut dict.interner(&mut Pending::default()), &mut out);
        let at = cut.index(out.len());
        out[at] ^= flip;
        let _ = decode_span(span.trace_id, span.start_time, span.span_id, &out, Arc::default(), &dict);
        let _ = decode_span(span.trace_id, span.start_time, span.span_id, &out[..at], Arc::default(), &dict);
    }
}
