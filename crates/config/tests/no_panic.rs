//! Property tests: the loader answers every input — arbitrary text, arbitrary bytes, and soups
//! of YAML's own tokens (anchors, aliases, merge keys, flow and block collections, tags, block
//! scalars, embedded ConfigMaps) — with a configuration or with diagnostics, never a panic.

use meshtrace_config::{Diagnostic, Location, load_bytes, load_str};
use proptest::prelude::*;

/// What every answer must satisfy, whatever the input.
fn check_answer(result: Result<meshtrace_config::Loaded, Vec<Diagnostic>>) {
    let diagnostics = match result {
        Ok(loaded) => {
            assert!(loaded.warnings.iter().all(|d| !d.is_error()));
            loaded.warnings
        }
        Err(diagnostics) => {
            assert!(
                diagnostics.iter().any(Diagnostic::is_error),
                "refused without an error: {diagnostics:?}"
            );
            diagnostics
        }
    };
    for diagnostic in &diagnostics {
        if let Location::File(pos) | Location::Embedded { pos, .. } = &diagnostic.location {
            assert!(pos.line >= 1 && pos.col >= 1, "{diagnostic:?}");
        }
        assert!(!diagnostic.render("f.yaml").is_empty());
    }
}

/// Pieces of YAML, meshtrace's keys among them, to be strung together at random.
const TOKENS: &[&str] = &[
    "&a ",
    "&b ",
    "&a [",
    "*a",
    "*b",
    "*c",
    "<<: ",
    "<<: *a",
    "<<: [*a, *b]",
    "- ",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    "? ",
    "\n",
    "\n  ",
    "\n    ",
    "\t",
    "#c\n",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "!!str ",
    "!!map ",
    "!tag ",
    "|\n  ",
    ">-\n  ",
    "\"q\\u00e9\\x\"",
    "'it''s'",
    "~",
    "null",
    "true",
    "yes",
    "0x-8000000000000000",
    "-9223372036854775808",
    "0o17",
    "1e9",
    "key",
    "kind: ConfigMap\n",
    "kind: Kiali\n",
    "kind: List\nitems:\n",
    "data:\n  config.yaml: |\n    ",
    "spec:\n",
    "external_services:\n  tracing:\n    ",
    "enabled: true",
    "auth:\n      type: basic",
    "internal_url: http://tracing:16685/jaeger",
    "custom_headers: ",
    "query_scope: ",
    "whitelist_istio_system: ",
    "grpc_port: ",
    "é",
    "\u{feff}",
    "\r\n",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..80).prop_map(|tokens| tokens.concat())
}

/// Anchors and aliases only, nested: the shape of alias bombs.
fn alias_soup() -> impl Strategy<Value = String> {
    (1usize..12, 1usize..12).prop_map(|(levels, fan_out)| {
        let mut text = format!("l1: &l1 [{}]\n", vec!["x"; fan_out].join(", "));
        for level in 2..=levels {
            let uses = vec![format!("*l{}", level - 1); fan_out].join(", ");
            text.push_str(&format!("l{level}: &l{level} [{uses}]\n"));
        }
        text
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_gets_an_answer(text in any::<String>()) {
        check_answer(load_str(&text));
    }

    #[test]
    fn any_bytes_get_an_answer(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_answer(load_bytes(&bytes));
    }

    #[test]
    fn token_soups_get_an_answer(text in soup()) {
        check_answer(load_str(&text));
    }

    #[test]
    fn token_soups_under_a_tracing_section_get_an_answer(text in soup()) {
        let indented = text.replace('\n', "\n    ");
        check_answer(load_str(&format!("external_services:\n  tracing:\n    {indented}\n")));
    }

    #[test]
    fn alias_bombs_of_any_shape_get_an_answer(text in alias_soup()) {
        check_answer(load_str(&text));
    }
}
