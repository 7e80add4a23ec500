//! The generator's unit tests: trees of hops, faults, timing and the tags of each span.

use super::*;
use crate::topology::Topology;

fn generator(seed: u64, options: Options) -> Generator {
    Generator::new(Mesh::new(Topology::bookinfo(), seed, 1), seed, options)
}

#[test]
fn the_same_seed_gives_the_same_requests() {
    let mut a = generator(5, Options::default());
    let mut b = generator(5, Options::default());
    for _ in 0..50 {
        assert_eq!(a.request(1_000_000).spans, b.request(1_000_000).spans);
    }
}

#[test]
fn a_bookinfo_request_is_a_tree_of_client_server_pairs() {
    let mut generator = generator(
        3,
        Options {
            error_rate: 0.0,
            slow_rate: 0.0,
            ambient: false,
        },
    );
    let request = (0..20)
        .map(|_| generator.request(1_000_000))
        .find(|r| r.spans[0].process.service_name == "istio-ingressgateway.istio-system")
        .unwrap();
    // gateway→productpage, productpage→details, productpage→reviews, maybe reviews→ratings.
    assert!(
        matches!(request.spans.len(), 6 | 8),
        "{}",
        request.spans.len()
    );
    let root = &request.spans[0];
    assert_eq!(root.kind(), "client");
    assert!(root.references.is_empty());
    assert_eq!(
        root.operation_name,
        "productpage.bookinfo.svc.cluster.local:9080/productpage"
    );
    for span in &request.spans[1..] {
        let parent = span.parent_span_id().unwrap();
        let parent = request.spans.iter().find(|s| s.span_id == parent).unwrap();
        assert!(span.start_time >= parent.start_time);
        assert!(span.start_time + span.duration <= parent.start_time + parent.duration);
        if span.kind() == "server" {
            assert_eq!(parent.kind(), "client");
            assert_eq!(parent.operation_name, span.operation_name);
        }
    }
}

#[test]
fn every_failed_request_fails_at_its_root() {
    let mut generator = generator(
        9,
        Options {
            error_rate: 1.0,
            slow_rate: 0.0,
            ambient: false,
        },
    );
    for _ in 0..50 {
        let request = generator.request(1_000_000);
        assert!(request.failed);
        assert!(request.spans[0].has_error());
        let flags: Vec<&str> = request
            .spans
            .iter()
            .filter_map(|s| match s.tag("response_flags") {
                Some(meshtrace_model::Value::Str(f)) => Some(f.as_str()),
                _ => None,
            })
            .collect();
        assert!(flags.iter().filter(|f| **f == "UH").count() <= 1);
    }
}

#[test]
fn ambient_requests_are_waypoint_spans() {
    let mut generator = generator(
        4,
        Options {
            error_rate: 0.0,
            slow_rate: 0.0,
            ambient: true,
        },
    );
    let request = generator.request(1_000_000);
    for span in &request.spans {
        assert!(span.process.service_name.starts_with("waypoint."));
        assert!(span.tag("istio.source_workload").is_some());
        assert!(span.tag("istio.destination_workload").is_some());
    }
}
