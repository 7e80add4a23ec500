//! What the store reads from its own files, damaged: a real trace is written, then the fuzzer's
//! bytes are planted as raw keys and values in the engine's tables (as a damaged or hostile data
//! directory would hold them), and every read path runs over them — open, get trace, search,
//! services, operations, dependencies, retention. None may panic; the codec's reader must turn
//! any bytes into a value or an error.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use meshtrace_fuzz::{RETENTION, fixture_spans};
use meshtrace_store::{Kv, MemoryKv, Op, Store, Table, TraceQuery};

/// `table (1) | key length (1) | key | value length (1) | value`, repeated.
fn planted(mut data: &[u8]) -> Vec<Op> {
    let mut ops = Vec::new();
    while let [table, key_len, rest @ ..] = data {
        let key_len = usize::from(*key_len).min(rest.len());
        let (key, rest) = rest.split_at(key_len);
        let Some((&value_len, rest)) = rest.split_first() else {
            break;
        };
        let value_len = usize::from(value_len).min(rest.len());
        let (value, rest) = rest.split_at(value_len);
        let table = Table::ALL[usize::from(*table) % Table::ALL.len()];
        ops.push(Op::put(table, key, value));
        data = rest;
    }
    ops
}

fuzz_target!(|data: &[u8]| {
    let kv = Arc::new(MemoryKv::new());
    {
        let Ok(store) = Store::new(kv.clone(), RETENTION) else {
            return;
        };
        store.write(fixture_spans()).expect("a fresh memory store takes the fixture");
    }
    kv.write(planted(data)).expect("memory write");
    let Ok(store) = Store::new(kv.clone(), RETENTION) else {
        return;
    };
    for span in fixture_spans() {
        let _ = store.get_trace(span.trace_id);
    }
    let services = store.services().unwrap_or_default();
    for service in services.iter().take(4) {
        let _ = store.operations(service, None);
        let _ = store.find_traces(&TraceQuery {
            service: Some(service.clone()),
            operation: None,
            tags: vec![("a".into(), "b".into())],
            start_min: 0,
            start_max: u64::MAX / 1000,
            duration_min: None,
            duration_max: None,
            limit: 20,
        });
    }
    let _ = store.dependencies(u64::MAX / 1000, u64::MAX / 1000);
    let _ = store.purge_before(u64::MAX / 2000);
});
