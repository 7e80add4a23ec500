//! Helpers for tests only (a dev-dependency, never a dependency): what more than one crate's
//! tests need and cannot share through a `tests/common` module, because those stay inside their
//! crate. Today that is a real Prometheus ([`prometheus`]), the reference both the PromQL
//! evaluator (meshtrace-metrics) and the Prometheus client (meshtrace-backend) are tested
//! against. Helpers panic with a message saying what is missing: a test that cannot reach its
//! reference must fail, never skip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

pub mod prometheus;
