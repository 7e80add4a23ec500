//! The TraceQL builder of the Tempo client, fed the parts a console request controls: the
//! service name and `?tags=` keys and values (NUL-separated in the input). It must refuse or
//! build, never panic; what it builds keeps the scope tag as a condition of the one spanset.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use meshtrace_backend::{TraceQuery, traceql};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let service = parts.next().unwrap_or_default().to_string();
    let mut tags: BTreeMap<String, String> = BTreeMap::new();
    while let (Some(key), Some(value)) = (parts.next(), parts.next()) {
        tags.insert(key.to_string(), value.to_string());
    }
    // The scope, as `query_scope` adds it; hostile tags must not take the search out of it.
    tags.insert("mesh_id".to_string(), "m1".to_string());
    let query = TraceQuery {
        service,
        tags,
        start: 1,
        end: 2,
        min_duration: None,
        limit: 20,
    };
    if let Ok(q) = traceql(&query) {
        assert!(q.starts_with("{ "), "{q}");
        assert!(q.contains("&& .mesh_id = \"m1\""), "the scope is a condition: {q}");
    }
});
