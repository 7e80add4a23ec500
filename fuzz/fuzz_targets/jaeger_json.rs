//! Jaeger UI JSON traces, as the Jaeger HTTP client reads them from a backend (or a proxy in
//! front of it): decode, convert to the model, and encode again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meshtrace_model::jaeger_json::{JsonTrace, trace_from_json, trace_to_json};

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<JsonTrace>(data) else {
        return;
    };
    if let Ok(trace) = trace_from_json(&json) {
        let _ = serde_json::to_vec(&trace_to_json(&trace)).expect("Jaeger UI JSON serializes");
    }
});
