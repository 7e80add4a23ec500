//! The graph page in headless Chromium, over the simulator's Bookinfo in a real store: every
//! node of the graph API's answer is drawn; a trace's overlay marks exactly the Bookinfo
//! workloads its spans came from (named by the simulator's own canonical-service and revision
//! tags, not by the page's rules) and only edges between marked nodes; a node's side panel
//! lists its traces, which open the trace details.

use std::collections::BTreeSet;
use std::time::Duration;

use fantoccini::{Client, Locator};
use meshtrace_testkit::jaeger_json::{longest_trace, tag};

use super::bookinfo::{console_over, filled, get, prometheus_url};
use crate::driver;

const BOOKINFO: [&str; 4] = ["productpage", "details", "reviews", "ratings"];

/// The `data-id` and `<title>` of every element matching `css`.
async fn drawn(client: &Client, css: &str) -> Vec<(String, String)> {
    let found = client
        .execute(
            &format!(
                "return [...document.querySelectorAll('{css}')].map(g => [g.dataset.id, g.querySelector('title') ? g.querySelector('title').textContent : '']);"
            ),
            vec![],
        )
        .await
        .unwrap();
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            (
                pair[0].as_str().unwrap().to_string(),
                pair[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn wait_for(client: &Client, css: &str) {
    for _ in 0..200 {
        if client.find(Locator::Css(css)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{css} never appeared at {}",
        client.current_url().await.unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_draws_the_graph_marks_a_trace_and_lists_a_nodes_traces() {
    let (store, _, _) = filled(300).await;
    let (console, _stop) = console_over(&store, &prometheus_url(&store)).await;
    let browser = driver::browser().await;
    let client = &browser.client;
    let page = format!(
        "http://{console}/console/graph/namespaces?namespaces=bookinfo&graphType=workload&duration=300"
    );

    // Every node of the API's graph is drawn, boxes aside.
    let (status, graph) = get(
        console,
        "/api/namespaces/graph?namespaces=bookinfo&graphType=workload&duration=300s&injectServiceNodes=true&boxBy=app,namespace",
    )
    .await;
    assert_eq!(status, 200, "{graph}");
    let expected: BTreeSet<String> = graph["elements"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["data"]["isBox"].is_null())
        .map(|n| n["data"]["id"].as_str().unwrap().to_string())
        .collect();
    // Where the page's time went, for developer tools and the benchmark.
    let response = reqwest::get(&page).await.unwrap();
    let timing = response.headers()["server-timing"]
        .to_str()
        .unwrap()
        .to_string();
    let names: Vec<&str> = timing
        .split(", ")
        .map(|part| part.split(';').next().unwrap())
        .collect();
    assert_eq!(names, ["graph", "draw", "layout", "render"], "{timing}");
    assert!(
        timing.split(", ").all(|part| part.contains(";dur=")),
        "{timing}"
    );

    client.goto(&page).await.unwrap();
    wait_for(client, "svg#graph g.node").await;
    let nodes: BTreeSet<String> = drawn(client, "svg#graph g.node")
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(nodes, expected);
    let edges = graph["elements"]["edges"].as_array().unwrap().len();
    assert_eq!(drawn(client, "svg#graph g.edge").await.len(), edges);

    // A trace through reviews: its overlay.
    let (_, traces) = get(
        console,
        "/api/namespaces/bookinfo/apps/reviews/traces?limit=20",
    )
    .await;
    let trace = longest_trace(&traces).clone();
    let touched: BTreeSet<String> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| {
            let service = tag(s, "istio.canonical_service")?;
            let revision = tag(s, "istio.canonical_revision")?;
            BOOKINFO
                .contains(&service)
                .then(|| format!("{service}-{revision}"))
        })
        .collect();
    assert!(touched.len() >= 2, "{touched:?}");
    let trace_id = trace["traceID"].as_str().unwrap();
    client
        .goto(&format!("{page}&traceId={trace_id}"))
        .await
        .unwrap();
    wait_for(client, "svg#graph.has-trace").await;
    let marked = drawn(client, "svg#graph g.node.in-trace").await;
    let marked_workloads: BTreeSet<String> = marked
        .iter()
        .filter(|(_, title)| title.contains("(workload, bookinfo)"))
        .map(|(_, title)| title.split(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(marked_workloads, touched);
    let marked_ids: BTreeSet<&str> = marked.iter().map(|(id, _)| id.as_str()).collect();
    let marked_edges: BTreeSet<String> = drawn(client, "svg#graph g.edge.in-trace")
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert!(!marked_edges.is_empty());
    for edge in graph["elements"]["edges"].as_array().unwrap() {
        let d = &edge["data"];
        if marked_edges.contains(d["id"].as_str().unwrap()) {
            assert!(
                marked_ids.contains(d["source"].as_str().unwrap())
                    && marked_ids.contains(d["target"].as_str().unwrap()),
                "a marked edge between unmarked nodes: {d}"
            );
        }
    }
    let hops = client
        .find(Locator::Css("#trace-hops"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(hops.lines().count(), marked_edges.len(), "{hops}");

    // A node's panel lists its traces; one opens the trace details.
    let reviews = marked
        .iter()
        .find(|(_, title)| title.starts_with("reviews-"))
        .unwrap();
    let node = format!("g.node[data-id='{}']", reviews.0);
    client
        .execute(
            &format!("document.querySelector(\"{node}\").scrollIntoView({{block: 'center', inline: 'center'}});"),
            vec![],
        )
        .await
        .unwrap();
    client
        .find(Locator::Css(&node))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(client, "#panel-traces li a").await;
    let title = client
        .find(Locator::Css("#panel-title"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(title, reviews.1.split(' ').next().unwrap());
    client
        .find(Locator::Css("#panel-traces li a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(client, ".wf-row").await;
    assert!(
        client
            .current_url()
            .await
            .unwrap()
            .path()
            .starts_with("/console/traces/")
    );

    // A trace that does not exist: the graph without overlay, and why.
    client
        .goto(&format!("{page}&traceId={}", "ab".repeat(16)))
        .await
        .unwrap();
    wait_for(client, "#overlay-problem").await;
    assert!(drawn(client, "svg#graph g.node.in-trace").await.is_empty());
    assert_eq!(
        drawn(client, "svg#graph g.node").await.len(),
        expected.len()
    );
    browser.client.clone().close().await.unwrap();
}

/// The `data-id`s of the edges with a lock badge.
async fn locked(client: &Client) -> BTreeSet<String> {
    drawn(client, "svg#graph g.edge:has(.badge.mtls)")
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_security_option_draws_lock_badges_and_two_clusters_get_boxes() {
    // The simulator over two clusters, scraped by a real Prometheus: destinations report
    // mutual TLS.
    let (prometheus, _, _) = crate::security_policy::simulated(2).await;
    let (console, _stop) = crate::security_policy::console_of(&prometheus).await;
    let (status, graph) = get(
        console,
        "/api/namespaces/graph?namespaces=bookinfo&graphType=workload&duration=300s&injectServiceNodes=true&appenders=securityPolicy",
    )
    .await;
    assert_eq!(status, 200, "{graph}");
    let with_mtls: BTreeSet<String> = graph["elements"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["data"]["isMTLS"].as_str().is_some_and(|p| p != "0"))
        .map(|e| e["data"]["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!with_mtls.is_empty(), "{graph}");

    let browser = driver::browser().await;
    let client = &browser.client;
    let page = format!(
        "http://{console}/console/graph/namespaces?namespaces=bookinfo&graphType=workload&duration=300"
    );
    client.goto(&page).await.unwrap();
    wait_for(client, "svg#graph g.edge").await;
    assert_eq!(
        locked(client).await,
        BTreeSet::new(),
        "badges without the option"
    );
    // Two clusters: a box for each.
    let clusters = client
        .execute(
            "return [...document.querySelectorAll('svg#graph g.box-cluster text')].map(t => t.textContent).sort();",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(clusters, serde_json::json!(["cluster-1", "cluster-2"]));

    // The option, ticked in the form, is in the URL and draws a lock on every mTLS edge. The
    // page's script submits the form on the change (clicking Apply as well would race the
    // navigation it starts).
    client
        .find(Locator::Css("#badge-security"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(client, "svg#graph g.edge .badge.mtls").await;
    let url = client.current_url().await.unwrap();
    assert!(url.as_str().contains("badgeSecurity=true"), "{url}");
    assert_eq!(locked(client).await, with_mtls);

    // An mTLS edge's side panel says so and names the principals.
    let edge = with_mtls.iter().next().unwrap();
    client
        .goto(&format!("{page}&badgeSecurity=true&focus={edge}"))
        .await
        .unwrap();
    wait_for(client, "#panel-rates").await;
    let rates = client
        .find(Locator::Css("#panel-rates"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(rates.contains("mTLS enabled"), "{rates}");
    assert!(rates.contains("spiffe://cluster.local/ns/"), "{rates}");
}
