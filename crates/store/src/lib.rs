//! meshtrace's embedded trace store: what Jaeger's all-in-one is to Jaeger. Producers send OTLP
//! (gRPC or HTTP) or Zipkin v2 JSON; readers use the Jaeger query API. One engine answers every
//! surface, so a query means the same thing everywhere.

// Every module handles bytes from outside (ingest, queries, the files on disk): no unwrap or
// expect, no indexing that can panic and no unchecked arithmetic, crate-wide. clippy.toml allows
// unwrap, expect and indexing in tests; test modules allow arithmetic themselves. Every other
// `#[allow]` says why.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod api_v1;
pub(crate) mod api_v3;
mod archive;
pub mod check;
mod codec;
mod damage;
pub mod derive;
mod dict;
mod engine;
mod error;
mod group;
mod grpc_query;
pub mod ingest;
pub mod jaeger_ui;
mod keys;
mod kv;
mod layout;
mod metrics;
mod monitor;
mod protojson;
mod query;
pub mod raw_codec;
mod request;
pub mod server;
mod stats;
mod transform;

pub use damage::DamageKind;
pub use derive::MetricsOptions;
pub use engine::{
    ARCHIVE_MAX_TRACE_BYTES, ARCHIVE_MAX_TRACES, ArchiveError, DEFAULT_DICTIONARY_MAX_ENTRIES,
    Store, StoreOptions,
};
pub use kv::{EngineMemory, FjallKv, Kv, MemoryKv, Op, Recovery, Table};
pub use query::{DependencyLink, Operation, TraceQuery, TraceSummary, summarize};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage engine error: {0}")]
    Engine(#[from] fjall::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("the write failed: {0}")]
    Write(String),
    /// The data directory holds another layout (or its marker cannot be read or written).
    #[error("{0}")]
    Layout(String),
}

impl From<codec::CorruptError> for StoreError {
    fn from(error: codec::CorruptError) -> Self {
        StoreError::Corrupt(error.0)
    }
}

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

impl Store {
    /// A durable store in `dir` (created if missing).
    pub fn open(dir: &Path, retention: Duration) -> Result<Store, StoreError> {
        Store::open_with(dir, &StoreOptions::new(retention))
    }

    pub fn open_with(dir: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        Store::with_options(Arc::new(FjallKv::open(dir)?), options)
    }

    /// A store that keeps everything in memory.
    pub fn in_memory(retention: Duration) -> Store {
        Store::in_memory_with(&StoreOptions::new(retention))
    }

    #[allow(
        clippy::expect_used,
        reason = "an empty store in memory has nothing that can fail"
    )]
    pub fn in_memory_with(options: &StoreOptions) -> Store {
        Store::with_options(Arc::new(MemoryKv::new()), options)
            .expect("an empty store in memory opens")
    }
}
