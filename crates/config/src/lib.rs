//! Kiali-compatible configuration for meshtrace.
//!
//! meshtrace reads a Kiali configuration unchanged: a `config.yaml`, the ConfigMap that holds
//! it, or a Kiali CR. Only `external_services.tracing`, `external_services.prometheus` (where
//! mesh metrics come from), `auth` and `login_token` (who may use the console) and a few
//! neighbours (the UI's trace limit, the server's address, port and web root) mean something here; every other Kiali key is accepted and ignored.
//!
//! ```
//! let loaded = meshtrace_config::load_str(
//!     "external_services:\n  tracing:\n    enabled: true\n    in_cluster_url: http://tracing:16685/jaeger\n",
//! )
//! .unwrap();
//! assert_eq!(loaded.config.tracing.internal_url, "http://tracing:16685/jaeger");
//! assert_eq!(loaded.warnings.len(), 1); // `in_cluster_url` is deprecated
//! ```

// Every module reads what a configuration file says, and the console's tester takes it from
// requests: no unwrap or expect, no indexing that can panic and no unchecked arithmetic,
// crate-wide. clippy.toml allows unwrap, expect and indexing in tests; test modules allow
// arithmetic themselves. Every other `#[allow]` says why.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod credential;
mod decode;
mod diag;
mod load;
mod render;
mod root;
mod schema;
mod section;
mod validate;
mod yaml;

pub use credential::{Credential, CredentialError, OBFUSCATED};
pub use diag::{Diagnostic, Location, Severity};
pub use load::{
    LoadError, Loaded, MAX_CONFIG_BYTES, MAX_EMBEDDED, load_bytes, load_file, load_str,
};
pub use render::{metrics_mode, mode, redact_url, to_yaml};
pub use root::effective;
pub use schema::{
    ApiToken, Auth, AuthConfig, AuthStrategy, AuthType, Config, DEFAULT_OIDC_SECRET_FILE,
    DEFAULT_PROMETHEUS_URL, DiscoveryOverride, InputShape, LoginToken, OAuth2, OAuth2AuthStyle,
    OpenIdConfig, PrometheusConfig, Provider, ServerConfig, TempoConfig, ThanosProxy,
    TracingConfig, UrlFormat,
};
pub use validate::{SERVICE_ACCOUNT_TOKEN, signing_key_problem};
pub use yaml::{MAX_ALIAS_TEXT, MAX_DEPTH, MAX_DUPLICATES, Pos};
