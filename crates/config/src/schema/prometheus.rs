//! `external_services.prometheus`: where the console reads mesh metrics (Istio's
//! `istio_requests_total`, ...), read with Kiali's keys and defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::auth::Auth;
use crate::decode::prometheus as read;
use crate::section::section;

/// Kiali's default `url` for a `config.yaml` (the operator derives another for a CR).
pub const DEFAULT_PROMETHEUS_URL: &str = "http://prometheus.istio-system:9090";

section! {
    /// Kiali's `external_services.prometheus`. Every key is known: an unknown one is an error.
    #[derive(Clone, PartialEq, Serialize)]
    pub struct PrometheusConfig {
        /// When false there are no metrics: no graph, no request-rate health, no metrics pages.
        enabled: bool = true,
        /// The Prometheus server (its HTTP API is under `<url>/api/v1`).
        #[serde(serialize_with = "super::redacted_url")]
        url: String = DEFAULT_PROMETHEUS_URL.to_string(),
        auth: Auth = Auth::default() => |d, node, path, prometheus, seen| {
            seen.bad_auth_type = !d.section(node, path, &mut prometheus.auth).type_known;
        },
        /// Headers added to every request. Names keep the case they were written in.
        #[serde(serialize_with = "super::header_names")]
        custom_headers: BTreeMap<String, String> = BTreeMap::new(),
        /// Label matchers added to every query's selectors (Kiali's metrics and graph queries).
        /// The names as written; Kiali turns every character outside `[a-zA-Z0-9_]` into `_`
        /// ([`PrometheusConfig::query_scope_labels`]).
        query_scope: BTreeMap<String, String> = BTreeMap::new(),
        thanos_proxy: ThanosProxy = ThanosProxy::default() => |d, node, path, prometheus, _| {
            d.section(node, path, &mut prometheus.thanos_proxy);
        },
        /// Cache the request rates of health queries.
        cache_enabled: bool = true,
        /// A cached answer serves queries up to this many seconds younger than it.
        cache_duration_secs as "cache_duration": u64 = 7 => read::cache_duration,
        /// The whole cache is emptied every this many seconds.
        cache_expiration_secs as "cache_expiration": u64 = 300 => |d, node, path, prometheus, _| {
            crate::decode::set(&mut prometheus.cache_expiration_secs, d.positive_secs(node, path));
        },
        /// The URL probed for component health; empty means `<url>/-/healthy`.
        #[serde(serialize_with = "super::redacted_url")]
        health_check_url: String = String::new(),
        /// Whether an unreachable Prometheus is an error (true) or a warning in component health.
        /// Kiali's default is false; the operator writes true for a CR.
        is_core: bool = false,
    }
    decode { strict: true, seen: read::PrometheusSeen }
}

impl PrometheusConfig {
    pub fn cache_duration(&self) -> Duration {
        Duration::from_secs(self.cache_duration_secs)
    }

    pub fn cache_expiration(&self) -> Duration {
        Duration::from_secs(self.cache_expiration_secs)
    }

    /// The URL probed for component health: `health_check_url`, else `<url>/-/healthy` (as
    /// Kiali builds it, by appending).
    pub fn health_url(&self) -> String {
        if self.health_check_url.is_empty() {
            format!("{}/-/healthy", self.url)
        } else {
            self.health_check_url.clone()
        }
    }

    /// `query_scope` as the label matchers Kiali adds: each name with every character outside
    /// `[a-zA-Z0-9_]` turned into `_`, values unchanged (a client must still escape them).
    pub fn query_scope_labels(&self) -> Vec<(String, String)> {
        self.query_scope
            .iter()
            .map(|(name, value)| (label_name(name), value.clone()))
            .collect()
    }
}

/// Kiali's `SanitizeLabelName`.
pub(crate) fn label_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

section! {
    /// `thanos_proxy`: Prometheus is reached through a Thanos querier, which does not answer
    /// `/api/v1/status/config` and `/runtimeinfo`, so the scrape interval and retention are
    /// given here (Prometheus durations, as Kiali reads them).
    #[derive(Clone, PartialEq, Eq, Serialize)]
    pub struct ThanosProxy {
        enabled: bool = false,
        retention_period: String = "7d".to_string(),
        scrape_interval: String = "30s".to_string(),
    }
    decode { strict: true, seen: () }
}

impl ThanosProxy {
    /// `retention_period` as a duration; `None` when it is not a Prometheus duration (Kiali
    /// then uses 15 days).
    pub fn retention(&self) -> Option<Duration> {
        meshtrace_model::time::parse_prometheus_duration(&self.retention_period)
    }

    /// `scrape_interval` as a duration; `None` when it is not a Prometheus duration (Kiali
    /// then uses 15 s).
    pub fn scrape_every(&self) -> Option<Duration> {
        meshtrace_model::time::parse_prometheus_duration(&self.scrape_interval)
    }
}
