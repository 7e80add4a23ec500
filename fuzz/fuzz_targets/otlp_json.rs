//! OTLP/JSON bodies, as the OTLP/HTTP port receives them with `Content-Type: application/json`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtrace_model::group_by_trace;
use meshtrace_model::jaeger_json::trace_to_json;
use meshtrace_model::otlp::spans_from_otlp;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<ExportTraceServiceRequest>(data) else {
        return;
    };
    let converted = spans_from_otlp(&request.resource_spans);
    for trace in group_by_trace(converted.spans) {
        let _ = serde_json::to_vec(&trace_to_json(&trace)).expect("Jaeger UI JSON serializes");
    }
});
