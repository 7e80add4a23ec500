//! What the tests ask of a page in the browser (an element's attribute or text, a click, a
//! wait for the page's script), and of the console's API to compare the page with.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, Locator};
use serde_json::Value;

pub async fn goto(client: &Client, url: &str) {
    client
        .goto(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
}

/// The page's URL now.
pub async fn url(client: &Client) -> String {
    client.current_url().await.unwrap().to_string()
}

/// Every element `css` selects (none is not an error).
pub async fn all(client: &Client, css: &str) -> Vec<Element> {
    client.find_all(Locator::Css(css)).await.unwrap()
}

/// The element `css` selects; the test fails when there is none.
pub async fn find(client: &Client, css: &str) -> Element {
    client
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
}

pub async fn attr(client: &Client, css: &str, name: &str) -> Option<String> {
    find(client, css).await.attr(name).await.unwrap()
}

/// Asserts an attribute of the element `css` selects.
/// The attribute `name` of `element`, parsed; panics naming it when missing or not a `T`.
pub async fn parsed<T: std::str::FromStr>(element: &Element, name: &str) -> T {
    let text = element.attr(name).await.unwrap();
    text.as_deref()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("attribute {name} is {text:?}"))
}

pub async fn assert_attr(client: &Client, css: &str, name: &str, expected: Option<&str>) {
    assert_eq!(attr(client, css, name).await.as_deref(), expected);
}

/// The same for polling while a page may be changing under it: any error is "not yet".
pub async fn try_attr(client: &Client, css: &str, name: &str) -> Option<String> {
    client
        .find(Locator::Css(css))
        .await
        .ok()?
        .attr(name)
        .await
        .ok()?
}

pub async fn text(client: &Client, css: &str) -> String {
    find(client, css).await.text().await.unwrap()
}

/// Chooses `value` in the `<select>` matching `css`.
pub async fn select(client: &Client, css: &str, value: &str) {
    find(client, css)
        .await
        .select_by_value(value)
        .await
        .unwrap_or_else(|e| panic!("{css}: {value}: {e}"));
}

pub async fn click(client: &Client, css: &str) {
    find(client, css)
        .await
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

pub async fn present(client: &Client, css: &str) -> bool {
    client
        .find_all(Locator::Css(css))
        .await
        .is_ok_and(|found| !found.is_empty())
}

/// No script of the hostile span ran: it would have set `window.pwned`.
pub async fn assert_no_script_ran(client: &Client) {
    let pwned = client
        .execute("return typeof window.pwned;", vec![])
        .await
        .unwrap();
    assert_eq!(pwned, Value::String("undefined".into()));
}

/// Waits until the page's URL holds `needle` (a navigation the page's script started).
pub async fn wait_for_url(client: &Client, needle: &str) {
    for _ in 0..400 {
        if url(client).await.contains(needle) {
            // The new page is loaded once its scatter or state is there.
            if present(client, "#traces").await {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the page never went to a URL with `{needle}`");
}

/// Waits until the page (after a form was sent) has the element.
pub async fn wait_for(client: &Client, css: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appeared: {e}"));
}

/// Waits until the span panel shows a span (the one the URL's `uiFind` or a click picked);
/// the caller asserts which.
pub async fn span_panel_shown(client: &Client) {
    for _ in 0..200 {
        if try_attr(client, "#span-panel", "data-span-id")
            .await
            .is_some()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Waits until the timeline's script has drawn the trace.
pub async fn timeline_ready(client: &Client) {
    // Generous: CI machines are slow and other tests share them.
    for _ in 0..800 {
        if try_attr(client, "#timeline", "data-ready").await.as_deref() == Some("true") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the timeline never got ready");
}

/// The trace IDs of the scatter's points, and of its error points.
pub async fn points(client: &Client) -> (BTreeSet<String>, BTreeSet<String>) {
    let (all_ids, errors) = marked(client, "#scatter circle", &["data-trace-id"]).await;
    let first = |set: BTreeSet<Vec<String>>| set.into_iter().map(|mut v| v.remove(0)).collect();
    (first(all_ids), first(errors))
}

/// The `attrs` of every element `css` selects, and of those with the class `error`.
pub async fn marked(
    client: &Client,
    css: &str,
    attrs: &[&str],
) -> (BTreeSet<Vec<String>>, BTreeSet<Vec<String>>) {
    let mut all_ids = BTreeSet::new();
    let mut errors = BTreeSet::new();
    for element in all(client, css).await {
        let mut id = Vec::new();
        for name in attrs {
            id.push(element.attr(name).await.unwrap().unwrap());
        }
        let class = element.attr("class").await.unwrap().unwrap_or_default();
        if class.split_whitespace().any(|c| c == "error") {
            errors.insert(id.clone());
        }
        all_ids.insert(id);
    }
    (all_ids, errors)
}

/// A JSON answer of the console's API.
pub async fn get_json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

/// A trace's ID as the pages write it: 32 hex digits (the API drops leading zeros).
pub fn trace_id(trace: &Value) -> String {
    format!("{:0>32}", trace["traceID"].as_str().unwrap())
}

/// A trace of the reviews-v1 workload as the traces route answers it (the first of `limit`),
/// other than the trace `except` a test planted.
pub async fn reviews_trace(console: SocketAddr, limit: usize, except: u128) -> Value {
    let body = get_json(&format!(
        "http://{console}/api/namespaces/bookinfo/workloads/reviews-v1/traces?limit={limit}"
    ))
    .await;
    let except = format!("{except:032x}");
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| trace_id(t) != except)
        .unwrap_or_else(|| panic!("{body}"))
        .clone()
}

/// The IDs of productpage's traces, as the traces route answers `query`.
pub async fn api_ids(console: SocketAddr, query: &str) -> BTreeSet<String> {
    let body = get_json(&format!(
        "http://{console}/api/namespaces/bookinfo/apps/productpage/traces?{query}"
    ))
    .await;
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(trace_id)
        .collect()
}
