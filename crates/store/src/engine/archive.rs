//! The archive: traces a user chose to keep (the Jaeger UI's "Archive Trace" button), stored in
//! their own table, which retention never visits, so that they are still found by ID after the
//! spans themselves expired — what Jaeger does with its archive storage.
//!
//! An archived trace is stored whole, as the Jaeger UI JSON the query API answers, so that it
//! does not depend on anything retention removes (processes and dictionary strings are inlined).
//! The archive is bounded: at most [`ARCHIVE_MAX_TRACES`] traces, each at most
//! [`ARCHIVE_MAX_TRACE_BYTES`] encoded; archiving a trace already archived replaces it.

use meshtrace_model::jaeger_json::{JsonTrace, TraceJson, trace_from_json_owned};
use meshtrace_model::{Trace, TraceId};

use super::Store;
use crate::StoreError;
use crate::damage::DamageKind;
use crate::kv::{Op, Table};

/// The most traces the archive holds.
pub const ARCHIVE_MAX_TRACES: usize = 10_000;
/// The largest trace the archive takes, as encoded JSON.
pub const ARCHIVE_MAX_TRACE_BYTES: usize = 8 << 20;

/// Why a trace was not archived.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("trace not found")]
    NotFound,
    #[error(
        "the trace is {0} bytes as JSON, more than the archive takes ({ARCHIVE_MAX_TRACE_BYTES} bytes)"
    )]
    TooLarge(usize),
    #[error("the archive is full ({ARCHIVE_MAX_TRACES} traces)")]
    Full,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    /// Copies the trace (as [`Store::get_trace_or_archived`] finds it) into the archive.
    pub fn archive_trace(&self, trace_id: TraceId) -> Result<(), ArchiveError> {
        let trace = self
            .get_trace_or_archived(trace_id)?
            .ok_or(ArchiveError::NotFound)?;
        let encoded = serde_json::to_vec(&TraceJson(&trace))
            .map_err(|e| StoreError::Write(format!("cannot encode the trace: {e}")))?;
        if encoded.len() > ARCHIVE_MAX_TRACE_BYTES {
            return Err(ArchiveError::TooLarge(encoded.len()));
        }
        let key = trace_id.to_bytes();
        if self.kv.get(Table::Archive, &key)?.is_none()
            && self.archived_count()? >= ARCHIVE_MAX_TRACES
        {
            return Err(ArchiveError::Full);
        }
        self.kv.write(vec![Op::put(Table::Archive, key, encoded)])?;
        Ok(())
    }

    /// The trace from the live tables, or else from the archive.
    pub fn get_trace_or_archived(&self, trace_id: TraceId) -> Result<Option<Trace>, StoreError> {
        match self.get_trace(trace_id)? {
            Some(trace) => Ok(Some(trace)),
            None => self.get_archived(trace_id),
        }
    }

    /// The archived copy of a trace; an entry that does not decode is damage, not an error.
    pub fn get_archived(&self, trace_id: TraceId) -> Result<Option<Trace>, StoreError> {
        let Some(raw) = self.kv.get(Table::Archive, &trace_id.to_bytes())? else {
            return Ok(None);
        };
        let decoded = serde_json::from_slice::<JsonTrace>(&raw)
            .map_err(|e| e.to_string())
            .and_then(|json| trace_from_json_owned(json).map_err(|e| e.to_string()));
        match decoded {
            Ok(trace) => Ok(Some(trace)),
            Err(error) => {
                self.damage
                    .record(DamageKind::UndecodableValue, "archive", &error);
                Ok(None)
            }
        }
    }

    /// How many traces are archived (counting stops past the limit).
    fn archived_count(&self) -> Result<usize, StoreError> {
        let mut count: usize = 0;
        self.kv
            .scan(Table::Archive, &[], &[0xff; 17], false, &mut |_, _| {
                count = count.saturating_add(1);
                Ok(count <= ARCHIVE_MAX_TRACES)
            })?;
        Ok(count)
    }
}
