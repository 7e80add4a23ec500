//! Checks shared by the external services (tracing, Prometheus): URLs, `auth`, custom headers.
//! Kiali's own rules are errors; what Kiali accepts but will likely not work is a warning.

use std::collections::BTreeMap;
use std::path::Path;

use super::SERVICE_ACCOUNT_TOKEN;
use crate::credential::{Credential, OBFUSCATED};
use crate::decode::Decoder;
use crate::diag::quote;
use crate::render::redact_url;
use crate::schema::{Auth, AuthType, OAuth2};

/// Checks a URL at `base.key`: absolute, http or https, with a host and a valid port; a path
/// starting with `/` passes when `path_allowed`. `example` shows a good value.
pub(super) fn check_url(
    d: &mut Decoder,
    (base, key): (&str, &str),
    value: &str,
    path_allowed: bool,
    example: &str,
) {
    if value.is_empty() {
        return;
    }
    let path = format!("{base}.{key}");
    let pos = d.pos(&path);
    if path_allowed && value.starts_with('/') {
        return;
    }
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
                "found {}: not an absolute URL; write it with its scheme (e.g. {example}){allowed}",
                quote(&shown_url(value))
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
            format!("found {}: the URL has no host", quote(&shown_url(value))),
        ),
        Ok(_) => {}
        Err(url::ParseError::InvalidPort) => d.error(
            &path,
            pos,
            format!(
                "found {}: the port must be a number from 1 to 65535",
                quote(&shown_url(value))
            ),
        ),
        Err(error) => d.error(
            &path,
            pos,
            format!(
                "found {}: not a valid URL ({error})",
                quote(&shown_url(value))
            ),
        ),
    }
}

/// A URL as a message may quote it: a password in it as `xxx`, even when the URL does not
/// parse (a bad port, a space), where `redact_url` cannot find it.
fn shown_url(value: &str) -> String {
    let redacted = redact_url(value);
    if redacted != value {
        return redacted;
    }
    let (scheme, rest) = value.split_once("://").unwrap_or(("", value));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let password = authority
        .rsplit_once('@')
        .and_then(|(userinfo, host)| Some((userinfo.split_once(':')?.0, host)));
    match password {
        Some((user, host)) => {
            let separator = if scheme.is_empty() { "" } else { "://" };
            format!("{scheme}{separator}{user}:{OBFUSCATED}@{host}{tail}")
        }
        None => value.to_string(),
    }
}

/// Checks an `auth` section at `base.auth`. `type_known` is false when `type` held an unknown
/// value (the checks that depend on it are skipped); `over_grpc` when the service is read over
/// gRPC, where Kiali refuses OAuth2.
pub(super) fn auth(d: &mut Decoder, base: &str, auth: &Auth, type_known: bool, over_grpc: bool) {
    let a = format!("{base}.auth");
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
        oauth2(d, base, auth, over_grpc);
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
fn oauth2(d: &mut Decoder, base: &str, auth: &Auth, over_grpc: bool) {
    let o = format!("{base}.auth.oauth2");
    let type_pos = d.pos(&format!("{base}.auth.type"));
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
        if auth.insecure_skip_verify {
            d.warning_at(&path, "the token URL is not https; allowed only because `insecure_skip_verify` is true (dev/test only)");
        } else {
            d.error_at(&path, format!("found {}: the token URL must use https (or set `auth.insecure_skip_verify: true` for dev/test)", quote(token_url)));
        }
    }
    if auth.use_kiali_token {
        d.error_at(
            &format!("{base}.auth.use_kiali_token"),
            "`use_kiali_token` and `auth.type: oauth2` cannot be used together",
        );
    }
    if over_grpc {
        let pos = d.pos(&format!("{base}.use_grpc")).or(type_pos);
        d.error(
            &format!("{base}.auth.type"),
            pos,
            "oauth2 is not supported over gRPC (Kiali rejects it too): set `use_grpc: false`",
        );
    }
}

/// Checks `base.custom_headers`: valid HTTP header names, values without line breaks.
pub(super) fn custom_headers(d: &mut Decoder, base: &str, headers: &BTreeMap<String, String>) {
    for (name, value) in headers {
        let path = format!("{base}.custom_headers.{name}");
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

#[cfg(test)]
mod tests {
    use super::shown_url;

    #[test]
    fn passwords_in_urls_are_masked_even_when_the_url_is_broken() {
        assert_eq!(shown_url("http://u:pw@h:99999/x"), "http://u:xxx@h:99999/x");
        assert_eq!(shown_url("u:pw@host:1"), "u:xxx@host:1");
        assert_eq!(shown_url("http://u:p@w@h/x"), "http://u:xxx@h/x");
        assert_eq!(shown_url("http://u:pw@h:1/x"), "http://u:xxx@h:1/x");
        assert_eq!(shown_url("http://user@h:99999"), "http://user@h:99999");
        assert_eq!(shown_url("tracing:16685"), "tracing:16685");
        assert_eq!(shown_url("http://h/a@b:c"), "http://h/a@b:c");
    }
}
