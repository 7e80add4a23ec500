//! Hostile configurations through the public API: each is refused with one clear error at the
//! right place, at a cost that stays small (no test here takes long or much memory once the
//! bounds hold; before them, each one took minutes or gigabytes).

use std::io::Write as _;

use meshtrace_config::{
    Diagnostic, LoadError, Location, MAX_CONFIG_BYTES, Pos, load_bytes, load_file, load_str,
};

const BILLION_LAUGHS: &str = include_str!("../../../tests/corpus/broken/billion-laughs.yaml");

fn errors(result: Result<meshtrace_config::Loaded, Vec<Diagnostic>>) -> Vec<Diagnostic> {
    let diagnostics = result.expect_err("the configuration is refused");
    diagnostics
        .into_iter()
        .filter(Diagnostic::is_error)
        .collect()
}

#[test]
fn billion_laughs_is_one_error_at_the_alias() {
    let errors = errors(load_str(BILLION_LAUGHS));
    assert_eq!(errors.len(), 1, "{errors:?}");
    let line = BILLION_LAUGHS
        .lines()
        .position(|l| l.starts_with("lol4:"))
        .unwrap();
    let col = BILLION_LAUGHS
        .lines()
        .nth(line)
        .unwrap()
        .find(", *lol3")
        .unwrap()
        + 3;
    assert_eq!(
        errors[0].location,
        Location::File(Pos {
            line: line + 1,
            col
        })
    );
    assert!(
        errors[0].render("b.yaml").starts_with(&format!(
            "b.yaml:{}:{col}: error: document expands aliases too much: ",
            line + 1
        )),
        "{}",
        errors[0].render("b.yaml")
    );
}

#[test]
fn the_same_bomb_inside_a_configmap_is_caught_too() {
    let indented: String = BILLION_LAUGHS
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let configmap =
        format!("kind: ConfigMap\nmetadata:\n  name: kiali\ndata:\n  config.yaml: |\n{indented}");
    let errors = errors(load_str(&configmap));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .message
            .starts_with("document expands aliases too much")
    );
}

#[test]
fn text_past_the_size_bound_is_refused_before_it_is_parsed() {
    // Within the bound, a big (valid) config still loads.
    let filler = "# padding\n".repeat((MAX_CONFIG_BYTES - 100) / 10);
    let fits = format!("{filler}external_services:\n  tracing:\n    enabled: false\n");
    assert!(fits.len() <= MAX_CONFIG_BYTES);
    assert!(load_str(&fits).is_ok());
    // One byte past it is not parsed at all: an unclosed flow list would be a syntax error.
    let text = format!("[{}", " ".repeat(MAX_CONFIG_BYTES));
    let errors = errors(load_str(&text));
    assert_eq!(errors.len(), 1);
    assert_eq!(
        errors[0].message,
        "the configuration is too large: it holds more than 4194304 bytes (4 MiB), the most \
         meshtrace reads; a real Kiali config is a few KiB"
    );
    assert_eq!(load_bytes(text.as_bytes()).unwrap_err(), errors);
}

#[test]
fn a_file_is_read_no_further_than_the_bound() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&vec![b'#'; MAX_CONFIG_BYTES + 4096])
        .unwrap();
    match load_file(file.path()) {
        Err(LoadError::Invalid(diagnostics)) => {
            assert!(
                diagnostics[0]
                    .message
                    .starts_with("the configuration is too large")
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bytes_that_are_not_utf8_are_refused_with_their_place() {
    let errors = errors(load_bytes(b"a: 1\nb: \xff\xfe\n"));
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].location, Location::File(Pos { line: 2, col: 4 }));
    assert!(errors[0].message.starts_with("not UTF-8 text"));
}

#[test]
fn configmaps_nested_in_configmaps_stop_at_the_bound() {
    // Each level embeds the previous one as a literal block, indented two more spaces.
    let mut text = "external_services:\n  tracing:\n    enabled: false\n".to_string();
    for _ in 0..10 {
        let indented: String = text.lines().map(|l| format!("    {l}\n")).collect();
        text = format!("kind: ConfigMap\ndata:\n  config.yaml: |\n{indented}");
    }
    let errors = errors(load_str(&text));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].message.starts_with(
            "a ConfigMap's config.yaml holds another ConfigMap more than 4 levels deep"
        ),
        "{}",
        errors[0].message
    );
}

#[test]
fn a_huge_unknown_key_is_reported_without_measuring_its_distance() {
    // The edit distance of a 1 MiB key to each of the 19 known keys takes ~20 M steps each.
    let key = "u".repeat(1 << 20);
    let text = format!("external_services:\n  tracing:\n    ? {key}\n    : 1\n");
    let errors = errors(load_str(&text));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].message.starts_with("unknown key `uuu"));
    assert!(errors[0].message.ends_with("; valid keys here: auth, custom_headers, disable_version_check, enabled, external_url, grpc_port, health_check_url, in_cluster_url, internal_url, is_core, namespace_selector, provider, query_scope, query_timeout, tempo_config, url, use_grpc, use_waypoint_name, whitelist_istio_system"));
}

#[test]
fn many_near_miss_keys_are_checked_in_one_pass() {
    // 17,576 keys within three edits of `deployment`, `deployment` itself among them: each is
    // a near miss, and whether `deployment` is present is found once, not once per key.
    let mut text = String::new();
    for a in 'a'..='z' {
        for b in 'a'..='z' {
            for c in 'a'..='z' {
                text.push_str(&format!("deploy{a}{b}{c}t:\n"));
            }
        }
    }
    let loaded = load_str(&text).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings.first());
    // Without `deployment`, each near miss gets its warning.
    let text = text.replace("deployment:\n", "");
    let loaded = load_str(&text).unwrap();
    assert_eq!(loaded.warnings.len(), 26 * 26 * 26 - 1);
    assert_eq!(
        loaded.warnings[0].render("n.yaml"),
        "n.yaml:1:1: warning: deployaaat: `deployaaat` is not a key meshtrace reads, and \
         `deployment` is missing: did you mean `deployment`?"
    );
}

#[test]
fn duplicates_are_all_reported_with_both_positions() {
    let text = "external_services:\n  tracing:\n    enabled: true\n    enabled: false\n    \
                provider: jaeger\n    provider: tempo\n";
    let errors = errors(load_str(text));
    let found: Vec<String> = errors.iter().map(|e| e.render("d.yaml")).collect();
    assert_eq!(
        found,
        [
            "d.yaml:4:5: error: external_services.tracing.enabled: duplicate key (first set at line 3)",
            "d.yaml:6:5: error: external_services.tracing.provider: duplicate key (first set at line 5)",
        ]
    );
}

#[test]
fn thousands_of_duplicates_are_listed_up_to_the_cap_then_counted() {
    let mut text = String::from("kiali_feature_flags:\n");
    for i in 0..3000 {
        text.push_str(&format!("  flag: {i}\n"));
    }
    let errors = errors(load_str(&text));
    assert_eq!(errors.len(), 1001);
    assert_eq!(
        errors[1000].render("d.yaml"),
        "d.yaml:1003:3: error: 1999 more duplicate key(s) from here on, not listed one by one \
         (the first 1000 are)"
    );
}
