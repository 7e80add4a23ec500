//! The console's way to the tracing backend behind `internal_url`: one trait, and a client per
//! protocol — Jaeger's HTTP API (`use_grpc: false`), Jaeger's gRPC `api_v2` QueryService
//! (`use_grpc: true`) and Tempo's HTTP API — built from the effective configuration, with its auth, headers and
//! timeout. Every error names the backend (its URL with any password hidden) and says what went
//! wrong; a result that is not complete says so in `partial`.
//!
//! [`prometheus`] is the client of the other external service the console reads, Prometheus
//! (`external_services.prometheus`), built from the same auth, TLS and redaction parts.

// Every module reads answers from servers outside (tracing backends, Prometheus): no unwrap
// or expect, no indexing that can panic and no unchecked arithmetic, crate-wide. clippy.toml
// allows unwrap, expect and indexing in tests; test modules allow arithmetic themselves. Every
// other `#[allow]` says why.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod auth;
pub mod diagnose;
mod error;
mod http;
pub mod jaeger_grpc;
pub mod jaeger_http;
pub mod prometheus;
mod redact;
mod tempo;
mod tls;
mod traceql;

use std::collections::BTreeMap;
use std::path::PathBuf;

use meshtrace_config::{Provider, TracingConfig};
use meshtrace_model::{Trace, TraceId};

pub use error::BackendError;
pub use jaeger_grpc::JaegerGrpc;
pub use jaeger_http::JaegerHttp;
pub use tempo::TempoHttp;
pub use traceql::traceql;

/// A trace search, as the console asks it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TraceQuery {
    /// The backend's service name (`<app>.<namespace>` with `namespace_selector`).
    pub service: String,
    /// Tags every matching trace has on one span (`query_scope` included).
    pub tags: BTreeMap<String, String>,
    /// Microseconds since the epoch.
    pub start: u64,
    pub end: u64,
    /// Microseconds.
    pub min_duration: Option<u64>,
    pub limit: usize,
}

/// Traces found, and why the list may be incomplete.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Found {
    pub traces: Vec<Trace>,
    /// Set when the result is known or likely to be incomplete: the deadline was hit while
    /// traces were streaming in, or as many traces as the limit came back.
    pub partial: Option<String>,
}

#[async_trait::async_trait]
pub trait TracingBackend: Send + Sync {
    /// What the backend is, for messages: `Jaeger gRPC at http://tracing:16685`.
    fn describe(&self) -> String;
    async fn find_traces(&self, query: &TraceQuery) -> Result<Found, BackendError>;
    /// `None` when the backend does not know the trace.
    async fn get_trace(&self, id: TraceId) -> Result<Option<Trace>, BackendError>;
    async fn services(&self) -> Result<Vec<String>, BackendError>;
    /// `Ok` when the backend answers as it should.
    async fn status(&self) -> Result<(), BackendError>;
    /// The backend's version, when it can tell (best effort, never fails).
    async fn version(&self) -> Option<String>;
}

/// `internal_url`, parsed: http, or https with the TLS settings of `auth`.
pub(crate) fn backend_url(config: &TracingConfig) -> Result<url::Url, BackendError> {
    let url = url::Url::parse(&config.internal_url)
        .map_err(|e| BackendError::Config(format!("internal_url is not a valid URL: {e}")))?;
    match url.scheme() {
        "http" | "https" => Ok(url),
        other => Err(BackendError::Config(format!(
            "internal_url must be http or https, not `{other}`"
        ))),
    }
}

/// The `partial` reason when as many traces came back as the limit allowed.
pub(crate) fn limit_reached(found: usize, limit: usize) -> Option<String> {
    (limit > 0 && found >= limit)
        .then(|| format!("the limit of {limit} traces was reached: there may be more"))
}

/// Settings that are not in Kiali's configuration.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where `use_kiali_token` reads the bearer token (a pod's service-account token).
    pub service_account_token: PathBuf,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            service_account_token: PathBuf::from(meshtrace_config::SERVICE_ACCOUNT_TOKEN),
        }
    }
}

/// The client the configuration asks for.
pub fn connect(
    config: &TracingConfig,
    options: &Options,
) -> Result<Box<dyn TracingBackend>, BackendError> {
    if config.internal_url.is_empty() {
        return Err(BackendError::Config(
            "internal_url is empty: there is no backend to query (external links only)".to_string(),
        ));
    }
    match (config.provider, config.use_grpc) {
        (Provider::Jaeger, true) => Ok(Box::new(JaegerGrpc::new(config, options)?)),
        (Provider::Jaeger, false) => Ok(Box::new(JaegerHttp::new(config, options)?)),
        // Tempo's gRPC streaming search (`use_grpc: true`, `grpc_port`) is not there yet: the
        // HTTP search answers the same queries.
        (Provider::Tempo, _) => Ok(Box::new(TempoHttp::new(config, options)?)),
    }
}
