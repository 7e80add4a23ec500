//! What the request surfaces share: running a store call off the async threads (the HTTP
//! routes and the gRPC services; ingest's writes stay on the thread that decoded the batch),
//! reading a query string the way Go's `url.Values` reads it, and the media type of a request.
//! Everything here reads text from a stranger and never panics on it.

use std::sync::Arc;

use axum::http::{HeaderMap, header};

use crate::{Store, StoreError};

/// Runs a store call on the blocking pool: the engine reads and fsyncs, and an async thread
/// must not wait on either.
pub async fn blocking<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || f(&store))
        .await
        .unwrap_or_else(|e| {
            Err(StoreError::Write(format!(
                "the store task did not finish: {e}"
            )))
        })
}

/// Runs a store write of data this task decoded on the thread that decoded it, when the
/// runtime can spare the thread (a multi-threaded runtime hands its other tasks to another
/// thread meanwhile), else on the blocking pool like [`blocking`].
///
/// Ingest's spans are still in this core's cache, and their strings (about fifty allocations a
/// span) are freed by the thread that allocated them, the allocator's fast path: sustained
/// runs spent 4 to 8 % less CPU per span than with the blocking pool (docs/PERFORMANCE.md,
/// "2026-12-01 18:20–19:40").
pub async fn blocking_in_place<T: Send + 'static>(
    store: &Arc<Store>,
    f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    match tokio::runtime::Handle::current().runtime_flavor() {
        tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(|| f(store)),
        _ => blocking(store, f).await,
    }
}

/// A query string's pairs, percent-decoded, in order (a key may repeat).
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// The first non-empty value of `name` (an empty value counts as absent, as in Jaeger).
pub fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, v)| k == name && !v.is_empty())
        .map(|(_, v)| v.as_str())
}

/// The value of the first of `names` that is present: a parameter known by several names
/// (camelCase first, then deprecated ones).
pub fn param<'a>(pairs: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    names.iter().find_map(|name| first(pairs, name))
}

/// The media type of the request's `Content-Type`, lower case, without parameters (`""` when
/// there is none).
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `blocking_in_place` on `runtime` and tells whether the call ran on the thread that
    /// awaited it.
    fn ran_on_the_awaiting_thread(runtime: &tokio::runtime::Runtime) -> bool {
        let store = Arc::new(Store::in_memory(std::time::Duration::from_secs(3600)));
        runtime.block_on(async {
            let awaiting = std::thread::current().id();
            blocking_in_place(&store, move |_| Ok(std::thread::current().id()))
                .await
                .is_ok_and(|ran| ran == awaiting)
        })
    }

    #[test]
    fn a_write_stays_on_its_thread_where_the_runtime_allows_it() {
        let threaded = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        assert!(ran_on_the_awaiting_thread(&threaded));
        // A single-threaded runtime cannot lend its only thread (tokio panics if asked to):
        // the call goes to the blocking pool.
        let single = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(!ran_on_the_awaiting_thread(&single));
    }

    #[test]
    fn parameters_are_read_as_jaeger_reads_them() {
        let pairs = query_pairs(Some("a=&a=1&b=x%20y&b=2&c"));
        assert_eq!(first(&pairs, "a"), Some("1"));
        assert_eq!(first(&pairs, "b"), Some("x y"));
        assert_eq!(first(&pairs, "c"), None);
        assert_eq!(param(&pairs, &["z", "b", "a"]), Some("x y"));
        assert_eq!(param(&pairs, &["z"]), None);
        assert!(query_pairs(None).is_empty());
    }

    #[test]
    fn media_types_lose_their_parameters_and_case() {
        let mut headers = HeaderMap::new();
        assert_eq!(media_type(&headers), "");
        let value = "Application/JSON ; charset=utf-8".parse().unwrap();
        headers.insert(header::CONTENT_TYPE, value);
        assert_eq!(media_type(&headers), "application/json");
    }
}
