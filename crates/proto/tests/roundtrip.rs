//! Property tests: any span of the model comes back unchanged through `jaeger.api_v2` (what the
//! store's gRPC query API sends and the Jaeger gRPC client reads), on the wire as bytes; and the
//! reader never panics on arbitrary bytes.

use meshtrace_model::strategy;
use meshtrace_proto::api_v2;
use meshtrace_proto::convert::{span_from_proto, span_to_proto};
use proptest::prelude::*;
use prost::Message;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn api_v2_round_trip(trace in strategy::trace(&[], 6)) {
        for span in &trace.spans {
            let bytes = span_to_proto(span).encode_to_vec();
            let decoded = api_v2::Span::decode(bytes.as_slice()).unwrap();
            prop_assert_eq!(&span_from_proto(&decoded).unwrap(), span);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(span) = api_v2::Span::decode(bytes.as_slice()) {
            let _ = span_from_proto(&span);
        }
    }
}
