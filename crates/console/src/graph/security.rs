//! Kiali's `securityPolicy` appender (`appender/security_policy.go`): the share of an edge's
//! traffic the destinations report over mutual TLS (`isMTLS`, a percentage) and the principals
//! of its two ends (`sourcePrincipal`, `destPrincipal`).
//!
//! Two queries per namespace, as Kiali sends them: what comes into the namespace from outside
//! it, and what leaves workloads inside it, each the `or` of one `sum(rate(…)) by (…) > 0` per
//! metric the requested rates use (destination reports, which know the connection's policy),
//! grouped by both ends, their principals and `connection_security_policy`. Each series'
//! value is filed under its edge and policy, a later series of the same edge and policy
//! replacing an earlier one (Kiali's `policyRates[csp] = val`); an edge whose `mutual_tls` rate
//! is above 0 gets `isMTLS` = mTLS / all × 100; the first principals seen for an edge are
//! kept. Nothing else is set: an edge whose destinations did not report `mutual_tls` (the
//! store, which cannot tell TLS from spans, reports `unknown`) carries no `isMTLS`.
//!
//! Bounded by the series read: each adds at most two edges' entries.

use std::collections::{BTreeMap, HashMap};

use meshtrace_backend::prometheus::Expr;
use meshtrace_backend::prometheus::Labels;
use meshtrace_backend::prometheus::MatchOp;
use meshtrace_backend::prometheus::promql::{BinaryOp, PromqlError};

use super::ends::{Ends, Labeled, NodeType, PASSTHROUGH, UNKNOWN, is_ok, node_id};
use super::options::{Ambient, GraphOptions, Rate};
use super::queries::{
    M, Purpose, Query, REQUESTS, eq, ne, positive, reporter, rounded, sum_rate, tcp_app, window,
};
use super::traffic::TrafficMap;

pub const APPENDER: &str = "securityPolicy";
/// The policy Istio's destination proxies report for a mutual TLS connection.
const MUTUAL_TLS: &str = "mutual_tls";

/// The appender's group-by: both ends (with `destination_service_name`, without
/// `destination_service`), their principals and the policy.
const GROUP: [&str; 15] = [
    "source_cluster",
    "source_workload_namespace",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_principal",
    "destination_cluster",
    "destination_service_namespace",
    "destination_service_name",
    "destination_workload_namespace",
    "destination_workload",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_principal",
    "connection_security_policy",
];

/// The metrics the requested rates use, in Kiali's order, and whether each is TCP. Unlike the
/// traffic queries, "sent" TCP reads `istio_tcp_sent_bytes_total` here, as Kiali's appender does.
fn metrics(o: &GraphOptions) -> Vec<(&'static str, bool)> {
    let mut out = Vec::new();
    if o.rates.http == Rate::Requests || o.rates.grpc == Rate::Requests {
        out.push((REQUESTS, false));
    }
    if matches!(o.rates.grpc, Rate::Sent | Rate::Total) {
        out.push(("istio_request_messages_total", false));
    }
    if matches!(o.rates.grpc, Rate::Received | Rate::Total) {
        out.push(("istio_response_messages_total", false));
    }
    if matches!(o.rates.tcp, Rate::Sent | Rate::Total) {
        out.push(("istio_tcp_sent_bytes_total", true));
    }
    if matches!(o.rates.tcp, Rate::Received | Rate::Total) {
        out.push(("istio_tcp_received_bytes_total", true));
    }
    out
}

/// `(a) or (b) or …`, left to right; `None` without parts.
fn union(parts: Vec<Expr>) -> Option<Expr> {
    let mut parts = parts.into_iter();
    let first = parts.next()?;
    Some(parts.fold(first, |acc, e| Expr::binary(BinaryOp::Or, acc, e)))
}

/// The appender's two queries for namespace `ns` (none when it is not asked for, or when no
/// rate is requested).
pub fn queries(o: &GraphOptions, ns: &str) -> Result<Vec<Query>, PromqlError> {
    if !o.wants(APPENDER) {
        return Ok(Vec::new());
    }
    let w = window(o);
    let part = |metric: &str, is_tcp: bool, rest: Vec<M<'_>>| -> Result<Expr, PromqlError> {
        let mut matchers: Vec<M<'_>> = Vec::new();
        if is_tcp {
            matchers.extend(tcp_app(o.rates.ambient));
        }
        matchers.push(reporter("destination", o.rates.ambient));
        matchers.extend(rest);
        Ok(positive(sum_rate(metric, matchers, w, &GROUP)?))
    };
    let mut incoming = Vec::new();
    let mut inside = Vec::new();
    for (metric, is_tcp) in metrics(o) {
        incoming.push(part(
            metric,
            is_tcp,
            vec![
                ne("source_workload_namespace", ns),
                eq("destination_service_namespace", ns),
            ],
        )?);
        inside.push(part(
            metric,
            is_tcp,
            vec![eq("source_workload_namespace", ns)],
        )?);
    }
    // ztunnel reports ztunnel-to-sidecar TCP as the source only.
    if matches!(o.rates.ambient, Ambient::Total | Ambient::Ztunnel) {
        for (metric, _) in metrics(o).into_iter().filter(|(_, tcp)| *tcp) {
            let matchers = vec![
                ("app", MatchOp::Equal, "ztunnel".to_string()),
                eq("reporter", "source"),
                eq("source_workload_namespace", ns),
            ];
            inside.push(positive(sum_rate(metric, matchers, w, &GROUP)?));
        }
    }
    Ok([incoming, inside]
        .into_iter()
        .filter_map(union)
        .map(|expr| Query {
            namespace: ns.to_string(),
            purpose: Purpose::SecurityPolicy,
            expr: rounded(expr),
        })
        .collect())
}

/// An edge by its two node keys.
type EdgeKey = (String, String);

/// The appender's answers for one namespace, by edge.
#[derive(Debug, Default)]
pub struct Policies {
    /// Policy → rate.
    rates: HashMap<EdgeKey, BTreeMap<String, f64>>,
    /// (source principal, destination principal), the first seen.
    principals: HashMap<EdgeKey, (String, String)>,
}

impl Policies {
    fn add(
        &mut self,
        source: &Ends<'_>,
        dest: &Ends<'_>,
        o: &GraphOptions,
        policy: &str,
        value: f64,
        principals: (&str, &str),
    ) {
        let (Some((s, _)), Some((d, _))) =
            (node_id(source, o.graph_type), node_id(dest, o.graph_type))
        else {
            return;
        };
        let key = (s, d);
        self.principals
            .entry(key.clone())
            .or_insert_with(|| (principals.0.to_string(), principals.1.to_string()));
        self.rates
            .entry(key)
            .or_default()
            .insert(policy.to_string(), value);
    }

    /// Files one answer's series (Kiali's `populateSecurityPolicyMap`).
    pub fn add_samples(&mut self, samples: &[(Labels, f64)], o: &GraphOptions) {
        for (labels, value) in samples {
            if !value.is_finite() {
                continue;
            }
            let m = Labeled(labels);
            let get = |name: &str| m.get(name);
            let (
                Some(source_ns),
                Some(source_wl),
                Some(source_app),
                Some(source_ver),
                Some(dest_svc_ns),
                Some(dest_svc),
                Some(dest_wl_ns),
                Some(dest_wl),
                Some(dest_app),
                Some(dest_ver),
                Some(source_principal),
                Some(dest_principal),
            ) = (
                get("source_workload_namespace"),
                get("source_workload"),
                get("source_canonical_service"),
                get("source_canonical_revision"),
                get("destination_service_namespace"),
                get("destination_service_name"),
                get("destination_workload_namespace"),
                get("destination_workload"),
                get("destination_canonical_service"),
                get("destination_canonical_revision"),
                get("source_principal"),
                get("destination_principal"),
            )
            else {
                continue;
            };
            // gRPC message metrics carry no policy.
            let policy = get("connection_security_policy").unwrap_or(UNKNOWN);
            let source_cluster = get("source_cluster").unwrap_or(UNKNOWN);
            let dest_cluster = get("destination_cluster").unwrap_or(UNKNOWN);
            let source = Ends::source(source_cluster, source_ns, source_wl, source_app, source_ver);
            let dest = Ends {
                cluster: dest_cluster,
                service_ns: dest_svc_ns,
                service: dest_svc,
                workload_ns: dest_wl_ns,
                workload: dest_wl,
                app: dest_app,
                version: dest_ver,
            };
            let principals = (source_principal, dest_principal);
            let mut inject = false;
            if o.inject_service_nodes && is_ok(dest_svc) && dest_svc != PASSTHROUGH {
                let Some((_, dest_type)) = node_id(&dest, o.graph_type) else {
                    continue;
                };
                inject = dest_type != NodeType::Service;
            }
            if inject {
                let service = Ends {
                    cluster: dest_cluster,
                    service_ns: dest_svc_ns,
                    service: dest_svc,
                    workload_ns: dest_svc_ns,
                    ..Ends::default()
                };
                self.add(&source, &service, o, policy, *value, principals);
                self.add(&service, &dest, o, policy, *value, principals);
            } else {
                self.add(&source, &dest, o, policy, *value, principals);
            }
        }
    }

    /// Sets `isMTLS` and the principals on the edges of `map` (Kiali's `applySecurityPolicy`;
    /// every protocol's edge between the same two nodes gets the same).
    pub fn apply(&self, map: &mut TrafficMap) {
        if self.rates.is_empty() {
            return;
        }
        for (source, edge) in map.edges_mut() {
            let key = (source.to_string(), edge.dest.clone());
            if let Some(rates) = self.rates.get(&key) {
                let mtls = rates.get(MUTUAL_TLS).copied().unwrap_or(0.0);
                let other: f64 = rates
                    .iter()
                    .filter(|(policy, _)| *policy != MUTUAL_TLS)
                    .map(|(_, rate)| *rate)
                    .sum();
                if mtls > 0.0 {
                    edge.is_mtls = Some(mtls / (mtls + other) * 100.0);
                }
            }
            if let Some((s, d)) = self.principals.get(&key) {
                edge.source_principal = Some(s.clone());
                edge.dest_principal = Some(d.clone());
            }
        }
    }
}
