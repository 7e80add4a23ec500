//! The field numbers and wire types of our .proto files, checked against a protobuf encoding
//! computed by hand from Jaeger's definitions (not from our own generated code).

use meshtrace_proto::api_v2::{
    KeyValue, Log, Process, Span, SpanRef, SpanRefType, TraceQueryParameters, ValueType,
};
use prost::Message;

#[test]
fn a_span_encodes_byte_for_byte_as_jaegers() {
    let trace_id: Vec<u8> = (1..=16).collect();
    let span_id: Vec<u8> = (21..=28).collect();
    let span = Span {
        trace_id: trace_id.clone(),
        span_id: span_id.clone(),
        operation_name: "op".into(),
        references: vec![SpanRef {
            trace_id: trace_id.clone(),
            span_id: span_id.clone(),
            ref_type: SpanRefType::FollowsFrom as i32,
        }],
        flags: 1,
        start_time: Some(prost_types::Timestamp {
            seconds: 1,
            nanos: 2,
        }),
        duration: Some(prost_types::Duration {
            seconds: 0,
            nanos: 3000,
        }),
        tags: vec![KeyValue {
            key: "k".into(),
            v_type: ValueType::String as i32,
            v_str: "v".into(),
            ..Default::default()
        }],
        logs: vec![Log {
            timestamp: Some(prost_types::Timestamp {
                seconds: 5,
                nanos: 0,
            }),
            fields: vec![KeyValue {
                key: "e".into(),
                v_type: ValueType::Bool as i32,
                v_bool: true,
                ..Default::default()
            }],
        }],
        process: Some(Process {
            service_name: "svc".into(),
            tags: vec![],
        }),
        process_id: "p1".into(),
        warnings: vec!["w".into()],
    };

    let mut expected: Vec<u8> = Vec::new();
    // 1: trace_id, bytes (wire type 2): tag 0x0a, length 16.
    expected.extend([0x0a, 16]);
    expected.extend(&trace_id);
    // 2: span_id, bytes: tag 0x12, length 8.
    expected.extend([0x12, 8]);
    expected.extend(&span_id);
    // 3: operation_name, string: tag 0x1a.
    expected.extend([0x1a, 2, b'o', b'p']);
    // 4: references, SpanRef {1: trace_id, 2: span_id, 3: ref_type = 1 (varint)}: 30 bytes.
    expected.extend([0x22, 30, 0x0a, 16]);
    expected.extend(&trace_id);
    expected.extend([0x12, 8]);
    expected.extend(&span_id);
    expected.extend([0x18, 0x01]);
    // 5: flags, uint32 varint: tag 0x28.
    expected.extend([0x28, 0x01]);
    // 6: start_time, Timestamp {1: seconds = 1, 2: nanos = 2}.
    expected.extend([0x32, 4, 0x08, 0x01, 0x10, 0x02]);
    // 7: duration, Duration {2: nanos = 3000 = varint b8 17}.
    expected.extend([0x3a, 3, 0x10, 0xb8, 0x17]);
    // 8: tags, KeyValue {1: key "k", 2: v_type 0 (default, omitted), 3: v_str "v"}.
    expected.extend([0x42, 6, 0x0a, 1, b'k', 0x1a, 1, b'v']);
    // 9: logs, Log {1: timestamp {1: seconds = 5}, 2: fields KeyValue {1: "e", 2: BOOL = 1, 4: v_bool = 1}}.
    expected.extend([
        0x4a, 13, 0x0a, 2, 0x08, 0x05, 0x12, 7, 0x0a, 1, b'e', 0x10, 0x01, 0x20, 0x01,
    ]);
    // 10: process, Process {1: service_name "svc"}.
    expected.extend([0x52, 5, 0x0a, 3, b's', b'v', b'c']);
    // 11: process_id, string.
    expected.extend([0x5a, 2, b'p', b'1']);
    // 12: warnings, repeated string.
    expected.extend([0x62, 1, b'w']);

    assert_eq!(span.encode_to_vec(), expected);
    assert_eq!(Span::decode(&expected[..]).unwrap(), span);
}

#[test]
fn query_parameters_encode_as_jaegers() {
    let query = TraceQueryParameters {
        service_name: "a".into(),
        operation_name: "b".into(),
        search_depth: 20,
        raw_traces: true,
        duration_min: Some(prost_types::Duration {
            seconds: 1,
            nanos: 0,
        }),
        ..Default::default()
    };
    // 1: service_name, 2: operation_name, 6: duration_min {1: seconds = 1}, 8: search_depth
    // (int32 varint, tag 0x40), 9: raw_traces (bool varint, tag 0x48).
    let expected = [
        0x0a, 1, b'a', 0x12, 1, b'b', 0x32, 2, 0x08, 0x01, 0x40, 20, 0x48, 0x01,
    ];
    assert_eq!(query.encode_to_vec(), expected);
}

#[test]
fn api_v3_trace_summaries_use_fixed64_times() {
    use meshtrace_proto::api_v3::TraceSummary;
    let summary = TraceSummary {
        trace_id: "ab".into(),
        min_start_time_unix_nano: 1,
        span_count: 3,
        ..Default::default()
    };
    // 1: trace_id string; 4: fixed64 (wire type 1, tag 0x21) little-endian; 6: span_count (0x30).
    let expected = [0x0a, 2, b'a', b'b', 0x21, 1, 0, 0, 0, 0, 0, 0, 0, 0x30, 3];
    assert_eq!(summary.encode_to_vec(), expected);
}
