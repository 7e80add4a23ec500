//! `--jaeger-ui`: a Jaeger UI build served on the query HTTP port, over the wire. The build is a
//! small one written by the test with the exact lines Jaeger UI v1.76, v2.19 and v2.20 put in
//! their `index.html` for the query service to rewrite; the real UI was checked by hand against
//! the demo (docs/API.md, "Serving the Jaeger UI").

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use meshtrace_store::jaeger_ui::JaegerUi;
use meshtrace_store::server::{LoopbackServer, ServeOptions};
use meshtrace_store::{Store, StoreOptions};

/// The lines of Jaeger UI v2.20's `index.html` that its query service rewrites (v2.19 and
/// v1.76 have the same, less the backend capabilities).
const INDEX: &str = r#"<!doctype html>
<html lang="en">
  <head>
    <script>
      // Important! Do not alter the following line; Jaeger looks for that exact pattern.
      // JAEGER_CONFIG_JS

      function getJaegerUiConfig() {
        const DEFAULT_CONFIG = null;
        const JAEGER_CONFIG = DEFAULT_CONFIG;
        return JAEGER_CONFIG;
      }
      function _getJaegerStorageCapabilities() {
        const DEFAULT_STORAGE_CAPABILITIES = { archiveStorage: false, metricsStorage: false };
        const JAEGER_STORAGE_CAPABILITIES = DEFAULT_STORAGE_CAPABILITIES;
        return JAEGER_STORAGE_CAPABILITIES;
      }
      function getJaegerBackendCapabilities() {
        const DEFAULT_BACKEND_CAPABILITIES = { ..._getJaegerStorageCapabilities(), aiAssistant: false };
        const JAEGER_BACKEND_CAPABILITIES = DEFAULT_BACKEND_CAPABILITIES;
        return JAEGER_BACKEND_CAPABILITIES;
      }
      function getJaegerVersion() {
        const DEFAULT_VERSION = {'gitCommit':'', 'gitVersion':'', 'buildDate':''};
        const JAEGER_VERSION = DEFAULT_VERSION;
        return JAEGER_VERSION;
      }
    </script>
  </head>
  <body><div id="jaeger-ui-root"></div></body>
</html>
"#;

fn write_build(dir: &Path) {
    std::fs::create_dir_all(dir.join("static")).unwrap();
    std::fs::write(dir.join("index.html"), INDEX).unwrap();
    std::fs::write(dir.join("static/index-abc.js"), "console.log('ui');\n").unwrap();
}

async fn serve(metrics: bool, ui: JaegerUi) -> (LoopbackServer, String) {
    let mut options = StoreOptions::new(Duration::from_secs(3600));
    if !metrics {
        options.metrics = None;
    }
    let store = Arc::new(Store::in_memory_with(&options));
    let options = ServeOptions {
        jaeger_ui: Some(ui),
        ..ServeOptions::new(1 << 20)
    };
    let server = LoopbackServer::start_with(store, options).await.unwrap();
    let base = format!("http://{}", server.addresses.query_http);
    (server, base)
}

async fn get(url: &str) -> (u16, String, String) {
    meshtrace_testkit::http::parts(reqwest::Client::new().get(url)).await
}

/// The index page of a build served with the UI config file `name` holding `text`.
async fn index_with_config(name: &str, text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_build(dir.path());
    let config = dir.path().join(name);
    std::fs::write(&config, text).unwrap();
    let (server, base) = serve(true, JaegerUi::load(dir.path(), Some(&config)).unwrap()).await;
    let (_, _, body) = get(&format!("{base}/")).await;
    server.stop().await.unwrap();
    body
}

/// A request written as given, path and all (clients normalise `..` away).
fn raw_get(base: &str, path: &str) -> String {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_path_gets_the_index_with_the_backend_facts() {
    let dir = tempfile::tempdir().unwrap();
    write_build(dir.path());
    let ui = JaegerUi::load(dir.path(), None).unwrap();
    let (server, base) = serve(true, ui).await;
    for path in [
        "/",
        "/search",
        "/monitor",
        "/trace/0af7651916cd43dd8448eb211c80319c",
    ] {
        let (status, content_type, body) = get(&format!("{base}{path}")).await;
        assert_eq!(
            (status, content_type.as_str()),
            (200, "text/html; charset=utf-8"),
            "{path}"
        );
        assert!(
            body.contains(
                r#"const JAEGER_STORAGE_CAPABILITIES = {"archiveStorage":true,"metricsStorage":true};"#
            ),
            "{body}"
        );
        assert!(body.contains(
            r#"const JAEGER_BACKEND_CAPABILITIES = {"archiveStorage":true,"metricsStorage":true,"searchWithoutServiceName":false,"aiAssistant":false};"#
        ));
        assert!(
            body.contains(r#"const JAEGER_VERSION = {"gitCommit":"","gitVersion":"meshtrace "#)
        );
        // No config given: the UI keeps its defaults.
        assert!(body.contains("const JAEGER_CONFIG = DEFAULT_CONFIG;"));
        assert!(body.contains("// JAEGER_CONFIG_JS"));
    }
    // The files, and the API beside them.
    let (status, _, body) = get(&format!("{base}/static/index-abc.js")).await;
    assert_eq!((status, body.as_str()), (200, "console.log('ui');\n"));
    let (status, _, _) = get(&format!("{base}/static/missing.js")).await;
    assert_eq!(status, 404);
    let (status, _, body) = get(&format!("{base}/api/services")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with(r#"{"data":"#), "{body}");
    let (status, _, body) = get(&format!("{base}/api/no-such-route")).await;
    assert_eq!((status, body.as_str()), (404, "404 page not found\n"));
    let response = reqwest::Client::new()
        .post(format!("{base}/search"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_derived_metrics_the_monitor_tab_stays_hidden() {
    let dir = tempfile::tempdir().unwrap();
    write_build(dir.path());
    let (server, base) = serve(false, JaegerUi::load(dir.path(), None).unwrap()).await;
    let (_, _, body) = get(&format!("{base}/monitor")).await;
    assert!(body.contains(
        r#"const JAEGER_STORAGE_CAPABILITIES = {"archiveStorage":true,"metricsStorage":false};"#
    ));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_out_of_the_build_are_not_served() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "not for the browser").unwrap();
    let dir = outside.path().join("ui");
    write_build(&dir);
    let (server, base) = serve(true, JaegerUi::load(&dir, None).unwrap()).await;
    for path in [
        "/static/../../secret.txt",
        "/static/..%2f..%2fsecret.txt",
        "/static/%2e%2e/%2e%2e/secret.txt",
        "/static//etc/passwd",
    ] {
        let answer = raw_get(&base, path);
        assert!(!answer.contains("not for the browser"), "{path}: {answer}");
        assert!(!answer.contains("root:"), "{path}: {answer}");
        assert!(
            answer.starts_with("HTTP/1.1 404") || answer.starts_with("HTTP/1.1 400"),
            "{path}: {answer}"
        );
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_json_config_is_written_in_and_cannot_close_the_script() {
    let body = index_with_config(
        "ui-config.json",
        r#"{"monitor": {"menuEnabled": true}, "menu": [{"label": "</script><script>alert(1)</script>", "url": "https://example.com"}]}"#,
    )
    .await;
    assert!(!body.contains("<script>alert"), "{body}");
    let start = body.find("const JAEGER_CONFIG = ").unwrap() + "const JAEGER_CONFIG = ".len();
    let end = start + body[start..].find(";\n").unwrap();
    let written: serde_json::Value = serde_json::from_str(&body[start..end]).unwrap();
    assert_eq!(
        written["menu"][0]["label"],
        "</script><script>alert(1)</script>"
    );
    assert_eq!(written["monitor"]["menuEnabled"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_js_config_replaces_the_marker_line_and_the_next() {
    let body = index_with_config(
        "ui-config.js",
        "function UIConfig() { return { archiveEnabled: true }; }",
    )
    .await;
    assert!(!body.contains("JAEGER_CONFIG_JS"), "{body}");
    assert!(body.contains("function UIConfig() { return { archiveEnabled: true }; }\n"));
    assert!(body.contains("function getJaegerUiConfig()"));
}

#[test]
fn a_build_or_config_that_cannot_be_served_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let error = JaegerUi::load(dir.path(), None).unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "cannot read {}",
            dir.path().join("index.html").display()
        )),
        "{error}"
    );
    write_build(dir.path());
    let cases = [
        ("ui.json", "[1, 2]", "is not a JSON object"),
        ("ui.json", "{\"a\": ", "is not a JSON object"),
        ("ui.yaml", "a: 1", "must end in .json or .js"),
    ];
    for (name, text, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let error = JaegerUi::load(dir.path(), Some(&path))
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{name}: {error}");
    }
    let big = dir.path().join("big.json");
    std::fs::write(&big, vec![b' '; (1 << 20) + 1]).unwrap();
    let error = JaegerUi::load(dir.path(), Some(&big))
        .unwrap_err()
        .to_string();
    assert!(error.contains("is larger than"), "{error}");
    std::fs::write(dir.path().join("index.html"), [0xff, 0xfe, 0x00]).unwrap();
    let error = JaegerUi::load(dir.path(), None).unwrap_err().to_string();
    assert!(error.ends_with("is not UTF-8 text"), "{error}");
}
