//! What the unit tests of several modules share (compiled for tests only).

use axum::http::HeaderMap;

/// A request's headers from `(name, value)` pairs, as a client would send them.
pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, value.parse().unwrap());
    }
    map
}
