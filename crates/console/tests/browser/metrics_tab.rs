//! The Inbound and Outbound Metrics tabs in Chromium, against a store holding ten minutes of
//! simulated Bookinfo traffic whose `/prometheus` is the console's metrics source: each chart
//! draws the series the metrics route answers for the same request (point counts, and the last
//! value where the chart's own ticks put it), the Spans overlay draws exactly the spans
//! route's spans and opens a trace with the span selected, markup stays text, bad settings
//! name their parameter and a metrics source that is down is named on the tab.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use fantoccini::Client;
use meshtrace_console::ConsoleOptions;
use meshtrace_sim::Options;
use meshtrace_store::server::LoopbackServer;
use meshtrace_testkit::jaeger_json::has_error;
use serde_json::Value;

use crate::page::{
    all, assert_attr, assert_no_script_ran, get_json, goto, marked, parsed, present,
    span_panel_shown, text, timeline_ready, try_attr, url,
};
use crate::{XSS_OPERATION, common, driver, hostile_span};

/// The Spans overlay's points.
const SPAN_POINTS: &str = "#chart-request_duration_millis circle.span-point";

/// 540 simulated requests, one each second from ten minutes ago to a minute ago, and the
/// hostile span.
async fn store_with_traffic() -> LoopbackServer {
    let options = Options {
        error_rate: 0.2,
        ..Options::default()
    };
    let mut spans = vec![hostile_span()];
    spans.extend(common::bookinfo_each_second(5, options, 540));
    common::store_of(&spans).await
}

/// A console over `store`'s Jaeger API, with `prometheus.url` at `prometheus`.
async fn console_over(
    store: &LoopbackServer,
    prometheus: &str,
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let tracing = format!("http://{}", store.addresses.query_http);
    common::start_console(ConsoleOptions::default(), |_| {
        format!(
            "external_services:\n  tracing:\n    enabled: true\n    internal_url: {tracing}\n    use_grpc: false\n  prometheus:\n    url: {prometheus}\n"
        )
    })
    .await
}

/// `(y, value)` of a chart's y ticks, as drawn.
async fn y_ticks(client: &Client, chart: &str) -> Vec<(f64, f64)> {
    let mut ticks = Vec::new();
    for t in all(client, &format!("#chart-{chart} text.y-tick")).await {
        let y: f64 = parsed(&t, "y").await;
        let v: f64 = parsed(&t, "data-value").await;
        ticks.push((y, v));
    }
    assert!(ticks.len() >= 2, "{chart} has y ticks");
    ticks
}

/// Where the drawn ticks put `value`.
fn y_of(ticks: &[(f64, f64)], value: f64) -> f64 {
    let (y0, v0) = ticks[0];
    let (y1, v1) = ticks[ticks.len() - 1];
    y0 + (value - v0) / (v1 - v0) * (y1 - y0)
}

/// The chart of `metric` draws the API's series: as many, each with as many vertices as
/// finite datapoints, its last point where the ticks put the last value (`scale`: the API's
/// unit to the chart's, Kiali's dashboard).
async fn assert_chart_matches(client: &Client, api: &Value, metric: &str, scale: f64) {
    let series = api[metric].as_array().cloned().unwrap_or_default();
    let drawn = all(client, &format!("#chart-{metric} g.series")).await;
    assert_eq!(drawn.len(), series.len(), "{metric}: series drawn");
    assert!(!series.is_empty(), "{metric} has data: {api}");
    let ticks = y_ticks(client, metric).await;
    for (g, s) in drawn.iter().zip(&series) {
        let values: Vec<f64> = s["datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[1].as_str().unwrap().parse::<f64>().unwrap())
            .filter(|v| v.is_finite())
            .collect();
        let mut vertices = 0;
        for line in g
            .find_all(fantoccini::Locator::Css("polyline"))
            .await
            .unwrap()
        {
            let points = line.attr("points").await.unwrap().unwrap();
            vertices += points.split_whitespace().count();
        }
        assert_eq!(vertices, values.len(), "{metric}: points of {s}");
        let last = g
            .find(fantoccini::Locator::Css("circle.last"))
            .await
            .unwrap();
        let cy: f64 = parsed(&last, "cy").await;
        let expected = y_of(&ticks, values[values.len() - 1] * scale);
        assert!((cy - expected).abs() < 0.6, "{metric}: {cy} vs {expected}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_tabs_draw_the_api_series_and_the_spans_overlay() {
    let store = store_with_traffic().await;
    let browser = driver::browser().await;
    let client = &browser.client;
    let prometheus = format!("http://{}/prometheus", store.addresses.query_http);
    let (c, _stop) = console_over(&store, &prometheus).await;
    let base = format!("http://{c}");

    // ---- a workload's inbound metrics, with quantiles and spans ----
    let page = format!("{base}/console/namespaces/bookinfo/workloads/reviews-v2");
    goto(
        client,
        &format!("{page}?tab=in_metrics&quantiles=0.5+0.99&spans=true&limit=20"),
    )
    .await;
    assert_attr(client, "#tab-in_metrics", "aria-current", Some("page")).await;
    assert!(present(client, "#tab-out_metrics").await);
    let api_url = try_attr(client, "#metrics", "data-api").await.unwrap();
    assert!(api_url.contains("direction=inbound"), "{api_url}");
    assert!(api_url.contains("reporter=destination"), "{api_url}");
    let api = get_json(&format!("{base}{api_url}")).await;
    assert_chart_matches(client, &api, "request_count", 1.0).await;
    // Kiali's duration chart is in seconds; the route answers milliseconds.
    assert_chart_matches(client, &api, "request_duration_millis", 0.001).await;
    assert_chart_matches(client, &api, "request_size", 1.0).await;
    let legend = text(client, "#chart-request_duration_millis .chart-legend").await;
    for stat in ["avg", "p50", "p99"] {
        assert!(legend.contains(stat), "{legend}");
    }
    assert!(
        !present(client, "#chart-tcp_opened").await,
        "no TCP data, no TCP chart"
    );

    // The span points are the spans route's spans: as many, the same IDs, errors in red.
    let spans_url = try_attr(client, "#metrics", "data-spans-api")
        .await
        .unwrap();
    assert!(spans_url.contains("limit=20"), "{spans_url}");
    let spans = get_json(&format!("{base}{spans_url}")).await;
    let spans = spans.as_array().unwrap();
    assert!(!spans.is_empty());
    let mut expected = BTreeSet::new();
    let mut expected_errors = BTreeSet::new();
    for s in spans {
        let id = vec![
            format!("{:0>32}", s["traceID"].as_str().unwrap()),
            format!("{:0>16}", s["spanID"].as_str().unwrap()),
        ];
        if has_error(s) {
            expected_errors.insert(id.clone());
        }
        expected.insert(id);
    }
    let circles = all(client, SPAN_POINTS).await;
    assert_eq!(circles.len(), spans.len(), "one point a span");
    let (drawn, drawn_errors) =
        marked(client, SPAN_POINTS, &["data-trace-id", "data-span-id"]).await;
    assert_eq!(drawn, expected);
    assert_eq!(drawn_errors, expected_errors);
    assert!(
        !expected_errors.is_empty(),
        "some spans failed (20% errors)"
    );

    // A click on a point opens its trace with the span selected.
    let last = circles.last().unwrap();
    let (trace, span) = (
        last.attr("data-trace-id").await.unwrap().unwrap(),
        last.attr("data-span-id").await.unwrap().unwrap(),
    );
    last.click().await.unwrap();
    timeline_ready(client).await;
    assert!(
        url(client)
            .await
            .contains(&format!("/console/traces/{trace}"))
    );
    span_panel_shown(client).await;
    assert_attr(client, "#span-panel", "data-span-id", Some(span.as_str())).await;

    // ---- outbound, both reporters: grouped by reporter as Kiali does ----
    goto(client, &format!("{page}?tab=out_metrics&reporter=both")).await;
    let api_url = try_attr(client, "#metrics", "data-api").await.unwrap();
    assert!(api_url.contains("byLabels%5B%5D=reporter"), "{api_url}");
    let api = get_json(&format!("{base}{api_url}")).await;
    assert_chart_matches(client, &api, "request_count", 1.0).await;

    // ---- a service has one metrics tab, Kiali's `metrics` ----
    goto(
        client,
        &format!("{base}/console/namespaces/bookinfo/services/ratings?tab=metrics"),
    )
    .await;
    assert_eq!(text(client, "#tab-metrics").await, "Inbound Metrics");
    assert!(!present(client, "#tab-out_metrics").await);
    let api_url = try_attr(client, "#metrics", "data-api").await.unwrap();
    let api = get_json(&format!("{base}{api_url}")).await;
    assert_chart_matches(client, &api, "request_count", 1.0).await;

    // ---- markup in names and span titles stays text ----
    let evil = "<img src=x onerror=window.pwned=3>";
    goto(
        client,
        &format!(
            "{base}/console/namespaces/bookinfo/workloads/{}?tab=in_metrics",
            // A path segment: spaces as %20 (`+` is literal there).
            form_urlencoded::byte_serialize(evil.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        ),
    )
    .await;
    assert!(text(client, "h1").await.contains(evil));
    assert!(
        present(client, "#chart-request_count .chart-empty").await,
        "empty state"
    );
    assert_no_script_ran(client).await;
    goto(
        client,
        &format!("{base}/console/namespaces/bookinfo/applications/productpage?tab=in_metrics&spans=true&limit=1000"),
    )
    .await;
    let titles = all(client, "#chart-request_duration_millis a.span-link").await;
    let mut found = false;
    for a in &titles {
        if a.attr("aria-label")
            .await
            .unwrap()
            .unwrap_or_default()
            .contains(XSS_OPERATION)
        {
            found = true;
        }
    }
    assert!(found, "the hostile span is drawn, its operation as text");
    assert_no_script_ran(client).await;

    // ---- a bad setting names its parameter (400) ----
    let bad = format!("{page}?tab=in_metrics&reporter=%3Cb%3Ex");
    goto(client, &bad).await;
    assert_attr(client, "#metrics-bad-param", "data-param", Some("reporter")).await;
    assert_eq!(reqwest::get(&bad).await.unwrap().status().as_u16(), 400);
    goto(client, &format!("{page}?tab=in_metrics&quantiles=0.42")).await;
    assert_attr(
        client,
        "#metrics-bad-param",
        "data-param",
        Some("quantiles"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_metrics_source_that_is_down_is_named_on_the_tab() {
    let store = store_with_traffic().await;
    let browser = driver::browser().await;
    let client = &browser.client;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (c, _stop) = console_over(&store, &format!("http://{closed}")).await;
    let page = format!("http://{c}/console/namespaces/bookinfo/workloads/reviews-v2");
    goto(client, &format!("{page}?tab=in_metrics")).await;
    let message = text(client, "#metrics-error").await;
    assert!(message.contains(&closed.to_string()), "{message}");
    assert!(!present(client, "#metrics figure").await);
    // The other tabs still work.
    goto(client, &format!("{page}?tab=traces")).await;
    assert!(present(client, "#traces").await);
    assert!(!present(client, "#traces-error").await);
    goto(client, &page).await;
    assert!(present(client, "#overview").await);
}
