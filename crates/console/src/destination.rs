//! Where a configuration posted to the check (`POST /api/tracing/check`, the tester form) may
//! send requests, and which of the console's secrets may go with it.
//!
//! Two rules, both on *origins* (scheme, host and port, default ports filled in):
//! - Reach: without `--allow-check-any-host`, every URL the posted configuration would call
//!   (`internal_url`, Tempo's `health_check_url`, OAuth2's `token_url`) must be one the live
//!   configuration already calls. Anything else is refused before a connection is made, with
//!   one message whatever the destination, so the check tells nothing about the ports of a
//!   host (it is not a port scanner).
//! - Secrets: the `xxx` the console shows in place of a secret is replaced by the live value only
//!   when the posted backend is the configured one (and, for the OAuth2 client secret, the
//!   token URL is the configured one too). The same holds for a credential naming a file on
//!   the server and for `use_kiali_token`: the server's secrets never go anywhere else. A
//!   posted configuration that asks for them elsewhere is refused, naming the field.

use meshtrace_config::{AuthType, Credential, OBFUSCATED, Provider, TracingConfig};

use crate::error::ApiError;

/// The one answer for a destination the live configuration does not call.
pub const REFUSED: &str = "refused: the check only reaches the configured backend (the scheme, \
                           host and port of internal_url or external_url, and the configured \
                           health_check_url and OAuth2 token_url); start the console with \
                           --allow-check-any-host to check other destinations";

/// Scheme, host and port: what receives a request. Paths do not matter, a server is a server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// `None` for what is not an absolute URL with a host and a known or explicit port.
    fn of(raw: &str) -> Option<Origin> {
        let url = url::Url::parse(raw).ok()?;
        Some(Origin {
            scheme: url.scheme().to_string(),
            host: url.host_str()?.to_string(),
            port: url.port_or_known_default()?,
        })
    }
}

/// The origins one role of the posted configuration may reach.
fn origins<'a>(urls: impl IntoIterator<Item = &'a str>) -> Vec<Origin> {
    urls.into_iter()
        .filter(|u| !u.is_empty())
        .filter_map(Origin::of)
        .collect()
}

fn health_url(config: &TracingConfig) -> &str {
    match config.provider {
        Provider::Tempo => &config.health_check_url,
        Provider::Jaeger => "",
    }
}

fn token_url(config: &TracingConfig) -> &str {
    match config.auth.kind {
        AuthType::OAuth2 => &config.auth.oauth2.token_url,
        _ => "",
    }
}

/// Checks where `posted` would go and puts the live secrets back where that is safe. `Err` is
/// the answer to give: 403 [`REFUSED`] for a destination out of reach, 400 naming a field
/// whose secret would leave the configured backend.
pub fn prepare(
    posted: &mut TracingConfig,
    live: &TracingConfig,
    any_host: bool,
) -> Result<(), ApiError> {
    restore_redacted_urls(posted, live);
    let backend = Origin::of(&posted.internal_url)
        .ok_or_else(|| ApiError::bad_request("internalURL must be an http or https URL"))?;
    let health = match health_url(posted) {
        "" => None,
        url => Some(Origin::of(url).ok_or_else(|| {
            ApiError::bad_request("healthCheckUrl must be an absolute http or https URL")
        })?),
    };
    let token = match token_url(posted) {
        "" => None,
        url => Some(Origin::of(url).ok_or_else(|| {
            ApiError::bad_request("auth.oauth2.tokenUrl must be an absolute http or https URL")
        })?),
    };

    let live_backend = origins([live.internal_url.as_str()]);
    let backends = origins([live.internal_url.as_str(), &live.external_url]);
    let healths = origins([live.internal_url.as_str(), health_url(live)]);
    let tokens = origins([live.internal_url.as_str(), token_url(live)]);
    if !any_host {
        let reachable = backends.contains(&backend)
            && health.as_ref().is_none_or(|h| healths.contains(h))
            && token.as_ref().is_none_or(|t| tokens.contains(t));
        if !reachable {
            return Err(ApiError::forbidden(REFUSED));
        }
    }

    // Every request of the check goes to the backend and its health URL: both must be the
    // configured ones for the backend's secrets to go along.
    let same_backend =
        live_backend.contains(&backend) && health.as_ref().is_none_or(|h| healths.contains(h));
    let mut withheld = Vec::new();
    let auth = &mut posted.auth;
    let fields: [(&str, &mut Credential, &Credential); 5] = [
        ("auth.username", &mut auth.username, &live.auth.username),
        ("auth.password", &mut auth.password, &live.auth.password),
        ("auth.token", &mut auth.token, &live.auth.token),
        ("auth.certFile", &mut auth.cert_file, &live.auth.cert_file),
        ("auth.keyFile", &mut auth.key_file, &live.auth.key_file),
    ];
    for (name, posted, live) in fields {
        if !restore(posted, live, same_backend) {
            withheld.push(name);
        }
    }
    // The client secret goes to the token URL, and the token it buys to the backend.
    let same_token_url = same_backend
        && !live.auth.oauth2.token_url.is_empty()
        && url::Url::parse(&auth.oauth2.token_url).ok()
            == url::Url::parse(&live.auth.oauth2.token_url).ok();
    if !restore(
        &mut auth.oauth2.client_secret,
        &live.auth.oauth2.client_secret,
        same_token_url,
    ) {
        withheld.push("auth.oauth2.clientSecret");
    }
    if auth.use_kiali_token && !same_backend {
        withheld.push("auth.useKialiToken");
    }
    for (name, value) in &mut posted.custom_headers {
        if value == OBFUSCATED
            && let Some(live) = live.custom_headers.get(name)
        {
            if same_backend {
                value.clone_from(live);
            } else {
                withheld.push("customHeaders");
            }
        }
    }
    withheld.dedup();
    if withheld.is_empty() {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{} would send a secret of the console (a value shown as `xxx`, a file on the server \
             or its service-account token) where it does not go: such secrets go only to the \
             configured backend (and the client secret only to the configured token URL), and \
             only the configured files are read; type the values themselves to check another \
             destination",
            withheld.join(", ")
        )))
    }
}

/// Puts the live value back for `xxx`. A credential naming a file on the server is kept only
/// when it is the configured one. `false` when the posted value asks for a server secret that
/// may not go where the check goes (`allowed` false).
fn restore(posted: &mut Credential, live: &Credential, allowed: bool) -> bool {
    if posted.is_obfuscated() {
        if live.is_empty() {
            // Nothing to restore: the literal `xxx` is no one's secret.
            return true;
        }
        if allowed {
            posted.clone_from(live);
        }
        return allowed;
    }
    match posted.file() {
        Some(_) => allowed && posted == live,
        None => true,
    }
}

/// URLs shown with their password as `xxx` (`http://user:xxx@host`) get the live password back
/// when they are the URL shown (parsed, so a trailing `/` does not matter): same origin by
/// construction.
fn restore_redacted_urls(posted: &mut TracingConfig, live: &TracingConfig) {
    let pairs = [
        (&mut posted.internal_url, &live.internal_url),
        (&mut posted.health_check_url, &live.health_check_url),
        (
            &mut posted.auth.oauth2.token_url,
            &live.auth.oauth2.token_url,
        ),
    ];
    for (posted, live) in pairs {
        let shown = meshtrace_config::redact_url(live);
        let as_shown = || url::Url::parse(posted).ok() == url::Url::parse(&shown).ok();
        if shown != *live && as_shown() {
            posted.clone_from(live);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracing(yaml: &str) -> TracingConfig {
        let text = format!("external_services:\n  tracing:\n    enabled: true\n{yaml}");
        meshtrace_config::load_str(&text).unwrap().config.tracing
    }

    #[test]
    fn default_ports_and_paths_do_not_change_the_origin() {
        assert_eq!(Origin::of("http://j"), Origin::of("http://j:80/jaeger"));
        assert_eq!(Origin::of("https://J:443"), Origin::of("https://j/"));
        assert_ne!(Origin::of("http://j"), Origin::of("https://j"));
        assert_ne!(Origin::of("http://j:16686"), Origin::of("http://j:16685"));
        assert_eq!(Origin::of("j:16686"), None);
    }

    #[test]
    fn secrets_come_back_for_the_configured_backend_only() {
        let live = tracing(
            "    internal_url: http://jaeger:16686\n    use_grpc: false\n    auth:\n      type: basic\n      username: u\n      password: p4ss\n    custom_headers:\n      X-Key: k3y\n",
        );
        let shown = "    use_grpc: false\n    auth:\n      type: basic\n      username: xxx\n      password: xxx\n    custom_headers:\n      X-Key: xxx\n";
        let mut same = tracing(&format!(
            "    internal_url: http://jaeger:16686/jaeger\n{shown}"
        ));
        prepare(&mut same, &live, false).unwrap();
        assert_eq!(same.auth.password, live.auth.password);
        assert_eq!(same.custom_headers["X-Key"], "k3y");

        for elsewhere in [
            "http://jaeger:16685",
            "https://jaeger:16686",
            "http://other:16686",
        ] {
            let mut posted = tracing(&format!("    internal_url: {elsewhere}\n{shown}"));
            let refused = prepare(&mut posted.clone(), &live, false).unwrap_err();
            assert_eq!(
                (refused.status().as_u16(), refused.error.as_str()),
                (403, REFUSED)
            );
            let withheld = prepare(&mut posted, &live, true).unwrap_err();
            assert_eq!(withheld.status().as_u16(), 400);
            assert!(
                withheld
                    .error
                    .starts_with("auth.username, auth.password, customHeaders would send"),
                "{}",
                withheld.error
            );
        }
    }

    #[test]
    fn server_files_and_the_service_account_token_stay_home() {
        let live = tracing("    internal_url: http://jaeger:16686\n    use_grpc: false\n");
        for (posted, refusal) in [
            (
                "    internal_url: http://jaeger:16686\n    use_grpc: false\n    auth:\n      type: bearer\n      token: /etc/shadow\n",
                "auth.token would send",
            ),
            (
                "    internal_url: http://elsewhere:16686\n    use_grpc: false\n    auth:\n      type: bearer\n      use_kiali_token: true\n",
                "auth.useKialiToken would send",
            ),
        ] {
            let error = prepare(&mut tracing(posted), &live, true).unwrap_err();
            assert!(error.error.starts_with(refusal), "{}", error.error);
        }
    }

    #[test]
    fn a_redacted_url_password_comes_back_when_the_url_is_the_one_shown() {
        let live = tracing("    internal_url: http://u:pw@jaeger:16686\n    use_grpc: false\n");
        let mut posted =
            tracing("    internal_url: http://u:xxx@jaeger:16686\n    use_grpc: false\n");
        prepare(&mut posted, &live, false).unwrap();
        assert_eq!(posted.internal_url, "http://u:pw@jaeger:16686");
    }
}
