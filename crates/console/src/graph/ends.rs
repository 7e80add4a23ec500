//! The two ends of a request as a series' labels name them, read as Kiali's
//! `populateTrafficMap` and its appenders read them (series with a missing label or bad
//! telemetry skipped, the destination's fix-ups), and Kiali's node keys for them (`graph.Id`).

use meshtrace_backend::prometheus::Labels;

use super::options::GraphType;

pub const UNKNOWN: &str = "unknown";
pub const PASSTHROUGH: &str = "PassthroughCluster";
pub const BLACKHOLE: &str = "BlackHoleCluster";
const EGRESS_HOST: &str = "istio-egressgateway.istio-system.svc.cluster.local";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NodeType {
    App,
    Service,
    Unknown,
    Workload,
}

impl NodeType {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::App => "app",
            NodeType::Service => "service",
            NodeType::Unknown => "unknown",
            NodeType::Workload => "workload",
        }
    }
}

/// Kiali's "ok": set and not `unknown`.
pub fn is_ok(value: &str) -> bool {
    !value.is_empty() && value != UNKNOWN
}

fn is_ok_version(value: &str) -> bool {
    is_ok(value) && value != "latest"
}

/// The ends of a request as the labels name them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ends<'a> {
    pub cluster: &'a str,
    pub service_ns: &'a str,
    pub service: &'a str,
    pub workload_ns: &'a str,
    pub workload: &'a str,
    pub app: &'a str,
    pub version: &'a str,
}

impl<'a> Ends<'a> {
    /// A request's source: a workload, never a service.
    pub fn source(
        cluster: &'a str,
        namespace: &'a str,
        workload: &'a str,
        app: &'a str,
        version: &'a str,
    ) -> Ends<'a> {
        Ends {
            cluster,
            service_ns: namespace,
            service: "",
            workload_ns: namespace,
            workload,
            app,
            version,
        }
    }
}

/// Kiali's `graph.Id`: the node's key and type, or `None` when nothing names it.
pub fn node_id(e: &Ends<'_>, graph_type: GraphType) -> Option<(String, NodeType)> {
    let Ends {
        cluster,
        service_ns,
        service,
        workload_ns,
        workload,
        app,
        version,
    } = *e;
    let ns = if is_ok(workload_ns) {
        workload_ns
    } else {
        service_ns
    };
    if ns == UNKNOWN && workload == UNKNOWN && app == UNKNOWN && service.is_empty() {
        return Some((format!("{cluster}_unknown_source"), NodeType::Unknown));
    }
    if workload == UNKNOWN && app == UNKNOWN && service == UNKNOWN {
        return Some((format!("svc_{cluster}_{ns}_unknown"), NodeType::Service));
    }
    let (workload_ok, app_ok, service_ok) = (is_ok(workload), is_ok(app), is_ok(service));
    if !workload_ok && !app_ok && !service_ok {
        return None;
    }
    let svc = || {
        let name = if service_ok { service } else { UNKNOWN };
        (format!("svc_{cluster}_{ns}_{name}"), NodeType::Service)
    };
    if !graph_type.is_app() {
        return Some(if workload_ok {
            (format!("wl_{cluster}_{ns}_{workload}"), NodeType::Workload)
        } else {
            svc()
        });
    }
    if app_ok {
        if graph_type == GraphType::VersionedApp {
            if workload_ok {
                return Some((format!("vapp_{cluster}_{ns}_{workload}"), NodeType::App));
            }
            if is_ok_version(version) {
                return Some((
                    format!("vapp_{cluster}_{ns}_{app}_{version}"),
                    NodeType::App,
                ));
            }
        }
        return Some((format!("app_{cluster}_{ns}_{app}"), NodeType::App));
    }
    if workload_ok {
        return Some((format!("wl_{cluster}_{ns}_{workload}"), NodeType::Workload));
    }
    Some((format!("svc_{cluster}_{ns}_{service}"), NodeType::Service))
}

/// One series' labels, read as `populateTrafficMap` reads them.
pub struct Labeled<'a>(pub &'a Labels);

impl<'a> Labeled<'a> {
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.0.get(name).map(String::as_str)
    }
}

/// An IPv4 address with an optional port: a destination service Kiali does not draw.
fn looks_like_ip(text: &str) -> bool {
    let (address, port) = match text.split_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = address.split('.').collect();
    parts.len() == 4 && parts.iter().all(|p| digits(p)) && port.is_none_or(digits)
}

pub fn is_http_error(code: &str) -> bool {
    code.starts_with('4') || code.starts_with('5')
}

/// A series' two ends, read as Kiali reads them: `None` when a label is missing or the
/// telemetry is bad (a source with neither workload nor app, a cluster label set to
/// `unknown`, a destination that is an IP address).
pub struct Read<'a> {
    pub source: Ends<'a>,
    pub dest: Ends<'a>,
    /// `destination_service`: the host asked for.
    pub host: &'a str,
}

pub fn read_ends(labels: &Labels) -> Option<Read<'_>> {
    let m = Labeled(labels);
    let source_ns = m.get("source_workload_namespace")?;
    let source_wl = m.get("source_workload")?;
    let source_app = m.get("source_canonical_service")?;
    let source_ver = m.get("source_canonical_revision")?;
    let dest_svc_ns = m.get("destination_service_namespace")?;
    let host = m.get("destination_service")?;
    let dest_svc_name = m.get("destination_service_name")?;
    let dest_wl_ns = m.get("destination_workload_namespace")?;
    let dest_wl = m.get("destination_workload")?;
    let dest_app = m.get("destination_canonical_service")?;
    let dest_ver = m.get("destination_canonical_revision")?;
    let source_cluster_label = m.get("source_cluster");
    let dest_cluster_label = m.get("destination_cluster");
    let source_cluster = source_cluster_label.unwrap_or(UNKNOWN);
    if is_ok(source_ns) && !is_ok(source_wl) && !is_ok(source_app) {
        return None;
    }
    if is_ok(source_ns) && source_cluster_label.is_some() && !is_ok(source_cluster) {
        return None;
    }
    let mut dest = Ends {
        cluster: dest_cluster_label.unwrap_or(UNKNOWN),
        service_ns: dest_svc_ns,
        service: dest_svc_name,
        workload_ns: dest_wl_ns,
        workload: dest_wl,
        app: dest_app,
        version: dest_ver,
    };
    if host == EGRESS_HOST && host == dest_svc_name {
        dest = Ends {
            cluster: source_cluster,
            service_ns: "istio-system",
            service: "istio-egressgateway",
            workload_ns: "istio-system",
            workload: "istio-egressgateway",
            app: "istio-egressgateway",
            version: "latest",
        };
    } else if !is_ok(dest.cluster) && is_ok(source_cluster) && is_ok(dest_svc_ns) {
        // istio#29373: a destination without its cluster is in the source's.
        dest.cluster = source_cluster;
    }
    if !is_ok(dest.workload)
        && is_ok(host)
        && is_ok(dest.service)
        && host == dest.service
        && looks_like_ip(dest.service)
    {
        return None;
    }
    if is_ok(dest.service_ns) && dest_cluster_label.is_some() && !is_ok(dest.cluster) {
        return None;
    }
    let source = Ends::source(source_cluster, source_ns, source_wl, source_app, source_ver);
    Some(Read { source, dest, host })
}

/// Kiali's `timeSeriesHash` fields of a node as a request's labels name it.
pub fn ends_key<'a>(e: &Ends<'a>) -> [&'a str; 7] {
    [
        e.cluster,
        e.service_ns,
        e.service,
        e.workload_ns,
        e.workload,
        e.app,
        e.version,
    ]
}
