//! Label sets of real Envoy spans (tags as a Bookinfo mesh reports them, from Kiali's Tempo test
//! data) and of the simulator's waypoint spans.

use super::*;
use crate::testing::span;

fn labels(request: &IstioRequest<'_>) -> Vec<(&'static str, String)> {
    ISTIO_LABELS
        .iter()
        .zip(&request.labels)
        .map(|(name, value)| (*name, value.to_string()))
        .collect()
}

fn label<'r>(request: &'r IstioRequest<'_>, name: &str) -> &'r str {
    let at = ISTIO_LABELS.iter().position(|l| *l == name).unwrap();
    &request.labels[at]
}

const PRODUCTPAGE_NODE: &str =
    "sidecar~10.244.0.25~productpage-v1-6f89b6c557-sg2bc.bookinfo~bookinfo.svc.cluster.local";

fn productpage_client_to_reviews() -> Span {
    span(
        "reviews.bookinfo.svc.cluster.local:9080/*",
        &[
            ("node_id", PRODUCTPAGE_NODE),
            ("istio.canonical_service", "productpage"),
            ("istio.canonical_revision", "v1"),
            ("istio.namespace", "bookinfo"),
            ("istio.mesh_id", "cluster.local"),
            ("component", "proxy"),
            (
                "upstream_cluster",
                "outbound|9080||reviews.bookinfo.svc.cluster.local",
            ),
            ("http.method", "GET"),
            ("http.url", "http://reviews:9080/reviews/0"),
            ("http.protocol", "HTTP/1.1"),
            ("http.status_code", "200"),
            ("response_flags", "-"),
            ("response_size", "442"),
            ("request_size", "0"),
            ("peer.address", "10.244.0.25"),
            ("span.kind", "client"),
        ],
    )
}

#[test]
fn a_sidecar_client_span_is_a_source_report() {
    let mut client = productpage_client_to_reviews();
    client.duration = 12_345;
    let reviews = Workload {
        name: "reviews-v2",
        namespace: "bookinfo",
        app: "reviews",
        version: "v2",
        canonical_service: "reviews",
        canonical_revision: "v2",
        cluster: "Kubernetes",
    };
    let request = istio_request(&client, Some(reviews)).unwrap();
    let expected: Vec<(&str, &str)> = vec![
        ("reporter", "source"),
        ("source_workload", "productpage-v1"),
        ("source_workload_namespace", "bookinfo"),
        ("source_app", "productpage"),
        ("source_version", "v1"),
        ("source_principal", "unknown"),
        ("source_cluster", "unknown"),
        ("source_canonical_service", "productpage"),
        ("source_canonical_revision", "v1"),
        ("destination_workload", "reviews-v2"),
        ("destination_workload_namespace", "bookinfo"),
        ("destination_app", "reviews"),
        ("destination_version", "v2"),
        ("destination_principal", "unknown"),
        ("destination_cluster", "Kubernetes"),
        ("destination_canonical_service", "reviews"),
        ("destination_canonical_revision", "v2"),
        ("destination_service", "reviews.bookinfo.svc.cluster.local"),
        ("destination_service_name", "reviews"),
        ("destination_service_namespace", "bookinfo"),
        ("request_protocol", "http"),
        ("response_code", "200"),
        ("grpc_response_status", ""),
        ("response_flags", "-"),
        ("connection_security_policy", "unknown"),
    ];
    let got = labels(&request);
    let got: Vec<(&str, &str)> = got.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(got, expected);
    assert_eq!(request.numbers.duration_ms, 12.345);
    assert_eq!(request.numbers.response_bytes, 442);
    assert_eq!(request.numbers.request_bytes, 0);

    // Without the other end, the destination workload is unknown; the service is still known.
    let alone = istio_request(&client, None).unwrap();
    assert_eq!(label(&alone, "destination_workload"), "unknown");
    assert_eq!(label(&alone, "destination_canonical_service"), "unknown");
    assert_eq!(label(&alone, "destination_service_name"), "reviews");
}

#[test]
fn a_server_span_is_a_destination_report_named_by_its_operation() {
    let server = span(
        "productpage.bookinfo.svc.cluster.local:9080/productpage",
        &[
            ("node_id", PRODUCTPAGE_NODE),
            ("istio.canonical_service", "productpage"),
            ("istio.canonical_revision", "v1"),
            ("upstream_cluster", "inbound|9080||"),
            ("http.status_code", "503"),
            ("response_flags", "UF,URX"),
            ("peer.address", "10.244.0.14"),
            ("span.kind", "server"),
        ],
    );
    let request = istio_request(&server, None).unwrap();
    assert_eq!(label(&request, "reporter"), "destination");
    assert_eq!(label(&request, "source_workload"), "unknown");
    assert_eq!(label(&request, "destination_workload"), "productpage-v1");
    assert_eq!(
        label(&request, "destination_service"),
        "productpage.bookinfo.svc.cluster.local"
    );
    assert_eq!(label(&request, "destination_service_namespace"), "bookinfo");
    assert_eq!(label(&request, "response_code"), "503");
    assert_eq!(label(&request, "response_flags"), "UF,URX");
}

#[test]
fn a_gateway_reports_as_source_and_a_waypoint_as_waypoint() {
    let gateway = span(
        "productpage.bookinfo.svc.cluster.local:9080/productpage",
        &[
            (
                "node_id",
                "router~10.244.0.14~istio-ingressgateway-79788cd94-wgmsp.istio-system~istio-system.svc.cluster.local",
            ),
            ("istio.canonical_service", "istio-ingressgateway"),
            ("istio.canonical_revision", "latest"),
            (
                "upstream_cluster",
                "outbound|9080||productpage.bookinfo.svc.cluster.local",
            ),
            ("span.kind", "client"),
        ],
    );
    let request = istio_request(&gateway, None).unwrap();
    assert_eq!(label(&request, "reporter"), "source");
    assert_eq!(label(&request, "source_workload"), "istio-ingressgateway");
    assert_eq!(label(&request, "source_workload_namespace"), "istio-system");
    assert_eq!(label(&request, "source_version"), "unknown");
    assert_eq!(label(&request, "source_canonical_revision"), "latest");
    // No status code in the span: Istio's `0` (no response).
    assert_eq!(label(&request, "response_code"), "0");

    let waypoint = span(
        "reviews.bookinfo.svc.cluster.local:9080/*",
        &[
            (
                "node_id",
                "waypoint~10.244.0.28~waypoint-5b7c754ccb-55jwk.bookinfo~bookinfo.svc.cluster.local",
            ),
            ("istio.canonical_service", "waypoint"),
            ("istio.source_workload", "productpage-v1"),
            ("istio.source_namespace", "bookinfo"),
            ("istio.destination_workload", "reviews-v1"),
            ("istio.destination_namespace", "bookinfo"),
            ("istio.destination_canonical_service", "reviews"),
            (
                "upstream_cluster",
                "inbound-vip|9080|http|reviews.bookinfo.svc.cluster.local",
            ),
            ("http.status_code", "200"),
            ("span.kind", "server"),
        ],
    );
    let request = istio_request(&waypoint, None).unwrap();
    assert_eq!(label(&request, "reporter"), "waypoint");
    assert_eq!(label(&request, "source_workload"), "productpage-v1");
    assert_eq!(label(&request, "destination_workload"), "reviews-v1");
    assert_eq!(label(&request, "destination_canonical_service"), "reviews");
    assert_eq!(label(&request, "destination_app"), "reviews");
    assert_eq!(label(&request, "destination_service_name"), "reviews");
}

#[test]
fn grpc_passthrough_and_plain_spans() {
    let mut grpc = productpage_client_to_reviews();
    grpc.tags.push(meshtrace_model::KeyValue::new(
        "grpc.status_code",
        Value::I64(14),
    ));
    grpc.tags.retain(|kv| kv.key != "http.status_code");
    grpc.tags.push(meshtrace_model::KeyValue::new(
        "http.status_code",
        Value::I64(200),
    ));
    let request = istio_request(&grpc, None).unwrap();
    assert_eq!(label(&request, "request_protocol"), "grpc");
    assert_eq!(label(&request, "grpc_response_status"), "14");
    assert_eq!(label(&request, "response_code"), "200");

    let mut passthrough = productpage_client_to_reviews();
    for kv in &mut passthrough.tags {
        if kv.key == "upstream_cluster" {
            kv.value = Value::Str("PassthroughCluster".into());
        }
        if kv.key == "http.url" {
            kv.value = Value::Str("https://api.example.com:8443/v1?x=1".into());
        }
    }
    let request = istio_request(&passthrough, None).unwrap();
    assert_eq!(label(&request, "destination_service"), "api.example.com");
    assert_eq!(
        label(&request, "destination_service_name"),
        "PassthroughCluster"
    );
    assert_eq!(label(&request, "destination_service_namespace"), "unknown");

    // A hostile status code is not a label value.
    let mut odd = productpage_client_to_reviews();
    for kv in &mut odd.tags {
        if kv.key == "http.status_code" {
            kv.value = Value::Str("2000000".into());
        }
    }
    assert_eq!(
        label(&istio_request(&odd, None).unwrap(), "response_code"),
        "0"
    );

    // Not an Istio proxy's span: no Istio request (its per-service key still counts).
    let plain = span("GET /api", &[("span.kind", "server")]);
    assert!(istio_request(&plain, None).is_none());
    assert_eq!(ServiceKey::of(&plain).kind, SpanKind::Server);
}

fn with_status(code: Value) -> Span {
    let mut span = productpage_client_to_reviews();
    for kv in &mut span.tags {
        if kv.key == "http.status_code" {
            kv.value = code.clone();
        }
    }
    span
}

fn inputs_of(span: &Span) -> RequestInputs<'_> {
    let tags = SpanTags::of(span);
    let report = reporter_of(&tags).unwrap();
    RequestInputs::of(span, &tags, report, None)
}

#[test]
fn a_status_code_as_a_number_is_written_as_istio_writes_it() {
    // OpenTelemetry writes `http.status_code` as an integer, Zipkin as text: the same label.
    let (number, text) = (
        with_status(Value::I64(503)),
        with_status(Value::Str("503".into())),
    );
    let labels_of_number = inputs_of(&number).labels();
    assert_eq!(labels_of_number, inputs_of(&text).labels());
    assert_eq!(labels_of_number[21], "503");
    // Different inputs (a number, a text), so a caller summing per input merges by labels.
    assert_ne!(inputs_of(&number), inputs_of(&text));
    // Out of Istio's 1–3 digits: `0`, as for a hostile text.
    for odd in [Value::I64(-1), Value::I64(1000), Value::I64(i64::MIN)] {
        assert_eq!(inputs_of(&with_status(odd)).labels()[21], "0");
    }
    assert_eq!(inputs_of(&with_status(Value::I64(0))).labels()[21], "0");
    assert_eq!(inputs_of(&with_status(Value::I64(7))).labels()[21], "7");
}
