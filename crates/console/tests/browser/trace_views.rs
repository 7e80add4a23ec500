//! A trace in every view: the Traces tab's span table (filters, expanded rows), the timeline
//! (bars where the spans are, search), meshtrace's own Jaeger UI routes behind the tracing
//! links, and the configuration tester.

use meshtrace_testkit::jaeger_json::longest_trace;

use crate::page::{
    all, assert_attr, assert_no_script_ran, attr, click, find, get_json, goto, present, select,
    span_panel_shown, text, timeline_ready, trace_id, url, wait_for, wait_for_url,
};
use crate::{XSS_TAG, XSS_TRACE, console_at, store_and_browser, tracing_yaml};

#[tokio::test(flavor = "multi_thread")]
async fn spans_timeline_tester_and_links_in_chromium() {
    let (store, browser) = store_and_browser().await;
    let client = &browser.client;
    let grpc = store.addresses.query_grpc;
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
    let body = get_json(&format!(
        "{base}/api/namespaces/bookinfo/apps/productpage/traces?limit=500&tags=%7B%22error%22%3A%22true%22%7D"
    ))
    .await;
    let id = trace_id(longest_trace(&body));
    goto(client, &format!("{page}?tab=traces&limit=500&traceId={id}")).await;
    let rows = all(client, "#span-table tr.span-row").await.len();
    let count = text(client, "#span-count-filtered").await;
    assert_eq!(count, format!("{rows} / {rows} spans"));
    assert!(rows > 2);
    // Errors only (the select applies at once).
    select(client, "select[name=spanError]", "with").await;
    wait_for_url(client, "spanError=with").await;
    let error_rows = all(client, "#span-table tr.span-row").await;
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
        text(client, "#span-count-filtered").await,
        format!("{} / {rows} spans", error_rows.len())
    );

    // ---- an expanded row shows its tags and logs, as text ----
    goto(
        client,
        &format!("{page}?tab=traces&limit=500&traceId={XSS_TRACE:032x}"),
    )
    .await;
    click(client, "#span-table details summary").await;
    let more = text(client, "#span-table .span-more").await;
    assert!(more.contains("evil"), "{more}");
    assert!(more.contains(XSS_TAG), "{more}");
    assert!(more.contains("event=retry"), "{more}");
    assert_no_script_ran(client).await;

    // "More span details" leads to meshtrace's own trace page, the span selected.
    let more_link = attr(client, "#span-table a.more-details", "href")
        .await
        .unwrap();
    assert_eq!(
        more_link,
        format!("{base}/jaeger/trace/{XSS_TRACE:032x}?uiFind=0000000000000001")
    );
    goto(client, &more_link).await;
    timeline_ready(client).await;
    span_panel_shown(client).await;
    assert_attr(
        client,
        "#span-panel",
        "data-span-id",
        Some("0000000000000001"),
    )
    .await;
    let panel = text(client, "#span-panel").await;
    assert!(panel.contains(XSS_TAG), "the tag is shown as text: {panel}");

    // ---- the waterfall's bars line up with the spans' start times ----
    let trace = get_json(&format!("{base}/api/traces/{id}")).await;
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
    goto(client, &format!("{base}/console/traces/{id}")).await;
    timeline_ready(client).await;
    assert_offers_the_namespaces(client).await;
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
    let search = find(client, "#trace-search").await;
    search.send_keys("ratings").await.unwrap();
    let found = text(client, "#search-count").await;
    assert!(
        found.ends_with("matching spans") && !found.starts_with("0 "),
        "{found}"
    );

    // ---- the menu item and the links land on meshtrace's own pages ----
    goto(client, &format!("{page}?tab=traces&limit=500&traceId={id}")).await;
    let home = attr(client, "#nav-tracing", "href").await.unwrap();
    assert_eq!(home, format!("{base}/jaeger"));
    let search_link = attr(client, "#search-in-tracing", "href").await.unwrap();
    let trace_link = attr(client, "#trace-in-tracing", "href").await.unwrap();
    assert_eq!(trace_link, format!("{base}/jaeger/trace/{id}"));
    let compare_link = attr(client, "#compare-in-tracing", "href").await;
    goto(client, &home).await;
    assert!(url(client).await.ends_with("/jaeger/search"));
    assert!(present(client, "#search-form").await);
    assert_offers_the_namespaces(client).await;
    goto(client, &search_link).await;
    let results = all(client, "#results tbody tr").await;
    assert!(
        !results.is_empty(),
        "the search link finds the app's traces"
    );
    goto(client, &trace_link).await;
    timeline_ready(client).await;
    assert_eq!(all(client, ".wf-row").await.len(), spans.len());
    if let Some(compare) = compare_link {
        goto(client, &compare).await;
        let columns = all(client, "#compare thead th").await;
        assert!(columns.len() >= 3, "this trace and at least one similar");
    }

    // ---- the configuration tester: a working and a broken configuration ----
    goto(client, &format!("{base}/")).await;
    click(client, "#tester-link").await;
    assert!(
        text(client, "#mode")
            .await
            .starts_with("native charts via Jaeger gRPC")
    );
    click(client, "#run-diagnose").await;
    wait_for(client, "#diagnose-message").await;
    let message = text(client, "#diagnose-message").await;
    assert!(
        message.contains("working configuration(s) found"),
        "{message}"
    );
    // The effective configuration, checked as it is: it works.
    click(client, "#run-check").await;
    wait_for(client, "#check-result").await;
    assert_attr(client, "#check-result", "data-ok", Some("true")).await;
    assert!(
        text(client, "#check-yaml")
            .await
            .contains(&format!("internal_url: \"http://{grpc}\""))
    );
    // Pointed at another port of the backend's host: refused (the form post from the
    // console's own page passes the cross-origin check).
    let area = find(client, "#tester-config").await;
    area.clear().await.unwrap();
    area.send_keys(&format!(
        "external_services:\n  tracing:\n    enabled: true\n    internal_url: http://{}\n    use_grpc: true\n",
        store.addresses.query_http
    ))
    .await
    .unwrap();
    click(client, "#run-check").await;
    wait_for(client, "#check-result[data-ok=false]").await;
    assert_attr(client, "#check-result", "data-ok", Some("false")).await;
    let result = text(client, "#check-result").await;
    assert!(
        result.starts_with("refused: the check only reaches the configured backend"),
        "{result}"
    );

    browser.client.close().await.unwrap();
}

/// The toolbar's namespace box lists the simulated namespaces, on pages that read no
/// inventory for their own content too.
async fn assert_offers_the_namespaces(client: &fantoccini::Client) {
    let options = client
        .execute(
            "return [...document.querySelectorAll('select[name=namespaces] option')].map(o => o.value);",
            vec![],
        )
        .await
        .unwrap();
    let options: Vec<&str> = options
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    assert!(options.contains(&"bookinfo"), "{options:?}");
}
