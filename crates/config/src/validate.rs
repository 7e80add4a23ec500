//! Checks of the decoded configuration that look at values together: URL syntax, Kiali's
//! OAuth2 rules, port and protocol mistakes, credential files. Kiali's own rules are errors;
//! what Kiali accepts but will likely not work is a warning. This module checks tracing and
//! the server; `service` holds what tracing and Prometheus share, `prometheus` the rest.

use crate::decode::{Decoded, Decoder};
use crate::diag::quote;
use crate::schema::{Provider, TracingConfig};

mod login;
mod prometheus;
mod service;

pub use login::signing_key_problem;

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
    service::auth(
        d,
        T,
        &tracing.auth,
        !decoded.tracing.bad_auth_type,
        tracing.use_grpc,
    );
    service::custom_headers(d, T, &tracing.custom_headers);
    tempo(d, tracing);

    if tracing.enabled && tracing.internal_url.is_empty() && tracing.external_url.is_empty() {
        d.warning_at(
            &format!("{T}.enabled"),
            "tracing is enabled but neither `internal_url` nor `external_url` is set: \
             there will be no tracing charts and no links",
        );
    }

    prometheus::validate(d, decoded);
    login::validate(d, decoded);

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
    let seen = &decoded.tracing;
    let example = "http://tracing.istio-system:16685/jaeger";
    let internal = (T, seen.internal_url_key);
    service::check_url(d, internal, &tracing.internal_url, false, example);
    let external = (T, seen.external_url_key);
    service::check_url(d, external, &tracing.external_url, true, example);
    let health = (T, "health_check_url");
    service::check_url(d, health, &tracing.health_check_url, false, example);
}

/// The classic mistakes of Kiali issues #4207, #4270 and #6808: gRPC pointed at Jaeger's HTTP
/// port, and `grpc_port` set for Jaeger, where only Tempo reads it.
fn jaeger_ports(d: &mut Decoder, decoded: &Decoded) {
    let tracing = &decoded.config.tracing;
    if decoded.tracing.grpc_port_set && tracing.grpc_port != TracingConfig::default().grpc_port {
        d.warning_at(
            &format!("{T}.grpc_port"),
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

fn tempo(d: &mut Decoder, tracing: &TracingConfig) {
    let tenant = &tracing.tempo_config.tenant;
    if tracing.provider != Provider::Tempo || tenant.is_empty() || tracing.internal_url.is_empty() {
        return;
    }
    let Ok(url) = url::Url::parse(&tracing.internal_url) else {
        return;
    };
    if url.path() != "/" && !url.path().is_empty() {
        d.warning_at(
            &format!("{T}.tempo_config.tenant"),
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
