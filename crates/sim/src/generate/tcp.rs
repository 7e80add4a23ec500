//! Calls to a TCP service (a database): one connection per call, which Envoy's TCP proxy
//! counts (`istio_tcp_connections_opened_total`, `..._closed_total`, `istio_tcp_sent_bytes_total`,
//! `istio_tcp_received_bytes_total`) but does not trace, so such a hop has no span. With
//! sidecars both ends' proxies count it; in ambient mode the waypoint of the callee's namespace.

use super::{Generator, Hop, Render};
use crate::report::{Protocol, Proxy, Report, Reporter};

impl Generator {
    /// Renders a TCP hop starting at `start`; returns its end (µs) and a success status, as the
    /// caller saw its connection answered.
    pub(super) fn render_tcp(
        &mut self,
        hop: &Hop,
        start: u64,
        network: u64,
        out: &mut Render,
    ) -> (u64, u16) {
        // A query up, its rows down.
        let received = 60 + self.rng.below(400) as u64;
        let sent = 200 + self.rng.below(20_000) as u64;
        let server_us = hop.self_latency_us as u64;
        let end = start + 2 * network + server_us;
        let report = |reporter: Reporter, proxy: Proxy, duration_us: u64| Report {
            protocol: Protocol::Tcp,
            reporter,
            proxy,
            source: hop.caller.endpoint(),
            destination: Some(hop.callee.endpoint()),
            service: hop.callee.service,
            status: 0,
            flags: "-",
            duration_us,
            request_bytes: received,
            response_bytes: sent,
        };
        if self.options.ambient {
            let namespace = self.mesh.topology.services[hop.callee.service]
                .namespace
                .clone();
            let waypoint = self.waypoint(&namespace);
            out.reports.push(report(
                Reporter::Waypoint,
                Proxy::Waypoint {
                    pod: waypoint.name,
                    namespace,
                },
                server_us + network,
            ));
        } else {
            out.reports.push(report(
                Reporter::Source,
                Proxy::Sidecar(hop.caller.endpoint()),
                end - start,
            ));
            out.reports.push(report(
                Reporter::Destination,
                Proxy::Sidecar(hop.callee.endpoint()),
                server_us,
            ));
        }
        (end, 200)
    }
}
