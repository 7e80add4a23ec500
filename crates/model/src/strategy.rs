//! proptest strategies that generate arbitrary traces, for the property tests of every crate
//! that converts or stores them (feature `proptest`).
//!
//! The text they generate is hostile on purpose: empty strings, `"0"`, NUL and other control
//! characters, separators used by key encodings, non-ASCII and long runs. Times stay within what
//! every wire format can carry (OTLP's unsigned nanoseconds end in July 2554; durations here
//! stay below a day), since times outside it are refused where spans enter the model.

// Test support, fed only by proptest's own generators: nothing from outside reaches it.
#![allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]

use std::sync::Arc;

use proptest::collection::vec;
use proptest::prelude::*;

use crate::ids::{SpanId, TraceId};
use crate::span::{KeyValue, Log, Process, RefType, Span, SpanRef, Trace, Value};

/// The last start time generated: a day before OTLP's nanoseconds run out (u64::MAX ns).
pub const MAX_START_MICROS: u64 = u64::MAX / 1000 - 86_400_000_000;

/// Text of every awkward kind, up to 24 characters.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("0".to_string()),
        Just("false".to_string()),
        "[a-z][a-z0-9._-]{0,15}",
        "[\\x00-\\x1f\\\\\"{}|/=&%]{1,8}",
        any::<String>().prop_map(|s| s.chars().take(24).collect()),
    ]
}

/// A tag value of every type, falsy values (`false`, `0`, `0.0`, `""`) included.
pub fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::Str),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![Just(0i64), any::<i64>()].prop_map(Value::I64),
        prop_oneof![Just(0.0f64), -1e300f64..1e300].prop_map(Value::F64),
        vec(any::<u8>(), 0..12).prop_map(Value::Binary),
    ]
}

/// A key that is none of `reserved` (keys a conversion gives a meaning of its own).
pub fn key(reserved: &'static [&'static str]) -> impl Strategy<Value = String> {
    text().prop_filter("a reserved key", move |k| !reserved.contains(&k.as_str()))
}

pub fn key_values(
    reserved: &'static [&'static str],
    max: usize,
) -> impl Strategy<Value = Vec<KeyValue>> {
    vec(
        (key(reserved), value()).prop_map(|(key, value)| KeyValue { key, value }),
        0..=max,
    )
}

pub fn process(reserved: &'static [&'static str]) -> impl Strategy<Value = Process> {
    (text(), key_values(reserved, 4))
        .prop_map(|(service_name, tags)| Process { service_name, tags })
}

/// A trace of 1 to `max_spans` spans with distinct span IDs; every span after the first refers
/// to an earlier one (CHILD_OF first, as a parent), and the spans share at most two processes.
pub fn trace(reserved: &'static [&'static str], max_spans: usize) -> impl Strategy<Value = Trace> {
    let span_parts = (
        text(),
        0..=MAX_START_MICROS,
        0u64..86_400_000_000,
        key_values(reserved, 5),
        vec((0u64..86_400_000_000, key_values(reserved, 3)), 0..3),
        any::<bool>(),
        prop_oneof![Just(RefType::ChildOf), Just(RefType::FollowsFrom)],
        any::<prop::sample::Index>(),
    );
    (
        1u128..,
        vec(span_parts, 1..=max_spans),
        vec(process(reserved), 1..=2),
    )
        .prop_map(|(trace_id, parts, processes)| {
            let trace_id = TraceId(trace_id);
            let processes: Vec<Arc<Process>> = processes.into_iter().map(Arc::new).collect();
            let mut spans: Vec<Span> = Vec::with_capacity(parts.len());
            for (i, (name, start, duration, tags, logs, second_process, ref_type, parent)) in
                parts.into_iter().enumerate()
            {
                let span_id = SpanId(i as u64 + 1);
                let references = if spans.is_empty() {
                    Vec::new()
                } else {
                    vec![SpanRef {
                        ref_type,
                        trace_id,
                        span_id: spans[parent.index(spans.len())].span_id,
                    }]
                };
                let process = if second_process {
                    processes[processes.len() - 1].clone()
                } else {
                    processes[0].clone()
                };
                let logs = logs
                    .into_iter()
                    .map(|(offset, fields)| Log {
                        timestamp: start.saturating_add(offset).min(MAX_START_MICROS),
                        fields,
                    })
                    .collect();
                spans.push(Span {
                    trace_id,
                    span_id,
                    operation_name: name,
                    references,
                    flags: 1,
                    start_time: start,
                    duration,
                    tags,
                    logs,
                    process,
                    warnings: Vec::new(),
                });
            }
            Trace {
                spans,
                warnings: Vec::new(),
            }
        })
}
