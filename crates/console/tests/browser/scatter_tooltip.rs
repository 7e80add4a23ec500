//! The Traces tab scatter's tooltip in Chromium (Kiali's `TraceTooltip`): 400 ms on a point, or
//! its keyboard focus, shows the trace's compact "Compared with metrics" map (avg, p50, p90 over
//! 60m and 3h), its duration and "N spans, avg=…". The setup is `compare_metrics`' (traces from
//! one store, metrics from another's `/prometheus`); the expected cells are computed here from
//! `POST /api/stats/metrics` and the trace's spans as the traces route answers them.

use std::time::Duration;

use fantoccini::actions::{InputSource, MouseActions, PointerAction};
use fantoccini::{Client, Locator};
use meshtrace_model::{KeyValue, Span, SpanId, TraceId};
use meshtrace_testkit::now;
use serde_json::{Value, json};

use crate::compare_metrics::{Setup, cells, close, envoy_spans, mean_difference, post_stats};
use crate::page::{assert_no_script_ran, attr, goto, present, text, wait_for};

const MARKUP_TRACE: u128 = 0x0c0a_0000_0000_0000_0000_0000_0000_0011;
const MARKUP_NAME: &str = "<img src=x onerror=window.pwned=5>GET /tip";
/// A trace of one span that went through no Envoy proxy.
const PLAIN_TRACE: u128 = 0x0c0a_0000_0000_0000_0000_0000_0000_0012;

fn span(trace: u128, operation: &str, tags: Vec<KeyValue>, duration: u64) -> Span {
    Span {
        trace_id: TraceId(trace),
        span_id: SpanId(1),
        operation_name: operation.into(),
        references: vec![],
        flags: 1,
        start_time: now() - 15_000_000,
        duration,
        tags,
        logs: vec![],
        process: meshtrace_testkit::process("reviews.bookinfo", vec![]),
        warnings: vec![],
    }
}

/// A reviews-v1 server span (it has metrics) named with markup; and a span of no proxy.
fn extra_traces() -> Vec<Span> {
    let envoy = vec![
        KeyValue::string("span.kind", "server"),
        KeyValue::string("component", "proxy"),
        KeyValue::string(
            "node_id",
            "sidecar~10.0.0.9~reviews-v1-5d9b4c9849-lq7m2.bookinfo~bookinfo.svc.cluster.local",
        ),
        KeyValue::string("upstream_cluster", "inbound|9080||"),
    ];
    vec![
        span(MARKUP_TRACE, MARKUP_NAME, envoy, 7_000),
        span(
            PLAIN_TRACE,
            "work",
            vec![KeyValue::string("span.kind", "internal")],
            2_500,
        ),
    ]
}

/// The tooltip's compact queries for `targets` at `time`: Kiali's, written out here.
fn compact_queries(targets: &[(String, String, &str)], time: u64) -> Vec<Value> {
    let mut queries = Vec::new();
    for (ns, workload, direction) in targets {
        for interval in ["60m", "3h"] {
            queries.push(json!({
                "target": {"namespace": ns, "name": workload, "kind": "workload"},
                "queryTime": time, "interval": interval, "direction": direction,
                "avg": true, "quantiles": ["0.5", "0.9"],
            }));
        }
    }
    queries
}

/// µs from a duration as the console writes it (`850µs`, `12.3ms`, `1.25s`), and the
/// precision it was written with.
fn micros(shown: &str) -> (f64, f64) {
    let (number, scale, precision) = if let Some(n) = shown.strip_suffix("µs") {
        (n, 1.0, 1.0)
    } else if let Some(n) = shown.strip_suffix("ms") {
        (n, 1e3, 50.0)
    } else if let Some(n) = shown.strip_suffix('s') {
        (n, 1e6, 5_000.0)
    } else {
        panic!("not a duration: {shown}")
    };
    let value: f64 = number.parse().unwrap_or_else(|_| panic!("{shown}"));
    (value * scale, precision)
}

fn assert_duration(shown: &str, expected_us: f64) {
    let (value, precision) = micros(shown);
    assert!(
        (value - expected_us).abs() <= precision,
        "{shown} is not {expected_us}µs"
    );
}

/// The tooltip, once its fragment for `id` is shown.
async fn tooltip_for(client: &Client, id: &str) -> String {
    let css = format!("#trace-tooltip .trace-tooltip[data-trace-id='{id}']");
    wait_for(client, &css).await;
    assert_eq!(attr(client, "#trace-tooltip", "hidden").await, None);
    css
}

async fn hidden(client: &Client) -> bool {
    attr(client, "#trace-tooltip", "hidden").await.is_some()
}

/// How many times the page asked for a tooltip.
async fn tooltip_requests(client: &Client) -> u64 {
    client
        .execute(
            "return performance.getEntriesByType('resource')\
             .filter(e => e.name.includes('/tooltip')).length;",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

/// Moves the pointer onto `css`'s centre, waits `stay`, then moves it to the page's corner.
async fn hover(client: &Client, css: &str, stay: Option<Duration>) {
    let element = client.find(Locator::Css(css)).await.unwrap();
    let mut mouse = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element,
        duration: None,
        x: 0.0,
        y: 0.0,
    });
    if let Some(stay) = stay {
        mouse = mouse.pause(stay).then(PointerAction::MoveTo {
            duration: None,
            x: 1.0,
            y: 1.0,
        });
    }
    client.perform_actions(mouse).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn hovering_a_point_shows_the_compact_map_of_the_stats_route() {
    let setup = Setup::start(extra_traces()).await;
    let (c, client) = (setup.console, &setup.browser.client);
    let page = format!("http://{c}/console/namespaces/bookinfo/workloads/reviews-v1");

    let trace = crate::page::reviews_trace(c, 100, MARKUP_TRACE).await;
    let markup = format!("{MARKUP_TRACE:032x}");
    let id = crate::page::trace_id(&trace);
    // The selected trace's point is drawn last: nothing covers it.
    goto(client, &format!("{page}?tab=traces&limit=100&traceId={id}")).await;
    let point = format!("#scatter circle.selected[data-trace-id='{id}']");
    // With the script, the browser's own tooltip gives way; the label stays for readers.
    assert!(!present(client, &format!("{point} title")).await);

    // ---- leaving before 400 ms: nothing asked, nothing shown ----
    hover(client, &point, Some(Duration::from_millis(50))).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(hidden(client).await);
    assert_eq!(tooltip_requests(client).await, 0);

    // ---- staying: the compact map, the duration, the spans ----
    let before = now() / 1_000_000;
    hover(client, &point, None).await;
    let tip = tooltip_for(client, &id).await;
    let after = now() / 1_000_000;
    let shown = cells(client, &format!("{tip} .metrics-heatmap")).await;
    let labels: Vec<(String, String)> = shown.keys().cloned().collect();
    let expected_labels: Vec<(String, String)> = ["3h", "60m"]
        .iter()
        .flat_map(|i| ["avg", "p50", "p90"].map(|s| (i.to_string(), s.to_string())))
        .collect();
    assert_eq!(labels, expected_labels);
    let envoy = envoy_spans(&trace);
    let targets: Vec<(String, String, &str)> = envoy.iter().map(|(_, t)| t.clone()).collect();
    let mut matched = false;
    for time in before..=after {
        let answer = post_stats(c, compact_queries(&targets, time)).await;
        matched |= ["60m", "3h"].iter().all(|interval| {
            [("avg", "avg"), ("0.5", "p50"), ("0.9", "p90")]
                .iter()
                .all(|(name, label)| {
                    close(
                        &shown[&(interval.to_string(), label.to_string())],
                        mean_difference(&envoy, &answer, interval, name),
                    )
                })
        });
    }
    assert!(
        matched,
        "no query time in {before}..={after} gives {shown:?}"
    );
    // Duration and "N spans, avg=…" from the spans the traces route answers.
    let spans = trace["spans"].as_array().unwrap();
    let start = |s: &Value| s["startTime"].as_f64().unwrap();
    let end = |s: &Value| start(s) + s["duration"].as_f64().unwrap();
    let first = spans.iter().map(start).fold(f64::MAX, f64::min);
    let last = spans.iter().map(end).fold(0.0, f64::max);
    assert_duration(
        &text(client, &format!("{tip} .tt-duration")).await,
        last - first,
    );
    let line = text(client, &format!("{tip} .tt-spans")).await;
    let (count, average) = line
        .split_once(" spans, avg=")
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(count, spans.len().to_string());
    let total: f64 = spans.iter().map(|s| s["duration"].as_f64().unwrap()).sum();
    assert_duration(average, total / spans.len() as f64);
    // Leaving hides it.
    client
        .perform_actions(
            MouseActions::new("mouse".into()).then(PointerAction::MoveTo {
                duration: None,
                x: 1.0,
                y: 1.0,
            }),
        )
        .await
        .unwrap();
    for _ in 0..100 {
        if hidden(client).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(hidden(client).await);

    // ---- keyboard focus: the trace named with markup shows it as text ----
    client
        .execute(
            "document.querySelector(arguments[0]).closest('a').focus();",
            vec![json!(format!("#scatter circle[data-trace-id='{markup}']"))],
        )
        .await
        .unwrap();
    let tip = tooltip_for(client, &markup).await;
    assert_eq!(text(client, &format!("{tip} .tt-title")).await, MARKUP_NAME);
    assert!(!present(client, "#trace-tooltip img").await);
    assert_eq!(
        text(client, &format!("{tip} .tt-spans")).await,
        "1 span, avg=7.0ms"
    );
    let avg =
        &cells(client, &format!("{tip} .metrics-heatmap")).await[&("60m".into(), "avg".into())];
    assert!(avg.parse::<f64>().is_ok(), "reviews-v1 has stats: {avg}");
    assert_no_script_ran(client).await;

    // ---- the route: a trace without Envoy spans, bad and unknown IDs ----
    let http = reqwest::Client::new();
    let get = |path: String| {
        http.get(format!("http://{c}/console/traces/{path}/tooltip"))
            .send()
    };
    let plain = get(format!("{PLAIN_TRACE:x}")).await.unwrap();
    assert_eq!(plain.status(), 200);
    assert!(
        plain.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = plain.text().await.unwrap();
    assert!(html.contains(r#"<span class="tt-na">n/a</span>"#), "{html}");
    assert!(html.contains("1 span, avg=2.5ms"), "{html}");
    assert!(!html.contains("metrics-heatmap"), "{html}");
    for bad in ["xyz", &"a".repeat(33), "%3Cb%3E", "0"] {
        assert_eq!(get(bad.to_string()).await.unwrap().status(), 400, "{bad}");
    }
    assert_eq!(get("abc123".into()).await.unwrap().status(), 404);
}
