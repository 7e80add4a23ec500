//! Kiali's graph queries as typed PromQL ([`Expr`]): the traffic of a namespace
//! (`buildNamespaceTrafficMap`) or around one node (`buildNodeTrafficMap`), and the queries of
//! the `responseTime` and `throughput` appenders (the `securityPolicy` appender's are in
//! [`super::security`]). Namespaces and names from the request are
//! only ever label values (regular expressions quote them), never query text.
//!
//! Each query is an instant query at `queryTime`, wrapped as Kiali sends it:
//! `round(<query>, 0.001)`.

use std::time::Duration;

use meshtrace_backend::prometheus::promql::{
    Aggregation, BinaryOp, Function, Grouping, PromqlError, regex_literal,
};
use meshtrace_backend::prometheus::{Expr, LabelName, MatchOp, Matcher, Selector};

use super::options::{Ambient, GraphOptions, NodeTarget, Rate, ResponseTime};

/// The labels that name both ends of a request (Kiali's group-by, `L13`).
pub const ENDS: [&str; 13] = [
    "source_cluster",
    "source_workload_namespace",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "destination_cluster",
    "destination_service_namespace",
    "destination_service",
    "destination_service_name",
    "destination_workload_namespace",
    "destination_workload",
    "destination_canonical_service",
    "destination_canonical_revision",
];

pub const REQUESTS: &str = "istio_requests_total";

/// What a query's answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Traffic of this metric: nodes, edges and their rates.
    Traffic(&'static str),
    ResponseTime,
    Throughput,
    /// The `securityPolicy` appender's answer ([`super::security`]).
    SecurityPolicy,
}

#[derive(Debug, Clone)]
pub struct Query {
    /// The namespace whose traffic map the answer goes to.
    pub namespace: String,
    pub purpose: Purpose,
    pub expr: Expr,
}

/// `(name, op, value)`: a matcher to be.
pub(super) type M<'a> = (&'a str, MatchOp, String);

pub(super) fn eq(name: &str, value: impl Into<String>) -> M<'_> {
    (name, MatchOp::Equal, value.into())
}

pub(super) fn ne(name: &str, value: impl Into<String>) -> M<'_> {
    (name, MatchOp::NotEqual, value.into())
}

fn re(name: &str, value: impl Into<String>) -> M<'_> {
    (name, MatchOp::Regex, value.into())
}

/// `reporter="x"`, or `reporter=~"waypoint|x"` when waypoints' reports count (Kiali's
/// `GetReporter`).
pub(super) fn reporter(side: &str, ambient: Ambient) -> M<'static> {
    match ambient {
        Ambient::Waypoint | Ambient::Total => {
            ("reporter", MatchOp::Regex, format!("waypoint|{side}"))
        }
        Ambient::None | Ambient::Ztunnel => ("reporter", MatchOp::Equal, side.to_string()),
    }
}

/// `app!="ztunnel"`, first in TCP selectors when ztunnel's reports do not count.
pub(super) fn tcp_app(ambient: Ambient) -> Option<M<'static>> {
    matches!(ambient, Ambient::Waypoint | Ambient::None)
        .then(|| ("app", MatchOp::NotEqual, "ztunnel".to_string()))
}

fn labels(names: &[&str]) -> Result<Vec<LabelName>, PromqlError> {
    names.iter().map(|n| LabelName::new(n)).collect()
}

fn selector(metric: &str, matchers: Vec<M<'_>>) -> Result<Selector, PromqlError> {
    let mut s = Selector::metric(metric)?;
    for (name, op, value) in matchers {
        s = s.with(Matcher::new(name, op, value)?);
    }
    Ok(s)
}

/// `sum(rate(metric{matchers}[W])) by (group)`.
pub(super) fn sum_rate(
    metric: &str,
    matchers: Vec<M<'_>>,
    window: Duration,
    group: &[&str],
) -> Result<Expr, PromqlError> {
    let range = Expr::range(selector(metric, matchers)?, window)?;
    Ok(Expr::aggregate(
        Aggregation::Sum,
        Grouping::By(labels(group)?),
        Expr::call(Function::Rate, vec![range]),
    ))
}

pub(super) fn positive(expr: Expr) -> Expr {
    Expr::binary(BinaryOp::Gt, expr, Expr::Number(0.0))
}

pub(super) fn rounded(expr: Expr) -> Expr {
    Expr::call(Function::Round, vec![expr, Expr::Number(0.001)])
}

/// The window in whole seconds, as Kiali writes `[<n>s]`.
pub(super) fn window(o: &GraphOptions) -> Duration {
    Duration::from_secs(o.duration.as_secs().max(1))
}

/// The metrics of one protocol's traffic, with their group-by.
fn traffic_metrics(o: &GraphOptions) -> Vec<(&'static str, Vec<&'static str>, bool)> {
    let mut out = Vec::new();
    if o.rates.http == Rate::Requests || o.rates.grpc == Rate::Requests {
        let mut group = ENDS.to_vec();
        group.extend([
            "request_protocol",
            "response_code",
            "grpc_response_status",
            "response_flags",
        ]);
        out.push((REQUESTS, group, false));
    }
    let grpc: &[&'static str] = match o.rates.grpc {
        Rate::Sent => &["istio_request_messages_total"],
        Rate::Received => &["istio_response_messages_total"],
        Rate::Total => &[
            "istio_request_messages_total",
            "istio_response_messages_total",
        ],
        Rate::None | Rate::Requests => &[],
    };
    for metric in grpc {
        out.push((*metric, ENDS.to_vec(), false));
    }
    // L4 telemetry is reversed (istio#32399): "sent" is what the destination received.
    let tcp: &[&'static str] = match o.rates.tcp {
        Rate::Sent => &["istio_tcp_received_bytes_total"],
        Rate::Received => &["istio_tcp_sent_bytes_total"],
        Rate::Total => &[
            "istio_tcp_received_bytes_total",
            "istio_tcp_sent_bytes_total",
        ],
        Rate::None | Rate::Requests => &[],
    };
    for metric in tcp {
        let mut group = vec!["app"];
        group.extend(ENDS);
        group.push("response_flags");
        out.push((*metric, group, true));
    }
    out
}

/// The traffic query: `round(sum(rate(...)) by (...) > 0, 0.001)` (no `> 0` with idle edges).
fn traffic(
    o: &GraphOptions,
    metric: &str,
    is_tcp: bool,
    mut matchers: Vec<M<'_>>,
    group: &[&str],
) -> Result<Expr, PromqlError> {
    if is_tcp && let Some(app) = tcp_app(o.rates.ambient) {
        matchers.insert(0, app);
    }
    let sum = sum_rate(metric, matchers, window(o), group)?;
    Ok(rounded(if o.include_idle_edges {
        sum
    } else {
        positive(sum)
    }))
}

/// The queries of a namespace graph, in Kiali's order (the first report of a request wins).
pub fn namespace_queries(o: &GraphOptions) -> Result<Vec<Query>, PromqlError> {
    let mut out = Vec::new();
    for ns in &o.namespaces {
        let quoted = regex_literal(ns);
        for (metric, group, is_tcp) in traffic_metrics(o) {
            let selectors = [
                // Requests that never reached a workload (no healthy upstream, ...).
                vec![
                    reporter("source", o.rates.ambient),
                    ne("source_workload_namespace", ns.as_str()),
                    eq("destination_workload_namespace", "unknown"),
                    eq("destination_workload", "unknown"),
                    re("destination_service", format!("^.+\\.{quoted}\\..+$")),
                ],
                // Incoming, as the destinations report it.
                vec![
                    reporter("destination", o.rates.ambient),
                    eq("destination_workload_namespace", ns.as_str()),
                ],
                // Outgoing, as the sources report it.
                vec![
                    reporter("source", o.rates.ambient),
                    eq("source_workload_namespace", ns.as_str()),
                ],
            ];
            push_traffic(&mut out, o, ns, (metric, &group, is_tcp), selectors)?;
        }
        out.extend(appender_queries(o, ns)?);
    }
    Ok(out)
}

/// A traffic query of `metric` per selector.
fn push_traffic(
    out: &mut Vec<Query>,
    o: &GraphOptions,
    ns: &str,
    (metric, group, is_tcp): (&'static str, &[&str], bool),
    selectors: impl IntoIterator<Item = Vec<M<'static>>>,
) -> Result<(), PromqlError> {
    for matchers in selectors {
        out.push(Query {
            namespace: ns.to_string(),
            purpose: Purpose::Traffic(metric),
            expr: traffic(o, metric, is_tcp, matchers, group)?,
        });
    }
    Ok(())
}

/// The queries of a node graph: what comes in (destination reports) and goes out (source
/// reports); a service has only incoming traffic.
pub fn node_queries(o: &GraphOptions) -> Result<Vec<Query>, PromqlError> {
    let Some((ns, target)) = &o.node else {
        return Ok(Vec::new());
    };
    let dest_cluster = o
        .cluster
        .as_ref()
        .map(|c| eq("destination_cluster", c.as_str()));
    let source_cluster = o.cluster.as_ref().map(|c| eq("source_cluster", c.as_str()));
    let with_cluster = |mut head: Vec<M<'static>>, cluster: &Option<M<'static>>, rest| {
        head.extend(cluster.clone());
        head.extend::<Vec<M<'static>>>(rest);
        head
    };
    let service_re = |svc: &str| format!("^{}\\.{}\\..*$", regex_literal(svc), regex_literal(ns));
    let mut out = Vec::new();
    for (metric, group, is_tcp) in traffic_metrics(o) {
        let is_requests = metric == REQUESTS;
        let inbound = if is_requests {
            reporter("destination", o.rates.ambient)
        } else if is_tcp {
            ("reporter", MatchOp::Equal, "destination".to_string())
        } else {
            reporter("destination", o.rates.ambient)
        };
        let outbound = if is_tcp {
            ("reporter", MatchOp::Equal, "source".to_string())
        } else {
            reporter("source", o.rates.ambient)
        };
        let mut selectors: Vec<Vec<M<'static>>> = Vec::new();
        match target {
            NodeTarget::Workload(w) => {
                selectors.push(with_cluster(
                    vec![inbound],
                    &dest_cluster,
                    vec![
                        eq("destination_workload_namespace", ns.clone()),
                        eq("destination_workload", w.clone()),
                    ],
                ));
                selectors.push(with_cluster(
                    vec![outbound],
                    &source_cluster,
                    vec![
                        eq("source_workload_namespace", ns.clone()),
                        eq("source_workload", w.clone()),
                    ],
                ));
            }
            NodeTarget::App { app, version } => {
                let mut incoming = vec![
                    eq("destination_service_namespace", ns.clone()),
                    eq("destination_canonical_service", app.clone()),
                ];
                let mut outgoing = vec![
                    eq("source_workload_namespace", ns.clone()),
                    eq("source_canonical_service", app.clone()),
                ];
                if let Some(v) = version {
                    incoming.push(eq("destination_canonical_revision", v.clone()));
                    outgoing.push(eq("source_canonical_revision", v.clone()));
                }
                selectors.push(with_cluster(vec![inbound], &dest_cluster, incoming));
                selectors.push(with_cluster(vec![outbound], &source_cluster, outgoing));
            }
            NodeTarget::Service(s) => {
                if is_requests {
                    // Requests to the service that no workload served.
                    selectors.push(with_cluster(
                        vec![reporter("source", o.rates.ambient)],
                        &dest_cluster,
                        vec![
                            eq("destination_workload", "unknown"),
                            re("destination_service", service_re(s)),
                        ],
                    ));
                }
                selectors.push(with_cluster(
                    vec![inbound],
                    &dest_cluster,
                    vec![
                        eq("destination_service_namespace", ns.clone()),
                        re("destination_service", service_re(s)),
                    ],
                ));
            }
        }
        push_traffic(&mut out, o, ns, (metric, &group, is_tcp), selectors)?;
    }
    out.extend(appender_queries(o, ns)?);
    Ok(out)
}

/// The `responseTime` and `throughput` appenders' queries for a namespace.
fn appender_queries(o: &GraphOptions, ns: &str) -> Result<Vec<Query>, PromqlError> {
    let mut out = Vec::new();
    let w = window(o);
    let requests = o.rates.http == Rate::Requests || o.rates.grpc == Rate::Requests;
    if o.wants("responseTime") && requests {
        let mut group = ENDS.to_vec();
        group.push("request_protocol");
        let sides = [
            vec![
                reporter("destination", o.rates.ambient),
                eq("destination_service_namespace", ns),
            ],
            vec![
                reporter("source", o.rates.ambient),
                eq("source_workload_namespace", ns),
            ],
        ];
        for matchers in sides {
            let expr = match o.response_time {
                ResponseTime::Avg => Expr::binary(
                    BinaryOp::Div,
                    sum_rate(
                        "istio_request_duration_milliseconds_sum",
                        matchers.clone(),
                        w,
                        &group,
                    )?,
                    sum_rate(
                        "istio_request_duration_milliseconds_count",
                        matchers,
                        w,
                        &group,
                    )?,
                ),
                ResponseTime::Quantile(q) => {
                    let mut by = vec!["le"];
                    by.extend(&group);
                    Expr::call(
                        Function::HistogramQuantile,
                        vec![
                            Expr::Number(q),
                            sum_rate(
                                "istio_request_duration_milliseconds_bucket",
                                matchers,
                                w,
                                &by,
                            )?,
                        ],
                    )
                }
            };
            out.push(Query {
                namespace: ns.to_string(),
                purpose: Purpose::ResponseTime,
                expr: rounded(positive(expr)),
            });
        }
    }
    out.extend(super::security::queries(o, ns)?);
    if o.wants("throughput") && o.rates.http == Rate::Requests {
        let (metric, side) = if o.throughput_request {
            ("istio_request_bytes_sum", "source")
        } else {
            ("istio_response_bytes_sum", "destination")
        };
        let sides = [
            vec![
                reporter(side, o.rates.ambient),
                ne("source_workload_namespace", ns),
                eq("destination_service_namespace", ns),
            ],
            vec![
                reporter(side, o.rates.ambient),
                eq("source_workload_namespace", ns),
            ],
        ];
        for matchers in sides {
            out.push(Query {
                namespace: ns.to_string(),
                purpose: Purpose::Throughput,
                expr: rounded(positive(sum_rate(metric, matchers, w, &ENDS)?)),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_stay_values() {
        let node = Some((
            "bookinfo".to_string(),
            NodeTarget::Service("a.b".to_string()),
        ));
        let o = GraphOptions::parse(Some("appenders=&rateTcp=none"), node).unwrap();
        let queries = node_queries(&o).unwrap();
        assert_eq!(queries.len(), 2);
        let text = queries[1].expr.to_string();
        assert!(
            text.contains(r#"destination_service=~"^a\\.b\\.bookinfo\\..*$""#),
            "{text}"
        );
    }
}
