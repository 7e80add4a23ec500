//! Kiali configuration documents, as `config check`, `serve --config` and the console's
//! configuration tester read them. Inputs are capped at the size the tester accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let text = String::from_utf8_lossy(data);
    let _ = meshtrace_config::load_str(&text);
});
