//! The graph parameters' defaults and the errors that name a bad one.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use super::*;

fn error(q: &str) -> String {
    GraphOptions::parse(Some(q), None).unwrap_err().error
}

#[test]
fn kialis_defaults() {
    let o = GraphOptions::parse(Some("namespaces=bookinfo,travel,bookinfo"), None).unwrap();
    assert_eq!(o.namespaces, ["bookinfo", "travel"]);
    assert_eq!(o.graph_type, GraphType::Workload);
    assert_eq!(o.duration, Duration::from_secs(600));
    assert!(!o.inject_service_nodes && !o.include_idle_edges);
    assert_eq!(o.rates.tcp, Rate::Sent);
    assert_eq!(o.rates.ambient, Ambient::Total);
    assert_eq!(o.response_time, ResponseTime::Quantile(0.95));
    assert!(o.wants("responseTime") && o.appenders.is_none());
    let o = GraphOptions::parse(
        Some("namespaces=a&graphType=service&appenders=&duration=90s&queryTime=1523364075"),
        None,
    )
    .unwrap();
    assert!(o.inject_service_nodes);
    assert!(!o.wants("responseTime"));
    assert_eq!(o.duration, Duration::from_secs(90));
    assert_eq!(o.query_time, 1_523_364_075);
}

#[test]
fn bad_values_are_named() {
    assert_eq!(
        error("namespaces=a&graphType=graph"),
        "Invalid graphType [graph]: must be app, versionedApp, workload or service"
    );
    assert!(error("namespaces=a&duration=-5m").starts_with("Invalid duration [-5m]"));
    assert!(error("namespaces=a&duration=100d").starts_with("Invalid duration [100d]"));
    assert!(error("namespaces=a&appenders=deadNode,bogus").starts_with("Invalid appender [bogus]"));
    assert!(error("namespaces=a&rateHttp=sent").starts_with("Invalid rateHttp [sent]"));
    assert!(error("namespaces=a&queryTime=soon").starts_with("Invalid queryTime [soon]"));
    assert!(error("namespaces=a&boxBy=pod").starts_with("Invalid boxBy [pod]"));
    assert!(error("namespaces=<b>x</b>").starts_with("Invalid namespace [<b>x</b>]"));
    assert!(error("namespaces=a&colour=red").starts_with("unknown query parameter `colour`"));
    assert_eq!(
        error("graphType=app"),
        "At least one namespace must be specified via the namespaces query parameter."
    );
    let many: Vec<String> = (0..=MAX_NAMESPACES).map(|i| format!("n{i}")).collect();
    assert!(error(&format!("namespaces={}", many.join(","))).contains("at most 100"));
    let node = Some((
        "bookinfo".to_string(),
        NodeTarget::App {
            app: "reviews".into(),
            version: None,
        },
    ));
    let e = GraphOptions::parse(Some("graphType=workload"), node).unwrap_err();
    assert!(
        e.error
            .starts_with("Invalid graphType [workload]. This node detail graph")
    );
}
