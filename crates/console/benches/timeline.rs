//! The trace timeline at 1,000, 10,000 and 100,000 spans: generated traces written to a real
//! store, read by a real console over Jaeger gRPC, opened in a real headless Chromium
//! (chromedriver must be on the PATH, as in the browser tests).
//!
//! Run: `cargo bench -p meshtrace-console --bench timeline` (`ROUNDS=N`, default 3).
//!
//! For each size it reports, as medians over the rounds (a new trace each round, so the
//! console's trace cache never helps the first request):
//! - page: the HTML page served (the console reads the trace from the store), measured before
//!   the browser starts, so Chromium's work does not share the two cores;
//! - data: the timeline's JSON served (from the console's cache, as the page's script gets it);
//! - interactive: from navigation to the waterfall drawn and usable, in Chromium, on a second
//!   console that has not read the trace yet;
//! - rows: waterfall rows in the DOM once drawn;
//! - scroll: the slowest of 60 scroll steps through the whole trace, each step a frame.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use meshtrace_console::{Console, ConsoleOptions};
use meshtrace_model::{KeyValue, Process, RefType, Span, SpanId, SpanRef, TraceId};
use meshtrace_store::Store;
use meshtrace_store::server::LoopbackServer;

const SERVICES: [&str; 6] = [
    "istio-ingressgateway.istio-system",
    "productpage.bookinfo",
    "reviews.bookinfo",
    "ratings.bookinfo",
    "details.bookinfo",
    "mongodb.bookinfo",
];

/// A trace of `n` spans: each span has up to 8 children, breadth first, children inside their
/// parent's time, a few Istio tags each, every 50th span failing.
fn trace(id: u128, n: usize) -> Vec<Span> {
    let processes: Vec<Arc<Process>> = SERVICES
        .iter()
        .map(|s| {
            Arc::new(Process {
                service_name: s.to_string(),
                tags: vec![KeyValue::string(
                    "hostname",
                    format!("{s}-v1-7d8f9c6b5-x2kqp"),
                )],
            })
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64;
    let mut spans: Vec<Span> = Vec::with_capacity(n);
    for i in 0..n {
        let (parent, start, duration) = if i == 0 {
            (None, now - 60_000_000, 30_000_000)
        } else {
            let p = (i - 1) / 8;
            let parent: &Span = &spans[p];
            let slot = ((i - 1) % 8) as u64;
            let width = parent.duration / 9;
            (
                Some(parent.span_id),
                parent.start_time + slot * width + width / 10,
                (width * 8 / 10).max(1),
            )
        };
        let service = i % SERVICES.len();
        let mut tags = vec![
            KeyValue::string("span.kind", if i % 2 == 0 { "server" } else { "client" }),
            KeyValue::string("component", "proxy"),
            KeyValue::string("http.method", "GET"),
            KeyValue::string("http.status_code", if i % 50 == 49 { "503" } else { "200" }),
            KeyValue::string(
                "upstream_cluster",
                "outbound|9080||reviews.bookinfo.svc.cluster.local",
            ),
        ];
        if i % 50 == 49 {
            tags.push(KeyValue::string("error", "true"));
        }
        spans.push(Span {
            trace_id: TraceId(id),
            span_id: SpanId(i as u64 + 1),
            operation_name: format!("{}:9080/op{}", SERVICES[service], i % 40),
            references: parent
                .map(|p| SpanRef {
                    ref_type: RefType::ChildOf,
                    trace_id: TraceId(id),
                    span_id: p,
                })
                .into_iter()
                .collect(),
            flags: 1,
            start_time: start,
            duration,
            tags,
            logs: vec![],
            process: processes[service].clone(),
            warnings: vec![],
        });
    }
    spans
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let sizes = [1_000usize, 10_000, 100_000];
    let store = Arc::new(Store::in_memory(Duration::from_secs(3600)));
    for (s, &n) in sizes.iter().enumerate() {
        for r in 0..rounds {
            store
                .write(&trace(((s as u128) << 32) | r as u128 | 1 << 100, n))
                .unwrap();
        }
    }
    let server = LoopbackServer::start(store, 64 << 20).await.unwrap();
    let config = meshtrace_config::load_str(&format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: http://{}\n    use_grpc: true\n    query_timeout: 30\n",
        server.addresses.query_grpc
    ))
    .unwrap()
    .config;
    // One console for the HTTP measures, another (with an empty trace cache) for the browser.
    let mut consoles = Vec::new();
    for _ in 0..2 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        consoles.push(listener.local_addr().unwrap());
        tokio::spawn(
            // No background inventory: it would read these huge traces meanwhile.
            Console::new(
                config.clone(),
                ConsoleOptions {
                    background_inventory: false,
                    ..ConsoleOptions::default()
                },
            )
            .serve(listener, std::future::pending()),
        );
    }
    let http = reqwest::Client::new();
    let mut served = Vec::new();
    for s in 0..sizes.len() {
        let (mut page, mut data) = (vec![], vec![]);
        let mut bytes = 0;
        for r in 0..rounds {
            let id = TraceId(((s as u128) << 32) | r as u128 | 1 << 100).to_hex32();
            let url = format!("http://{}/console/traces/{id}", consoles[0]);
            let started = Instant::now();
            let html = http.get(&url).send().await.unwrap();
            assert!(html.status().is_success(), "{}", html.status());
            html.bytes().await.unwrap();
            page.push(started.elapsed().as_secs_f64() * 1e3);
            let started = Instant::now();
            let json = http
                .get(format!("{url}/timeline.json"))
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            data.push(started.elapsed().as_secs_f64() * 1e3);
            bytes = json.len();
        }
        served.push((median(page), median(data), bytes));
    }
    let console = consoles[1];

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut driver = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver on the PATH");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let profile = tempfile::tempdir().unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"binary": "/usr/bin/chromium", "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--window-size=1280,1000",
            format!("--user-data-dir={}", profile.path().display()),
        ]}),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a Chromium session");

    println!(
        "size      page        data (bytes)          interactive   rows   slowest scroll step"
    );
    for (s, &n) in sizes.iter().enumerate() {
        let (mut interactive, mut scroll) = (vec![], vec![]);
        let mut rows = 0;
        for r in 0..rounds {
            let id = TraceId(((s as u128) << 32) | r as u128 | 1 << 100).to_hex32();
            let url = format!("http://{console}/console/traces/{id}");
            // The console has not read this trace yet: its fetch is part of the measure.
            let started = Instant::now();
            client.goto(&url).await.unwrap();
            loop {
                let ready = client
                    .find(Locator::Css("#timeline"))
                    .await
                    .unwrap()
                    .attr("data-ready")
                    .await
                    .unwrap();
                if ready.as_deref() == Some("true") {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the timeline never got ready"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            interactive.push(started.elapsed().as_secs_f64() * 1e3);
            rows = client
                .find_all(Locator::Css(".wf-row"))
                .await
                .unwrap()
                .len();
            let slowest = client
                .execute_async(
                    "const done = arguments[arguments.length - 1];
                     const w = document.getElementById('waterfall');
                     document.getElementById('expand-all').click();
                     let step = 0, slowest = 0, last = performance.now();
                     const total = w.scrollHeight - w.clientHeight;
                     function frame(t) {
                       slowest = Math.max(slowest, t - last); last = t;
                       if (step++ === 60) { done(slowest); return; }
                       w.scrollTop = total * step / 60;
                       requestAnimationFrame(frame);
                     }
                     requestAnimationFrame((t) => { last = t; requestAnimationFrame(frame); });",
                    vec![],
                )
                .await
                .unwrap();
            scroll.push(slowest.as_f64().unwrap_or(f64::NAN));
        }
        let (page, data, bytes) = served[s];
        println!(
            "{n:>7}  {page:>7.1} ms  {data:>7.1} ms ({bytes:>9})  {:>8.1} ms  {rows:>5}  {:>8.1} ms",
            median(interactive),
            median(scroll)
        );
    }
    client.close().await.unwrap();
    let _ = driver.kill();
    let _ = driver.wait();
}
