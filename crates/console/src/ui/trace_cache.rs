//! The last few traces read for the timeline, so that its page, its data and its span panels
//! read the backend once.

use std::sync::Arc;
use std::time::Duration;

use meshtrace_model::{Trace, TraceId};

use crate::Console;
use crate::cache::TtlCache;

/// The last few traces read, each kept for a minute.
pub type TraceCache = TtlCache<TraceId, Trace>;

const TRACE_CACHE_SIZE: usize = 4;
const TRACE_CACHE_TTL: Duration = Duration::from_secs(60);

pub fn new() -> TraceCache {
    TtlCache::new(TRACE_CACHE_SIZE, TRACE_CACHE_TTL)
}

impl Console {
    /// A trace by ID, from the cache or the backend; `Ok(None)` when the backend does not know it.
    pub(crate) async fn trace(&self, id: TraceId) -> Result<Option<Arc<Trace>>, crate::ApiError> {
        if let Some(trace) = self.traces.get(&id) {
            return Ok(Some(trace));
        }
        let backend = self.backend()?;
        let Some(trace) = self.timed("TraceDetail", backend.get_trace(id)).await? else {
            return Ok(None);
        };
        Ok(Some(self.traces.insert(id, trace)))
    }
}
