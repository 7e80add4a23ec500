//! `jaeger.api_v2` spans ↔ meshtrace's model, and the time types of the Jaeger protos.

use std::sync::Arc;

use meshtrace_model::{
    IdError, KeyValue, Log, Process, RefType, Span, SpanId, SpanRef, TraceId, Value,
};

use crate::api_v2;

/// µs as the whole seconds and the nanoseconds past them that protobuf's Timestamp and
/// Duration both hold.
fn seconds_nanos(micros: u64) -> (i64, i32) {
    (
        (micros / 1_000_000) as i64,
        (micros % 1_000_000) as i32 * 1000,
    )
}

/// Protobuf's seconds and nanoseconds as µs (negative times clamp to 0).
fn micros(seconds: i64, nanos: i32) -> u64 {
    let total = seconds as i128 * 1_000_000 + nanos as i128 / 1000;
    total.clamp(0, u64::MAX as i128) as u64
}

/// Microseconds since the epoch as a protobuf Timestamp.
pub fn timestamp(micros: u64) -> prost_types::Timestamp {
    let (seconds, nanos) = seconds_nanos(micros);
    prost_types::Timestamp { seconds, nanos }
}

/// A protobuf Timestamp as microseconds since the epoch (negative times clamp to 0).
pub fn timestamp_micros(ts: &prost_types::Timestamp) -> u64 {
    micros(ts.seconds, ts.nanos)
}

pub fn duration(micros: u64) -> prost_types::Duration {
    let (seconds, nanos) = seconds_nanos(micros);
    prost_types::Duration { seconds, nanos }
}

pub fn duration_micros(d: &prost_types::Duration) -> u64 {
    micros(d.seconds, d.nanos)
}

pub fn span_to_proto(span: &Span) -> api_v2::Span {
    api_v2::Span {
        trace_id: span.trace_id.to_bytes().to_vec(),
        span_id: span.span_id.to_bytes().to_vec(),
        operation_name: span.operation_name.clone(),
        references: span
            .references
            .iter()
            .map(|r| api_v2::SpanRef {
                trace_id: r.trace_id.to_bytes().to_vec(),
                span_id: r.span_id.to_bytes().to_vec(),
                ref_type: match r.ref_type {
                    RefType::ChildOf => api_v2::SpanRefType::ChildOf,
                    RefType::FollowsFrom => api_v2::SpanRefType::FollowsFrom,
                } as i32,
            })
            .collect(),
        flags: span.flags,
        start_time: Some(timestamp(span.start_time)),
        duration: Some(duration(span.duration)),
        tags: span.tags.iter().map(kv_to_proto).collect(),
        logs: span
            .logs
            .iter()
            .map(|log| api_v2::Log {
                timestamp: Some(timestamp(log.timestamp)),
                fields: log.fields.iter().map(kv_to_proto).collect(),
            })
            .collect(),
        process: Some(api_v2::Process {
            service_name: span.process.service_name.clone(),
            tags: span.process.tags.iter().map(kv_to_proto).collect(),
        }),
        process_id: String::new(),
        warnings: span.warnings.clone(),
    }
}

pub fn kv_to_proto(kv: &KeyValue) -> api_v2::KeyValue {
    let mut out = api_v2::KeyValue {
        key: kv.key.clone(),
        ..Default::default()
    };
    match &kv.value {
        Value::Str(s) => {
            out.v_type = api_v2::ValueType::String as i32;
            out.v_str = s.clone();
        }
        Value::Bool(b) => {
            out.v_type = api_v2::ValueType::Bool as i32;
            out.v_bool = *b;
        }
        Value::I64(i) => {
            out.v_type = api_v2::ValueType::Int64 as i32;
            out.v_int64 = *i;
        }
        Value::F64(f) => {
            out.v_type = api_v2::ValueType::Float64 as i32;
            out.v_float64 = *f;
        }
        Value::Binary(b) => {
            out.v_type = api_v2::ValueType::Binary as i32;
            out.v_binary = b.clone();
        }
    }
    out
}

pub fn kv_from_proto(kv: &api_v2::KeyValue) -> KeyValue {
    let value = match api_v2::ValueType::try_from(kv.v_type).unwrap_or(api_v2::ValueType::String) {
        api_v2::ValueType::String => Value::Str(kv.v_str.clone()),
        api_v2::ValueType::Bool => Value::Bool(kv.v_bool),
        api_v2::ValueType::Int64 => Value::I64(kv.v_int64),
        api_v2::ValueType::Float64 => Value::F64(kv.v_float64),
        api_v2::ValueType::Binary => Value::Binary(kv.v_binary.clone()),
    };
    KeyValue {
        key: kv.key.clone(),
        value,
    }
}

/// A span from a Jaeger QueryService stream. Each span carries its process (Jaeger's handler
/// fills it in); a span without one gets an empty process.
pub fn span_from_proto(span: &api_v2::Span) -> Result<Span, IdError> {
    let trace_id = TraceId::from_bytes(&span.trace_id)?;
    let references = span
        .references
        .iter()
        .map(|r| {
            Ok(SpanRef {
                ref_type: if r.ref_type == api_v2::SpanRefType::FollowsFrom as i32 {
                    RefType::FollowsFrom
                } else {
                    RefType::ChildOf
                },
                trace_id: TraceId::from_bytes(&r.trace_id)?,
                span_id: SpanId::from_bytes(&r.span_id)?,
            })
        })
        .collect::<Result<_, IdError>>()?;
    let process = span
        .process
        .as_ref()
        .map_or_else(Process::default, |p| Process {
            service_name: p.service_name.clone(),
            tags: p.tags.iter().map(kv_from_proto).collect(),
        });
    Ok(Span {
        trace_id,
        span_id: SpanId::from_bytes(&span.span_id)?,
        operation_name: span.operation_name.clone(),
        references,
        flags: span.flags,
        start_time: span.start_time.as_ref().map_or(0, timestamp_micros),
        duration: span.duration.as_ref().map_or(0, duration_micros),
        tags: span.tags.iter().map(kv_from_proto).collect(),
        logs: span
            .logs
            .iter()
            .map(|log| Log {
                timestamp: log.timestamp.as_ref().map_or(0, timestamp_micros),
                fields: log.fields.iter().map(kv_from_proto).collect(),
            })
            .collect(),
        process: Arc::new(process),
        warnings: span.warnings.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_convert_both_ways() {
        let ts = timestamp(1_706_678_909_209_712);
        assert_eq!((ts.seconds, ts.nanos), (1_706_678_909, 209_712_000));
        assert_eq!(timestamp_micros(&ts), 1_706_678_909_209_712);
        assert_eq!(duration_micros(&duration(123)), 123);
        assert_eq!(
            timestamp_micros(&prost_types::Timestamp {
                seconds: -5,
                nanos: 0
            }),
            0
        );
    }
}
