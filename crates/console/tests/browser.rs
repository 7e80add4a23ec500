//! The web console in a real browser: headless Chromium (Debian's `chromium`), driven over
//! WebDriver (`chromedriver`) with fantoccini, against consoles started on loopback ports in
//! front of a real store filled by the simulator. `./scripts/test` installs both packages; without
//! them the tests fail with a message naming the package to install.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
mod common;

use meshtrace_console::ConsoleOptions;
use meshtrace_model::{KeyValue, Process, Span, SpanId, TraceId};
use meshtrace_store::server::LoopbackServer;
use serde_json::Value;

const XSS_OPERATION: &str = "<script>window.pwned=1</script>GET /xss";
const XSS_TAG: &str = "<script>alert(1)</script><img src=x onerror=\"window.pwned=2\">";
const XSS_TRACE: u128 = 0x0bad_0000_0000_0000_0000_0000_0000_0001;

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

/// A span whose operation and tag try to run script in the page.
fn hostile_span() -> Span {
    Span {
        trace_id: TraceId(XSS_TRACE),
        span_id: SpanId(1),
        operation_name: XSS_OPERATION.into(),
        references: vec![],
        flags: 1,
        start_time: now() - 30_000_000,
        duration: 4_000,
        tags: vec![
            KeyValue::string("span.kind", "server"),
            KeyValue::string("evil", XSS_TAG),
        ],
        logs: vec![meshtrace_model::Log {
            timestamp: now() - 29_999_000,
            fields: vec![
                KeyValue::string("event", "retry"),
                KeyValue::string("message", XSS_TAG),
            ],
        }],
        process: Arc::new(Process {
            service_name: "productpage.bookinfo".into(),
            tags: vec![],
        }),
        warnings: vec![],
    }
}

async fn filled_store() -> LoopbackServer {
    common::filled_store(150, 1, 11, &[hostile_span()]).await
}

async fn console(yaml: &str) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    console_at(|_| yaml.to_string()).await
}

/// A console whose configuration may name its own address (`external_url` pointing at it).
async fn console_at(
    yaml: impl FnOnce(SocketAddr) -> String,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    common::start_console(ConsoleOptions::default(), yaml).await
}

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    /// Stops chromedriver and the Chromium it started (its own process group), also when a
    /// test failed before closing the session.
    fn drop(&mut self) {
        // `--` so that the negative process-group ID is not read as an option.
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's Chromium, where its package puts it.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Fails, naming the Debian package, when a program the browser tests need is not installed.
fn require_installed() {
    if !std::path::Path::new(CHROMIUM).exists() {
        panic!(
            "Chromium is not installed ({CHROMIUM} is missing): install Debian's package \
             `chromium` (`apt-get install chromium`; ./scripts/test installs it)"
        );
    }
}

async fn browser() -> (Driver, Client, tempfile::TempDir) {
    require_installed();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start chromedriver ({e}): install Debian's package `chromium-driver` \
                 (`apt-get install chromium-driver`; ./scripts/test installs it)"
            )
        });
    let driver = Driver { child, port };
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", driver.port))
            .await
            .is_ok()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session starts");
    (driver, client, profile)
}

fn tracing_yaml(body: &str) -> String {
    format!("external_services:\n  tracing:\n    enabled: true\n{body}")
}

async fn attr(client: &Client, css: &str, name: &str) -> Option<String> {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .attr(name)
        .await
        .unwrap()
}

/// The same for polling while a page may be changing under it: any error is "not yet".
async fn try_attr(client: &Client, css: &str, name: &str) -> Option<String> {
    client
        .find(Locator::Css(css))
        .await
        .ok()?
        .attr(name)
        .await
        .ok()?
}

async fn click(client: &Client, css: &str) {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

async fn present(client: &Client, css: &str) -> bool {
    client
        .find_all(Locator::Css(css))
        .await
        .is_ok_and(|found| !found.is_empty())
}

/// Waits until the page's URL holds `needle` (a navigation the page's script started).
async fn wait_for_url(client: &Client, needle: &str) {
    for _ in 0..400 {
        if client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains(needle)
        {
            // The new page is loaded once its scatter or state is there.
            if present(client, "#traces").await {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page never went to a URL with `{needle}`");
}

/// The trace IDs of the scatter's points, and of its error points.
async fn points(client: &Client) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut all = BTreeSet::new();
    let mut errors = BTreeSet::new();
    for circle in client
        .find_all(Locator::Css("#scatter circle"))
        .await
        .unwrap()
    {
        let id = circle.attr("data-trace-id").await.unwrap().unwrap();
        if circle
            .attr("class")
            .await
            .unwrap()
            .unwrap()
            .contains("error")
        {
            errors.insert(id.clone());
        }
        all.insert(id);
    }
    (all, errors)
}

async fn api_ids(console: SocketAddr, query: &str) -> BTreeSet<String> {
    let body: Value = reqwest::get(format!(
        "http://{console}/api/namespaces/bookinfo/apps/productpage/traces?{query}"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| format!("{:0>32}", t["traceID"].as_str().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_chromium() {
    let store = filled_store().await;
    let grpc = store.addresses.query_grpc;
    let (driver, client, _profile) = browser().await;
    let _keep = &driver;

    // ---- native charts and external links (internal_url and external_url) ----
    let (full, _stop_full) = console(&tracing_yaml(&format!(
        "    internal_url: http://{grpc}\n    use_grpc: true\n    external_url: http://jaeger.example.com\n"
    )))
    .await;
    let base = format!("http://{full}");
    client.goto(&format!("{base}/")).await.unwrap();
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("/console/overview")
    );
    assert_eq!(
        attr(&client, "#nav-tracing", "href").await.as_deref(),
        Some("http://jaeger.example.com")
    );
    assert_eq!(
        attr(&client, "#nav-tracing", "target").await.as_deref(),
        Some("_blank")
    );
    let rows = client
        .find_all(Locator::Css("#namespaces tbody tr"))
        .await
        .unwrap();
    assert!(rows.len() >= 2, "the overview lists the namespaces");

    // The Traces tab's points are the API's traces.
    let page = format!("{base}/console/namespaces/bookinfo/applications/productpage");
    client
        .goto(&format!("{page}?tab=traces&limit=500"))
        .await
        .unwrap();
    let (shown, shown_errors) = points(&client).await;
    let expected = api_ids(full, "limit=500").await;
    assert_eq!(shown, expected);
    assert!(shown.contains(&format!("{XSS_TRACE:032x}")));
    assert!(!shown_errors.is_empty() && shown_errors.len() < shown.len());

    // Clicking a point shows that trace's details.
    // The last point drawn is on top of any it overlaps: errors are drawn after the others.
    let mut chosen = String::new();
    for circle in client
        .find_all(Locator::Css("#scatter circle.error"))
        .await
        .unwrap()
    {
        chosen = circle.attr("data-trace-id").await.unwrap().unwrap();
    }
    click(&client, &format!("circle[data-trace-id='{chosen}']")).await;
    assert_eq!(
        attr(&client, "#trace-details", "data-trace-id")
            .await
            .as_deref(),
        Some(chosen.as_str())
    );
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .contains(&format!("traceId={chosen}"))
    );
    let errors_label = client
        .find(Locator::Css("#error-count"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!errors_label.starts_with("0 "), "{errors_label}");
    let view = attr(&client, "#trace-in-tracing", "href").await.unwrap();
    assert_eq!(view, format!("http://jaeger.example.com/trace/{chosen}"));
    assert!(
        attr(
            &client,
            &format!("circle[data-trace-id='{chosen}']"),
            "class"
        )
        .await
        .unwrap()
        .contains("selected")
    );

    // Errors only: the checkbox applies at once (JS) and leaves only error traces.
    click(&client, "input[name=errs]").await;
    wait_for_url(&client, "errs=true").await;
    let (only, only_errors) = points(&client).await;
    assert_eq!(only, only_errors, "every point is an error trace");
    let expected = api_ids(full, "limit=500&tags=%7B%22error%22%3A%22true%22%7D").await;
    assert_eq!(only, expected);

    // Hostile span content is shown as text and never runs.
    client
        .goto(&format!(
            "{page}?tab=traces&limit=500&traceId={XSS_TRACE:032x}"
        ))
        .await
        .unwrap();
    let name = client
        .find(Locator::Css("#trace-name"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(name, XSS_OPERATION);
    let pwned = client
        .execute("return typeof window.pwned;", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, Value::String("undefined".into()));
    assert!(client.get_alert_text().await.is_err(), "no alert is open");

    // ---- links only (external_url, no internal_url) ----
    let (links, _stop_links) = console(&tracing_yaml(
        "    external_url: http://jaeger.example.com\n",
    ))
    .await;
    client
        .goto(&format!(
            "http://{links}/console/namespaces/bookinfo/workloads/reviews-v2?tab=traces"
        ))
        .await
        .unwrap();
    assert!(
        !present(&client, "#tab-traces").await,
        "no Traces tab without internal_url"
    );
    assert!(!present(&client, "#scatter").await);
    assert_eq!(
        attr(&client, "#view-in-tracing", "href").await.as_deref(),
        Some("http://jaeger.example.com/search?service=reviews.bookinfo")
    );
    assert_eq!(
        attr(&client, "#nav-tracing", "href").await.as_deref(),
        Some("http://jaeger.example.com")
    );

    // ---- tracing disabled: neither ----
    let (off, _stop_off) = console("external_services:\n  tracing:\n    enabled: false\n    external_url: http://jaeger.example.com\n").await;
    client
        .goto(&format!(
            "http://{off}/console/namespaces/bookinfo/applications/productpage"
        ))
        .await
        .unwrap();
    assert!(!present(&client, "#nav-tracing").await);
    assert!(!present(&client, "#tab-traces").await);
    assert!(!present(&client, "#view-in-tracing").await);

    // ---- Tempo: the menu item goes to Grafana or the OpenShift console ----
    let (grafana, _stop_grafana) = console(&tracing_yaml(
        "    provider: tempo\n    external_url: http://grafana.example.com\n    tempo_config:\n      datasource_uid: tempo-ds\n",
    ))
    .await;
    client
        .goto(&format!("http://{grafana}/console/overview"))
        .await
        .unwrap();
    let home = attr(&client, "#nav-tracing", "href").await.unwrap();
    assert!(
        home.starts_with("http://grafana.example.com/explore?panes="),
        "{home}"
    );
    assert!(home.contains("tempo-ds"), "{home}");
    let (openshift, _stop_openshift) = console(&tracing_yaml(
        "    provider: tempo\n    external_url: https://console.example.com\n    tempo_config:\n      url_format: openshift\n",
    ))
    .await;
    client
        .goto(&format!("http://{openshift}/console/overview"))
        .await
        .unwrap();
    assert_eq!(
        attr(&client, "#nav-tracing", "href").await.as_deref(),
        Some(
            "https://console.example.com/observe/traces?namespace=tempo&name=sample&tenant=default"
        )
    );

    client.close().await.unwrap();
}

async fn text(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

/// Waits until the page (after a form was sent) has the element.
async fn wait_for(client: &Client, css: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"));
}

/// Waits until the timeline's script has drawn the trace.
async fn timeline_ready(client: &Client) {
    // Generous: CI machines are slow and other tests share them.
    for _ in 0..800 {
        if try_attr(client, "#timeline", "data-ready").await.as_deref() == Some("true") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the timeline never got ready");
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_timeline_tester_and_links_in_chromium() {
    let store = filled_store().await;
    let grpc = store.addresses.query_grpc;
    let (driver, client, _profile) = browser().await;
    let _keep = &driver;
    // As in the demo: external_url is the console itself, whose /jaeger pages answer the links.
    let (c, _stop) = console_at(|c| {
        tracing_yaml(&format!(
            "    internal_url: http://{grpc}\n    use_grpc: true\n    external_url: http://{c}/jaeger\n"
        ))
    })
    .await;
    let base = format!("http://{c}");
    let page = format!("{base}/console/namespaces/bookinfo/applications/productpage");

    // ---- the span table: filters change the rows and the counts ----
    // The error trace with the most spans.
    let body: Value = reqwest::get(format!(
        "{base}/api/namespaces/bookinfo/apps/productpage/traces?limit=500&tags=%7B%22error%22%3A%22true%22%7D"
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let id = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|t| t["spans"].as_array().unwrap().len())
        .map(|t| format!("{:0>32}", t["traceID"].as_str().unwrap()))
        .unwrap();
    client
        .goto(&format!("{page}?tab=traces&limit=500&traceId={id}"))
        .await
        .unwrap();
    let rows = client
        .find_all(Locator::Css("#span-table tr.span-row"))
        .await
        .unwrap()
        .len();
    let count = text(&client, "#span-count-filtered").await;
    assert_eq!(count, format!("{rows} / {rows} spans"));
    assert!(rows > 2);
    // Errors only (the select applies at once).
    client
        .find(Locator::Css("select[name=spanError]"))
        .await
        .unwrap()
        .select_by_value("with")
        .await
        .unwrap();
    wait_for_url(&client, "spanError=with").await;
    let error_rows = client
        .find_all(Locator::Css("#span-table tr.span-row"))
        .await
        .unwrap();
    assert!(!error_rows.is_empty() && error_rows.len() < rows);
    for row in &error_rows {
        assert!(
            row.attr("class")
                .await
                .unwrap()
                .unwrap()
                .contains("has-error")
        );
    }
    assert_eq!(
        text(&client, "#span-count-filtered").await,
        format!("{} / {rows} spans", error_rows.len())
    );

    // ---- an expanded row shows its tags and logs, as text ----
    client
        .goto(&format!(
            "{page}?tab=traces&limit=500&traceId={XSS_TRACE:032x}"
        ))
        .await
        .unwrap();
    click(&client, "#span-table details summary").await;
    let more = text(&client, "#span-table .span-more").await;
    assert!(more.contains("evil"), "{more}");
    assert!(more.contains(XSS_TAG), "{more}");
    assert!(more.contains("event=retry"), "{more}");
    let pwned = client
        .execute("return typeof window.pwned;", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, Value::String("undefined".into()));

    // "More span details" leads to meshtrace's own trace page, the span selected.
    let more_link = attr(&client, "#span-table a.more-details", "href")
        .await
        .unwrap();
    assert_eq!(
        more_link,
        format!("{base}/jaeger/trace/{XSS_TRACE:032x}?uiFind=0000000000000001")
    );
    client.goto(&more_link).await.unwrap();
    timeline_ready(&client).await;
    for _ in 0..100 {
        if try_attr(&client, "#span-panel", "data-span-id")
            .await
            .is_some()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        attr(&client, "#span-panel", "data-span-id")
            .await
            .as_deref(),
        Some("0000000000000001")
    );
    let panel = text(&client, "#span-panel").await;
    assert!(panel.contains(XSS_TAG), "the tag is shown as text: {panel}");

    // ---- the waterfall's bars line up with the spans' start times ----
    let trace: Value = reqwest::get(format!("{base}/api/traces/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let spans = trace["data"]["spans"].as_array().unwrap();
    let start = spans
        .iter()
        .map(|s| s["startTime"].as_u64().unwrap())
        .min()
        .unwrap();
    let end = spans
        .iter()
        .map(|s| s["startTime"].as_u64().unwrap() + s["duration"].as_u64().unwrap())
        .max()
        .unwrap();
    client
        .goto(&format!("{base}/console/traces/{id}"))
        .await
        .unwrap();
    timeline_ready(&client).await;
    let drawn = client
        .execute(
            "return [...document.querySelectorAll('.wf-row')].map(r => [r.dataset.spanId, parseFloat(r.querySelector('.wf-bar').style.left), parseFloat(r.querySelector('.wf-bar').style.width)]);",
            vec![],
        )
        .await
        .unwrap();
    let drawn = drawn.as_array().unwrap();
    assert_eq!(drawn.len(), spans.len(), "a small trace shows every row");
    for row in drawn {
        let span_id = row[0].as_str().unwrap();
        let span = spans.iter().find(|s| s["spanID"] == span_id).unwrap();
        let left =
            (span["startTime"].as_u64().unwrap() - start) as f64 / (end - start) as f64 * 100.0;
        let width = span["duration"].as_u64().unwrap() as f64 / (end - start) as f64 * 100.0;
        assert!(
            (row[1].as_f64().unwrap() - left).abs() < 0.01,
            "{span_id}: {row:?} vs {left}"
        );
        assert!(
            (row[2].as_f64().unwrap() - width.max(0.1)).abs() < 0.01,
            "{span_id}"
        );
    }
    // Search within the trace.
    let search = client.find(Locator::Css("#trace-search")).await.unwrap();
    search.send_keys("ratings").await.unwrap();
    let found = text(&client, "#search-count").await;
    assert!(
        found.ends_with("matching spans") && !found.starts_with("0 "),
        "{found}"
    );

    // ---- the menu item and the links land on meshtrace's own pages ----
    client
        .goto(&format!("{page}?tab=traces&limit=500&traceId={id}"))
        .await
        .unwrap();
    let home = attr(&client, "#nav-tracing", "href").await.unwrap();
    assert_eq!(home, format!("{base}/jaeger"));
    let search_link = attr(&client, "#search-in-tracing", "href").await.unwrap();
    let trace_link = attr(&client, "#trace-in-tracing", "href").await.unwrap();
    assert_eq!(trace_link, format!("{base}/jaeger/trace/{id}"));
    let compare_link = attr(&client, "#compare-in-tracing", "href").await;
    client.goto(&home).await.unwrap();
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .ends_with("/jaeger/search")
    );
    assert!(present(&client, "#search-form").await);
    client.goto(&search_link).await.unwrap();
    let results = client
        .find_all(Locator::Css("#results tbody tr"))
        .await
        .unwrap();
    assert!(
        !results.is_empty(),
        "the search link finds the app's traces"
    );
    client.goto(&trace_link).await.unwrap();
    timeline_ready(&client).await;
    assert_eq!(
        client
            .find_all(Locator::Css(".wf-row"))
            .await
            .unwrap()
            .len(),
        spans.len()
    );
    if let Some(compare) = compare_link {
        client.goto(&compare).await.unwrap();
        let columns = client
            .find_all(Locator::Css("#compare thead th"))
            .await
            .unwrap();
        assert!(columns.len() >= 3, "this trace and at least one similar");
    }

    // ---- the configuration tester: a working and a broken configuration ----
    client.goto(&format!("{base}/")).await.unwrap();
    click(&client, "#tester-link").await;
    assert!(
        text(&client, "#mode")
            .await
            .starts_with("native charts via Jaeger gRPC")
    );
    click(&client, "#run-diagnose").await;
    wait_for(&client, "#diagnose-message").await;
    let message = text(&client, "#diagnose-message").await;
    assert!(
        message.contains("working configuration(s) found"),
        "{message}"
    );
    // The effective configuration, checked as it is: it works.
    click(&client, "#run-check").await;
    wait_for(&client, "#check-result").await;
    assert_eq!(
        attr(&client, "#check-result", "data-ok").await.as_deref(),
        Some("true")
    );
    assert!(
        text(&client, "#check-yaml")
            .await
            .contains(&format!("internal_url: \"http://{grpc}\""))
    );
    // Pointed at another port of the backend's host: refused (the form post from the
    // console's own page passes the cross-origin check).
    let area = client.find(Locator::Id("tester-config")).await.unwrap();
    area.clear().await.unwrap();
    area.send_keys(&format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: http://{}\n    use_grpc: true\n",
        store.addresses.query_http
    ))
    .await
    .unwrap();
    click(&client, "#run-check").await;
    wait_for(&client, "#check-result[data-ok=false]").await;
    assert_eq!(
        attr(&client, "#check-result", "data-ok").await.as_deref(),
        Some("false")
    );
    let result = text(&client, "#check-result").await;
    assert!(
        result.starts_with("refused: the check only reaches the configured backend"),
        "{result}"
    );

    client.close().await.unwrap();
}
