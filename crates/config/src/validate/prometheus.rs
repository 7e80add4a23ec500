//! Checks of `external_services.prometheus`: Kiali's rule that an enabled Prometheus has a
//! URL, the URLs, `auth` and headers (as for tracing), `query_scope`'s label names, and the
//! Thanos durations.

use super::service;
use crate::decode::{Decoded, Decoder};
use crate::diag::quote;
use crate::schema::{PrometheusConfig, label_name};
use crate::yaml::join;

const P: &str = "external_services.prometheus";
const EXAMPLE: &str = "http://prometheus.istio-system:9090";

pub(super) fn validate(d: &mut Decoder, decoded: &Decoded) {
    let prometheus = &decoded.config.prometheus;
    if prometheus.enabled && prometheus.url.is_empty() {
        let path = format!("{P}.url");
        let pos = d.pos(&path).or(d.pos(&format!("{P}.enabled")));
        d.error(
            &path,
            pos,
            format!(
                "must be set when prometheus is enabled (Kiali refuses an empty url): \
                 e.g. {EXAMPLE}, or set `enabled: false`"
            ),
        );
    }
    service::check_url(d, (P, "url"), &prometheus.url, false, EXAMPLE);
    let health = (P, "health_check_url");
    service::check_url(d, health, &prometheus.health_check_url, false, EXAMPLE);
    let type_known = !decoded.prometheus.bad_auth_type;
    service::auth(d, P, &prometheus.auth, type_known, false);
    service::custom_headers(d, P, &prometheus.custom_headers);
    query_scope(d, prometheus);
    thanos_proxy(d, prometheus);
}

/// Each name becomes a label matcher in every query, after Kiali's rewrite of the characters
/// a label name cannot hold.
fn query_scope(d: &mut Decoder, prometheus: &PrometheusConfig) {
    let scope = format!("{P}.query_scope");
    for name in prometheus.query_scope.keys() {
        let value_path = join(&scope, name);
        let pos = d.pos(&value_path);
        // An empty name is reported at the mapping, not at a path ending in a dot.
        let path = if name.is_empty() { &scope } else { &value_path };
        let label = label_name(name);
        if label.is_empty() || label.starts_with(|c: char| c.is_ascii_digit()) {
            d.error(
                path,
                pos,
                format!(
                    "{} is not a Prometheus label name (a letter or `_`, then letters, digits \
                     or `_`): every query would fail",
                    quote(name)
                ),
            );
        } else if label != *name {
            d.warning(
                path,
                pos,
                format!(
                    "queries use it as the label `{label}`: Kiali turns every character outside \
                     [a-zA-Z0-9_] into `_`"
                ),
            );
        }
    }
}

/// Kiali reads the two durations only with `enabled: true`, and falls back to Prometheus's
/// own defaults when one does not parse.
fn thanos_proxy(d: &mut Decoder, prometheus: &PrometheusConfig) {
    let thanos = &prometheus.thanos_proxy;
    if !thanos.enabled {
        return;
    }
    let durations = [
        (
            "retention_period",
            &thanos.retention_period,
            thanos.retention(),
            "15d",
        ),
        (
            "scrape_interval",
            &thanos.scrape_interval,
            thanos.scrape_every(),
            "15s",
        ),
    ];
    for (key, value, parsed, fallback) in durations {
        if parsed.is_some() {
            continue;
        }
        let path = format!("{P}.thanos_proxy.{key}");
        let pos = d.pos(&path).or(d.pos(&format!("{P}.thanos_proxy.enabled")));
        d.warning(
            &path,
            pos,
            format!(
                "found {}: not a Prometheus duration (e.g. 30s, 1h30m, 7d); Kiali then uses {fallback}",
                quote(value)
            ),
        );
    }
}
