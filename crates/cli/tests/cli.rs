//! The binary's command-line surface: help texts, exit codes, output streams.

mod common;

use std::process::{Command, Output};

fn meshtrace(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_meshtrace"))
        .args(args)
        .output()
        .expect("the meshtrace binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["config", "--help"],
        vec!["config", "check", "--help"],
        vec!["config", "show", "--help"],
    ] {
        let output = meshtrace(&args);
        assert!(output.status.success(), "{args:?}");
        assert!(
            text(&output.stdout).contains("Usage: meshtrace"),
            "{args:?}"
        );
    }
    let help = text(&meshtrace(&["config", "show", "--help"]).stdout);
    assert!(help.contains("--format <FORMAT>"));
}

#[test]
fn an_unreadable_file_fails_with_its_name() {
    let output = meshtrace(&["config", "check", "/no/such/kiali.yaml"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("error: cannot read `/no/such/kiali.yaml`: "),
        "{stderr}"
    );
}

#[test]
fn show_json_keeps_stdout_pure_json() {
    let (_dir, file) = common::temp_file(
        "config.yaml",
        "external_services:\n  tracing:\n    enabled: true\n    external_url: https://jaeger.example.com\n",
    );
    let output = meshtrace(&["config", "show", "--format", "json", file.to_str().unwrap()]);
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        json["external_services"]["tracing"]["external_url"],
        "https://jaeger.example.com"
    );
    assert_eq!(json["external_services"]["tracing"]["internal_url"], "");
    assert_eq!(
        text(&output.stderr),
        "mode: external links only to https://jaeger.example.com\nmetrics from Prometheus at \
         http://prometheus.istio-system:9090: Kiali's default, external_services.prometheus.url \
         is not set\n"
    );
}

#[test]
fn a_bad_format_is_a_usage_error() {
    let output = meshtrace(&["config", "show", "--format", "toml", "x.yaml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("invalid value 'toml'"));
}

#[test]
fn show_prints_prometheus_secrets_as_xxx() {
    let (_dir, file) = common::temp_file(
        "kiali-cr.yaml",
        "apiVersion: kiali.io/v1alpha1\nkind: Kiali\nmetadata:\n  name: kiali\nspec:\n  external_services:\n    prometheus:\n      url: https://kiali:url-SECRET@prometheus.monitoring:9090\n      auth:\n        type: basic\n        username: user-SECRET\n        password: pw-SECRET\n      custom_headers:\n        Authorization: Bearer hdr-SECRET\n",
    );
    let path = file.to_str().unwrap();

    let output = meshtrace(&["config", "show", "--format", "json", path]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(!stdout.contains("SECRET") && !stderr.contains("SECRET"));
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let prometheus = &json["external_services"]["prometheus"];
    assert_eq!(
        prometheus["url"],
        "https://kiali:xxx@prometheus.monitoring:9090/"
    );
    assert_eq!(prometheus["auth"]["username"], "xxx");
    assert_eq!(prometheus["auth"]["password"], "xxx");
    assert_eq!(prometheus["auth"]["token"], "");
    assert_eq!(prometheus["custom_headers"]["Authorization"], "xxx");
    // The operator's default for a CR.
    assert_eq!(prometheus["is_core"], true);

    let output = meshtrace(&["config", "show", path]);
    assert!(output.status.success());
    let yaml = text(&output.stdout);
    assert!(!yaml.contains("SECRET"), "{yaml}");
    assert!(
        yaml.contains("  prometheus:\n    enabled: true\n    url: \"https://kiali:xxx@prometheus.monitoring:9090/\"\n    auth:\n      type: \"basic\"\n      username: \"xxx\"\n      password: \"xxx\"\n"),
        "{yaml}"
    );
}

#[test]
fn a_jaeger_ui_that_cannot_be_served_stops_the_start_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-build");
    let mut args = vec![
        "store",
        "--memory",
        "--jaeger-ui",
        missing.to_str().unwrap(),
    ];
    args.extend(common::STORE_LISTENERS);
    let output = meshtrace(&args);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot serve the Jaeger UI in {}",
            missing.display()
        )) && stderr.contains(&format!(
            "cannot read {}",
            missing.join("index.html").display()
        )),
        "{stderr}"
    );
    // A config without the UI it configures is refused by the parser.
    let output = meshtrace(&["store", "--memory", "--jaeger-ui-config", "ui.json"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("--jaeger-ui <DIR>"));
}
