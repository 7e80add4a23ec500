//! The simulator's Istio metrics served by their real endpoint and read back over HTTP: in
//! ambient mode only the waypoints report, one count per waypoint span, labelled with the ends
//! the spans name; and a topology that could make too many series is refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use meshtrace_sim::metrics::{IstioMetrics, MAX_SERIES, serve};
use meshtrace_sim::{Generator, Mesh, Options, Topology};

fn tag<'a>(span: &'a meshtrace_model::Span, key: &str) -> &'a str {
    span.tags
        .iter()
        .find(|t| t.key == key)
        .and_then(|t| match &t.value {
            meshtrace_model::Value::Str(s) => Some(s.as_str()),
            _ => None,
        })
        .unwrap_or("")
}

/// `label="value"` out of one sample line.
fn label<'a>(line: &'a str, name: &str) -> &'a str {
    let start = line
        .find(&format!(",{name}=\""))
        .or_else(|| line.find(&format!("{{{name}=\"")))
        .unwrap_or_else(|| panic!("no {name} in {line}"));
    let rest = &line[start + name.len() + 3..];
    &rest[..rest.find('"').unwrap()]
}

/// Metrics for `topology`'s mesh, and a generator over the same mesh with 30 % errors.
fn metered(topology: Topology, seed: u64, ambient: bool) -> (Arc<IstioMetrics>, Generator) {
    let mesh = Mesh::new(topology, seed, 1);
    let metrics = Arc::new(IstioMetrics::new(&mesh).unwrap());
    let options = Options {
        error_rate: 0.3,
        slow_rate: 0.0,
        ambient,
    };
    (metrics, Generator::new(mesh, seed, options))
}

/// Serves `metrics` on a loopback port and scrapes it once.
async fn scrape(metrics: Arc<IstioMetrics>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, metrics, std::future::pending()));
    reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn in_ambient_mode_the_waypoints_count_every_hop() {
    let (metrics, mut generator) = metered(Topology::bookinfo(), 3, true);
    // What the waypoint spans say: (waypoint pod, source workload, destination service, code).
    let mut expected: BTreeMap<(String, String, String, String), u64> = BTreeMap::new();
    for _ in 0..300 {
        let request = generator.request(1_000_000);
        metrics.record(&request.reports);
        for span in &request.spans {
            let node = tag(span, "node_id");
            let pod = node.split('~').nth(2).unwrap().rsplit_once('.').unwrap().0;
            let service = span.operation_name.split('.').next().unwrap();
            *expected
                .entry((
                    pod.to_string(),
                    tag(span, "istio.source_workload").to_string(),
                    service.to_string(),
                    tag(span, "http.status_code").to_string(),
                ))
                .or_default() += 1;
        }
    }

    let text = scrape(metrics).await;

    let mut got: BTreeMap<(String, String, String, String), u64> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("istio_requests_total{"))
    {
        assert_eq!(label(line, "reporter"), "waypoint", "{line}");
        assert_eq!(label(line, "connection_security_policy"), "mutual_tls");
        // The waypoint belongs to the namespace of the service it fronts.
        assert_eq!(
            label(line, "namespace"),
            label(line, "destination_service_namespace")
        );
        let value: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        *got.entry((
            label(line, "pod").to_string(),
            label(line, "source_workload").to_string(),
            label(line, "destination_service_name").to_string(),
            label(line, "response_code").to_string(),
        ))
        .or_default() += value;
        if label(line, "response_flags") == "UH" {
            assert_eq!(label(line, "destination_workload"), "unknown", "{line}");
        }
    }
    assert_eq!(got, expected);
    assert!(got.keys().any(|k| k.3 == "503"), "{got:?}");
}

#[test]
fn a_topology_that_could_make_too_many_series_is_refused() {
    // A chain of five services, each with twenty versions of three pods.
    let versions: Vec<String> = (0..20)
        .map(|v| format!(r#"{{"version": "v{v}", "pods": 3, "latency_ms": 1}}"#))
        .collect();
    let services: Vec<String> = (0..5)
        .map(|i| {
            let calls = if i < 4 {
                format!(r#"[{{"service": "s{}", "path": "/"}}]"#, i + 1)
            } else {
                "[]".to_string()
            };
            format!(
                r#"{{"name": "s{i}", "namespace": "wide", "versions": [{}], "calls": {calls}}}"#,
                versions.join(",")
            )
        })
        .collect();
    let topology: Topology = serde_json::from_str(&format!(
        r#"{{"services": [{}], "entries": [{{"from": "s0", "call": {{"service": "s1", "path": "/"}}}}]}}"#,
        services.join(",")
    ))
    .unwrap();
    topology.check().unwrap();
    let error = IstioMetrics::new(&Mesh::new(topology, 1, 1)).unwrap_err();
    // Per calling pair: 60 pods × (20 × 2 + 1) as sources, 60 pods × 20 × 2 as destinations;
    // four pairs (s0→s1 twice: a call and the entry, counted once).
    assert_eq!(
        error,
        format!(
            "the topology could make up to 19440 Istio metric series (the limit is \
             {MAX_SERIES}): give it fewer services, versions, pods or calls"
        )
    );

    // Bookinfo is far below the limit.
    let bookinfo = IstioMetrics::new(&Mesh::new(Topology::bookinfo(), 1, 1)).unwrap();
    assert_eq!(bookinfo.series_count(), 0);
    // Its calling pairs, as (source pods × (callee workloads × 2 + 1)) + (destination pods ×
    // caller workloads × 2): gateway→productpage 3 + 4, productpage→details 6 + 2,
    // productpage→reviews 14 + 12, reviews→ratings 18 + 6, portal→travels 3 + 4,
    // travels→flights 6 + 2, travels→hotels 6 + 4.
    assert_eq!(
        meshtrace_sim::metrics::series_bound(&Mesh::new(Topology::bookinfo(), 1, 1)),
        90
    );
}

/// Bookinfo's ratings backed by a TCP database, as in Istio's `ratings-v2` + MySQL sample.
const WITH_DATABASE: &str = r#"{
  "services": [
    {"name": "productpage", "namespace": "shop", "versions": [{"version": "v1", "latency_ms": 2}],
     "calls": [{"service": "ratings", "path": "/ratings/0"}]},
    {"name": "ratings", "namespace": "shop", "versions": [{"version": "v2", "pods": 2, "latency_ms": 1}],
     "calls": [{"service": "mysqldb", "path": "-"}]},
    {"name": "mysqldb", "namespace": "shop", "port": 3306, "protocol": "tcp",
     "versions": [{"version": "v1", "latency_ms": 0.5}]}
  ],
  "entries": [{"from": "productpage", "call": {"service": "ratings", "path": "/ratings/0"}}]
}"#;

#[tokio::test]
async fn a_tcp_service_is_counted_in_the_tcp_metrics_on_both_ends() {
    let topology: Topology = serde_json::from_str(WITH_DATABASE).unwrap();
    topology.check().unwrap();
    let (metrics, mut generator) = metered(topology, 9, false);
    // Each ratings request that succeeded opened one connection to the database; a failed one
    // (500 from ratings itself, or 503 before reaching it) opened none. No span is a TCP one.
    let mut connections = 0u64;
    for _ in 0..200 {
        let request = generator.request(1_000_000);
        metrics.record(&request.reports);
        for span in &request.spans {
            assert!(!span.operation_name.starts_with("mysqldb."), "{span:?}");
            if tag(span, "span.kind") == "server"
                && span.operation_name.starts_with("ratings.")
                && tag(span, "http.status_code") == "200"
            {
                connections += 1;
            }
        }
    }
    assert!(connections > 100, "{connections}");

    let text = scrape(metrics).await;

    let mut totals: BTreeMap<(String, String), u64> = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("istio_tcp_")) {
        let name = line.split('{').next().unwrap();
        let reporter = label(line, "reporter");
        assert_eq!(label(line, "request_protocol"), "tcp", "{line}");
        assert_eq!(label(line, "destination_workload"), "mysqldb-v1");
        assert_eq!(label(line, "source_workload"), "ratings-v2");
        assert!(!line.contains("response_code="), "{line}");
        let pod = label(line, "pod");
        match reporter {
            "source" => assert!(pod.starts_with("ratings-v2-"), "{line}"),
            "destination" => assert!(pod.starts_with("mysqldb-v1-"), "{line}"),
            other => panic!("reporter {other}"),
        }
        let value: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        *totals
            .entry((name.to_string(), reporter.to_string()))
            .or_default() += value;
    }
    for name in [
        "istio_tcp_connections_opened_total",
        "istio_tcp_connections_closed_total",
    ] {
        for reporter in ["source", "destination"] {
            assert_eq!(
                totals[&(name.to_string(), reporter.to_string())],
                connections,
                "{name} {reporter}"
            );
        }
    }
    // Both ends count the same bytes each way.
    for name in [
        "istio_tcp_sent_bytes_total",
        "istio_tcp_received_bytes_total",
    ] {
        let source = totals[&(name.to_string(), "source".to_string())];
        assert_eq!(
            source,
            totals[&(name.to_string(), "destination".to_string())]
        );
        assert!(source >= connections * 60, "{name}: {source}");
    }

    // promtool parses it; it notes only the counter families' help (OpenMetrics names them
    // without `_total`) and Istio's milliseconds.
    let (code, problems) = meshtrace_testkit::prometheus::promtool_check_metrics(&text);
    assert_eq!(
        problems,
        [
            "istio_request_duration_milliseconds use base unit \"seconds\" instead of \"milliseconds\"",
            "istio_requests_total no help text",
            "istio_tcp_connections_closed_total no help text",
            "istio_tcp_connections_opened_total no help text",
            "istio_tcp_received_bytes_total no help text",
            "istio_tcp_sent_bytes_total no help text",
        ]
    );
    assert_eq!(code, Some(3));
}
