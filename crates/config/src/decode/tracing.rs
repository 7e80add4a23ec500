//! The readers of `external_services.tracing` that do more than read a value by its type.
//! (The lints `decode` denies apply here too.)

use super::{Decoder, set};
use crate::schema::{Provider, TempoConfig, TracingConfig, UrlFormat};
use crate::yaml::Node;

/// What reading the section learnt beside its values, for the checks that follow.
pub(crate) struct TracingSeen {
    /// Whether `grpc_port` was written.
    pub grpc_port_set: bool,
    /// A provider value that is neither `jaeger` nor `tempo`, kept for validation.
    pub bad_provider: Option<String>,
    /// Whether `auth.type` held an unknown value (checks that depend on the type are skipped).
    pub bad_auth_type: bool,
    /// The deprecated `in_cluster_url` and `url`, applied once every key is read.
    pub in_cluster_url: Option<String>,
    pub url: Option<String>,
    /// The key `internal_url` was taken from: itself, or the deprecated `in_cluster_url`.
    pub internal_url_key: &'static str,
    /// The key `external_url` was taken from: itself, or the deprecated `url`.
    pub external_url_key: &'static str,
}

impl Default for TracingSeen {
    fn default() -> Self {
        TracingSeen {
            grpc_port_set: false,
            bad_provider: None,
            bad_auth_type: false,
            in_cluster_url: None,
            url: None,
            internal_url_key: "internal_url",
            external_url_key: "external_url",
        }
    }
}

pub(crate) fn provider(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    tracing: &mut TracingConfig,
    seen: &mut TracingSeen,
) {
    if let Some(provider) = d.string(Some(node), path) {
        match provider.as_str() {
            "jaeger" => tracing.provider = Provider::Jaeger,
            "tempo" => tracing.provider = Provider::Tempo,
            _ => seen.bad_provider = Some(provider),
        }
    }
}

pub(crate) fn grpc_port(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    tracing: &mut TracingConfig,
    seen: &mut TracingSeen,
) {
    let value = d.port(node, path);
    seen.grpc_port_set = value.is_some();
    set(&mut tracing.grpc_port, value);
}

/// Applies Kiali's deprecated names once the new ones are read.
pub(crate) fn apply_aliases(
    d: &mut Decoder,
    path: &str,
    tracing: &mut TracingConfig,
    seen: &mut TracingSeen,
) {
    let in_cluster_url = ("in_cluster_url", seen.in_cluster_url.take());
    if d.alias(
        path,
        in_cluster_url,
        "internal_url",
        &mut tracing.internal_url,
    ) {
        seen.internal_url_key = "in_cluster_url";
    }
    if d.alias(
        path,
        ("url", seen.url.take()),
        "external_url",
        &mut tracing.external_url,
    ) {
        seen.external_url_key = "url";
    }
}

pub(crate) fn url_format(
    d: &mut Decoder,
    node: &Node,
    path: &str,
    tempo: &mut TempoConfig,
    _: &mut (),
) {
    let formats = ["jaeger", "grafana", "openshift", ""];
    tempo.url_format = match d.choice(node, path, &formats).as_deref() {
        Some("jaeger") => UrlFormat::Jaeger,
        Some("grafana") => UrlFormat::Grafana,
        Some("openshift") => UrlFormat::OpenShift,
        _ => UrlFormat::Unset,
    };
}
