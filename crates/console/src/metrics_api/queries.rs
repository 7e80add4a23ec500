//! Kiali's Istio metrics and the PromQL it asks for them, as typed expressions: the label
//! matchers of a target (Kiali's `MetricsLabelsBuilder`), the thirteen metrics of the metrics
//! pages with the Istio series each reads, and the counter, error, average and quantile
//! queries built over them. Values from the request are matcher values or validated label
//! names, never PromQL text; `query_scope` is added by the client to every selector.

use std::time::Duration;

use meshtrace_backend::prometheus::Expr;
use meshtrace_backend::prometheus::promql::{
    Aggregation, BinaryOp, Function, Grouping, LabelName, MatchOp, Matcher, PromqlError, Selector,
    regex_literal,
};

/// HTTP errors: no response (`0`) or a 4xx/5xx status (Kiali's `regexResponseCodeErr`).
const RESPONSE_CODE_ERR: &str = r"^0$|^[4-5]\d\d$";
/// gRPC errors: status 1 to 16 (Kiali's `regexGrpcResponseStatusErr`).
const GRPC_STATUS_ERR: &str = "^[1-9]$|^1[0-6]$";

/// Which side of the request the target stands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn parse(text: &str) -> Option<Direction> {
        match text {
            "inbound" => Some(Direction::Inbound),
            "outbound" => Some(Direction::Outbound),
            _ => None,
        }
    }

    /// The prefix of the target's labels: `destination` inbound, `source` outbound.
    pub fn side(self) -> &'static str {
        match self {
            Direction::Inbound => "destination",
            Direction::Outbound => "source",
        }
    }

    fn peer_side(self) -> &'static str {
        match self {
            Direction::Inbound => "source",
            Direction::Outbound => "destination",
        }
    }
}

/// What a query is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TargetKind {
    App,
    Workload,
    Service,
}

impl TargetKind {
    pub fn parse(text: &str) -> Option<TargetKind> {
        match text {
            "app" => Some(TargetKind::App),
            "workload" => Some(TargetKind::Workload),
            "service" => Some(TargetKind::Service),
            _ => None,
        }
    }

    pub fn from_plural(segment: &str) -> Option<TargetKind> {
        match segment {
            "apps" => Some(TargetKind::App),
            "workloads" => Some(TargetKind::Workload),
            "services" => Some(TargetKind::Service),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::App => "app",
            TargetKind::Workload => "workload",
            TargetKind::Service => "service",
        }
    }
}

/// The matchers of one query, in Kiali's order (reporter, target, protocol, cluster).
#[derive(Debug, Clone)]
pub struct Labels {
    direction: Direction,
    matchers: Vec<Matcher>,
    /// `requestProtocol`, lower-cased: `http` needs no gRPC error query.
    protocol: Option<String>,
}

impl Labels {
    pub fn new(direction: Direction) -> Labels {
        Labels {
            direction,
            matchers: Vec::new(),
            protocol: None,
        }
    }

    fn add(&mut self, name: &str, op: MatchOp, value: &str) -> Result<(), PromqlError> {
        self.matchers.push(Matcher::new(name, op, value)?);
        Ok(())
    }

    fn sided(&mut self, side: &str, name: &str, value: &str) -> Result<(), PromqlError> {
        self.add(&format!("{side}_{name}"), MatchOp::Equal, value)
    }

    /// `reporter="r"` for one, `reporter=~"a|b"` (sorted, each once) for several.
    pub fn reporters(&mut self, reporters: &[String]) -> Result<(), PromqlError> {
        let mut unique: Vec<&str> = reporters.iter().map(String::as_str).collect();
        unique.sort_unstable();
        unique.dedup();
        match unique.as_slice() {
            [] => Ok(()),
            [one] => self.add("reporter", MatchOp::Equal, one),
            several => {
                let alternatives: Vec<String> = several.iter().map(|r| regex_literal(r)).collect();
                self.add("reporter", MatchOp::Regex, &alternatives.join("|"))
            }
        }
    }

    /// The target on this query's side: a service only inbound (outbound service queries
    /// have no service filter, as in Kiali).
    pub fn target(
        &mut self,
        kind: TargetKind,
        name: &str,
        namespace: &str,
    ) -> Result<(), PromqlError> {
        self.on_side(self.direction.side(), kind, name, namespace)
    }

    /// The peer, on the other side.
    pub fn peer(
        &mut self,
        kind: TargetKind,
        name: &str,
        namespace: &str,
    ) -> Result<(), PromqlError> {
        self.on_side(self.direction.peer_side(), kind, name, namespace)
    }

    fn on_side(
        &mut self,
        side: &str,
        kind: TargetKind,
        name: &str,
        namespace: &str,
    ) -> Result<(), PromqlError> {
        match kind {
            TargetKind::Service => {
                if side == "destination" {
                    self.add("destination_service_name", MatchOp::Equal, name)?;
                    if !namespace.is_empty() {
                        self.add("destination_service_namespace", MatchOp::Equal, namespace)?;
                    }
                }
                Ok(())
            }
            TargetKind::Workload | TargetKind::App => {
                if !namespace.is_empty() {
                    self.sided(side, "workload_namespace", namespace)?;
                }
                let label = if kind == TargetKind::App {
                    "canonical_service"
                } else {
                    "workload"
                };
                self.sided(side, label, name)
            }
        }
    }

    /// Every request of workloads in `namespace` (on this query's side).
    pub fn namespace(&mut self, namespace: &str) -> Result<(), PromqlError> {
        self.sided(self.direction.side(), "workload_namespace", namespace)
    }

    pub fn protocol(&mut self, protocol: &str) -> Result<(), PromqlError> {
        self.protocol = Some(protocol.to_lowercase());
        self.add("request_protocol", MatchOp::Equal, protocol)
    }

    pub fn cluster(&mut self, cluster: &str) -> Result<(), PromqlError> {
        self.sided(self.direction.side(), "cluster", cluster)
    }

    fn selector(&self, metric: &str, extra: &[Matcher]) -> Result<Selector, PromqlError> {
        let mut selector = Selector::metric(metric)?;
        for matcher in self.matchers.iter().chain(extra) {
            selector = selector.with(matcher.clone());
        }
        Ok(selector)
    }

    /// The selectors of `request_error_count`: HTTP errors, and unless the protocol is
    /// `http`, gRPC errors whose HTTP status was fine.
    fn error_selectors(&self, metric: &str) -> Result<(Selector, Option<Selector>), PromqlError> {
        let http_error = Matcher::new("response_code", MatchOp::Regex, RESPONSE_CODE_ERR)?;
        let http = self.selector(metric, std::slice::from_ref(&http_error))?;
        if self.protocol.as_deref() == Some("http") {
            return Ok((http, None));
        }
        let grpc = [
            Matcher::new("grpc_response_status", MatchOp::Regex, GRPC_STATUS_ERR)?,
            Matcher::new("response_code", MatchOp::NotRegex, RESPONSE_CODE_ERR)?,
        ];
        Ok((http, Some(self.selector(metric, &grpc)?)))
    }
}

/// One of the metrics of Kiali's metrics pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IstioMetric {
    /// The name in `filters[]` and in the answer.
    pub kiali: &'static str,
    /// The Istio series read (a histogram's base name).
    pub istio: &'static str,
    pub histogram: bool,
    /// Counts only the failed requests.
    pub errors: bool,
}

const fn metric(kiali: &'static str, istio: &'static str, histogram: bool) -> IstioMetric {
    IstioMetric {
        kiali,
        istio,
        histogram,
        errors: false,
    }
}

/// Kiali's list (`business/metrics_definitions.go`), in its order.
pub const ISTIO_METRICS: [IstioMetric; 13] = [
    metric("grpc_received", "istio_response_messages_total", false),
    metric("grpc_sent", "istio_request_messages_total", false),
    metric("request_count", "istio_requests_total", false),
    IstioMetric {
        kiali: "request_error_count",
        istio: "istio_requests_total",
        histogram: false,
        errors: true,
    },
    metric(
        "request_duration_millis",
        "istio_request_duration_milliseconds",
        true,
    ),
    metric("request_throughput", "istio_request_bytes_sum", false),
    metric("response_throughput", "istio_response_bytes_sum", false),
    metric("request_size", "istio_request_bytes", true),
    metric("response_size", "istio_response_bytes", true),
    // Istio's L4 telemetry counts bytes from the other end (istio/istio#32399): Kiali swaps
    // the two on purpose.
    metric("tcp_received", "istio_tcp_sent_bytes_total", false),
    metric("tcp_sent", "istio_tcp_received_bytes_total", false),
    metric("tcp_opened", "istio_tcp_connections_opened_total", false),
    metric("tcp_closed", "istio_tcp_connections_closed_total", false),
];

fn rate(function: Function, selector: Selector, window: Duration) -> Result<Expr, PromqlError> {
    Ok(Expr::call(function, vec![Expr::range(selector, window)?]))
}

fn sum(by: &[LabelName], expr: Expr) -> Expr {
    let grouping = if by.is_empty() {
        Grouping::None
    } else {
        Grouping::By(by.to_vec())
    };
    Expr::aggregate(Aggregation::Sum, grouping, expr)
}

/// A counter's query: `sum(rf(m{L}[RI])) by (B)`; for errors the HTTP and gRPC parts joined
/// by `or`.
pub fn counter(
    metric: &IstioMetric,
    labels: &Labels,
    rate_func: Function,
    window: Duration,
    by: &[LabelName],
) -> Result<Expr, PromqlError> {
    let (first, second) = if metric.errors {
        labels.error_selectors(metric.istio)?
    } else {
        (labels.selector(metric.istio, &[])?, None)
    };
    let first = sum(by, rate(rate_func, first, window)?);
    Ok(match second {
        Some(second) => Expr::binary(
            BinaryOp::Or,
            first,
            sum(by, rate(rate_func, second, window)?),
        ),
        None => first,
    })
}

/// A histogram's average: `sum(rate(m_sum{L}[RI])) by (B) / sum(rate(m_count{L}[RI])) by (B)`.
pub fn average(
    histogram: &str,
    labels: &Labels,
    window: Duration,
    by: &[LabelName],
) -> Result<Expr, PromqlError> {
    let part = |suffix: &str| -> Result<Expr, PromqlError> {
        let selector = labels.selector(&format!("{histogram}{suffix}"), &[])?;
        Ok(sum(by, rate(Function::Rate, selector, window)?))
    };
    Ok(Expr::binary(BinaryOp::Div, part("_sum")?, part("_count")?))
}

/// A histogram's quantile: `histogram_quantile(q, sum(rate(m_bucket{L}[RI])) by (le,B))`.
pub fn quantile(
    histogram: &str,
    labels: &Labels,
    window: Duration,
    q: f64,
    by: &[LabelName],
) -> Result<Expr, PromqlError> {
    let mut grouping = vec![LabelName::new("le")?];
    grouping.extend(by.iter().cloned());
    let selector = labels.selector(&format!("{histogram}_bucket"), &[])?;
    let buckets = sum(&grouping, rate(Function::Rate, selector, window)?);
    Ok(Expr::call(
        Function::HistogramQuantile,
        vec![Expr::Number(q), buckets],
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    /// `request_count`'s query over `labels`, rate over a minute.
    fn request_count(labels: &Labels) -> String {
        let metric = &ISTIO_METRICS[2];
        let expr = counter(metric, labels, Function::Rate, Duration::from_secs(60), &[]);
        expr.unwrap().to_string()
    }

    fn workload_inbound() -> Labels {
        let mut labels = Labels::new(Direction::Inbound);
        labels.reporters(&["destination".to_string()]).unwrap();
        labels
            .target(TargetKind::Workload, "reviews-v1", "bookinfo")
            .unwrap();
        labels
    }

    #[test]
    fn counters_and_errors_read_as_kiali_writes_them() {
        let labels = workload_inbound();
        let count = &ISTIO_METRICS[2];
        let by = [LabelName::new("destination_workload").unwrap()];
        let expr = counter(count, &labels, Function::Rate, Duration::from_secs(60), &by).unwrap();
        assert_eq!(
            expr.to_string(),
            r#"sum by (destination_workload) (rate(istio_requests_total{reporter="destination",destination_workload_namespace="bookinfo",destination_workload="reviews-v1"}[60s]))"#
        );
        let errors = &ISTIO_METRICS[3];
        let expr = counter(
            errors,
            &labels,
            Function::Irate,
            Duration::from_secs(30),
            &[],
        )
        .unwrap();
        assert_eq!(
            expr.to_string(),
            concat!(
                r#"sum (irate(istio_requests_total{reporter="destination",destination_workload_namespace="bookinfo",destination_workload="reviews-v1",response_code=~"^0$|^[4-5]\\d\\d$"}[30s]))"#,
                r#" or sum (irate(istio_requests_total{reporter="destination",destination_workload_namespace="bookinfo",destination_workload="reviews-v1",grpc_response_status=~"^[1-9]$|^1[0-6]$",response_code!~"^0$|^[4-5]\\d\\d$"}[30s]))"#
            )
        );
        let mut http = workload_inbound();
        http.protocol("HTTP").unwrap();
        let expr = counter(errors, &http, Function::Rate, Duration::from_secs(60), &[]).unwrap();
        assert!(!expr.to_string().contains(" or "), "{expr}");
    }

    #[test]
    fn histograms_average_and_quantiles() {
        let mut labels = Labels::new(Direction::Outbound);
        labels
            .reporters(&["source".into(), "waypoint".into(), "source".into()])
            .unwrap();
        labels.target(TargetKind::App, "productpage", "ns").unwrap();
        labels.cluster("east").unwrap();
        let avg = average(
            "istio_request_duration_milliseconds",
            &labels,
            Duration::from_secs(600),
            &[],
        )
        .unwrap();
        let l = r#"{reporter=~"source|waypoint",source_workload_namespace="ns",source_canonical_service="productpage",source_cluster="east"}"#;
        assert_eq!(
            avg.to_string(),
            format!(
                "sum (rate(istio_request_duration_milliseconds_sum{l}[600s])) / sum (rate(istio_request_duration_milliseconds_count{l}[600s]))"
            )
        );
        let q = quantile(
            "istio_request_duration_milliseconds",
            &labels,
            Duration::from_secs(600),
            0.99,
            &[LabelName::new("source_workload").unwrap()],
        )
        .unwrap();
        assert_eq!(
            q.to_string(),
            format!(
                "histogram_quantile(0.99, sum by (le, source_workload) (rate(istio_request_duration_milliseconds_bucket{l}[600s])))"
            )
        );
    }

    #[test]
    fn outbound_services_and_peers() {
        let mut labels = Labels::new(Direction::Outbound);
        labels.target(TargetKind::Service, "reviews", "ns").unwrap();
        labels.peer(TargetKind::Service, "ratings", "ns").unwrap();
        labels.peer(TargetKind::Workload, "ratings-v1", "").unwrap();
        assert_eq!(
            request_count(&labels),
            r#"sum (rate(istio_requests_total{destination_service_name="ratings",destination_service_namespace="ns",destination_workload="ratings-v1"}[60s]))"#
        );
    }

    #[test]
    fn hostile_values_stay_values() {
        let mut labels = Labels::new(Direction::Inbound);
        labels
            .target(TargetKind::Workload, "x\"}) or vector(1) #", "ns")
            .unwrap();
        let expr = request_count(&labels);
        assert!(
            expr.contains(r#"destination_workload="x\"}) or vector(1) #""#),
            "{expr}"
        );
    }
}
