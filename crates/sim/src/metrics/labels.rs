//! The labels Istio's proxies put on their standard metrics, worked out from the simulated
//! mesh itself (its services, workloads, pods and clusters), for each report a proxy makes.
//!
//! What a pod's labels would be in Kubernetes follows from the topology: `app` is the service's
//! name, `version` the workload's version (a gateway's `latest` stands for "no `version` label",
//! so its `*_version` is `unknown` and its canonical revision `latest`, as Istio writes them).
//! Every pod runs a sidecar and the mesh uses Istio's automatic mutual TLS, so both ends know
//! each other's SPIFFE identity: `spiffe://cluster.local/ns/<ns>/sa/<sa>`, where the service
//! account is `<namespace>-<app>` (Bookinfo's sample names its accounts `bookinfo-<app>`) and a
//! gateway's `<name>-service-account`.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use prometheus_client::encoding::EncodeLabelSet;

use crate::report::{Endpoint, Protocol, Proxy, Report, Reporter};
use crate::topology::Mesh;

/// Istio's default trust domain.
const TRUST_DOMAIN: &str = "cluster.local";
/// What Istio writes for a label it cannot tell.
const UNKNOWN: &str = "unknown";

/// The labels of Istio's TCP metrics, and of its request metrics but the response's code and
/// gRPC status; then the two a Prometheus's Kubernetes service discovery adds to every series
/// it scrapes from a pod (`pod`, `namespace`), naming the reporting proxy.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IstioTcpLabels {
    pub reporter: String,
    pub source_workload: String,
    pub source_workload_namespace: String,
    pub source_principal: String,
    pub source_app: String,
    pub source_version: String,
    pub source_cluster: String,
    pub source_canonical_service: String,
    pub source_canonical_revision: String,
    pub destination_workload: String,
    pub destination_workload_namespace: String,
    pub destination_principal: String,
    pub destination_app: String,
    pub destination_version: String,
    pub destination_cluster: String,
    pub destination_canonical_service: String,
    pub destination_canonical_revision: String,
    pub destination_service: String,
    pub destination_service_name: String,
    pub destination_service_namespace: String,
    pub request_protocol: String,
    pub response_flags: String,
    pub connection_security_policy: String,
    pub pod: String,
    pub namespace: String,
}

/// The labels of Istio's request metrics: the TCP ones and the response's.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IstioLabels {
    #[prometheus(flatten)]
    pub connection: IstioTcpLabels,
    pub response_code: String,
    /// Empty for plain HTTP, as Envoy exports it (to Prometheus, an absent label).
    pub grpc_response_status: String,
}

/// One end of a request as the metrics name it.
struct Peer<'a> {
    workload: String,
    namespace: &'a str,
    principal: String,
    app: &'a str,
    version: &'a str,
    cluster: &'a str,
    canonical_service: &'a str,
    canonical_revision: &'a str,
}

impl Peer<'static> {
    fn unknown() -> Peer<'static> {
        Peer {
            workload: UNKNOWN.to_string(),
            namespace: UNKNOWN,
            principal: UNKNOWN.to_string(),
            app: UNKNOWN,
            version: UNKNOWN,
            cluster: UNKNOWN,
            canonical_service: UNKNOWN,
            canonical_revision: UNKNOWN,
        }
    }
}

/// The pod, workload and service at `at`, or None when the index is outside the mesh (which
/// the generator never makes).
fn peer(mesh: &Mesh, at: Endpoint) -> Option<Peer<'_>> {
    let service = mesh.topology.services.get(at.service)?;
    let workload = mesh.workloads.get(at.service)?.get(at.workload)?;
    let pod = workload.pods.get(at.pod)?;
    // A workload is named `<app>-<version>`, a gateway after its service alone.
    let (name, account) = if service.gateway {
        (
            service.name.clone(),
            format!("{}-service-account", service.name),
        )
    } else {
        (
            format!("{}-{}", service.name, workload.version),
            format!("{}-{}", service.namespace, service.name),
        )
    };
    let labelled_version = (workload.version != "latest").then_some(workload.version.as_str());
    Some(Peer {
        workload: name,
        namespace: &service.namespace,
        principal: format!(
            "spiffe://{TRUST_DOMAIN}/ns/{}/sa/{account}",
            service.namespace
        ),
        app: &service.name,
        version: labelled_version.unwrap_or(UNKNOWN),
        cluster: &pod.cluster,
        canonical_service: &service.name,
        canonical_revision: &workload.version,
    })
}

/// The labels of `report`; None when it names a pod outside the mesh.
pub fn labels(mesh: &Mesh, report: &Report) -> Option<IstioLabels> {
    let source = peer(mesh, report.source)?;
    let destination = match report.destination {
        Some(at) => peer(mesh, at)?,
        None => Peer::unknown(),
    };
    let called = mesh.topology.services.get(report.service)?;
    let (pod, namespace) = match &report.proxy {
        Proxy::Sidecar(at) => {
            let service = mesh.topology.services.get(at.service)?;
            let pod = mesh
                .workloads
                .get(at.service)?
                .get(at.workload)?
                .pods
                .get(at.pod)?;
            (pod.name.clone(), service.namespace.clone())
        }
        Proxy::Waypoint { pod, namespace } => (pod.clone(), namespace.clone()),
    };
    // A client proxy does not know the TLS mode the server enforces; the server (or the
    // waypoint, which receives over mutual TLS) does.
    let security = match report.reporter {
        Reporter::Source => UNKNOWN,
        Reporter::Destination | Reporter::Waypoint => "mutual_tls",
    };
    let connection = IstioTcpLabels {
        reporter: report.reporter.label().to_string(),
        source_workload: source.workload,
        source_workload_namespace: source.namespace.to_string(),
        source_principal: source.principal,
        source_app: source.app.to_string(),
        source_version: source.version.to_string(),
        source_cluster: source.cluster.to_string(),
        source_canonical_service: source.canonical_service.to_string(),
        source_canonical_revision: source.canonical_revision.to_string(),
        destination_workload: destination.workload,
        destination_workload_namespace: destination.namespace.to_string(),
        destination_principal: destination.principal,
        destination_app: destination.app.to_string(),
        destination_version: destination.version.to_string(),
        destination_cluster: destination.cluster.to_string(),
        destination_canonical_service: destination.canonical_service.to_string(),
        destination_canonical_revision: destination.canonical_revision.to_string(),
        destination_service: format!("{}.{}.svc.cluster.local", called.name, called.namespace),
        destination_service_name: called.name.clone(),
        destination_service_namespace: called.namespace.clone(),
        request_protocol: match report.protocol {
            Protocol::Http => "http",
            Protocol::Tcp => "tcp",
        }
        .to_string(),
        response_flags: report.flags.to_string(),
        connection_security_policy: security.to_string(),
        pod,
        namespace,
    };
    Some(IstioLabels {
        connection,
        response_code: report.status.to_string(),
        grpc_response_status: String::new(),
    })
}
