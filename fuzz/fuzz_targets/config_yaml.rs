//! Kiali configuration documents, as `config check`, `serve --config` and the console's
//! configuration tester read them: any bytes, up to the size the tester accepts. Alias bombs,
//! deep nesting and many keys must end in diagnostics, in bounded time and memory.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let _ = meshtrace_config::load_bytes(data);
});
