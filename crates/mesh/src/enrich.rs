//! What a span says about the mesh, for span tables: which way the call went, the other end,
//! the reporting pod and its workload, Envoy's response flags in words.

use meshtrace_model::Span;

use crate::filter::node_pod;
use crate::names::{pod_workload, tag_str};

#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanInfo {
    /// `inbound` (a server span: the call arrived), `outbound` (a client span), or empty.
    pub direction: &'static str,
    /// The other end: the called service (`reviews.bookinfo`) or the caller's address.
    pub peer: String,
    pub namespace: String,
    pub app: String,
    pub workload: String,
    pub pod: String,
    /// `proxy` for Envoy spans, else what the span says (`component` tag).
    pub component: String,
    pub status_code: String,
    /// Envoy's response flags (`UH`, `UF,URX`) and their meaning; empty for `-`.
    pub response_flags: String,
    pub response_flags_meaning: String,
    pub cluster: String,
}

pub fn span_info(span: &Span) -> SpanInfo {
    let upstream = tag_str(span, "upstream_cluster").unwrap_or("");
    let direction = if upstream.starts_with("inbound|") {
        "inbound"
    } else if upstream.starts_with("outbound|") {
        "outbound"
    } else {
        match span.kind() {
            "server" | "consumer" => "inbound",
            "client" | "producer" => "outbound",
            _ => "",
        }
    };
    let peer = match direction {
        // outbound|9080||reviews.bookinfo.svc.cluster.local → reviews.bookinfo
        "outbound" => upstream
            .rsplit('|')
            .next()
            .map(|fqdn| fqdn.trim_end_matches(".svc.cluster.local").to_string())
            .filter(|p| !p.is_empty())
            .or_else(|| tag_str(span, "peer.address").map(str::to_string))
            .unwrap_or_default(),
        _ => tag_str(span, "peer.address").unwrap_or("").to_string(),
    };
    let (pod, namespace) = match node_pod(span) {
        Some((pod, ns)) => (pod.to_string(), ns.to_string()),
        None => (
            tag_str(span, "hostname").unwrap_or("").to_string(),
            tag_str(span, "istio.namespace").unwrap_or("").to_string(),
        ),
    };
    let flags = tag_str(span, "response_flags").unwrap_or("-");
    let flags = if flags == "-" { "" } else { flags };
    SpanInfo {
        direction,
        peer,
        app: tag_str(span, "istio.canonical_service")
            .unwrap_or("")
            .to_string(),
        workload: pod_workload(&pod).to_string(),
        pod,
        namespace,
        component: tag_str(span, "component").unwrap_or("").to_string(),
        status_code: tag_str(span, "http.status_code")
            .or_else(|| tag_str(span, "grpc.status_code"))
            .unwrap_or("")
            .to_string(),
        response_flags: flags.to_string(),
        response_flags_meaning: flags
            .split(',')
            .filter_map(response_flag_meaning)
            .collect::<Vec<_>>()
            .join("; "),
        cluster: tag_str(span, "istio.cluster_id").unwrap_or("").to_string(),
    }
}

/// Envoy's response flag, in words (Envoy's access-log documentation).
pub fn response_flag_meaning(flag: &str) -> Option<&'static str> {
    Some(match flag {
        "UH" => "no healthy upstream host",
        "UF" => "upstream connection failure",
        "UO" => "upstream overflow (circuit breaking)",
        "NR" => "no route configured",
        "URX" => "upstream retry limit exceeded",
        "NC" => "upstream cluster not found",
        "DT" => "request or connection exceeded its maximum duration",
        "DC" => "downstream connection terminated",
        "LH" => "local service failed its health check",
        "UT" => "upstream request timeout",
        "LR" => "connection reset locally",
        "UR" => "upstream remote reset",
        "UC" => "upstream connection terminated",
        "DI" => "request delayed by fault injection",
        "FI" => "request aborted by fault injection",
        "RL" => "rate limited locally",
        "UAEX" => "denied by the external authorization service",
        "RLSE" => "rate limit service error",
        "IH" => "invalid value in a strictly checked header",
        "SI" => "stream idle timeout",
        "DPE" => "downstream protocol error",
        "UPE" => "upstream protocol error",
        "UMSDR" => "upstream max stream duration reached",
        "OM" => "overload manager terminated the request",
        "DF" => "DNS resolution failed",
        "DO" => "dropped by overload",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sidecar_client_span_is_read() {
        let tags = [
            (
                "node_id",
                "sidecar~10.244.0.5~productpage-v1-5d9b4c9849-lq7m2.bookinfo~bookinfo.svc.cluster.local",
            ),
            (
                "upstream_cluster",
                "outbound|9080||reviews.bookinfo.svc.cluster.local",
            ),
            ("istio.canonical_service", "productpage"),
            ("istio.cluster_id", "east"),
            ("component", "proxy"),
            ("http.status_code", "503"),
            ("response_flags", "UF,URX"),
            ("span.kind", "client"),
        ];
        let span = crate::testing::span("reviews.bookinfo.svc.cluster.local:9080/*", &tags);
        assert_eq!(
            span_info(&span),
            SpanInfo {
                direction: "outbound",
                peer: "reviews.bookinfo".into(),
                namespace: "bookinfo".into(),
                app: "productpage".into(),
                workload: "productpage-v1".into(),
                pod: "productpage-v1-5d9b4c9849-lq7m2".into(),
                component: "proxy".into(),
                status_code: "503".into(),
                response_flags: "UF,URX".into(),
                response_flags_meaning:
                    "upstream connection failure; upstream retry limit exceeded".into(),
                cluster: "east".into(),
            }
        );
    }
}
