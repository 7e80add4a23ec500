//! How the configuration reads to people: URLs with their passwords as `xxx`, the one-line
//! summary of what the console will do, and the effective configuration (`crate::root`) as
//! YAML.

use serde_json::Value;

use crate::schema::{DEFAULT_PROMETHEUS_URL, PrometheusConfig, Provider, TracingConfig};

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

/// One line that says where the console reads metrics (the metrics pages, the heatmaps'
/// stats). Kiali's default `url` is a Prometheus inside the cluster: when it is left as it is,
/// the line says so, and where a meshtrace store serves the same metrics — its query HTTP
/// port, under `/prometheus` — in case the tracing backend is one.
pub fn metrics_mode(prometheus: &PrometheusConfig, tracing: &TracingConfig) -> String {
    if !prometheus.enabled {
        return "metrics disabled (external_services.prometheus.enabled: false)".to_string();
    }
    let url = redact_url(&prometheus.url);
    if prometheus.url != DEFAULT_PROMETHEUS_URL {
        return format!("metrics from Prometheus at {url}");
    }
    let mut line = format!(
        "metrics from Prometheus at {url}: Kiali's default, external_services.prometheus.url \
         is not set"
    );
    if tracing.enabled && !tracing.internal_url.is_empty() {
        let store = match url::Url::parse(&tracing.internal_url) {
            // Jaeger HTTP: the store's query HTTP address itself.
            Ok(u) if !tracing.use_grpc => {
                format!(
                    "{}/prometheus",
                    redact_url(u.as_str()).trim_end_matches('/')
                )
            }
            // Jaeger gRPC: the store's query HTTP port is another one (16686 by default).
            Ok(u) => format!(
                "{}://{}:16686/prometheus",
                u.scheme(),
                u.host_str().unwrap_or("localhost")
            ),
            Err(_) => "<the store's query HTTP address>/prometheus".to_string(),
        };
        line.push_str(&format!(
            "; if the tracing backend is a meshtrace store, its metrics are at {store}: set \
             the url to that"
        ));
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
            write_yaml(item, indent.saturating_add(2), out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_yaml(item, indent.saturating_add(2), out);
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
    use serde_json::json;

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

    #[test]
    fn the_metrics_line_says_where_metrics_come_from() {
        let load = |yaml: &str| crate::load_str(yaml).unwrap().config;
        let c = load("external_services:\n  prometheus:\n    url: http://u:pw@prom:9090\n");
        assert_eq!(
            metrics_mode(&c.prometheus, &c.tracing),
            "metrics from Prometheus at http://u:xxx@prom:9090/"
        );
        let c = load("external_services:\n  prometheus:\n    enabled: false\n");
        assert_eq!(
            metrics_mode(&c.prometheus, &c.tracing),
            "metrics disabled (external_services.prometheus.enabled: false)"
        );
        let c = load(
            "external_services:\n  tracing:\n    enabled: true\n    internal_url: http://store:16686\n    use_grpc: false\n",
        );
        assert_eq!(
            metrics_mode(&c.prometheus, &c.tracing),
            "metrics from Prometheus at http://prometheus.istio-system:9090: Kiali's default, \
             external_services.prometheus.url is not set; if the tracing backend is a meshtrace \
             store, its metrics are at http://store:16686/prometheus: set the url to that"
        );
        let c = load(
            "external_services:\n  tracing:\n    enabled: true\n    internal_url: http://store:16685\n",
        );
        assert!(
            metrics_mode(&c.prometheus, &c.tracing)
                .ends_with("its metrics are at http://store:16686/prometheus: set the url to that")
        );
    }
}
