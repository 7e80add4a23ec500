//! `meshtrace config check` on hostile files, run as a real process under resource limits set
//! by the shell (`ulimit -v` for address space, `ulimit -t` for CPU seconds): an alias bomb, a
//! document nested thousands of levels deep and a mapping of 200,000 keys must each end in a
//! plain `exit 1` with their message, not in an abort, a stack overflow or minutes of work.
//!
//! The limits are far above what the checks need (tens of MB, a few CPU seconds in a debug
//! build), and far below what the unbounded loader took (gigabytes for the bomb; a quadratic
//! duplicate-key check that spent over ten minutes on the 200,000 keys).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Address space for the child, in KiB: 512 MiB.
const MEMORY_KIB: u32 = 512 * 1024;
/// CPU time for the child, in seconds. Not a timing assertion: a bound on work, like memory.
const CPU_SECONDS: u32 = 120;

struct Outcome {
    /// The exit code, or `None` when a signal ended the process (an abort, SIGXCPU, SIGSEGV).
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `meshtrace config check FILE` in the file's directory under the limits.
fn check_limited(file: &Path) -> Outcome {
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_KIB} && ulimit -t {CPU_SECONDS} && exec \"$0\" config check \"$1\""
        ))
        .arg(env!("CARGO_BIN_EXE_meshtrace"))
        .arg(file.file_name().unwrap())
        .current_dir(file.parent().unwrap())
        .output()
        .expect("sh runs");
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn corpus_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/corpus/broken")
        .join(name)
}

#[test]
fn billion_laughs_exits_1_with_the_alias_error_within_bounded_memory() {
    let outcome = check_limited(&corpus_file("billion-laughs.yaml"));
    assert_eq!(
        outcome.code,
        Some(1),
        "the check must end normally; stderr:\n{}",
        outcome.stderr
    );
    assert!(outcome.stdout.is_empty());
    let lines: Vec<&str> = outcome.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", outcome.stderr);
    assert!(
        lines[0]
            .starts_with("billion-laughs.yaml:7:21: error: document expands aliases too much: "),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1],
        "billion-laughs.yaml: invalid: 1 error(s), 0 warning(s)"
    );
}

#[test]
fn nesting_thousands_deep_exits_1_instead_of_overflowing_the_stack() {
    // 2,800 levels of block mappings (3.9 MB): the recursive builder overflowed its stack.
    let mut text = String::from("a:\n");
    for level in 1..2800 {
        text.push_str(&" ".repeat(level));
        text.push_str("b:\n");
    }
    let (_dir, file) = common::temp_file("deep.yaml", text);
    let outcome = check_limited(&file);
    assert_eq!(outcome.code, Some(1), "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .starts_with("deep.yaml:101:101: error: document nests too deep: lists and mappings more than 100 levels deep\n"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn two_hundred_thousand_keys_are_checked_and_every_duplicate_reported() {
    let mut text = String::with_capacity(2_200_000);
    for i in 0..200_000 {
        text.push_str(&format!("k{i}: {i}\n"));
    }
    text.push_str("k7: again\nk199999: again\n");
    let (_dir, file) = common::temp_file("keys.yaml", text);
    let outcome = check_limited(&file);
    assert_eq!(
        outcome.code,
        Some(1),
        "the check must finish; stderr:\n{}",
        outcome.stderr
    );
    assert_eq!(
        outcome.stderr,
        "keys.yaml:200001:1: error: k7: duplicate key (first set at line 8)\n\
         keys.yaml:200002:1: error: k199999: duplicate key (first set at line 200000)\n\
         keys.yaml: invalid: 2 error(s), 0 warning(s)\n"
    );
}

#[test]
fn a_file_past_the_size_bound_is_refused_unread() {
    let (_dir, file) = common::temp_file("large.yaml", "#".repeat(5 << 20));
    let outcome = check_limited(&file);
    assert_eq!(outcome.code, Some(1), "{}", outcome.stderr);
    assert_eq!(
        outcome.stderr,
        "large.yaml: error: the configuration is too large: it holds more than 4194304 bytes \
         (4 MiB), the most meshtrace reads; a real Kiali config is a few KiB\n\
         large.yaml: invalid: 1 error(s), 0 warning(s)\n"
    );
}
