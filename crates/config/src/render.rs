//! The effective configuration as people see it: every key with its final value, secrets as
//! `xxx`, in Kiali's own key names; and the one-line summary of what the console will do.

use serde_json::{Map, Value, json};

use crate::schema::{Config, Provider, TracingConfig};

/// The effective configuration, shaped like the Kiali config it came from, secrets obfuscated.
pub fn effective(config: &Config) -> Value {
    let t = &config.tracing;
    let auth = &t.auth;
    let oauth2 = &auth.oauth2;
    let tempo = &t.tempo_config;
    // Header values often carry tokens (`Authorization`, API keys): show the names only.
    let headers: Map<String, Value> = t
        .custom_headers
        .keys()
        .map(|name| (name.clone(), json!(crate::credential::OBFUSCATED)))
        .collect();
    json!({
        "external_services": {
            "tracing": {
                "enabled": t.enabled,
                "provider": t.provider.as_str(),
                "internal_url": redact_url(&t.internal_url),
                "external_url": redact_url(&t.external_url),
                "use_grpc": t.use_grpc,
                "grpc_port": t.grpc_port,
                "auth": {
                    "type": auth.kind.as_str(),
                    "username": auth.username.obfuscated(),
                    "password": auth.password.obfuscated(),
                    "token": auth.token.obfuscated(),
                    "cert_file": auth.cert_file.obfuscated(),
                    "key_file": auth.key_file.obfuscated(),
                    "ca_file": auth.ca_file,
                    "insecure_skip_verify": auth.insecure_skip_verify,
                    "use_kiali_token": auth.use_kiali_token,
                    "oauth2": {
                        "token_url": redact_url(&oauth2.token_url),
                        "client_id": oauth2.client_id,
                        "client_secret": oauth2.client_secret.obfuscated(),
                        "scopes": oauth2.scopes,
                        "audience": oauth2.audience,
                        "auth_style": oauth2.auth_style.as_str(),
                    },
                },
                "custom_headers": headers,
                "health_check_url": redact_url(&t.health_check_url),
                "is_core": t.is_core,
                "namespace_selector": t.namespace_selector,
                "query_scope": t.query_scope,
                "query_timeout": t.query_timeout_secs,
                "disable_version_check": t.disable_version_check,
                "use_waypoint_name": t.use_waypoint_name,
                "whitelist_istio_system": t.whitelist_istio_system,
                "tempo_config": {
                    "org_id": tempo.org_id,
                    "datasource_uid": tempo.datasource_uid,
                    "url_format": tempo.url_format.as_str(),
                    "name": tempo.name,
                    "namespace": tempo.namespace,
                    "tenant": tempo.tenant,
                    "cache_enabled": tempo.cache_enabled,
                    "cache_capacity": tempo.cache_capacity,
                },
            },
        },
        "kiali_feature_flags": { "ui_defaults": { "tracing": { "limit": config.ui_tracing_limit } } },
        "server": {
            "address": config.server.address,
            "port": config.server.port,
            "web_root": config.server.web_root,
        },
        "istio_namespace": config.istio_namespace,
        "deployment": { "namespace": config.deployment_namespace },
        "kubernetes_config": { "cluster_name": config.cluster_name },
    })
}

/// A URL with any password in it replaced by `xxx` (`http://user:xxx@host/`).
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some(crate::credential::OBFUSCATED));
            url.to_string()
        }
        _ => raw.to_string(),
    }
}

/// One line that says what the console will show with this configuration.
pub fn mode(tracing: &TracingConfig) -> String {
    if !tracing.enabled {
        return "tracing disabled".to_string();
    }
    let external = redact_url(&tracing.external_url);
    if tracing.internal_url.is_empty() {
        if external.is_empty() {
            return "tracing enabled, but with neither internal_url nor external_url nothing is shown"
                .to_string();
        }
        return format!("external links only to {external}");
    }
    let internal = redact_url(&tracing.internal_url);
    let via = match (tracing.provider, tracing.use_grpc) {
        (Provider::Jaeger, true) => "Jaeger gRPC".to_string(),
        (Provider::Jaeger, false) => "Jaeger HTTP".to_string(),
        // Tempo's gRPC streaming search is not there yet: the HTTP API answers.
        (Provider::Tempo, true) => format!(
            "Tempo (HTTP search; the gRPC search on port {} is not available yet)",
            tracing.grpc_port
        ),
        (Provider::Tempo, false) => "Tempo".to_string(),
    };
    let mut line = format!("native charts via {via} at {internal}");
    if !external.is_empty() {
        line.push_str(&format!("; \"View in Tracing\" links to {external}"));
    }
    line
}

/// Writes a JSON value as block-style YAML. Strings are always double-quoted (JSON string
/// syntax is valid YAML), so no value can be misread as another type.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_yaml(value, 0, &mut out);
    out
}

fn write_yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                out.push_str(&format!("{pad}{}:", yaml_key(key)));
                write_nested(item, indent, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                out.push_str(&format!("{pad}-"));
                write_nested(item, indent, out);
            }
        }
        scalar => out.push_str(&format!("{pad}{scalar}\n")),
    }
}

fn write_nested(item: &Value, indent: usize, out: &mut String) {
    match item {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_yaml(item, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_yaml(item, indent + 2, out);
        }
        Value::Object(_) => out.push_str(" {}\n"),
        Value::Array(_) => out.push_str(" []\n"),
        scalar => out.push_str(&format!(" {scalar}\n")),
    }
}

fn yaml_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c))
        && !key.starts_with(['-', '.', '/']);
    if plain {
        key.to_string()
    } else {
        Value::from(key).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_output_reads_back_the_same() {
        let value =
            json!({"a": {"b": [1, "two", true], "c": {}, "d": "x: y", "e-f": null}, "g h": []});
        let text = to_yaml(&value);
        assert_eq!(
            text,
            "a:\n  b:\n    - 1\n    - \"two\"\n    - true\n  c: {}\n  d: \"x: y\"\n  e-f: null\n\"g h\": []\n"
        );
        let reread = crate::yaml::parse(&text).unwrap();
        let doc = &reread.documents[0];
        assert_eq!(
            doc.get("a").unwrap().get("d").unwrap().scalar(),
            Some("x: y")
        );
    }

    #[test]
    fn url_passwords_are_redacted() {
        assert_eq!(redact_url("http://u:p4ss@h:1/x"), "http://u:xxx@h:1/x");
        assert_eq!(redact_url("http://h/x"), "http://h/x");
        assert_eq!(redact_url("/jaeger"), "/jaeger");
    }
}
