//! The console in each tracing mode: native charts and external links (the Traces tab's points
//! are the API's traces; hostile span content never runs), links only, tracing disabled, and
//! Tempo's menu item.

use crate::page::{
    all, api_ids, assert_attr, assert_no_script_ran, attr, click, goto, points, present, text, url,
    wait_for_url,
};
use crate::{XSS_OPERATION, XSS_TRACE, console, store_and_browser, tracing_yaml};

/// The Jaeger UI the consoles link to.
const JAEGER: &str = "http://jaeger.example.com";

#[tokio::test(flavor = "multi_thread")]
async fn the_console_in_chromium() {
    let (store, browser) = store_and_browser().await;
    let client = &browser.client;
    let grpc = store.addresses.query_grpc;

    // ---- native charts and external links (internal_url and external_url) ----
    let (full, _stop_full) = console(&tracing_yaml(&format!(
        "    internal_url: http://{grpc}\n    use_grpc: true\n    external_url: http://jaeger.example.com\n"
    )))
    .await;
    let base = format!("http://{full}");
    goto(client, &format!("{base}/")).await;
    assert!(url(client).await.ends_with("/console/overview"));
    assert_attr(client, "#nav-tracing", "href", Some(JAEGER)).await;
    assert_attr(client, "#nav-tracing", "target", Some("_blank")).await;
    let rows = all(client, "#namespaces tbody tr").await;
    assert!(rows.len() >= 2, "the overview lists the namespaces");

    // The Traces tab's points are the API's traces.
    let page = format!("{base}/console/namespaces/bookinfo/applications/productpage");
    goto(client, &format!("{page}?tab=traces&limit=500")).await;
    let (shown, shown_errors) = points(client).await;
    let expected = api_ids(full, "limit=500").await;
    assert_eq!(shown, expected);
    assert!(shown.contains(&format!("{XSS_TRACE:032x}")));
    assert!(!shown_errors.is_empty() && shown_errors.len() < shown.len());

    // Clicking a point shows that trace's details.
    // The last point drawn is on top of any it overlaps: errors are drawn after the others.
    let mut chosen = String::new();
    for circle in all(client, "#scatter circle.error").await {
        chosen = circle.attr("data-trace-id").await.unwrap().unwrap();
    }
    click(client, &format!("circle[data-trace-id='{chosen}']")).await;
    assert_attr(
        client,
        "#trace-details",
        "data-trace-id",
        Some(chosen.as_str()),
    )
    .await;
    assert!(url(client).await.contains(&format!("traceId={chosen}")));
    let errors_label = text(client, "#error-count").await;
    assert!(!errors_label.starts_with("0 "), "{errors_label}");
    let view = attr(client, "#trace-in-tracing", "href").await.unwrap();
    assert_eq!(view, format!("http://jaeger.example.com/trace/{chosen}"));
    assert!(
        attr(
            client,
            &format!("circle[data-trace-id='{chosen}']"),
            "class"
        )
        .await
        .unwrap()
        .contains("selected")
    );

    // Errors only: the checkbox applies at once (JS) and leaves only error traces.
    click(client, "input[name=errs]").await;
    wait_for_url(client, "errs=true").await;
    let (only, only_errors) = points(client).await;
    assert_eq!(only, only_errors, "every point is an error trace");
    let expected = api_ids(full, "limit=500&tags=%7B%22error%22%3A%22true%22%7D").await;
    assert_eq!(only, expected);

    // Hostile span content is shown as text and never runs.
    goto(
        client,
        &format!("{page}?tab=traces&limit=500&traceId={XSS_TRACE:032x}"),
    )
    .await;
    let name = text(client, "#trace-name").await;
    assert_eq!(name, XSS_OPERATION);
    assert_no_script_ran(client).await;
    assert!(client.get_alert_text().await.is_err(), "no alert is open");

    // ---- links only (external_url, no internal_url) ----
    let (links, _stop_links) = console(&tracing_yaml(
        "    external_url: http://jaeger.example.com\n",
    ))
    .await;
    goto(
        client,
        &format!("http://{links}/console/namespaces/bookinfo/workloads/reviews-v2?tab=traces"),
    )
    .await;
    assert!(
        !present(client, "#tab-traces").await,
        "no Traces tab without internal_url"
    );
    assert!(!present(client, "#scatter").await);
    assert_attr(
        client,
        "#view-in-tracing",
        "href",
        Some("http://jaeger.example.com/search?service=reviews.bookinfo"),
    )
    .await;
    assert_attr(client, "#nav-tracing", "href", Some(JAEGER)).await;

    // ---- tracing disabled: neither ----
    let (off, _stop_off) = console("external_services:\n  tracing:\n    enabled: false\n    external_url: http://jaeger.example.com\n").await;
    goto(
        client,
        &format!("http://{off}/console/namespaces/bookinfo/applications/productpage"),
    )
    .await;
    assert!(!present(client, "#nav-tracing").await);
    assert!(!present(client, "#tab-traces").await);
    assert!(!present(client, "#view-in-tracing").await);

    // ---- Tempo: the menu item goes to Grafana or the OpenShift console ----
    let (grafana, _stop_grafana) = console(&tracing_yaml(
        "    provider: tempo\n    external_url: http://grafana.example.com\n    tempo_config:\n      datasource_uid: tempo-ds\n",
    ))
    .await;
    goto(client, &format!("http://{grafana}/console/overview")).await;
    let home = attr(client, "#nav-tracing", "href").await.unwrap();
    assert!(
        home.starts_with("http://grafana.example.com/explore?panes="),
        "{home}"
    );
    assert!(home.contains("tempo-ds"), "{home}");
    let (openshift, _stop_openshift) = console(&tracing_yaml(
        "    provider: tempo\n    external_url: https://console.example.com\n    tempo_config:\n      url_format: openshift\n",
    ))
    .await;
    goto(client, &format!("http://{openshift}/console/overview")).await;
    assert_attr(
        client,
        "#nav-tracing",
        "href",
        Some(
            "https://console.example.com/observe/traces?namespace=tempo&name=sample&tenant=default",
        ),
    )
    .await;

    browser.client.close().await.unwrap();
}
