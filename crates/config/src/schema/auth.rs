//! `auth` of an external service (tracing; Prometheus shares the same keys and types):
//! credentials, TLS and OAuth2 client credentials.

use serde::Serialize;

use super::serialize_as_str;
use crate::credential::Credential;
use crate::decode::auth as read;
use crate::section::section;

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
        // One name a variant, in declaration order: the fallback is never taken.
        Self::NAMES.get(self as usize).copied().unwrap_or_default()
    }
}

section! {
    /// How to authenticate to an external service. Credentials are literals or files read on
    /// each use, and print as `xxx`.
    #[derive(Clone, PartialEq, Serialize)]
    pub struct Auth {
        kind as "type": AuthType = AuthType::None => read::kind,
        username: Credential = Credential::default(),
        password: Credential = Credential::default(),
        token: Credential = Credential::default(),
        cert_file: Credential = Credential::default(),
        key_file: Credential = Credential::default(),
        /// Ignored by Kiali since v2.20; meshtrace uses it as an extra trusted CA.
        ca_file: String = String::new(),
        insecure_skip_verify: bool = false,
        use_kiali_token: bool = false,
        oauth2: OAuth2 = OAuth2::default() => |d, node, path, auth, _| {
            d.section(node, path, &mut auth.oauth2);
        },
    }
    decode { strict: true, seen: read::AuthSeen }
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

serialize_as_str!(AuthType, OAuth2AuthStyle);

section! {
    /// `auth.oauth2`: the client-credentials grant.
    #[derive(Clone, PartialEq, Serialize)]
    pub struct OAuth2 {
        #[serde(serialize_with = "super::redacted_url")]
        token_url: String = String::new(),
        client_id: String = String::new(),
        client_secret: Credential = Credential::default(),
        scopes: Vec<String> = Vec::new(),
        audience: String = String::new(),
        auth_style: OAuth2AuthStyle = OAuth2AuthStyle::Header => read::auth_style,
    }
    decode { strict: true, seen: () }
}
