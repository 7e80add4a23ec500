//! The effective configuration meshtrace works from, with Kiali's defaults.
//!
//! These types hold values after aliases, defaults and (for a Kiali CR) the operator's derived
//! defaults have been applied; `decode` builds them and `validate` checks them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::credential::Credential;

/// Which kind of document the configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputShape {
    /// A Kiali `config.yaml`.
    ConfigYaml,
    /// A Kubernetes ConfigMap whose `data."config.yaml"` holds the Kiali config.
    ConfigMap { name: String },
    /// A Kiali custom resource; the settings are under `spec`.
    KialiCr { name: String },
}

impl InputShape {
    pub fn describe(&self) -> String {
        match self {
            InputShape::ConfigYaml => "a Kiali config.yaml".to_string(),
            InputShape::ConfigMap { name } => format!("the ConfigMap `{name}`"),
            InputShape::KialiCr { name } => format!("the Kiali CR `{name}`"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub shape: InputShape,
    pub tracing: TracingConfig,
    pub server: ServerConfig,
    /// `kiali_feature_flags.ui_defaults.tracing.limit`: the default number of traces fetched.
    pub ui_tracing_limit: u32,
    /// `istio_namespace`.
    pub istio_namespace: String,
    /// `deployment.namespace`: where Kiali runs; the operator derives URLs from it.
    pub deployment_namespace: String,
    /// `kubernetes_config.cluster_name`: the home cluster's name, used to scope queries by
    /// `istio.cluster_id`. Empty means "not set" (Kiali then detects it, falling back to
    /// `Kubernetes`).
    pub cluster_name: String,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    None,
    Basic,
    Bearer,
    OAuth2,
}

impl AuthType {
    pub const NAMES: [&str; 4] = ["none", "basic", "bearer", "oauth2"];

    pub fn parse(value: &str) -> Option<AuthType> {
        match value {
            // Kiali treats an empty type like `none`.
            "" | "none" => Some(AuthType::None),
            "basic" => Some(AuthType::Basic),
            "bearer" => Some(AuthType::Bearer),
            "oauth2" => Some(AuthType::OAuth2),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    pub enabled: bool,
    pub provider: Provider,
    /// The URL the server queries; empty means "no native charts, external links only".
    pub internal_url: String,
    /// The URL the browser follows for "View in Tracing" links and the menu item.
    pub external_url: String,
    pub use_grpc: bool,
    /// Tempo only: the gRPC port on the host of `internal_url`.
    pub grpc_port: u16,
    pub auth: Auth,
    /// Header names keep the case they were written in.
    pub custom_headers: BTreeMap<String, String>,
    pub health_check_url: String,
    pub is_core: bool,
    pub namespace_selector: bool,
    pub query_scope: BTreeMap<String, String>,
    pub query_timeout_secs: u64,
    pub disable_version_check: bool,
    pub use_waypoint_name: bool,
    pub whitelist_istio_system: Vec<String>,
    pub tempo_config: TempoConfig,
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

impl Default for TracingConfig {
    fn default() -> Self {
        TracingConfig {
            enabled: false,
            provider: Provider::Jaeger,
            internal_url: String::new(),
            external_url: String::new(),
            use_grpc: true,
            grpc_port: 9095,
            auth: Auth::default(),
            custom_headers: BTreeMap::new(),
            health_check_url: String::new(),
            is_core: false,
            namespace_selector: true,
            query_scope: BTreeMap::new(),
            query_timeout_secs: 5,
            disable_version_check: false,
            use_waypoint_name: false,
            whitelist_istio_system: vec![
                "jaeger-query".to_string(),
                "istio-ingressgateway".to_string(),
            ],
            tempo_config: TempoConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Auth {
    pub kind: AuthType,
    pub username: Credential,
    pub password: Credential,
    pub token: Credential,
    pub cert_file: Credential,
    pub key_file: Credential,
    /// Ignored by Kiali since v2.20; meshtrace uses it as an extra trusted CA.
    pub ca_file: String,
    pub insecure_skip_verify: bool,
    pub use_kiali_token: bool,
    pub oauth2: OAuth2,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            kind: AuthType::None,
            username: Credential::default(),
            password: Credential::default(),
            token: Credential::default(),
            cert_file: Credential::default(),
            key_file: Credential::default(),
            ca_file: String::new(),
            insecure_skip_verify: false,
            use_kiali_token: false,
            oauth2: OAuth2::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OAuth2AuthStyle {
    /// Client id and secret in an HTTP Basic `Authorization` header.
    #[default]
    Header,
    /// Client id and secret in the form body.
    Params,
}

impl OAuth2AuthStyle {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuth2AuthStyle::Header => "header",
            OAuth2AuthStyle::Params => "params",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OAuth2 {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Credential,
    pub scopes: Vec<String>,
    pub audience: String,
    pub auth_style: OAuth2AuthStyle,
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

#[derive(Debug, Clone, PartialEq)]
pub struct TempoConfig {
    pub org_id: String,
    pub datasource_uid: String,
    pub url_format: UrlFormat,
    pub name: String,
    pub namespace: String,
    pub tenant: String,
    pub cache_enabled: bool,
    pub cache_capacity: u32,
}

impl Default for TempoConfig {
    fn default() -> Self {
        TempoConfig {
            org_id: String::new(),
            datasource_uid: String::new(),
            url_format: UrlFormat::Unset,
            name: String::new(),
            namespace: String::new(),
            tenant: String::new(),
            cache_enabled: true,
            cache_capacity: 200,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Empty means every interface.
    pub address: String,
    pub port: u16,
    /// The path the console is served under: `/`, or a path with no trailing slash.
    pub web_root: String,
}

impl ServerConfig {
    /// What every console path starts with: `web_root` without its trailing slash (empty for
    /// `/`).
    pub fn path_prefix(&self) -> &str {
        self.web_root.trim_end_matches('/')
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            address: String::new(),
            port: 20001,
            web_root: "/".to_string(),
        }
    }
}
