//! Links into the tracing backend's own UI (`external_url`), in the formats Kiali uses: the
//! Jaeger UI, Grafana Explore (Tempo), and the OpenShift console's trace views.

use meshtrace_config::{Provider, TracingConfig, UrlFormat};

/// Which UI `external_url` leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ui {
    Jaeger,
    Grafana,
    OpenShift,
}

#[derive(Debug, Clone)]
pub struct Links {
    base: String,
    ui: Ui,
    datasource: String,
    org_id: String,
    namespace: String,
    name: String,
    tenant: String,
}

fn enc(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl Links {
    /// `None` when there is no `external_url` (or tracing is off): no external links at all.
    pub fn new(config: &TracingConfig) -> Option<Links> {
        if !config.has_external_links() {
            return None;
        }
        let tempo = &config.tempo_config;
        let ui = match (config.provider, tempo.url_format) {
            (Provider::Jaeger, _) | (Provider::Tempo, UrlFormat::Jaeger) => Ui::Jaeger,
            (Provider::Tempo, UrlFormat::OpenShift) => Ui::OpenShift,
            // Kiali falls back to its Grafana service; meshtrace takes external_url as Grafana.
            (Provider::Tempo, UrlFormat::Grafana | UrlFormat::Unset) => Ui::Grafana,
        };
        Some(Links {
            base: config.external_url.trim_end_matches('/').to_string(),
            ui,
            datasource: tempo.datasource_uid.clone(),
            org_id: if tempo.org_id.is_empty() {
                "1".into()
            } else {
                tempo.org_id.clone()
            },
            namespace: or(&tempo.namespace, "tempo"),
            name: or(&tempo.name, "sample"),
            tenant: or(&tempo.tenant, "default"),
        })
    }

    /// The "Distributed Tracing" menu item.
    pub fn home(&self) -> String {
        match self.ui {
            Ui::Jaeger => self.base.clone(),
            Ui::Grafana => self.grafana(
                &serde_json::json!({
                    "refId": "A", "queryType": "traceqlSearch", "limit": 20, "tableType": "traces",
                    "datasource": {"uid": self.datasource, "type": "tempo"},
                }),
                None,
            ),
            Ui::OpenShift => self.openshift(""),
        }
    }

    /// A search for a service's traces; `start`/`end` in µs, `tags` as given to the API.
    pub fn search(
        &self,
        service: &str,
        limit: Option<usize>,
        window: Option<(u64, u64)>,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> String {
        match self.ui {
            Ui::Jaeger => {
                let mut url = format!("{}/search?service={}", self.base, enc(service));
                if let Some(limit) = limit {
                    url.push_str(&format!("&limit={limit}"));
                }
                if let Some((start, end)) = window {
                    url.push_str(&format!("&start={start}&end={end}"));
                }
                if !tags.is_empty() {
                    let json = serde_json::to_string(tags).unwrap_or_default();
                    url.push_str(&format!("&tags={}", enc(&json)));
                }
                url
            }
            Ui::Grafana => {
                let mut filters = vec![serde_json::json!({
                    "id": "service-name", "tag": "service.name", "operator": "=",
                    "scope": "resource", "value": [service], "valueType": "string",
                })];
                for (key, value) in tags {
                    filters.push(serde_json::json!({
                        "id": key, "tag": key, "operator": "=", "scope": "span",
                        "value": [value], "valueType": "string",
                    }));
                }
                let range = window.map(|(s, e)| (s / 1000, e / 1000));
                self.grafana(
                    &serde_json::json!({
                        "refId": "A", "queryType": "traceqlSearch", "tableType": "traces",
                        "limit": limit.unwrap_or(20), "filters": filters,
                        "datasource": {"uid": self.datasource, "type": "tempo"},
                    }),
                    range,
                )
            }
            Ui::OpenShift => format!(
                "{}&q={}",
                self.home(),
                enc(&format!("{{ resource.service.name = \"{service}\" }}"))
            ),
        }
    }

    pub fn trace(&self, trace_id: &str) -> String {
        match self.ui {
            Ui::Jaeger => format!("{}/trace/{trace_id}", self.base),
            Ui::Grafana => self.grafana(&self.trace_query(trace_id), None),
            Ui::OpenShift => self.openshift(&format!("/{trace_id}")),
        }
    }

    /// A span within its trace (Jaeger's `uiFind`; other UIs open the trace).
    pub fn span(&self, trace_id: &str, span_id: &str) -> String {
        match self.ui {
            Ui::Jaeger => format!("{}/trace/{trace_id}?uiFind={span_id}", self.base),
            _ => self.trace(trace_id),
        }
    }

    /// Jaeger's comparison of a trace with others; other UIs have none.
    pub fn compare(&self, trace_id: &str, others: &[String]) -> Option<String> {
        if self.ui != Ui::Jaeger || others.is_empty() {
            return None;
        }
        let others: Vec<&str> = others.iter().take(10).map(String::as_str).collect();
        let cohort: Vec<String> = std::iter::once(trace_id)
            .chain(others.iter().copied())
            .map(|id| format!("cohort={id}"))
            .collect();
        Some(format!(
            "{}/trace/{trace_id}...{}?{}",
            self.base,
            others.join("..."),
            cohort.join("&")
        ))
    }

    fn trace_query(&self, trace_id: &str) -> serde_json::Value {
        serde_json::json!({
            "refId": "A", "queryType": "traceql", "query": trace_id,
            "datasource": {"uid": self.datasource, "type": "tempo"},
        })
    }

    /// The OpenShift console's traces page at `path` (`""` for the search, `/{trace_id}`),
    /// with the Tempo instance's namespace, name and tenant.
    fn openshift(&self, path: &str) -> String {
        format!(
            "{}/observe/traces{path}?namespace={}&name={}&tenant={}",
            self.base,
            enc(&self.namespace),
            enc(&self.name),
            enc(&self.tenant)
        )
    }

    /// Grafana 10+ Explore with one pane.
    fn grafana(&self, query: &serde_json::Value, range_ms: Option<(u64, u64)>) -> String {
        let range = match range_ms {
            Some((from, to)) => serde_json::json!({"from": from.to_string(), "to": to.to_string()}),
            None => serde_json::json!({"from": "now-10m", "to": "now"}),
        };
        let panes = serde_json::json!({"a": {
            "datasource": self.datasource,
            "queries": [query],
            "range": range,
        }});
        format!(
            "{}/explore?panes={}&schemaVersion=1&orgId={}",
            self.base,
            enc(&panes.to_string()),
            enc(&self.org_id)
        )
    }
}

fn or(value: &str, default: &str) -> String {
    if value.is_empty() {
        default.to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(yaml: &str) -> Option<Links> {
        let text = format!("external_services:\n  tracing:\n    enabled: true\n{yaml}");
        Links::new(&meshtrace_config::load_str(&text).unwrap().config.tracing)
    }

    #[test]
    fn jaeger_links_follow_kialis_formats() {
        let l = links("    external_url: http://jaeger.example.com/\n").unwrap();
        assert_eq!(l.home(), "http://jaeger.example.com");
        assert_eq!(l.trace("abc"), "http://jaeger.example.com/trace/abc");
        assert_eq!(
            l.span("abc", "12"),
            "http://jaeger.example.com/trace/abc?uiFind=12"
        );
        let tags = std::collections::BTreeMap::from([("error".to_string(), "true".to_string())]);
        assert_eq!(
            l.search("reviews.bookinfo", Some(20), Some((1, 2)), &tags),
            "http://jaeger.example.com/search?service=reviews.bookinfo&limit=20&start=1&end=2&tags=%7B%22error%22%3A%22true%22%7D"
        );
        assert_eq!(
            l.compare("a", &["b".into(), "c".into()]).unwrap(),
            "http://jaeger.example.com/trace/a...b...c?cohort=a&cohort=b&cohort=c"
        );
        assert!(links("    internal_url: http://j:16685\n").is_none());
    }

    #[test]
    fn tempo_links_go_to_grafana_or_openshift() {
        let g = links("    provider: tempo\n    external_url: http://grafana\n    tempo_config:\n      datasource_uid: ds1\n      org_id: '2'\n").unwrap();
        assert!(g.home().starts_with("http://grafana/explore?panes="));
        assert!(g.home().ends_with("&schemaVersion=1&orgId=2"));
        assert!(g.trace("abc").contains("%22query%22%3A%22abc%22"));
        assert_eq!(g.compare("a", &["b".into()]), None);
        let o = links("    provider: tempo\n    external_url: https://console\n    tempo_config:\n      url_format: openshift\n      namespace: obs\n").unwrap();
        assert_eq!(
            o.home(),
            "https://console/observe/traces?namespace=obs&name=sample&tenant=default"
        );
        assert_eq!(
            o.trace("abc"),
            "https://console/observe/traces/abc?namespace=obs&name=sample&tenant=default"
        );
    }
}
