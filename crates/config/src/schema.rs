//! The effective configuration meshtrace works from, with Kiali's defaults.
//!
//! These types hold values after aliases, defaults and (for a Kiali CR) the operator's derived
//! defaults have been applied; `decode` builds them and `validate` checks them. Each section is
//! declared once, key by key, with [`section!`](crate::section::section): its doc, type, default
//! and reader; `config show` prints it through `Serialize`, secrets as `xxx`.

use serde::{Serialize, Serializer};

use crate::section::section;

mod auth;
mod login;
mod prometheus;
mod tracing;

pub use auth::{Auth, AuthType, OAuth2, OAuth2AuthStyle};
pub use login::{
    ApiToken, AuthConfig, AuthStrategy, DEFAULT_OIDC_SECRET_FILE, DiscoveryOverride, LoginToken,
    OpenIdConfig,
};
pub(crate) use prometheus::label_name;
pub use prometheus::{DEFAULT_PROMETHEUS_URL, PrometheusConfig, ThanosProxy};
pub use tracing::{Provider, TempoConfig, TracingConfig, UrlFormat};

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

/// The whole configuration. Its keys outside the sections stand at nested paths of Kiali's
/// config (`deployment.namespace`, ...); `crate::root` says where each is read and shown.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub shape: InputShape,
    pub tracing: TracingConfig,
    pub prometheus: PrometheusConfig,
    pub server: ServerConfig,
    /// Kiali's `auth`: who may use the console.
    pub auth: AuthConfig,
    /// Kiali's `login_token`: the session cookie's key and life.
    pub login_token: LoginToken,
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
    /// Whether `external_services.prometheus` was written with at least one key.
    pub(crate) prometheus_given: bool,
}

impl Config {
    /// Whether the input has an `external_services.prometheus` section holding at least one
    /// key. Without one, `prometheus` holds Kiali's defaults (and, for a CR, the operator's),
    /// which name a Prometheus the user never asked for: the console may then say "no
    /// Prometheus configured", or read metrics from elsewhere.
    pub fn has_prometheus_section(&self) -> bool {
        self.prometheus_given
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            shape: InputShape::ConfigYaml,
            tracing: TracingConfig::default(),
            prometheus: PrometheusConfig::default(),
            server: ServerConfig::default(),
            auth: AuthConfig::default(),
            login_token: LoginToken::default(),
            ui_tracing_limit: 100,
            istio_namespace: "istio-system".to_string(),
            deployment_namespace: "istio-system".to_string(),
            cluster_name: String::new(),
            prometheus_given: false,
        }
    }
}

section! {
    /// `server`: where the console listens. The mapping holds Kiali keys meshtrace ignores.
    #[derive(Clone, PartialEq, Eq, Serialize)]
    pub struct ServerConfig {
        /// Empty means every interface.
        address: String = String::new(),
        port: u16 = 20001 => |d, node, path, server, _| {
            crate::decode::set(&mut server.port, d.port(node, path));
        },
        /// The path the console is served under: `/`, or a path with no trailing slash.
        web_root: String = "/".to_string(),
    }
    decode { strict: false, seen: () }
}

impl ServerConfig {
    /// What every console path starts with: `web_root` without its trailing slash (empty for
    /// `/`).
    pub fn path_prefix(&self) -> &str {
        self.web_root.trim_end_matches('/')
    }
}

impl Config {
    /// The cluster name in Kiali's cookie names (`kiali-token-<cluster>`): `cluster_name`, else
    /// `Kubernetes`, Kiali's fallback when it cannot detect one.
    pub fn session_cluster(&self) -> &str {
        if self.cluster_name.is_empty() {
            "Kubernetes"
        } else {
            &self.cluster_name
        }
    }
}

/// Shows a URL with any password in it as `xxx`.
fn redacted_url<S: Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::render::redact_url(url))
}

/// Shows header names only: their values often carry tokens (`Authorization`, API keys).
fn header_names<S: Serializer>(
    headers: &std::collections::BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(
        headers
            .keys()
            .map(|name| (name, crate::credential::OBFUSCATED)),
    )
}

/// `Serialize` for an enum of names, as its Kiali spelling.
macro_rules! serialize_as_str {
    ($($name:ty),*) => {$(
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }
    )*};
}

pub(crate) use serialize_as_str;
