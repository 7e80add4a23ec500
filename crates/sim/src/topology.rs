//! The simulated mesh: services, their versions (workloads), pods, and who calls whom.
//!
//! The default is Istio's Bookinfo behind the ingress gateway, plus a small `travel`
//! namespace so that a console has more than one namespace to show. A topology can also be
//! read from a JSON file of the same shape (`meshtrace sim --topology FILE`).

use serde::Deserialize;

use crate::rng::Rng;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// `istio.mesh_id` on every span.
    #[serde(default = "default_mesh_id")]
    pub mesh_id: String,
    pub services: Vec<ServiceDef>,
    /// Where requests start: a caller service and the call it makes, with a relative weight.
    pub entries: Vec<Entry>,
}

fn default_mesh_id() -> String {
    "cluster.local".to_string()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDef {
    /// The app name (`reviews`).
    pub name: String,
    pub namespace: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// An Istio gateway (its proxy is a `router`, and it only calls out).
    #[serde(default)]
    pub gateway: bool,
    /// `http` (the default) or `tcp`: a TCP service (a database) is reached over plain
    /// connections, which Envoy's TCP proxy counts in the `istio_tcp_*` metrics but does not
    /// trace, and it calls nothing.
    #[serde(default)]
    pub protocol: Protocol,
    pub versions: Vec<VersionDef>,
    /// Calls made, in order, for every request this service serves.
    #[serde(default)]
    pub calls: Vec<Call>,
}

/// How a service is called.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Http,
    Tcp,
}

fn default_port() -> u16 {
    9080
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionDef {
    /// `v1`; a gateway's revision is `latest`.
    pub version: String,
    /// How many pods the workload has (1–3 by default).
    #[serde(default = "one")]
    pub pods: usize,
    /// Median of the time the service itself spends on a request, in milliseconds.
    pub latency_ms: f64,
    /// Spread of that time: the sigma of the log-normal (0.3 is steady, 0.9 has a heavy tail).
    #[serde(default = "default_sigma")]
    pub sigma: f64,
}

fn one() -> usize {
    1
}

fn default_sigma() -> f64 {
    0.35
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    pub service: String,
    /// The request path (`/reviews/0`).
    pub path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub from: String,
    pub call: Call,
    #[serde(default = "weight_one")]
    pub weight: f64,
}

fn weight_one() -> f64 {
    1.0
}

#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error("cannot read the topology file `{path}`: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the topology file `{path}` is not valid: {message}")]
    Invalid { path: String, message: String },
}

/// The largest topology file read.
pub const MAX_FILE_BYTES: u64 = 1 << 20;
/// The most services a topology has.
pub const MAX_SERVICES: usize = 200;
/// The most versions (workloads) a service has.
pub const MAX_VERSIONS: usize = 20;
/// The most calls a service makes, and the most entries.
pub const MAX_CALLS: usize = 50;
/// The most hops one request may take through the mesh (calls fan out at every level).
pub const MAX_HOPS: usize = 1000;

impl Topology {
    pub fn from_file(path: &std::path::Path) -> Result<Topology, TopologyError> {
        use std::io::Read as _;
        let shown = path.display().to_string();
        let read_error = |source| TopologyError::Read {
            path: shown.clone(),
            source,
        };
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text))
            .map_err(read_error)?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(TopologyError::Invalid {
                path: shown,
                message: format!("the file is over {MAX_FILE_BYTES} bytes"),
            });
        }
        let topology: Topology =
            serde_json::from_str(&text).map_err(|e| TopologyError::Invalid {
                path: shown.clone(),
                message: e.to_string(),
            })?;
        topology.check().map_err(|message| TopologyError::Invalid {
            path: shown,
            message,
        })?;
        Ok(topology)
    }

    /// Every call names a known service, every service has a version, calls do not loop, and
    /// the mesh stays within the bounds above.
    pub fn check(&self) -> Result<(), String> {
        let find = |name: &str| self.services.iter().position(|s| s.name == name);
        if self.entries.is_empty() {
            return Err("no entries: nothing would ever send a request".into());
        }
        if self.services.len() > MAX_SERVICES {
            return Err(format!(
                "{} services; the limit is {MAX_SERVICES}",
                self.services.len()
            ));
        }
        if self.entries.len() > MAX_CALLS {
            return Err(format!(
                "{} entries; the limit is {MAX_CALLS}",
                self.entries.len()
            ));
        }
        for service in &self.services {
            if service.versions.len() > MAX_VERSIONS {
                return Err(format!(
                    "service `{}` has {} versions; the limit is {MAX_VERSIONS}",
                    service.name,
                    service.versions.len()
                ));
            }
            if service.calls.len() > MAX_CALLS {
                return Err(format!(
                    "service `{}` makes {} calls; the limit is {MAX_CALLS}",
                    service.name,
                    service.calls.len()
                ));
            }
        }
        for service in &self.services {
            if service.versions.is_empty() {
                return Err(format!("service `{}` has no versions", service.name));
            }
            if service.protocol == Protocol::Tcp && !service.calls.is_empty() {
                return Err(format!(
                    "service `{}` is a TCP service: it makes no calls",
                    service.name
                ));
            }
            for call in &service.calls {
                find(&call.service).ok_or_else(|| {
                    format!(
                        "`{}` calls unknown service `{}`",
                        service.name, call.service
                    )
                })?;
            }
        }
        for entry in &self.entries {
            find(&entry.from)
                .ok_or_else(|| format!("an entry starts at unknown service `{}`", entry.from))?;
            find(&entry.call.service).ok_or_else(|| {
                format!("an entry calls unknown service `{}`", entry.call.service)
            })?;
        }
        // A depth-first walk from every service finds any cycle.
        #[allow(
            clippy::expect_used,
            reason = "every call's service was found just above"
        )]
        fn visit(topology: &Topology, index: usize, path: &mut Vec<usize>) -> Result<(), String> {
            if path.contains(&index) {
                return Err(format!(
                    "services call each other in a loop through `{}`",
                    topology.services[index].name
                ));
            }
            path.push(index);
            for call in &topology.services[index].calls {
                let next = topology
                    .services
                    .iter()
                    .position(|s| s.name == call.service)
                    .expect("checked");
                visit(topology, next, path)?;
            }
            path.pop();
            Ok(())
        }
        for index in 0..self.services.len() {
            visit(self, index, &mut Vec::new())?;
        }
        // Without loops, the hops under each service are its calls and theirs; counted from the
        // leaves up, saturating, so a fan-out at every level is caught before it is walked.
        let mut hops: Vec<Option<usize>> = vec![None; self.services.len()];
        fn hops_under(topology: &Topology, index: usize, memo: &mut Vec<Option<usize>>) -> usize {
            if let Some(Some(known)) = memo.get(index) {
                return *known;
            }
            let mut total = 0usize;
            for call in topology
                .services
                .get(index)
                .map_or(&[][..], |s| &s.calls[..])
            {
                if let Some(next) = topology
                    .services
                    .iter()
                    .position(|s| s.name == call.service)
                {
                    total = total
                        .saturating_add(1)
                        .saturating_add(hops_under(topology, next, memo));
                }
            }
            if let Some(slot) = memo.get_mut(index) {
                *slot = Some(total);
            }
            total
        }
        for entry in &self.entries {
            let Some(callee) = find(&entry.call.service) else {
                continue;
            };
            let per_request = hops_under(self, callee, &mut hops).saturating_add(1);
            if per_request > MAX_HOPS {
                return Err(format!(
                    "a request from `{}` would take {per_request} hops; the limit is {MAX_HOPS}",
                    entry.from
                ));
            }
        }
        Ok(())
    }

    /// Istio's Bookinfo behind the ingress gateway, and a small travel agency namespace.
    pub fn bookinfo() -> Topology {
        let version = |v: &str, pods: usize, latency_ms: f64, sigma: f64| VersionDef {
            version: v.into(),
            pods,
            latency_ms,
            sigma,
        };
        let call = |service: &str, path: &str| Call {
            service: service.into(),
            path: path.into(),
        };
        let service =
            |name: &str, namespace: &str, versions: Vec<VersionDef>, calls: Vec<Call>| ServiceDef {
                name: name.into(),
                namespace: namespace.into(),
                port: 9080,
                gateway: false,
                protocol: Protocol::Http,
                versions,
                calls,
            };
        let mut gateway = service(
            "istio-ingressgateway",
            "istio-system",
            vec![version("latest", 1, 0.4, 0.3)],
            vec![call("productpage", "/productpage")],
        );
        gateway.gateway = true;
        gateway.port = 8080;
        let mut portal = service(
            "travel-portal",
            "travel",
            vec![version("v1", 1, 0.5, 0.3)],
            vec![call("travels", "/travels/paris")],
        );
        portal.port = 8000;
        Topology {
            mesh_id: default_mesh_id(),
            services: vec![
                gateway,
                service(
                    "productpage",
                    "bookinfo",
                    vec![version("v1", 2, 4.0, 0.35)],
                    vec![call("details", "/details/0"), call("reviews", "/reviews/0")],
                ),
                service(
                    "details",
                    "bookinfo",
                    vec![version("v1", 1, 0.9, 0.3)],
                    vec![],
                ),
                service(
                    "reviews",
                    "bookinfo",
                    vec![
                        version("v1", 1, 1.5, 0.3),
                        version("v2", 2, 1.8, 0.35),
                        // reviews-v3 is the slow one, with a heavy tail.
                        version("v3", 3, 2.5, 0.9),
                    ],
                    vec![call("ratings", "/ratings/0")],
                ),
                service(
                    "ratings",
                    "bookinfo",
                    vec![version("v1", 1, 0.5, 0.3)],
                    vec![],
                ),
                portal,
                service(
                    "travels",
                    "travel",
                    vec![version("v1", 2, 3.0, 0.4)],
                    vec![
                        call("flights", "/flights/paris"),
                        call("hotels", "/hotels/paris"),
                    ],
                ),
                service(
                    "flights",
                    "travel",
                    vec![version("v1", 1, 6.0, 0.5)],
                    vec![],
                ),
                service("hotels", "travel", vec![version("v1", 2, 4.0, 0.5)], vec![]),
            ],
            entries: vec![
                Entry {
                    from: "istio-ingressgateway".into(),
                    call: call("productpage", "/productpage"),
                    weight: 3.0,
                },
                Entry {
                    from: "travel-portal".into(),
                    call: call("travels", "/travels/paris"),
                    weight: 1.0,
                },
            ],
        }
    }
}

/// One pod of one workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub name: String,
    pub ip: String,
    pub cluster: String,
}

/// A workload: one version of one service, with its pods.
#[derive(Debug, Clone)]
pub struct Workload {
    pub service: usize,
    pub version: String,
    pub pods: Vec<Pod>,
    pub latency_ms: f64,
    pub sigma: f64,
}

/// The topology with its pods laid out: names like Kubernetes gives them
/// (`reviews-v2-7d8f9c6b5-x2kqp`), IPs in 10.244.0.0/16, and clusters.
#[derive(Debug, Clone)]
pub struct Mesh {
    pub topology: Topology,
    /// Workloads of each service, by service index.
    pub workloads: Vec<Vec<Workload>>,
}

impl Mesh {
    /// Lays out pods from `seed`; with `clusters > 1` workloads are spread over clusters named
    /// `cluster-1`, `cluster-2`, ..., otherwise every pod is in Istio's default `Kubernetes`.
    pub fn new(topology: Topology, seed: u64, clusters: usize) -> Mesh {
        let mut rng = Rng::new(seed ^ 0x6d65_7368);
        let mut next_ip = 10u32;
        let mut workload_index = 0usize;
        let workloads = topology
            .services
            .iter()
            .enumerate()
            .map(|(index, service)| {
                service
                    .versions
                    .iter()
                    .map(|version| {
                        let cluster = if clusters > 1 {
                            format!("cluster-{}", workload_index % clusters + 1)
                        } else {
                            "Kubernetes".to_string()
                        };
                        workload_index += 1;
                        let workload_name = if service.gateway {
                            service.name.clone()
                        } else {
                            format!("{}-{}", service.name, version.version)
                        };
                        let replica_set =
                            format!("{:x}", rng.next_u64() % 0xf_ffff_ffff + 0x1_0000_0000);
                        let pods = (0..version.pods.clamp(1, 3))
                            .map(|_| {
                                let ip = format!("10.244.{}.{}", next_ip / 250, next_ip % 250 + 2);
                                next_ip += 1;
                                Pod {
                                    name: format!(
                                        "{workload_name}-{}-{}",
                                        &replica_set[..9],
                                        rng.name_suffix(5)
                                    ),
                                    ip,
                                    cluster: cluster.clone(),
                                }
                            })
                            .collect();
                        Workload {
                            service: index,
                            version: version.version.clone(),
                            pods,
                            latency_ms: version.latency_ms,
                            sigma: version.sigma,
                        }
                    })
                    .collect()
            })
            .collect();
        Mesh {
            topology,
            workloads,
        }
    }

    #[allow(clippy::expect_used, reason = "names come from the checked topology")]
    pub fn service_index(&self, name: &str) -> usize {
        self.topology
            .services
            .iter()
            .position(|s| s.name == name)
            .expect("the topology was checked")
    }
}

#[cfg(test)]
mod tests;
