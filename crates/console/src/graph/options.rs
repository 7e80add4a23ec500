//! The graph routes' query parameters, read as Kiali reads them (`graph/options.go`, the
//! appenders' own parameters) with their defaults, plus the bounds meshtrace adds: at most
//! [`MAX_NAMESPACES`] namespaces, names shaped like Kubernetes names, a duration between one
//! second and [`MAX_DURATION`]. Unknown parameters are refused (Kiali ignores them); every
//! error names the parameter and the value (cut short).

use std::time::Duration;

use crate::error::ApiError;

/// Namespaces one graph may ask for.
pub const MAX_NAMESPACES: usize = 100;
/// The longest `duration` (rate window) accepted.
pub const MAX_DURATION: Duration = Duration::from_secs(90 * 24 * 3600);
/// Kiali's default rate window.
const DEFAULT_DURATION: Duration = Duration::from_secs(600);
/// The latest `queryTime` accepted (year 5138): its milliseconds fit any clock.
const MAX_QUERY_TIME: i64 = 99_999_999_999;

/// Every parameter Kiali's graph routes read.
pub const NAMES: [&str; 20] = [
    "namespaces",
    "graphType",
    "duration",
    "queryTime",
    "injectServiceNodes",
    "includeIdleEdges",
    "boxBy",
    "appenders",
    "rateGrpc",
    "rateHttp",
    "rateTcp",
    "ambientTraffic",
    "responseTime",
    "throughputType",
    "aggregate",
    "waypoints",
    "clusterName",
    "refreshInterval",
    "configVendor",
    "telemetryVendor",
];

/// The appenders (and finalizers) Kiali knows. Those that read Kubernetes objects (dead
/// nodes, service entries, health, ...) are accepted and change nothing here: meshtrace
/// knows the mesh from its telemetry only.
pub const APPENDERS: [&str; 17] = [
    "aggregateNode",
    "ambient",
    "deadNode",
    "extensions",
    "health",
    "idleNode",
    "istio",
    "labeler",
    "meshCheck",
    "outsider",
    "responseTime",
    "securityPolicy",
    "serviceEntry",
    "sidecarsCheck",
    "throughput",
    "trafficGenerator",
    "workloadEntry",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphType {
    App,
    VersionedApp,
    Workload,
    Service,
}

impl GraphType {
    pub fn as_str(self) -> &'static str {
        match self {
            GraphType::App => "app",
            GraphType::VersionedApp => "versionedApp",
            GraphType::Workload => "workload",
            GraphType::Service => "service",
        }
    }

    /// Workload and service graphs key nodes by workload; app graphs by app.
    pub fn is_app(self) -> bool {
        matches!(self, GraphType::App | GraphType::VersionedApp)
    }
}

/// What a protocol's traffic is measured by (`rateHttp`, `rateGrpc`, `rateTcp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    None,
    Requests,
    Sent,
    Received,
    Total,
}

/// `ambientTraffic`: which ambient reporters count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ambient {
    None,
    Total,
    Waypoint,
    Ztunnel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rates {
    pub http: Rate,
    pub grpc: Rate,
    pub tcp: Rate,
    pub ambient: Ambient,
}

/// `responseTime`: the mean, or a quantile (0.5, 0.95, 0.99).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ResponseTime {
    Avg,
    Quantile(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BoxBy {
    pub app: bool,
    pub namespace: bool,
    pub cluster: bool,
}

/// The node a node graph is drawn around (the path's namespace and name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeTarget {
    App {
        app: String,
        version: Option<String>,
    },
    Workload(String),
    Service(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct GraphOptions {
    pub namespaces: Vec<String>,
    pub graph_type: GraphType,
    pub duration: Duration,
    /// Unix seconds.
    pub query_time: i64,
    pub inject_service_nodes: bool,
    pub include_idle_edges: bool,
    pub box_by: BoxBy,
    /// `None`: every appender; else only those named.
    pub appenders: Option<Vec<String>>,
    pub rates: Rates,
    pub response_time: ResponseTime,
    /// `istio_request_bytes` (true) or `istio_response_bytes` (false, the default).
    pub throughput_request: bool,
    /// `clusterName`: narrows a node graph to the node's cluster.
    pub cluster: Option<String>,
    pub node: Option<(String, NodeTarget)>,
}

impl GraphOptions {
    /// Whether the appender `name` runs.
    pub fn wants(&self, name: &str) -> bool {
        self.appenders
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }
}

/// `value` as an error message shows it: at most 64 characters.
pub fn shown(value: &str) -> String {
    let mut out: String = value.chars().take(64).collect();
    if out.len() < value.len() {
        out.push('…');
    }
    out
}

fn invalid(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::bad_request(format!("Invalid {name} [{}]: {expected}", shown(value)))
}

fn boolean(name: &str, value: &str) -> Result<bool, ApiError> {
    // Go's strconv.ParseBool.
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(invalid(name, value, "must be true or false")),
    }
}

/// A Kubernetes namespace or object name as Istio labels carry it: lowercase letters, digits,
/// `-` and `.`, starting and ending with a letter or digit, at most 253 characters.
pub fn check_name(what: &str, value: &str) -> Result<(), ApiError> {
    let bytes = value.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok = !value.is_empty()
        && value.len() <= 253
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            what,
            value,
            "a name has lowercase letters, digits, '-' and '.', starts and ends with a letter \
             or digit, and has at most 253 characters",
        ))
    }
}

/// A Kubernetes label value, as apps and versions are: letters, digits, `-`, `_` and `.`,
/// starting and ending with a letter or digit, at most 63 characters.
fn check_label_value(what: &str, value: &str) -> Result<(), ApiError> {
    let bytes = value.as_bytes();
    let edge_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    let ok = value.len() <= 63
        && edge_ok(bytes.first())
        && edge_ok(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            what,
            value,
            "a label value has letters, digits, '-', '_' and '.', starts and ends with a \
             letter or digit, and has at most 63 characters",
        ))
    }
}

fn rate(name: &str, value: &str, allowed: &[Rate]) -> Result<Rate, ApiError> {
    let parsed = match value {
        "none" => Some(Rate::None),
        "requests" => Some(Rate::Requests),
        "sent" => Some(Rate::Sent),
        "received" => Some(Rate::Received),
        "total" => Some(Rate::Total),
        _ => None,
    };
    match parsed {
        Some(r) if allowed.contains(&r) => Ok(r),
        _ => {
            let names: Vec<&str> = allowed
                .iter()
                .map(|r| match r {
                    Rate::None => "none",
                    Rate::Requests => "requests",
                    Rate::Sent => "sent",
                    Rate::Received => "received",
                    Rate::Total => "total",
                })
                .collect();
            Err(invalid(
                name,
                value,
                &format!("must be one of {}", names.join(", ")),
            ))
        }
    }
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl GraphOptions {
    /// The options of a graph request: the raw query string and, for a node graph, the
    /// path's namespace and node.
    pub fn parse(
        raw: Option<&str>,
        node: Option<(String, NodeTarget)>,
    ) -> Result<GraphOptions, ApiError> {
        let mut seen: Vec<String> = Vec::new();
        let mut value_of = std::collections::HashMap::new();
        for (name, value) in crate::params::pairs(raw, &NAMES)? {
            // As Go's `url.Values.Get`: the first value counts.
            if !seen.contains(&name) {
                seen.push(name.clone());
                value_of.insert(name, value);
            }
        }
        let get = |name: &str| value_of.get(name).map(String::as_str);

        let graph_type = match get("graphType").unwrap_or("") {
            "" | "workload" => GraphType::Workload,
            "app" => GraphType::App,
            "versionedApp" => GraphType::VersionedApp,
            "service" => GraphType::Service,
            other => {
                return Err(invalid(
                    "graphType",
                    other,
                    "must be app, versionedApp, workload or service",
                ));
            }
        };
        if let Some((_, NodeTarget::App { .. })) = &node
            && !graph_type.is_app()
        {
            return Err(ApiError::bad_request(format!(
                "Invalid graphType [{}]. This node detail graph supports only graphType app or versionedApp.",
                graph_type.as_str()
            )));
        }
        for (name, allowed) in [("configVendor", "common"), ("telemetryVendor", "istio")] {
            if let Some(v) = get(name).filter(|v| !v.is_empty() && *v != allowed) {
                return Err(invalid(name, v, &format!("must be {allowed}")));
            }
        }
        let duration = match get("duration").filter(|v| !v.is_empty()) {
            None => DEFAULT_DURATION,
            Some(text) => {
                let d =
                    meshtrace_model::time::parse_prometheus_duration(text).ok_or_else(|| {
                        invalid(
                            "duration",
                            text,
                            "must be a duration such as 600s, 10m or 1h",
                        )
                    })?;
                if d < Duration::from_secs(1) || d > MAX_DURATION {
                    return Err(invalid("duration", text, "must be between 1s and 90d"));
                }
                d
            }
        };
        let query_time = match get("queryTime").filter(|v| !v.is_empty()) {
            None => now_seconds(),
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|t| (0..=MAX_QUERY_TIME).contains(t))
                .ok_or_else(|| invalid("queryTime", text, "must be a time in Unix seconds"))?,
        };
        let include_idle_edges = match get("includeIdleEdges").filter(|v| !v.is_empty()) {
            Some(v) => boolean("includeIdleEdges", v)?,
            None => false,
        };
        let mut inject_service_nodes = match get("injectServiceNodes").filter(|v| !v.is_empty()) {
            Some(v) => boolean("injectServiceNodes", v)?,
            None => false,
        };
        // Service graphs are workload graphs with service nodes injected, then reduced.
        if graph_type == GraphType::Service {
            inject_service_nodes = true;
        }
        if let Some(v) = get("waypoints").filter(|v| !v.is_empty()) {
            boolean("waypoints", v)?;
        }
        let mut box_by = BoxBy::default();
        if let Some(text) = get("boxBy").filter(|v| !v.is_empty()) {
            for part in text.split(',') {
                match part.trim() {
                    "app" => box_by.app = true,
                    "namespace" => box_by.namespace = true,
                    "cluster" => box_by.cluster = true,
                    "none" => {}
                    _ => {
                        return Err(invalid(
                            "boxBy",
                            text,
                            "must be a comma-separated list of app, namespace, cluster",
                        ));
                    }
                }
            }
        }
        let appenders = match get("appenders") {
            None => None,
            Some(text) => {
                let mut names = Vec::new();
                for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    if !APPENDERS.contains(&name) {
                        return Err(ApiError::bad_request(format!(
                            "Invalid appender [{}]: the appenders are {}",
                            shown(name),
                            APPENDERS.join(", ")
                        )));
                    }
                    if !names.iter().any(|n| n == name) {
                        names.push(name.to_string());
                    }
                }
                Some(names)
            }
        };
        let mut rates = Rates {
            http: Rate::Requests,
            grpc: Rate::Requests,
            tcp: Rate::Sent,
            ambient: Ambient::Total,
        };
        if let Some(v) = get("rateHttp").filter(|v| !v.is_empty()) {
            rates.http = rate("rateHttp", v, &[Rate::None, Rate::Requests])?;
        }
        if let Some(v) = get("rateGrpc").filter(|v| !v.is_empty()) {
            rates.grpc = rate(
                "rateGrpc",
                v,
                &[
                    Rate::None,
                    Rate::Requests,
                    Rate::Sent,
                    Rate::Received,
                    Rate::Total,
                ],
            )?;
        }
        if let Some(v) = get("rateTcp").filter(|v| !v.is_empty()) {
            rates.tcp = rate(
                "rateTcp",
                v,
                &[Rate::None, Rate::Sent, Rate::Received, Rate::Total],
            )?;
        }
        if let Some(v) = get("ambientTraffic").filter(|v| !v.is_empty()) {
            rates.ambient = match v {
                "none" => Ambient::None,
                "total" => Ambient::Total,
                "waypoint" => Ambient::Waypoint,
                "ztunnel" => Ambient::Ztunnel,
                other => {
                    return Err(invalid(
                        "ambientTraffic",
                        other,
                        "must be none, total, waypoint or ztunnel",
                    ));
                }
            };
        }
        let response_time = match get("responseTime").unwrap_or("") {
            "" | "95" => ResponseTime::Quantile(0.95),
            "avg" => ResponseTime::Avg,
            "50" => ResponseTime::Quantile(0.5),
            "99" => ResponseTime::Quantile(0.99),
            other => {
                return Err(invalid(
                    "responseTime",
                    other,
                    "must be one of: avg | 50 | 95 | 99",
                ));
            }
        };
        let throughput_request = match get("throughputType").unwrap_or("") {
            "" | "response" => false,
            "request" => true,
            other => {
                return Err(invalid(
                    "throughputType",
                    other,
                    "must be request or response",
                ));
            }
        };
        if let Some(text) = get("refreshInterval").filter(|v| !v.is_empty()) {
            // Read for compatibility: the console keeps no graph cache to refresh.
            let ms = text
                .parse::<i64>()
                .map_err(|_| invalid("refreshInterval", text, "must be milliseconds"))?;
            if ms > 0 && !(10_000..=900_000).contains(&ms) {
                return Err(invalid(
                    "refreshInterval",
                    text,
                    "must be 0 or between 10000 and 900000 milliseconds",
                ));
            }
        }
        if let Some(agg) = get("aggregate").filter(|v| !v.is_empty()) {
            meshtrace_backend::prometheus::LabelName::new(agg)
                .map_err(|e| invalid("aggregate", agg, &e.to_string()))?;
        }
        let cluster = get("clusterName")
            .filter(|v| !v.is_empty() && *v != "unknown")
            .map(|v| {
                if v.len() > 253 || v.chars().any(char::is_control) {
                    Err(invalid("clusterName", v, "is not a cluster name"))
                } else {
                    Ok(v.to_string())
                }
            })
            .transpose()?;

        // A node graph's namespace is the path's; the `namespaces` parameter is not read.
        let namespaces = match &node {
            Some((namespace, _)) => vec![namespace.clone()],
            None => {
                let text = get("namespaces").unwrap_or("");
                let mut list: Vec<String> = Vec::new();
                for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    check_name("namespace", name)?;
                    if !list.iter().any(|n| n == name) {
                        if list.len() >= MAX_NAMESPACES {
                            return Err(ApiError::bad_request(format!(
                                "Invalid namespaces: at most {MAX_NAMESPACES} namespaces per graph"
                            )));
                        }
                        list.push(name.to_string());
                    }
                }
                if list.is_empty() {
                    return Err(ApiError::bad_request(
                        "At least one namespace must be specified via the namespaces query parameter.",
                    ));
                }
                list
            }
        };
        if let Some((namespace, target)) = &node {
            check_name("namespace", namespace)?;
            match target {
                NodeTarget::App { app, version } => {
                    check_label_value("app", app)?;
                    if let Some(v) = version {
                        check_label_value("version", v)?;
                    }
                }
                NodeTarget::Workload(w) => check_name("workload", w)?,
                NodeTarget::Service(s) => check_name("service", s)?,
            }
        }

        Ok(GraphOptions {
            namespaces,
            graph_type,
            duration,
            query_time,
            inject_service_nodes,
            include_idle_edges,
            box_by,
            appenders,
            rates,
            response_time,
            throughput_request,
            cluster,
            node,
        })
    }
}

#[cfg(test)]
#[path = "options_tests.rs"]
mod tests;
