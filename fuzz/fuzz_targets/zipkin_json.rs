//! Zipkin v2 JSON batches, as the Zipkin port receives them, through the model and back out as
//! Jaeger UI JSON and Zipkin JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtrace_model::group_by_trace;
use meshtrace_model::jaeger_json::trace_to_json;
use meshtrace_model::zipkin::{ZipkinSpan, spans_from_zipkin, spans_to_zipkin};

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = serde_json::from_slice::<Vec<ZipkinSpan>>(data) else {
        return;
    };
    let (spans, _rejected) = spans_from_zipkin(&batch);
    for span in &spans {
        // Times are bounded where spans enter the model: an end time always exists, and in
        // nanoseconds (as OTLP and api_v3 write it) too.
        let end = span.start_time.checked_add(span.duration).expect("end time overflows");
        assert!(end.checked_mul(1000).is_some(), "end time overflows in nanoseconds");
    }
    let _ = spans_to_zipkin(&spans);
    for trace in group_by_trace(spans) {
        let _ = serde_json::to_vec(&trace_to_json(&trace)).expect("Jaeger UI JSON serializes");
    }
});
