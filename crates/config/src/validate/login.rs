//! Checks of Kiali's `auth` and `login_token`: strategies meshtrace cannot serve (they need the
//! Kubernetes API), Kiali's signing-key rule, and what `openid` needs to start a login. No
//! message quotes the signing key or a secret.

use super::service;
use crate::credential::Credential;
use crate::decode::{Decoded, Decoder};
use crate::schema::{AuthStrategy, Config};

const A: &str = "auth";
const O: &str = "auth.openid";
const EXAMPLE: &str = "https://keycloak.example.com/realms/mesh";

/// The strategies that work without the Kubernetes API, as messages name them.
const OUTSIDE_A_CLUSTER: &str = "`anonymous` (no login), `openid` (an OpenID Connect provider) \
                                 or `header` (behind an authenticating reverse proxy)";

pub(super) fn validate(d: &mut Decoder, decoded: &Decoded) {
    let config = &decoded.config;
    let strategy = config.auth.strategy;
    if strategy.needs_kubernetes() {
        let why = match strategy {
            AuthStrategy::Token => "Kiali checks each token by listing namespaces with it",
            _ => "the login goes through OpenShift's OAuth server and its users API",
        };
        d.error_at(
            &format!("{A}.strategy"),
            format!(
                "`{}` needs the Kubernetes API ({why}), which meshtrace does not use; \
                 strategies that work outside a cluster: {OUTSIDE_A_CLUSTER}",
                strategy.as_str()
            ),
        );
    }
    // A strategy refused above needs no key: one error says what to change.
    if strategy != AuthStrategy::Anonymous && !strategy.needs_kubernetes() {
        signing_key(d, config);
    }
    if strategy == AuthStrategy::OpenId {
        openid(d, config);
    }
}

/// Why a signing key cannot encrypt sessions (Kiali: "signing key for sessions must be 16, 24
/// or 32 bytes length"), or `None` when it can. The key itself is never in the message.
pub fn signing_key_problem(key: &str) -> Option<String> {
    match key.len() {
        16 | 24 | 32 => None,
        n => Some(format!(
            "must be 16, 24 or 32 bytes long (an AES-128, AES-192 or AES-256 key), found {n} \
             bytes; Kiali refuses it too (\"signing key for sessions must be 16, 24 or 32 \
             bytes length\"); e.g. `openssl rand -hex 16` prints 32 bytes"
        )),
    }
}

fn signing_key(d: &mut Decoder, config: &Config) {
    let path = "login_token.signing_key";
    let key: &Credential = &config.login_token.signing_key;
    let written = d.pos(path);
    let strategy = config.auth.strategy.as_str();
    if written.is_none() {
        let pos = d.pos(&format!("{A}.strategy"));
        d.error(
            path,
            pos,
            format!(
                "the `{strategy}` strategy keeps sessions in a cookie encrypted with this key, \
                 and it is not set (Kiali's default `kiali` is 5 bytes, which Kiali refuses too): \
                 set 16, 24 or 32 random bytes, e.g. the output of `openssl rand -hex 16`"
            ),
        );
        return;
    }
    if key.file().is_some() {
        // Read where the console runs; `config check` may run elsewhere.
        match key.resolve() {
            Ok(value) => {
                if let Some(problem) = signing_key_problem(&value) {
                    d.error(path, written, format!("the file's content {problem}"));
                }
            }
            Err(error) => d.warning(
                path,
                written,
                format!("{error}; the console refuses to start until it holds 16, 24 or 32 bytes"),
            ),
        }
    } else if let Ok(value) = key.resolve()
        && let Some(problem) = signing_key_problem(&value)
    {
        d.error(path, written, problem);
    }
}

fn openid(d: &mut Decoder, config: &Config) {
    let openid = &config.auth.openid;
    for (key, value, what) in [
        ("issuer_uri", &openid.issuer_uri, format!("e.g. {EXAMPLE}")),
        (
            "client_id",
            &openid.client_id,
            "the client registered for meshtrace at the provider".to_string(),
        ),
    ] {
        if value.is_empty() {
            let path = format!("{O}.{key}");
            let pos = d.pos(&path).or(d.pos(&format!("{A}.strategy")));
            d.error(
                &path,
                pos,
                format!("the `openid` strategy needs it ({what})"),
            );
        }
    }
    service::check_url(d, (O, "issuer_uri"), &openid.issuer_uri, false, EXAMPLE);
    let endpoint = format!("{EXAMPLE}/protocol/openid-connect/auth");
    service::check_url(
        d,
        (O, "authorization_endpoint"),
        &openid.authorization_endpoint,
        false,
        &endpoint,
    );
    let overrides = &openid.discovery_override;
    let base = format!("{O}.discovery_override");
    for (key, value) in [
        ("authorization_endpoint", &overrides.authorization_endpoint),
        ("end_session_endpoint", &overrides.end_session_endpoint),
        ("jwks_uri", &overrides.jwks_uri),
        ("token_endpoint", &overrides.token_endpoint),
        ("userinfo_endpoint", &overrides.userinfo_endpoint),
    ] {
        service::check_url(d, (&base, key), value, false, &endpoint);
    }
    for (key, value) in [
        ("http_proxy", &openid.http_proxy),
        ("https_proxy", &openid.https_proxy),
        ("post_logout_redirect_uri", &openid.post_logout_redirect_uri),
    ] {
        service::check_url(d, (O, key), value, false, "http://proxy.example:3128");
    }
    if !openid.authorization_endpoint.is_empty() {
        d.warning_at(
            &format!("{O}.authorization_endpoint"),
            "deprecated by Kiali (v2.21): move it to `discovery_override.authorization_endpoint`",
        );
    }
    if openid.username_claim.is_empty() {
        d.error_at(
            &format!("{O}.username_claim"),
            "must name an ID-token claim (Kiali's default is `sub`)",
        );
    }
    for (key, value) in [
        ("api_proxy", &openid.api_proxy),
        ("api_proxy_ca_data", &openid.api_proxy_ca_data),
    ] {
        if !value.is_empty() {
            d.warning_at(
                &format!("{O}.{key}"),
                "meshtrace does not call the Kubernetes API, so it has no use for this proxy",
            );
        }
    }
    if !openid.disable_rbac {
        let path = format!("{O}.disable_rbac");
        let pos = d.pos(&path).or(d.pos(&format!("{A}.strategy")));
        d.warning(
            &path,
            pos,
            "meshtrace has no Kubernetes API to check a user's RBAC with: every user the \
             provider lets in (and `allowed_domains` allows) sees every trace, as with \
             `disable_rbac: true`",
        );
    }
}
