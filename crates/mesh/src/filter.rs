//! Which traces belong to a workload or a service. The backend is asked by the app's service
//! name; a workload's or a service's traces are then the ones with a span that is theirs (as
//! Kiali filters them, after the limited query, so fewer than `limit` may remain).

use meshtrace_model::{Span, Trace};

use crate::names::{Kind, Target, pod_workload, tag_str};

/// The pod and namespace in an Envoy `node_id`: `sidecar~10.0.0.1~<pod>.<ns>~<ns>.svc.cluster.local`.
pub(crate) fn node_pod(span: &Span) -> Option<(&str, &str)> {
    let node = tag_str(span, "node_id")?;
    let segment = node.split('~').nth(2)?;
    segment.rsplit_once('.')
}

/// True when the span was reported by (or, for a waypoint span, is about) the workload.
pub fn span_matches_workload(span: &Span, workload: &str, namespace: &str) -> bool {
    if let Some((pod, ns)) = node_pod(span)
        && ns == namespace
        && pod_workload(pod) == workload
    {
        return true;
    }
    // Ambient: the waypoint's span names both ends.
    for side in ["source", "destination"] {
        let name = tag_str(span, &format!("istio.{side}_workload"));
        let ns = tag_str(span, &format!("istio.{side}_namespace"));
        if name == Some(workload) && ns == Some(namespace) {
            return true;
        }
    }
    // Spans without node_id (Tempo, plain OpenTelemetry): the pod's host name.
    node_pod(span).is_none()
        && tag_str(span, "hostname").is_some_and(|host| pod_workload(host) == workload)
}

/// True when the span is a call to or from the service: Istio's canonical-service tags, or an
/// Envoy operation name (`reviews.bookinfo.svc.cluster.local:9080/*`).
pub fn span_matches_service(span: &Span, service: &str, namespace: &str) -> bool {
    for side in ["destination", "source"] {
        let name = tag_str(span, &format!("istio.{side}_canonical_service"));
        let ns = tag_str(span, &format!("istio.{side}_namespace"));
        if name == Some(service) && ns == Some(namespace) {
            return true;
        }
    }
    let op = span.operation_name.as_str();
    op.strip_prefix(service)
        .and_then(|rest| rest.strip_prefix('.'))
        .and_then(|rest| rest.strip_prefix(namespace))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', ':', '/']))
}

/// True when the trace belongs to the target: every trace of an app's query does; a workload's
/// or a service's trace needs one span of theirs.
pub fn trace_matches(trace: &Trace, target: &Target) -> bool {
    match target.kind {
        Kind::App => true,
        Kind::Workload => trace
            .spans
            .iter()
            .any(|s| span_matches_workload(s, &target.name, &target.namespace)),
        Kind::Service => trace
            .spans
            .iter()
            .any(|s| span_matches_service(s, &target.name, &target.namespace)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::span;

    #[test]
    fn workloads_are_told_by_node_id_ambient_tags_or_hostname() {
        let sidecar = span(
            "x",
            &[(
                "node_id",
                "sidecar~10.244.0.7~reviews-v2-7d8f9c6b5-x2kqp.bookinfo~bookinfo.svc.cluster.local",
            )],
        );
        assert!(span_matches_workload(&sidecar, "reviews-v2", "bookinfo"));
        assert!(!span_matches_workload(&sidecar, "reviews-v1", "bookinfo"));
        assert!(!span_matches_workload(&sidecar, "reviews-v2", "other"));
        // A prefix is not enough: reviews-v2-canary is another workload.
        assert!(!span_matches_workload(&sidecar, "reviews", "bookinfo"));

        let waypoint = span(
            "x",
            &[
                (
                    "node_id",
                    "waypoint~10.244.9.10~waypoint-5b7c754cc-abcde.travel~travel.svc.cluster.local",
                ),
                ("istio.source_workload", "cars-v1"),
                ("istio.source_namespace", "travel"),
                ("istio.destination_workload", "hotels-v1"),
                ("istio.destination_namespace", "travel"),
            ],
        );
        assert!(span_matches_workload(&waypoint, "hotels-v1", "travel"));
        assert!(span_matches_workload(&waypoint, "cars-v1", "travel"));
        assert!(span_matches_workload(&waypoint, "waypoint", "travel"));

        let otel = span("x", &[("hostname", "reviews-v2-7d8f9c6b5-x2kqp")]);
        assert!(span_matches_workload(&otel, "reviews-v2", "bookinfo"));
    }

    #[test]
    fn services_are_told_by_canonical_tags_or_operation_names() {
        let envoy = span("reviews.bookinfo.svc.cluster.local:9080/*", &[]);
        assert!(span_matches_service(&envoy, "reviews", "bookinfo"));
        assert!(!span_matches_service(&envoy, "reviews", "bookinf"));
        assert!(!span_matches_service(&envoy, "review", "bookinfo"));
        let tagged = span(
            "GET",
            &[
                ("istio.destination_canonical_service", "ratings"),
                ("istio.destination_namespace", "bookinfo"),
            ],
        );
        assert!(span_matches_service(&tagged, "ratings", "bookinfo"));
        assert!(!span_matches_service(&tagged, "reviews", "bookinfo"));
    }
}
