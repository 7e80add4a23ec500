//! Property tests: any trace the model can hold comes back unchanged through each wire format
//! it is written in — Jaeger UI JSON, OTLP protobuf and OTLP JSON — and no parser panics on
//! arbitrary bytes.

use meshtrace_model::jaeger_json::{JsonTrace, trace_from_json, trace_to_json};
use meshtrace_model::otlp::{spans_from_otlp, spans_from_otlp_owned, spans_to_otlp};
use meshtrace_model::strategy;
use meshtrace_model::zipkin::{ZipkinSpan, spans_from_zipkin};
use meshtrace_model::{Span, Trace};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use proptest::prelude::*;
use prost::Message;

/// Keys that Jaeger's OTLP translator turns into span or resource fields (or back): a tag with
/// one of these names is not expected to come back as the same tag.
const OTLP_RESERVED: &[&str] = &[
    "service.name",
    "span.kind",
    "otel.status_code",
    "otel.status_description",
    "error",
    "w3c.tracestate",
    "otel.scope.name",
    "otel.scope.version",
    "otel.library.name",
    "otel.library.version",
    "event",
    "opentracing.ref_type",
];

fn by_span_id(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by_key(|s| s.span_id);
    spans
}

fn otlp_request(trace: &Trace) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: spans_to_otlp(&trace.spans),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn jaeger_ui_json_round_trip(trace in strategy::trace(&[], 6)) {
        let text = serde_json::to_string(&trace_to_json(&trace)).unwrap();
        let json: JsonTrace = serde_json::from_str(&text).unwrap();
        let back = trace_from_json(&json).unwrap();
        prop_assert_eq!(by_span_id(back.spans), by_span_id(trace.spans));
    }

    #[test]
    fn otlp_protobuf_round_trip(trace in strategy::trace(OTLP_RESERVED, 6)) {
        let bytes = otlp_request(&trace).encode_to_vec();
        let decoded = ExportTraceServiceRequest::decode(bytes.as_slice()).unwrap();
        let converted = spans_from_otlp(&decoded.resource_spans);
        prop_assert!(converted.rejected.is_empty(), "{:?}", converted.rejected);
        prop_assert_eq!(by_span_id(converted.spans), by_span_id(trace.spans.clone()));
        // Ingest's conversion, which moves the strings out of the decoded batch.
        let owned = spans_from_otlp_owned(decoded.resource_spans);
        prop_assert!(owned.rejected.is_empty(), "{:?}", owned.rejected);
        prop_assert_eq!(by_span_id(owned.spans), by_span_id(trace.spans));
    }

    #[test]
    fn otlp_json_round_trip(trace in strategy::trace(OTLP_RESERVED, 4)) {
        let text = serde_json::to_string(&otlp_request(&trace)).unwrap();
        let decoded: ExportTraceServiceRequest = serde_json::from_str(&text).unwrap();
        let converted = spans_from_otlp(&decoded.resource_spans);
        prop_assert!(converted.rejected.is_empty(), "{:?}", converted.rejected);
        prop_assert_eq!(by_span_id(converted.spans), by_span_id(trace.spans));
    }

    #[test]
    fn no_parser_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(request) = ExportTraceServiceRequest::decode(bytes.as_slice()) {
            let borrowed = spans_from_otlp(&request.resource_spans);
            let owned = spans_from_otlp_owned(request.resource_spans);
            prop_assert_eq!(borrowed.spans, owned.spans);
            prop_assert_eq!(borrowed.rejected, owned.rejected);
        }
        if let Ok(request) = serde_json::from_slice::<ExportTraceServiceRequest>(&bytes) {
            let _ = spans_from_otlp(&request.resource_spans);
        }
        if let Ok(batch) = serde_json::from_slice::<Vec<ZipkinSpan>>(&bytes) {
            let _ = spans_from_zipkin(&batch);
        }
        if let Ok(json) = serde_json::from_slice::<JsonTrace>(&bytes) {
            let _ = trace_from_json(&json);
        }
    }
}
