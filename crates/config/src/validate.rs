//! Checks of the decoded configuration that look at values together: URL syntax, Kiali's
//! OAuth2 rules, port and protocol mistakes, credential files. Kiali's own rules are errors;
//! what Kiali accepts but will likely not work is a warning.

use std::path::Path;

use crate::credential::Credential;
use crate::decode::{Decoded, Decoder};
use crate::diag::quote;
use crate::schema::{AuthType, OAuth2, Provider, TracingConfig};

/// Where a pod finds its service-account token; `use_kiali_token` sends it as the bearer token.
pub const SERVICE_ACCOUNT_TOKEN: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

const T: &str = "external_services.tracing";

pub(crate) fn validate(d: &mut Decoder, decoded: &Decoded) {
    let config = &decoded.config;
    let tracing = &config.tracing;

    if let Some(provider) = &decoded.tracing.bad_provider {
        let path = format!("{T}.provider");
        let pos = d.pos(&path);
        let mut message = format!("found {}; expected one of: jaeger, tempo", quote(provider));
        if let Some(near) = crate::diag::nearest(provider, &["jaeger", "tempo"]) {
            message.push_str(&format!(" (did you mean `{near}`?)"));
        }
        if tracing.enabled {
            d.error(&path, pos, message);
        } else {
            d.warning(
                &path,
                pos,
                format!("{message} (not an error while tracing is disabled)"),
            );
        }
    }

    urls(d, decoded);
    if tracing.provider == Provider::Jaeger {
        jaeger_ports(d, decoded);
    }
    auth(d, tracing, !decoded.tracing.bad_auth_type);
    custom_headers(d, tracing);
    tempo(d, tracing);

    if tracing.enabled && tracing.internal_url.is_empty() && tracing.external_url.is_empty() {
        let path = format!("{T}.enabled");
        let pos = d.pos(&path);
        d.warning(
            &path,
            pos,
            "tracing is enabled but neither `internal_url` nor `external_url` is set: \
             there will be no tracing charts and no links",
        );
    }

    let web_root = &config.server.web_root;
    if let Some(problem) = web_root_problem(web_root) {
        let pos = d.pos("server.web_root");
        d.error(
            "server.web_root",
            pos,
            format!("found {}; {problem}", quote(web_root)),
        );
    }
}

/// Kiali's rules for `server.web_root`.
fn web_root_problem(web_root: &str) -> Option<&'static str> {
    let valid_char = |c: char| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@%/".contains(c);
    if !web_root.starts_with('/') || !web_root.chars().all(valid_char) {
        return Some("it must begin with `/` and hold only URL path characters");
    }
    if web_root != "/" && web_root.ends_with('/') {
        return Some("it must not end with `/`");
    }
    if web_root.contains("/../") {
        return Some("it must not contain `/../`");
    }
    None
}

fn urls(d: &mut Decoder, decoded: &Decoded) {
    // A problem is reported at the key the value was taken from (maybe a deprecated one).
    let tracing = &decoded.config.tracing;
    check_url(
        d,
        decoded.tracing.internal_url_key,
        &tracing.internal_url,
        false,
    );
    check_url(
        d,
        decoded.tracing.external_url_key,
        &tracing.external_url,
        true,
    );
    check_url(d, "health_check_url", &tracing.health_check_url, false);
}

fn check_url(d: &mut Decoder, key: &str, value: &str, path_allowed: bool) {
    if value.is_empty() {
        return;
    }
    let path = format!("{T}.{key}");
    let pos = d.pos(&path);
    if path_allowed && value.starts_with('/') {
        return;
    }
    let example = "e.g. http://tracing.istio-system:16685/jaeger";
    if !value.contains("://") {
        let allowed = if path_allowed {
            " or a path starting with `/`"
        } else {
            ""
        };
        d.error(
            &path,
            pos,
            format!(
                "found {}: not an absolute URL; write it with its scheme ({example}){allowed}",
                quote(value)
            ),
        );
        return;
    }
    match url::Url::parse(value) {
        Ok(url) if url.scheme() != "http" && url.scheme() != "https" => d.error(
            &path,
            pos,
            format!("uses the scheme `{}`; expected http or https", url.scheme()),
        ),
        Ok(url) if url.host_str().is_none_or(str::is_empty) => d.error(
            &path,
            pos,
            format!("found {}: the URL has no host", quote(value)),
        ),
        Ok(_) => {}
        Err(url::ParseError::InvalidPort) => d.error(
            &path,
            pos,
            format!(
                "found {}: the port must be a number from 1 to 65535",
                quote(value)
            ),
        ),
        Err(error) => d.error(
            &path,
            pos,
            format!("found {}: not a valid URL ({error})", quote(value)),
        ),
    }
}

/// The classic mistakes of Kiali issues #4207, #4270 and #6808: gRPC pointed at Jaeger's HTTP
/// port, and `grpc_port` set for Jaeger, where only Tempo reads it.
fn jaeger_ports(d: &mut Decoder, decoded: &Decoded) {
    let tracing = &decoded.config.tracing;
    if decoded.tracing.grpc_port_set && tracing.grpc_port != TracingConfig::default().grpc_port {
        let path = format!("{T}.grpc_port");
        let pos = d.pos(&path);
        d.warning(
            &path,
            pos,
            "only Tempo reads `grpc_port`; for Jaeger the gRPC address is the host and port of `internal_url`",
        );
    }
    if !tracing.use_grpc || tracing.internal_url.is_empty() {
        return;
    }
    let Ok(url) = url::Url::parse(&tracing.internal_url) else {
        return;
    };
    let path = format!("{T}.{}", decoded.tracing.internal_url_key);
    let pos = d.pos(&path);
    match url.port() {
        Some(16686) => d.warning(
            &path,
            pos,
            "port 16686 is Jaeger's HTTP query port, but `use_grpc` is true: use port 16685 \
             (Jaeger's gRPC query port) or set `use_grpc: false`",
        ),
        None if url.scheme() == "http" => d.warning(
            &path,
            pos,
            "`use_grpc` is true and the URL has no port, so gRPC goes to port 80, where Jaeger's \
             HTTP UI usually answers: add `:16685` (Jaeger's gRPC query port) or set `use_grpc: false`",
        ),
        _ => {}
    }
}

fn auth(d: &mut Decoder, tracing: &TracingConfig, type_known: bool) {
    let auth = &tracing.auth;
    let a = format!("{T}.auth");
    let pos_of =
        |d: &Decoder, key: &str| d.pos(&format!("{a}.{key}")).or(d.pos(&format!("{a}.type")));

    match auth.kind {
        _ if !type_known => {}
        AuthType::Basic => {
            for (key, value) in [("username", &auth.username), ("password", &auth.password)] {
                if value.is_empty() {
                    let pos = pos_of(d, key);
                    d.warning(
                        &format!("{a}.{key}"),
                        pos,
                        "`auth.type` is basic but this is empty",
                    );
                }
            }
        }
        AuthType::Bearer if auth.token.is_empty() && !auth.use_kiali_token => {
            let pos = pos_of(d, "token");
            d.warning(
                &format!("{a}.token"),
                pos,
                "`auth.type` is bearer but there is no token (set `token` or `use_kiali_token: true`)",
            );
        }
        AuthType::None => {
            for (key, value) in [
                ("username", &auth.username),
                ("password", &auth.password),
                ("token", &auth.token),
            ] {
                if !value.is_empty() {
                    let pos = pos_of(d, key);
                    d.warning(
                        &format!("{a}.{key}"),
                        pos,
                        "ignored because `auth.type` is none",
                    );
                }
            }
        }
        _ => {}
    }

    if auth.cert_file.is_empty() != auth.key_file.is_empty() {
        let (set, missing) = if auth.cert_file.is_empty() {
            ("key_file", "cert_file")
        } else {
            ("cert_file", "key_file")
        };
        let pos = pos_of(d, set);
        d.error(
            &format!("{a}.{set}"),
            pos,
            format!(
                "a client certificate needs both `cert_file` and `key_file`; `{missing}` is missing"
            ),
        );
    }

    if auth.kind == AuthType::OAuth2 {
        oauth2(d, tracing);
    } else if type_known && auth.oauth2 != OAuth2::default() {
        let pos = pos_of(d, "oauth2");
        d.warning(
            &format!("{a}.oauth2"),
            pos,
            format!(
                "ignored because `auth.type` is {}, not oauth2",
                auth.kind.as_str()
            ),
        );
    }

    if !auth.ca_file.is_empty() {
        let pos = pos_of(d, "ca_file");
        let mut message =
            "Kiali ignores `ca_file` since v2.20 (it reads CAs from the kiali-cabundle \
                           ConfigMap); meshtrace still uses it to verify the backend's certificate"
                .to_string();
        if !Path::new(&auth.ca_file).exists() {
            message.push_str(&format!(
                ", but the file `{}` does not exist here",
                auth.ca_file
            ));
        }
        d.warning(&format!("{a}.ca_file"), pos, message);
    }

    let credentials: [(&str, &Credential); 6] = [
        ("username", &auth.username),
        ("password", &auth.password),
        ("token", &auth.token),
        ("cert_file", &auth.cert_file),
        ("key_file", &auth.key_file),
        ("oauth2.client_secret", &auth.oauth2.client_secret),
    ];
    for (key, credential) in credentials {
        if let Some(file) = credential.file().filter(|f| !f.is_file()) {
            let pos = pos_of(d, key);
            d.warning(
                &format!("{a}.{key}"),
                pos,
                format!(
                    "the file `{}` does not exist here; it is read each time the credential is used",
                    file.display()
                ),
            );
        }
    }

    if auth.use_kiali_token && !Path::new(SERVICE_ACCOUNT_TOKEN).is_file() {
        let pos = pos_of(d, "use_kiali_token");
        d.warning(
            &format!("{a}.use_kiali_token"),
            pos,
            format!("the service-account token is read from `{SERVICE_ACCOUNT_TOKEN}`, which does not exist here"),
        );
    }
}

/// Kiali's OAuth2 rules, all errors in Kiali too.
fn oauth2(d: &mut Decoder, tracing: &TracingConfig) {
    let auth = &tracing.auth;
    let o = format!("{T}.auth.oauth2");
    let type_pos = d.pos(&format!("{T}.auth.type"));
    let oauth2 = &auth.oauth2;
    let required = [
        ("token_url", oauth2.token_url.is_empty()),
        ("client_id", oauth2.client_id.is_empty()),
        ("client_secret", oauth2.client_secret.is_empty()),
    ];
    for (key, missing) in required {
        if missing {
            d.error(
                &format!("{o}.{key}"),
                type_pos,
                "required when `auth.type` is oauth2",
            );
        }
    }
    let token_url = &oauth2.token_url;
    if !token_url.is_empty() && !token_url.starts_with("https://") {
        let path = format!("{o}.token_url");
        let pos = d.pos(&path);
        if auth.insecure_skip_verify {
            d.warning(&path, pos, "the token URL is not https; allowed only because `insecure_skip_verify` is true (dev/test only)");
        } else {
            d.error(&path, pos, format!("found {}: the token URL must use https (or set `auth.insecure_skip_verify: true` for dev/test)", quote(token_url)));
        }
    }
    if auth.use_kiali_token {
        let path = format!("{T}.auth.use_kiali_token");
        let pos = d.pos(&path);
        d.error(
            &path,
            pos,
            "`use_kiali_token` and `auth.type: oauth2` cannot be used together",
        );
    }
    if tracing.use_grpc {
        let pos = d.pos(&format!("{T}.use_grpc")).or(type_pos);
        d.error(
            &format!("{T}.auth.type"),
            pos,
            "oauth2 is not supported over gRPC (Kiali rejects it too): set `use_grpc: false`",
        );
    }
}

fn custom_headers(d: &mut Decoder, tracing: &TracingConfig) {
    for (name, value) in &tracing.custom_headers {
        let path = format!("{T}.custom_headers.{name}");
        let pos = d.pos(&path);
        let token_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if name.is_empty() || !name.chars().all(token_char) {
            d.error(
                &path,
                pos,
                format!("{} is not a valid HTTP header name", quote(name)),
            );
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            d.error(
                &path,
                pos,
                "the header value holds a line break or another control character",
            );
        }
    }
}

fn tempo(d: &mut Decoder, tracing: &TracingConfig) {
    let tenant = &tracing.tempo_config.tenant;
    if tracing.provider != Provider::Tempo || tenant.is_empty() || tracing.internal_url.is_empty() {
        return;
    }
    let Ok(url) = url::Url::parse(&tracing.internal_url) else {
        return;
    };
    if url.path() != "/" && !url.path().is_empty() {
        let path = format!("{T}.tempo_config.tenant");
        let pos = d.pos(&path);
        d.warning(
            &path,
            pos,
            format!(
                "the tenant path is added only when `internal_url` has no path, and it has `{}`: \
                 requests go to that URL unchanged (with the X-Scope-OrgID header)",
                url.path()
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::web_root_problem;

    #[test]
    fn web_root_rules_match_kiali() {
        assert_eq!(web_root_problem("/"), None);
        assert_eq!(web_root_problem("/kiali"), None);
        assert!(web_root_problem("kiali").is_some());
        assert!(web_root_problem("/kiali/").is_some());
        assert!(web_root_problem("/a/../b").is_some());
        assert!(web_root_problem("/a b").is_some());
    }
}
