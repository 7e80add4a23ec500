//! Reads the settings tree of a Kiali config into [`Config`], collecting every problem instead
//! of stopping at the first.
//!
//! Outside `external_services.tracing` a real Kiali config has hundreds of keys meshtrace does
//! not use; those are accepted silently, except that a key one typo away from a key meshtrace
//! reads (and that is missing) gets a warning. Inside `external_services.tracing` every key is
//! known, so an unknown key is an error that names the nearest valid one.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

use std::collections::HashMap;

use crate::diag::Diagnostic;
use crate::schema::{
    AuthType, Config, InputShape, OAuth2AuthStyle, Provider, ServerConfig, TracingConfig, UrlFormat,
};
use crate::yaml::{Node, Pos};

mod shapes;

pub(crate) const TRACING_KEYS: &[&str] = &[
    "auth",
    "custom_headers",
    "disable_version_check",
    "enabled",
    "external_url",
    "grpc_port",
    "health_check_url",
    "in_cluster_url",
    "internal_url",
    "is_core",
    "namespace_selector",
    "provider",
    "query_scope",
    "query_timeout",
    "tempo_config",
    "url",
    "use_grpc",
    "use_waypoint_name",
    "whitelist_istio_system",
];

const AUTH_KEYS: &[&str] = &[
    "ca_file",
    "cert_file",
    "insecure_skip_verify",
    "key_file",
    "oauth2",
    "password",
    "token",
    "type",
    "use_kiali_token",
    "username",
];

const OAUTH2_KEYS: &[&str] = &[
    "audience",
    "auth_style",
    "client_id",
    "client_secret",
    "scopes",
    "token_url",
];

const TEMPO_KEYS: &[&str] = &[
    "cache_capacity",
    "cache_enabled",
    "datasource_uid",
    "name",
    "namespace",
    "org_id",
    "tenant",
    "url_format",
];

/// What decoding found, before validation.
pub(crate) struct Decoded {
    pub config: Config,
    /// Whether `use_grpc` was written (the operator's defaults depend on it).
    pub use_grpc_set: bool,
    /// Whether `grpc_port` was written.
    pub grpc_port_set: bool,
    /// A provider value that is neither `jaeger` nor `tempo`, kept for validation.
    pub bad_provider: Option<String>,
    /// Whether `auth.type` held an unknown value (checks that depend on the type are skipped).
    pub bad_auth_type: bool,
    /// The key `internal_url` was taken from: itself, or the deprecated `in_cluster_url`.
    pub internal_url_key: &'static str,
    /// The key `external_url` was taken from: itself, or the deprecated `url`.
    pub external_url_key: &'static str,
}

pub(crate) struct Decoder {
    /// `spec` for a Kiali CR, empty otherwise: every reported path starts with it.
    prefix: String,
    pub diags: Vec<Diagnostic>,
    /// Where each value that was read stands, by its path (without the prefix).
    pub positions: HashMap<String, Pos>,
}

impl Decoder {
    pub fn new(prefix: &str) -> Self {
        Decoder {
            prefix: prefix.to_string(),
            diags: Vec::new(),
            positions: HashMap::new(),
        }
    }

    pub fn full_path(&self, path: &str) -> String {
        match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}.{path}", self.prefix),
        }
    }

    pub fn error(&mut self, path: &str, pos: Option<Pos>, message: impl Into<String>) {
        let full = self.full_path(path);
        self.diags.push(Diagnostic::error(full, pos, message));
    }

    pub fn warning(&mut self, path: &str, pos: Option<Pos>, message: impl Into<String>) {
        let full = self.full_path(path);
        self.diags.push(Diagnostic::warning(full, pos, message));
    }

    pub fn pos(&self, path: &str) -> Option<Pos> {
        self.positions.get(path).copied()
    }

    /// Decodes the settings mapping (the whole config.yaml, or a CR's `spec`).
    pub fn decode(&mut self, settings: Option<&Node>, shape: InputShape) -> Decoded {
        let mut config = Config {
            shape,
            tracing: TracingConfig::default(),
            server: ServerConfig::default(),
            ui_tracing_limit: 100,
            istio_namespace: "istio-system".to_string(),
            deployment_namespace: "istio-system".to_string(),
            cluster_name: String::new(),
        };
        let mut decoded = Decoded {
            config: config.clone(),
            use_grpc_set: false,
            grpc_port_set: false,
            bad_provider: None,
            bad_auth_type: false,
            internal_url_key: "internal_url",
            external_url_key: "external_url",
        };
        let Some(root) = self.lenient(settings, "", &ROOT_READS) else {
            return decoded;
        };

        if let Some(ns) = self.string(root.get("istio_namespace"), "istio_namespace") {
            config.istio_namespace = ns;
        }
        let deployment = self.lenient(root.get("deployment"), "deployment", &["namespace"]);
        if let Some(ns) =
            deployment.and_then(|d| self.string(d.get("namespace"), "deployment.namespace"))
        {
            config.deployment_namespace = ns;
        }
        let kubernetes = self.lenient(
            root.get("kubernetes_config"),
            "kubernetes_config",
            &["cluster_name"],
        );
        if let Some(name) = kubernetes
            .and_then(|k| self.string(k.get("cluster_name"), "kubernetes_config.cluster_name"))
        {
            config.cluster_name = name;
        }
        self.server(root.get("server"), &mut config.server);
        if let Some(limit) = self.ui_tracing_limit(root.get("kiali_feature_flags")) {
            config.ui_tracing_limit = limit;
        }

        let external = self.lenient(
            root.get("external_services"),
            "external_services",
            &EXTERNAL_SERVICES,
        );
        if let Some(tracing) = external.and_then(|e| e.get("tracing")) {
            self.tracing(tracing, &mut config.tracing, &mut decoded);
        }
        decoded.config = config;
        decoded
    }

    fn server(&mut self, node: Option<&Node>, server: &mut ServerConfig) {
        let Some(node) = self.lenient(node, "server", &["address", "port", "web_root"]) else {
            return;
        };
        if let Some(address) = self.string(node.get("address"), "server.address") {
            server.address = address;
        }
        if let Some(port) = self.int(node.get("port"), "server.port", 1, 65535) {
            server.port = port as u16;
        }
        if let Some(root) = self.string(node.get("web_root"), "server.web_root") {
            server.web_root = root;
        }
    }

    fn ui_tracing_limit(&mut self, flags: Option<&Node>) -> Option<u32> {
        let flags = self.lenient(flags, "kiali_feature_flags", &["ui_defaults"])?;
        let path = "kiali_feature_flags.ui_defaults";
        let defaults = self.lenient(flags.get("ui_defaults"), path, &["tracing"])?;
        let path = "kiali_feature_flags.ui_defaults.tracing";
        let tracing = self.lenient(defaults.get("tracing"), path, &["limit"])?;
        let path = "kiali_feature_flags.ui_defaults.tracing.limit";
        let limit = self.int(tracing.get("limit"), path, i64::MIN, i64::MAX)?;
        if !(10..=1000).contains(&limit) {
            let pos = self.pos(path);
            self.error(
                path,
                pos,
                format!("must be between 10 and 1000 (Kiali's bounds), found {limit}"),
            );
            return None;
        }
        Some(limit as u32)
    }

    fn tracing(&mut self, node: &Node, t: &mut TracingConfig, decoded: &mut Decoded) {
        const P: &str = "external_services.tracing";
        let Some(fields) = self.strict(node, P, TRACING_KEYS) else {
            return;
        };
        let mut in_cluster_url = None;
        let mut url = None;
        for (key, value) in fields {
            let path = format!("{P}.{key}");
            let path = path.as_str();
            match key {
                "enabled" => set(&mut t.enabled, self.bool(value, path)),
                "provider" => {
                    if let Some(provider) = self.string(Some(value), path) {
                        match provider.as_str() {
                            "jaeger" => t.provider = Provider::Jaeger,
                            "tempo" => t.provider = Provider::Tempo,
                            _ => decoded.bad_provider = Some(provider),
                        }
                    }
                }
                "internal_url" => set(&mut t.internal_url, self.string(Some(value), path)),
                "external_url" => set(&mut t.external_url, self.string(Some(value), path)),
                "in_cluster_url" => in_cluster_url = self.string(Some(value), path),
                "url" => url = self.string(Some(value), path),
                "use_grpc" => {
                    let v = self.bool(value, path);
                    decoded.use_grpc_set = v.is_some();
                    set(&mut t.use_grpc, v);
                }
                "grpc_port" => {
                    let v = self.int(Some(value), path, 1, 65535).map(|p| p as u16);
                    decoded.grpc_port_set = v.is_some();
                    set(&mut t.grpc_port, v);
                }
                "auth" => decoded.bad_auth_type = !self.auth(value, &mut t.auth),
                "custom_headers" => set(&mut t.custom_headers, self.string_map(value, path)),
                "health_check_url" => set(&mut t.health_check_url, self.string(Some(value), path)),
                "is_core" => set(&mut t.is_core, self.bool(value, path)),
                "namespace_selector" => set(&mut t.namespace_selector, self.bool(value, path)),
                "query_scope" => set(&mut t.query_scope, self.string_map(value, path)),
                "query_timeout" => {
                    let v = self.int(Some(value), path, i64::MIN, i64::MAX);
                    match v {
                        Some(secs) if secs > 0 => t.query_timeout_secs = secs as u64,
                        Some(secs) => {
                            let pos = self.pos(path);
                            self.error(
                                path,
                                pos,
                                format!("must be a positive number of seconds, found {secs}"),
                            );
                        }
                        None => {}
                    }
                }
                "disable_version_check" => {
                    set(&mut t.disable_version_check, self.bool(value, path))
                }
                "use_waypoint_name" => set(&mut t.use_waypoint_name, self.bool(value, path)),
                "whitelist_istio_system" => {
                    set(&mut t.whitelist_istio_system, self.string_list(value, path))
                }
                "tempo_config" => self.tempo(value, t),
                _ => unreachable!("strict() only returns known keys"),
            }
        }
        if self.alias(
            P,
            ("in_cluster_url", in_cluster_url),
            "internal_url",
            &mut t.internal_url,
        ) {
            decoded.internal_url_key = "in_cluster_url";
        }
        if self.alias(P, ("url", url), "external_url", &mut t.external_url) {
            decoded.external_url_key = "url";
        }
    }

    /// Applies a deprecated key the way Kiali does: a non-empty old value replaces the new one.
    /// Returns whether it did.
    fn alias(
        &mut self,
        base: &str,
        old: (&str, Option<String>),
        new: &str,
        target: &mut String,
    ) -> bool {
        let (old_key, Some(old_value)) = old else {
            return false;
        };
        if old_value.is_empty() {
            return false;
        }
        let old_path = format!("{base}.{old_key}");
        let pos = self.pos(&old_path);
        if !target.is_empty() && *target != old_value {
            let new_path = self.full_path(&format!("{base}.{new}"));
            self.warning(
                &old_path,
                pos,
                format!(
                    "both `{old_key}` and `{new_path}` are set, to different values; \
                     the deprecated `{old_key}` wins, as in Kiali: remove it and keep `{new}`"
                ),
            );
        } else {
            self.warning(
                &old_path,
                pos,
                format!("`{old_key}` is deprecated: rename it to `{new}`"),
            );
        }
        *target = old_value;
        true
    }

    /// Returns false when `auth.type` holds an unknown value.
    fn auth(&mut self, node: &Node, auth: &mut crate::schema::Auth) -> bool {
        const P: &str = "external_services.tracing.auth";
        let Some(fields) = self.strict(node, P, AUTH_KEYS) else {
            return true;
        };
        let mut type_known = true;
        for (key, value) in fields {
            let path = format!("{P}.{key}");
            let path = path.as_str();
            match key {
                "type" => match self.choice(value, path, &AuthType::NAMES) {
                    Some(kind) => auth.kind = AuthType::parse(&kind).unwrap_or(AuthType::None),
                    None => type_known = value.is_null(),
                },
                "username" => set(&mut auth.username, self.secret(value, path)),
                "password" => set(&mut auth.password, self.secret(value, path)),
                "token" => set(&mut auth.token, self.secret(value, path)),
                "cert_file" => set(&mut auth.cert_file, self.secret(value, path)),
                "key_file" => set(&mut auth.key_file, self.secret(value, path)),
                "ca_file" => set(&mut auth.ca_file, self.string(Some(value), path)),
                "insecure_skip_verify" => {
                    set(&mut auth.insecure_skip_verify, self.bool(value, path))
                }
                "use_kiali_token" => set(&mut auth.use_kiali_token, self.bool(value, path)),
                "oauth2" => self.oauth2(value, &mut auth.oauth2),
                _ => unreachable!("strict() only returns known keys"),
            }
        }
        type_known
    }

    fn oauth2(&mut self, node: &Node, oauth2: &mut crate::schema::OAuth2) {
        const P: &str = "external_services.tracing.auth.oauth2";
        let Some(fields) = self.strict(node, P, OAUTH2_KEYS) else {
            return;
        };
        for (key, value) in fields {
            let path = format!("{P}.{key}");
            let path = path.as_str();
            match key {
                "token_url" => set(&mut oauth2.token_url, self.string(Some(value), path)),
                "client_id" => set(&mut oauth2.client_id, self.string(Some(value), path)),
                "client_secret" => set(&mut oauth2.client_secret, self.secret(value, path)),
                "scopes" => set(&mut oauth2.scopes, self.string_list(value, path)),
                "audience" => set(&mut oauth2.audience, self.string(Some(value), path)),
                "auth_style" => match self
                    .choice(value, path, &["header", "params", ""])
                    .as_deref()
                {
                    Some("params") => oauth2.auth_style = OAuth2AuthStyle::Params,
                    Some(_) => oauth2.auth_style = OAuth2AuthStyle::Header,
                    None => {}
                },
                _ => unreachable!("strict() only returns known keys"),
            }
        }
    }

    fn tempo(&mut self, node: &Node, t: &mut TracingConfig) {
        const P: &str = "external_services.tracing.tempo_config";
        let Some(fields) = self.strict(node, P, TEMPO_KEYS) else {
            return;
        };
        let tempo = &mut t.tempo_config;
        for (key, value) in fields {
            let path = format!("{P}.{key}");
            let path = path.as_str();
            match key {
                "org_id" => set(&mut tempo.org_id, self.string(Some(value), path)),
                "datasource_uid" => set(&mut tempo.datasource_uid, self.string(Some(value), path)),
                "url_format" => {
                    let formats = ["jaeger", "grafana", "openshift", ""];
                    tempo.url_format = match self.choice(value, path, &formats).as_deref() {
                        Some("jaeger") => UrlFormat::Jaeger,
                        Some("grafana") => UrlFormat::Grafana,
                        Some("openshift") => UrlFormat::OpenShift,
                        _ => UrlFormat::Unset,
                    };
                }
                "name" => set(&mut tempo.name, self.string(Some(value), path)),
                "namespace" => set(&mut tempo.namespace, self.string(Some(value), path)),
                "tenant" => set(&mut tempo.tenant, self.string(Some(value), path)),
                "cache_enabled" => set(&mut tempo.cache_enabled, self.bool(value, path)),
                "cache_capacity" => {
                    let v = self.int(Some(value), path, 1, u32::MAX as i64);
                    set(&mut tempo.cache_capacity, v.map(|c| c as u32));
                }
                _ => unreachable!("strict() only returns known keys"),
            }
        }
    }
}

/// Keys meshtrace reads at the top of a Kiali config.
const ROOT_READS: [&str; 6] = [
    "deployment",
    "external_services",
    "istio_namespace",
    "kiali_feature_flags",
    "kubernetes_config",
    "server",
];

/// Kiali's external services; only `tracing` is read, the others are known so that a
/// typo of `tracing` is not confused with them.
const EXTERNAL_SERVICES: [&str; 6] = [
    "custom_dashboards",
    "grafana",
    "istio",
    "perses",
    "prometheus",
    "tracing",
];

fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}
