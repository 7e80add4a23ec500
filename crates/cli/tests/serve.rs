//! `meshtrace serve` as a user runs it: a Kiali configuration file, the console's address
//! printed, the API answering, a clean stop on SIGTERM; a broken configuration refused.

mod common;

use std::process::Command;

use serde_json::Value;

#[test]
fn serve_answers_and_stops_cleanly() {
    let (_dir, config) = common::temp_file(
        "kiali.yaml",
        "server:\n  web_root: /kiali\nexternal_services:\n  tracing:\n    enabled: true\n    external_url: http://jaeger.example.com\n",
    );
    let (mut child, mut lines) = common::spawn_serve(&config);
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("meshtrace console: ")
        .expect("the console prints its address")
        .to_string();
    assert!(url.ends_with("/kiali/api/tracing"), "{url}");
    let mode = lines.next().unwrap().unwrap();
    assert_eq!(
        mode,
        "  mode  external links only to http://jaeger.example.com"
    );
    let metrics = lines.next().unwrap().unwrap();
    assert_eq!(
        metrics,
        "  metrics from Prometheus at http://prometheus.istio-system:9090: Kiali's default, \
         external_services.prometheus.url is not set"
    );
    let info: Value = reqwest::blocking::get(&url).unwrap().json().unwrap();
    assert_eq!(info["integration"], false);
    assert_eq!(info["url"], "http://jaeger.example.com");

    let rest = common::terminate(&mut child, lines);
    assert_eq!(rest, ["console stopped"]);
}

#[test]
fn serve_refuses_a_broken_configuration() {
    let (_dir, config) = common::temp_file(
        "kiali.yaml",
        "external_services:\n  tracing:\n    in_clster_url: http://x\n",
    );
    let output = Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "run `meshtrace config check {}`",
            config.display()
        )),
        "{stderr}"
    );
}
