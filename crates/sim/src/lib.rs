//! The mesh traffic simulator: a Bookinfo-like mesh whose proxies report Istio-shaped spans to
//! a trace store, over OTLP or Zipkin, the way a real mesh would.

// No unwrap or expect outside tests (clippy.toml allows them there): every one left says why.
#![warn(clippy::unwrap_used, clippy::expect_used)]

pub mod export;
pub mod generate;
pub mod metrics;
pub mod report;
pub mod rng;
pub mod run;
pub mod spread;
pub mod topology;

pub use generate::{Generator, Options, Request};
pub use topology::{Mesh, Topology};
