//! Jaeger's gRPC query APIs, generated at build time from the .proto files in `protos/`
//! (written for this project, wire-compatible with Jaeger's): `jaeger.api_v2` (model and
//! QueryService, what Kiali calls) and `jaeger.api_v3` (QueryService with OTLP traces), and the
//! conversions between `jaeger.api_v2` spans and meshtrace's model.

// No unwrap or expect outside tests (clippy.toml allows them there): every one left says why.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod convert;

#[allow(clippy::all, clippy::pedantic)]
pub mod api_v2 {
    tonic::include_proto!("jaeger.api_v2");
}

#[allow(clippy::all, clippy::pedantic)]
pub mod api_v3 {
    tonic::include_proto!("jaeger.api_v3");
}
