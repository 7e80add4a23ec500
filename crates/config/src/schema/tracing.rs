//! `external_services.tracing`: where traces come from and how the console links to them.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::auth::Auth;
use super::serialize_as_str;
use crate::decode::tracing as read;
use crate::section::section;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Jaeger,
    Tempo,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Jaeger => "jaeger",
            Provider::Tempo => "tempo",
        }
    }
}

section! {
    /// Kiali's `external_services.tracing`. Every key is known: an unknown one is an error.
    #[derive(Clone, PartialEq, Serialize)]
    pub struct TracingConfig {
        enabled: bool = false,
        provider: Provider = Provider::Jaeger => read::provider,
        /// The URL the server queries; empty means "no native charts, external links only".
        #[serde(serialize_with = "super::redacted_url")]
        internal_url: String = String::new(),
        /// The URL the browser follows for "View in Tracing" links and the menu item.
        #[serde(serialize_with = "super::redacted_url")]
        external_url: String = String::new(),
        use_grpc: bool = true,
        /// Tempo only: the gRPC port on the host of `internal_url`.
        grpc_port: u16 = 9095 => read::grpc_port,
        auth: Auth = Auth::default() => |d, node, path, tracing, seen| {
            seen.bad_auth_type = !d.section(node, path, &mut tracing.auth).type_known;
        },
        /// Header names keep the case they were written in.
        #[serde(serialize_with = "super::header_names")]
        custom_headers: BTreeMap<String, String> = BTreeMap::new(),
        #[serde(serialize_with = "super::redacted_url")]
        health_check_url: String = String::new(),
        is_core: bool = false,
        namespace_selector: bool = true,
        query_scope: BTreeMap<String, String> = BTreeMap::new(),
        query_timeout_secs as "query_timeout": u64 = 5 => |d, node, path, tracing, _| {
            crate::decode::set(&mut tracing.query_timeout_secs, d.positive_secs(node, path));
        },
        disable_version_check: bool = false,
        use_waypoint_name: bool = false,
        whitelist_istio_system: Vec<String> = vec![
            "jaeger-query".to_string(),
            "istio-ingressgateway".to_string(),
        ],
        tempo_config: TempoConfig = TempoConfig::default() => |d, node, path, tracing, _| {
            d.section(node, path, &mut tracing.tempo_config);
        },
    }
    decode {
        strict: true,
        seen: read::TracingSeen,
        // Kiali's deprecated names of `internal_url` and `external_url`.
        extra: {
            "in_cluster_url" => |d, node, path, _, seen| seen.in_cluster_url = d.string(Some(node), path),
            "url" => |d, node, path, _, seen| seen.url = d.string(Some(node), path),
        },
        finish: read::apply_aliases,
    }
}

impl TracingConfig {
    pub fn query_timeout(&self) -> Duration {
        Duration::from_secs(self.query_timeout_secs)
    }

    /// Native charts need a URL the server can query.
    pub fn has_native_charts(&self) -> bool {
        self.enabled && !self.internal_url.is_empty()
    }

    /// External links need a URL the browser can open.
    pub fn has_external_links(&self) -> bool {
        self.enabled && !self.external_url.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlFormat {
    /// Not set: Kiali links to Grafana when a Grafana service is configured.
    Unset,
    Jaeger,
    Grafana,
    OpenShift,
}

impl UrlFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            UrlFormat::Unset => "",
            UrlFormat::Jaeger => "jaeger",
            UrlFormat::Grafana => "grafana",
            UrlFormat::OpenShift => "openshift",
        }
    }
}

serialize_as_str!(Provider, UrlFormat);

section! {
    /// `external_services.tracing.tempo_config`.
    #[derive(Clone, PartialEq, Serialize)]
    pub struct TempoConfig {
        org_id: String = String::new(),
        datasource_uid: String = String::new(),
        url_format: UrlFormat = UrlFormat::Unset => read::url_format,
        name: String = String::new(),
        namespace: String = String::new(),
        tenant: String = String::new(),
        cache_enabled: bool = true,
        cache_capacity: u32 = 200 => |d, node, path, tempo, _| {
            let capacity = d.int(Some(node), path, 1, u32::MAX.into());
            crate::decode::set(&mut tempo.cache_capacity, capacity.and_then(|c| u32::try_from(c).ok()));
        },
    }
    decode { strict: true, seen: () }
}
