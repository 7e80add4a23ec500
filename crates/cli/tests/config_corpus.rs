//! Runs `meshtrace config check` and `config show` on every file of the corpus in
//! `tests/corpus/` and compares what the binary prints with the expected output stored beside
//! each file (`NAME.check`, `NAME.show`).
//!
//! `valid/` holds configurations from real Kiali installs (Helm ConfigMaps, CRs, plain
//! config.yaml), `broken/` holds broken ones with their exact messages. Secrets in the corpus
//! contain the marker `SECRET`, which must never appear in any output.
//!
//! After an intended change of the output, rewrite the expected files with
//! `MESHTRACE_BLESS=1 cargo test -p meshtrace --test config_corpus` and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/corpus")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yaml" | "json")
            )
        })
        .collect();
    files.sort();
    files
}

/// Runs the binary in the file's directory, so messages name the file as a user would see it.
fn run(args: &[&str], file: &Path) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .args(args)
        .arg(file.file_name().unwrap())
        .current_dir(file.parent().unwrap())
        .output()
        .expect("the meshtrace binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn transcript(exit: i32, stdout: &str, stderr: &str) -> String {
    format!("exit: {exit}\n--- stdout\n{stdout}--- stderr\n{stderr}")
}

/// Compares with the expected file, or writes it when blessing. Returns a failure message.
fn compare(actual: &str, expected_path: &Path) -> Option<String> {
    if std::env::var_os("MESHTRACE_BLESS").is_some() {
        std::fs::write(expected_path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(expected_path).unwrap_or_default();
    (expected != actual).then(|| {
        format!(
            "{} differs.\n--- expected\n{expected}--- actual\n{actual}",
            expected_path.display()
        )
    })
}

fn assert_no_secret(file: &Path, texts: &[&str]) {
    for text in texts {
        assert!(
            !text.contains("SECRET"),
            "{} leaked a secret:\n{text}",
            file.display()
        );
    }
}

#[test]
fn valid_configs_check_and_show_as_expected() {
    let files = corpus("valid");
    assert!(files.len() >= 12, "the valid corpus shrank");
    let mut failures = Vec::new();
    for file in &files {
        let (exit, stdout, stderr) = run(&["config", "check"], file);
        assert_eq!(exit, 0, "{} should be valid:\n{stderr}", file.display());
        assert_no_secret(file, &[&stdout, &stderr]);
        failures.extend(compare(
            &transcript(exit, &stdout, &stderr),
            &file.with_extension("check"),
        ));

        let (exit, stdout, stderr) = run(&["config", "show"], file);
        assert_eq!(exit, 0);
        assert_no_secret(file, &[&stdout, &stderr]);
        failures.extend(compare(
            &transcript(exit, &stdout, &stderr),
            &file.with_extension("show"),
        ));

        let (exit, stdout, stderr) = run(&["config", "show", "--format", "json"], file);
        assert_eq!(exit, 0);
        assert_no_secret(file, &[&stdout, &stderr]);
        let json: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{}: show --format json is not JSON: {e}", file.display()));
        assert!(json["external_services"]["tracing"].is_object());
        // stdout stays pure JSON: the tracing mode and where metrics come from go to stderr.
        let said: Vec<&str> = stderr.lines().collect();
        assert!(said.iter().any(|l| l.starts_with("mode: ")), "{stderr}");
        assert!(
            said.last().unwrap_or(&"").starts_with("metrics "),
            "{stderr}"
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn broken_configs_fail_with_exact_messages() {
    let files = corpus("broken");
    assert!(files.len() >= 15, "the broken corpus shrank");
    let mut failures = Vec::new();
    for file in &files {
        let (exit, stdout, stderr) = run(&["config", "check"], file);
        assert_eq!(exit, 1, "{} should be invalid:\n{stderr}", file.display());
        assert!(
            stdout.is_empty(),
            "nothing goes to stdout for an invalid config"
        );
        assert!(
            stderr.contains(": error: "),
            "{} printed no error",
            file.display()
        );
        assert_no_secret(file, &[&stdout, &stderr]);
        failures.extend(compare(
            &transcript(exit, &stdout, &stderr),
            &file.with_extension("check"),
        ));

        // `show` refuses an invalid config the same way.
        let (exit, stdout, show_stderr) = run(&["config", "show"], file);
        assert_eq!((exit, stdout.as_str()), (1, ""));
        assert_eq!(show_stderr, stderr);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
