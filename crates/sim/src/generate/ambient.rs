//! Ambient mode: one span per hop, on the waypoint proxy of the callee's namespace, which
//! names both ends in `istio.source_*` and `istio.destination_*` tags; the waypoint is the only
//! proxy that counts the request (`reporter="waypoint"`).

use meshtrace_model::{KeyValue, SpanId};

use super::{Fault, Generator, Hop, Render, answer_tags, proxy_span, push_closing_tags};
use crate::report::{Protocol, Proxy, Report, Reporter};
use crate::topology::Pod;

impl Generator {
    pub(super) fn render_waypoint(
        &mut self,
        hop: &Hop,
        start: u64,
        parent: Option<SpanId>,
        out: &mut Render,
    ) -> (u64, u16) {
        let id = self.span_id();
        let (mut status, flags) = match hop.fault {
            Fault::Unhealthy => (503, "UH"),
            Fault::ServerError => (500, "-"),
            Fault::None => (200, "-"),
        };
        let half = (hop.self_latency_us / 2.0) as u64;
        let mut cursor = start + half;
        if hop.fault == Fault::None && self.render_calls(hop, &mut cursor, id, out) {
            status = 500;
        }
        let end = cursor + half;
        let callee = &self.mesh.topology.services[hop.callee.service];
        let caller_workload = self.workload_name(hop.caller);
        let caller_service = &self.mesh.topology.services[hop.caller.service];
        let caller_ns = caller_service.namespace.clone();
        // Waypoints name both ends' canonical service and revision, as the metrics label them.
        let caller_canonical = (
            caller_service.name.clone(),
            self.mesh.workloads[hop.caller.service][hop.caller.workload]
                .version
                .clone(),
        );
        let callee_canonical = (
            callee.name.clone(),
            self.mesh.workloads[hop.callee.service][hop.callee.workload]
                .version
                .clone(),
        );
        let (callee_name, callee_ns, port) =
            (callee.name.clone(), callee.namespace.clone(), callee.port);
        let waypoint = self.waypoint(&callee_ns);
        let response_size = self.response_size(status);
        let fqdn = format!("{callee_name}.{callee_ns}.svc.cluster.local");
        let mut tags = vec![
            KeyValue::string(
                "node_id",
                format!(
                    "waypoint~{}~{}.{callee_ns}~{callee_ns}.svc.cluster.local",
                    waypoint.ip, waypoint.name
                ),
            ),
            KeyValue::string("istio.cluster_id", waypoint.cluster.clone()),
            KeyValue::string("istio.mesh_id", self.mesh.topology.mesh_id.clone()),
            KeyValue::string("istio.namespace", callee_ns.clone()),
            KeyValue::string("istio.canonical_service", "waypoint"),
            KeyValue::string("istio.canonical_revision", "latest"),
            KeyValue::string("istio.source_workload", caller_workload),
            KeyValue::string("istio.source_namespace", caller_ns),
            KeyValue::string("istio.destination_workload", self.workload_name(hop.callee)),
            KeyValue::string("istio.destination_namespace", callee_ns.clone()),
            KeyValue::string("istio.source_canonical_service", caller_canonical.0),
            KeyValue::string("istio.source_canonical_revision", caller_canonical.1),
            KeyValue::string("istio.destination_canonical_service", callee_canonical.0),
            KeyValue::string("istio.destination_canonical_revision", callee_canonical.1),
            KeyValue::string("component", "proxy"),
            KeyValue::string(
                "upstream_cluster",
                format!("inbound-vip|{port}|http|{fqdn}"),
            ),
            KeyValue::string(
                "upstream_cluster.name",
                format!("inbound-vip|{port}|http|{fqdn}"),
            ),
            KeyValue::string("downstream_cluster", "-"),
            KeyValue::string("http.method", "GET"),
            KeyValue::string(
                "http.url",
                format!("http://{callee_name}:{port}{}", hop.path),
            ),
        ];
        tags.extend(answer_tags(status, flags, response_size));
        push_closing_tags(&mut tags, &out.request_id, "server", status);
        let process = self.process(&format!("waypoint.{callee_ns}"));
        let span = proxy_span(
            out.trace_id,
            id,
            parent,
            format!("{fqdn}:{port}/*"),
            (start, end),
            tags,
            process,
        );
        out.spans.push(span);
        out.reports.push(Report {
            protocol: Protocol::Http,
            reporter: Reporter::Waypoint,
            proxy: Proxy::Waypoint {
                pod: waypoint.name,
                namespace: callee_ns,
            },
            source: hop.caller.endpoint(),
            // A waypoint with no healthy upstream reached no pod of the callee.
            destination: (hop.fault != Fault::Unhealthy).then(|| hop.callee.endpoint()),
            service: hop.callee.service,
            status,
            flags,
            duration_us: end - start,
            request_bytes: 0,
            response_bytes: response_size,
        });
        (end, status)
    }

    pub(super) fn waypoint(&mut self, namespace: &str) -> Pod {
        if let Some(pod) = self.waypoints.get(namespace) {
            return pod.clone();
        }
        let pod = Pod {
            name: format!(
                "waypoint-{:x}-{}",
                0x0005_b7c7_54cc_u64 + self.waypoints.len() as u64,
                self.rng.name_suffix(5)
            ),
            ip: format!("10.244.9.{}", 10 + self.waypoints.len()),
            cluster: "Kubernetes".to_string(),
        };
        self.waypoints.insert(namespace.to_string(), pod.clone());
        pod
    }
}
