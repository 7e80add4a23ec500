//! Kiali's top-level `auth` (who may use the console, and how they log in) and `login_token`
//! (the session cookie's key and life), read with Kiali's keys and defaults.
//!
//! Not to be confused with the `auth` of an external service (`schema::auth`), which says how
//! meshtrace authenticates to Jaeger, Tempo or Prometheus.

use std::collections::BTreeMap;

use serde::Serialize;

use super::serialize_as_str;
use crate::credential::Credential;
use crate::decode::login as read;
use crate::section::section;

/// Where Kiali's Deployment mounts the optional Secret that holds the OpenID client secret
/// (Secret `kiali`, key `oidc-secret`); Kiali has no config key for it.
pub const DEFAULT_OIDC_SECRET_FILE: &str = "/kiali-secret/oidc-secret";

/// `auth.strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStrategy {
    Anonymous,
    OpenId,
    OpenShift,
    Token,
    Header,
}

impl AuthStrategy {
    pub const NAMES: [&str; 5] = ["anonymous", "openid", "openshift", "token", "header"];

    pub fn parse(value: &str) -> Option<AuthStrategy> {
        match value {
            "anonymous" => Some(AuthStrategy::Anonymous),
            "openid" => Some(AuthStrategy::OpenId),
            "openshift" => Some(AuthStrategy::OpenShift),
            "token" => Some(AuthStrategy::Token),
            "header" => Some(AuthStrategy::Header),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        // One name a variant, in declaration order: the fallback is never taken.
        Self::NAMES.get(self as usize).copied().unwrap_or_default()
    }

    /// Whether the strategy needs the Kubernetes API (to check a token, or to run OpenShift's
    /// OAuth flow), which meshtrace does not use.
    pub fn needs_kubernetes(self) -> bool {
        matches!(self, AuthStrategy::OpenShift | AuthStrategy::Token)
    }
}

/// `auth.openid.api_token`: which token Kiali sends to the Kubernetes API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiToken {
    IdToken,
    AccessToken,
}

impl ApiToken {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiToken::IdToken => "id_token",
            ApiToken::AccessToken => "access_token",
        }
    }
}

serialize_as_str!(AuthStrategy, ApiToken);

section! {
    /// Kiali's `auth`. Every key is known: an unknown one is an error.
    #[derive(Clone, PartialEq, Serialize)]
    pub struct AuthConfig {
        /// Kiali's default is `token`; meshtrace has no Kubernetes API to check a token with,
        /// so a config without a strategy is served as `anonymous`, as before this section was
        /// read.
        strategy: AuthStrategy = AuthStrategy::Anonymous => read::strategy,
        openid: OpenIdConfig = OpenIdConfig::default() => |d, node, path, auth, _| {
            d.section(node, path, &mut auth.openid);
        },
        /// Read only to be known: the `openshift` strategy is refused.
        #[serde(skip)]
        openshift: () = () => read::ignored,
    }
    decode { strict: true, seen: read::AuthSeen }
}

section! {
    /// `auth.openid`: the OpenID Connect provider (authorization-code flow with PKCE).
    #[derive(Clone, PartialEq, Serialize)]
    pub struct OpenIdConfig {
        /// Extra query parameters of the authorization request.
        additional_request_params: BTreeMap<String, String> = BTreeMap::new(),
        /// Domains whose users may log in (the `hd` claim, else the domain of `email`); empty
        /// lets every user of the provider in.
        allowed_domains: Vec<String> = Vec::new(),
        /// The Kubernetes API proxy of Kiali's RBAC mode; meshtrace has no Kubernetes API.
        api_proxy: String = String::new(),
        api_proxy_ca_data: String = String::new(),
        api_token: ApiToken = ApiToken::IdToken => read::api_token,
        /// Seconds the login may take: the life of the nonce and PKCE cookies.
        authentication_timeout_secs as "authentication_timeout": u64 = 300
            => |d, node, path, openid, _| {
                crate::decode::set(
                    &mut openid.authentication_timeout_secs,
                    d.positive_secs(node, path),
                );
            },
        /// Deprecated by Kiali (v2.21) for `discovery_override.authorization_endpoint`.
        #[serde(serialize_with = "super::redacted_url")]
        authorization_endpoint: String = String::new(),
        client_id: String = String::new(),
        /// Kiali then uses its own service account for the cluster; meshtrace never calls
        /// a cluster, so every user who logs in sees what the console shows.
        disable_rbac: bool = false,
        discovery_override: DiscoveryOverride = DiscoveryOverride::default()
            => |d, node, path, openid, _| {
                d.section(node, path, &mut openid.discovery_override);
            },
        #[serde(serialize_with = "super::redacted_url")]
        http_proxy: String = String::new(),
        #[serde(serialize_with = "super::redacted_url")]
        https_proxy: String = String::new(),
        insecure_skip_verify_tls: bool = false,
        /// The provider; its metadata is at `<issuer_uri>/.well-known/openid-configuration`.
        #[serde(serialize_with = "super::redacted_url")]
        issuer_uri: String = String::new(),
        /// Where the provider sends the browser after logout (Kiali: the web root's URL).
        #[serde(serialize_with = "super::redacted_url")]
        post_logout_redirect_uri: String = String::new(),
        /// `openid` is added when missing, as Kiali does.
        scopes: Vec<String> = vec!["openid".into(), "profile".into(), "email".into()],
        /// The ID-token claim shown as the user's name.
        username_claim: String = "sub".to_string(),
    }
    decode { strict: true, seen: () }
}

section! {
    /// `auth.openid.discovery_override`: endpoints used instead of the discovered ones.
    #[derive(Clone, PartialEq, Eq, Serialize)]
    pub struct DiscoveryOverride {
        #[serde(serialize_with = "super::redacted_url")]
        authorization_endpoint: String = String::new(),
        #[serde(serialize_with = "super::redacted_url")]
        end_session_endpoint: String = String::new(),
        #[serde(serialize_with = "super::redacted_url")]
        jwks_uri: String = String::new(),
        #[serde(serialize_with = "super::redacted_url")]
        token_endpoint: String = String::new(),
        #[serde(serialize_with = "super::redacted_url")]
        userinfo_endpoint: String = String::new(),
    }
    decode { strict: true, seen: () }
}

section! {
    /// Kiali's `login_token`: the session cookie's life and encryption key.
    #[derive(Clone, PartialEq, Serialize)]
    pub struct LoginToken {
        /// Life of a `header` session (an `openid` one ends with its ID token).
        expiration_seconds: u64 = 86400 => |d, node, path, token, _| {
            crate::decode::set(&mut token.expiration_seconds, d.positive_secs(node, path));
        },
        /// The AES-GCM key of the session cookie: 16, 24 or 32 bytes (AES-128, -192, -256),
        /// a literal or a file. Kiali's default `kiali` is refused except for `anonymous`.
        signing_key: Credential = Credential::new("kiali"),
    }
    decode { strict: true, seen: () }
}

impl AuthConfig {
    /// `scopes` as sent: `openid` first when it was missing, as Kiali adds it.
    pub fn openid_scopes(&self) -> Vec<String> {
        let mut scopes = self.openid.scopes.clone();
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".to_string());
        }
        scopes
    }
}

impl OpenIdConfig {
    /// The authorization endpoint that replaces the discovered one, if any: the deprecated
    /// `authorization_endpoint` wins, as in Kiali.
    pub fn authorization_override(&self) -> Option<&str> {
        [
            self.authorization_endpoint.as_str(),
            self.discovery_override.authorization_endpoint.as_str(),
        ]
        .into_iter()
        .find(|e| !e.is_empty())
    }
}
