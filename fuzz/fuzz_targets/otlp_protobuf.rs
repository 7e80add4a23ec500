//! OTLP/protobuf bytes, as the OTLP/gRPC and OTLP/HTTP ports receive them, through the model and
//! back out as Jaeger UI JSON and OTLP: nothing may panic, and what the model accepted must
//! survive the trip to OTLP and back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtrace_model::jaeger_json::trace_to_json;
use meshtrace_model::otlp::{spans_from_otlp, spans_to_otlp};
use meshtrace_model::group_by_trace;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = ExportTraceServiceRequest::decode(data) else {
        return;
    };
    let converted = spans_from_otlp(&request.resource_spans);
    let again = spans_from_otlp(&spans_to_otlp(&converted.spans));
    assert!(again.rejected.is_empty(), "a span the model accepted was refused after a round trip");
    assert_eq!(again.spans.len(), converted.spans.len());
    for trace in group_by_trace(converted.spans) {
        let json = trace_to_json(&trace);
        let _ = serde_json::to_vec(&json).expect("Jaeger UI JSON serializes");
    }
});
