//! The last few traces read for the timeline, so that its page, its data and its span panels
//! read the backend once.

use std::sync::Arc;

use meshtrace_model::{Trace, TraceId};

use crate::Console;

/// The last few traces read, each kept for a minute.
#[derive(Default)]
pub struct TraceCache {
    recent: std::sync::Mutex<std::collections::VecDeque<(TraceId, std::time::Instant, Arc<Trace>)>>,
}

const TRACE_CACHE_SIZE: usize = 4;
const TRACE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl Console {
    /// A trace by ID, from the cache or the backend; `Ok(None)` when the backend does not know it.
    pub(crate) async fn trace(&self, id: TraceId) -> Result<Option<Arc<Trace>>, crate::ApiError> {
        {
            let mut recent = self.traces.recent.lock().unwrap();
            recent.retain(|(_, at, _)| at.elapsed() < TRACE_CACHE_TTL);
            if let Some((_, _, trace)) = recent.iter().find(|(t, _, _)| *t == id) {
                return Ok(Some(trace.clone()));
            }
        }
        let backend = self.backend()?;
        let Some(trace) = self.timed("TraceDetail", backend.get_trace(id)).await? else {
            return Ok(None);
        };
        let trace = Arc::new(trace);
        let mut recent = self.traces.recent.lock().unwrap();
        if recent.len() >= TRACE_CACHE_SIZE {
            recent.pop_front();
        }
        recent.push_back((id, std::time::Instant::now(), trace.clone()));
        Ok(Some(trace))
    }
}
