//! Who reported a span: the Envoy proxy named by its `node_id`
//! (`sidecar~10.244.0.25~productpage-v1-6f89b6c557-sg2bc.bookinfo~bookinfo.svc.cluster.local`)
//! and the workload it runs for, with the labels Istio's telemetry gives that workload.

use meshtrace_model::Span;

use super::tags::SpanTags;
use crate::names::{pod_workload, tag_str};

/// The value Istio writes where it cannot tell a label.
pub const UNKNOWN: &str = "unknown";

/// Which kind of Envoy reported the span (the first part of its `node_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// `sidecar~`: a sidecar beside an application container.
    Sidecar,
    /// `router~`: a gateway (ingress or egress) in sidecar mode.
    Gateway,
    /// `waypoint~`: an ambient mesh's waypoint proxy.
    Waypoint,
}

/// A workload as Istio's standard metrics label it (one side of a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Workload<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
    /// The pod's `app` label; the proxy reports it as its canonical service.
    pub app: &'a str,
    /// The pod's `version` label; the proxy reports it as its canonical revision.
    pub version: &'a str,
    pub canonical_service: &'a str,
    pub canonical_revision: &'a str,
    pub cluster: &'a str,
}

impl Workload<'static> {
    /// Every label `unknown`: the other end of a request the span cannot tell.
    pub const UNKNOWN: Workload<'static> = Workload {
        name: UNKNOWN,
        namespace: UNKNOWN,
        app: UNKNOWN,
        version: UNKNOWN,
        canonical_service: UNKNOWN,
        canonical_revision: UNKNOWN,
        cluster: UNKNOWN,
    };
}

/// The proxy that reported a span, and its workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proxy<'a> {
    pub kind: ProxyKind,
    /// The pod's IP (the second part of `node_id`).
    pub ip: &'a str,
    pub pod: &'a str,
    pub workload: Workload<'a>,
}

/// The reporting proxy of an Envoy span; None for a span without an Istio `node_id`.
pub fn proxy(span: &Span) -> Option<Proxy<'_>> {
    proxy_of(&SpanTags::of(span))
}

/// [`proxy`] from the span's tags, already read.
pub fn proxy_of<'a>(tags: &SpanTags<'a>) -> Option<Proxy<'a>> {
    // sidecar~10.244.0.25~productpage-v1-6f89b6c557-sg2bc.bookinfo~bookinfo.svc.cluster.local
    let mut parts = tags.node_id?.split('~');
    let kind = match parts.next()? {
        "sidecar" => ProxyKind::Sidecar,
        "router" => ProxyKind::Gateway,
        "waypoint" => ProxyKind::Waypoint,
        _ => return None,
    };
    let ip = parts.next().unwrap_or("");
    let (pod, namespace) = parts.next()?.rsplit_once('.')?;
    let name = pod_workload(pod);
    let canonical_service = known(tags.canonical_service);
    let canonical_revision = known(tags.canonical_revision);
    let workload = Workload {
        name: or_unknown(name),
        namespace: or_unknown(namespace),
        app: canonical_service.unwrap_or(UNKNOWN),
        // A canonical revision of `latest` is what Istio writes when the pod has no version.
        version: canonical_revision
            .filter(|r| *r != "latest")
            .unwrap_or(UNKNOWN),
        // Istio's default canonical name is the workload's; its default revision `latest`.
        canonical_service: canonical_service.unwrap_or(or_unknown(name)),
        canonical_revision: canonical_revision.unwrap_or("latest"),
        cluster: known(tags.cluster_id).unwrap_or(UNKNOWN),
    };
    Some(Proxy {
        kind,
        ip,
        pod,
        workload,
    })
}

/// The two ends an ambient waypoint's span names in its `istio.source_*` and
/// `istio.destination_*` tags (source, destination); `unknown` where a tag is missing.
pub fn waypoint_ends(span: &Span) -> (Workload<'_>, Workload<'_>) {
    (tagged_end(span, "source"), tagged_end(span, "destination"))
}

fn tagged_end<'a>(span: &'a Span, side: &str) -> Workload<'a> {
    let tag = |label: &str| known(tag_str(span, &format!("istio.{side}_{label}")));
    let name = tag("workload").unwrap_or(UNKNOWN);
    let canonical_service = tag("canonical_service");
    let canonical_revision = tag("canonical_revision");
    Workload {
        name,
        namespace: tag("namespace").unwrap_or(UNKNOWN),
        app: canonical_service.unwrap_or(UNKNOWN),
        version: canonical_revision
            .filter(|r| *r != "latest")
            .unwrap_or(UNKNOWN),
        canonical_service: canonical_service.unwrap_or(name),
        canonical_revision: canonical_revision.unwrap_or(if name == UNKNOWN {
            UNKNOWN
        } else {
            "latest"
        }),
        cluster: tag("cluster").unwrap_or(UNKNOWN),
    }
}

fn known(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

fn or_unknown(value: &str) -> &str {
    if value.is_empty() { UNKNOWN } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::span;

    #[test]
    fn a_sidecar_and_a_gateway_are_read_from_node_id() {
        let sidecar = span(
            "x",
            &[
                (
                    "node_id",
                    "sidecar~10.244.0.25~productpage-v1-6f89b6c557-sg2bc.bookinfo~bookinfo.svc.cluster.local",
                ),
                ("istio.canonical_service", "productpage"),
                ("istio.canonical_revision", "v1"),
                ("istio.cluster_id", "east"),
            ],
        );
        let p = proxy(&sidecar).unwrap();
        assert_eq!(p.kind, ProxyKind::Sidecar);
        assert_eq!(p.ip, "10.244.0.25");
        assert_eq!(
            p.workload,
            Workload {
                name: "productpage-v1",
                namespace: "bookinfo",
                app: "productpage",
                version: "v1",
                canonical_service: "productpage",
                canonical_revision: "v1",
                cluster: "east",
            }
        );

        let gateway = span(
            "x",
            &[
                (
                    "node_id",
                    "router~10.244.0.14~istio-ingressgateway-79788cd94-wgmsp.istio-system~istio-system.svc.cluster.local",
                ),
                ("istio.canonical_service", "istio-ingressgateway"),
                ("istio.canonical_revision", "latest"),
            ],
        );
        let g = proxy(&gateway).unwrap();
        assert_eq!(g.kind, ProxyKind::Gateway);
        assert_eq!(g.workload.name, "istio-ingressgateway");
        assert_eq!(g.workload.version, UNKNOWN);
        assert_eq!(g.workload.canonical_revision, "latest");
        assert_eq!(g.workload.cluster, UNKNOWN);

        assert!(proxy(&span("x", &[("node_id", "other~1~a.b~c")])).is_none());
        assert!(proxy(&span("x", &[])).is_none());
    }
}
