//! Finds whether and how a Prometheus can be reached, with the auth, headers and `query_scope`
//! of a given configuration: the port, TLS, Prometheus's API at the URL's path (and under
//! `/prometheus`, where a meshtrace store serves it), its version (`/api/v1/status/buildinfo`),
//! its health URL, whether Istio's metrics are there (`istio_requests_total` within the scope)
//! and the scrape interval and retention Kiali would use. Every probe is reported, each with
//! what to do when it failed.

use std::time::Duration;

use meshtrace_config::PrometheusConfig;

use super::{Probe, probe_port, settings_yaml, speaks_tls, target_url};
use crate::prometheus::{PrometheusClient, PrometheusOptions};

/// Prometheus's usual port: used when the target names a host only.
const PROMETHEUS_PORT: u16 = 9090;
/// The longest a probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A Prometheus that answered.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusWorking {
    pub url: String,
    pub note: String,
    /// The `auth` and `custom_headers` lines of the configuration the probes used.
    pub settings: String,
}

impl PrometheusWorking {
    /// A ready-to-paste `external_services.prometheus` block.
    pub fn yaml(&self) -> String {
        format!(
            "external_services:\n  prometheus:\n    enabled: true\n    url: {}\n{}",
            self.url, self.settings
        )
    }
}

#[derive(Debug, Default)]
pub struct PrometheusDiagnosis {
    pub probes: Vec<Probe>,
    pub working: Option<PrometheusWorking>,
}

/// Probes the Prometheus at `target` (a URL, or `host[:port]`, port 9090 when none) with the
/// auth, headers and scope of `base`.
pub async fn diagnose_prometheus(
    target: &str,
    base: &PrometheusConfig,
    options: &PrometheusOptions,
) -> Result<PrometheusDiagnosis, String> {
    let (mut url, host) = target_url(target)?;
    if !target.contains("://") && url.port().is_none() {
        let _ = url.set_port(Some(PROMETHEUS_PORT));
    }
    let port = url.port_or_known_default().unwrap_or(PROMETHEUS_PORT);
    let mut diagnosis = PrometheusDiagnosis::default();
    let closed = "closed or filtered: check the host and port of the url, and that Prometheus is \
                  running";
    if !probe_port(&mut diagnosis.probes, &host, port, closed).await {
        return Ok(diagnosis);
    }
    let tls = speaks_tls(&host, port).await;
    let scheme = if tls { "https" } else { "http" };
    if scheme != url.scheme() {
        diagnosis.probes.push(Probe {
            test: format!("tls {host}:{port}"),
            result: Ok(if tls {
                "speaks TLS: probing over https (the url must start with https://)".into()
            } else {
                "does not speak TLS: probing over http (the url must start with http://)".into()
            }),
        });
        let _ = url.set_scheme(scheme);
    }
    let root = url.as_str().trim_end_matches('/').to_string();
    let mut candidates = vec![root.clone()];
    if !root.ends_with("/prometheus") {
        candidates.push(format!("{root}/prometheus"));
    }
    let settings = settings_yaml(&base.auth, &base.custom_headers);
    let options = PrometheusOptions {
        timeout: options.timeout.min(PROBE_TIMEOUT),
        ..options.clone()
    };
    for candidate in candidates {
        let mut config = base.clone();
        config.enabled = true;
        config.url = candidate.clone();
        let client = match PrometheusClient::new(&config, &options) {
            Ok(client) => client,
            Err(e) => {
                diagnosis.probes.push(Probe {
                    test: format!("Prometheus API {candidate}"),
                    result: Err(e.to_string()),
                });
                return Ok(diagnosis);
            }
        };
        let version = client.buildinfo().await.map(|b| b.version);
        let answered = version.is_ok();
        diagnosis.probes.push(Probe {
            test: format!("Prometheus API {candidate}"),
            result: version
                .as_ref()
                .map(|v| format!("answers, version {}", shown_version(v)))
                .map_err(ToString::to_string),
        });
        if !answered {
            continue;
        }
        let note = follow_up(&client, &config, &mut diagnosis.probes).await;
        let version = version.map(|v| shown_version(&v)).unwrap_or_default();
        diagnosis.working = Some(PrometheusWorking {
            url: candidate,
            note: format!("Prometheus {version}: {note}"),
            settings,
        });
        break;
    }
    Ok(diagnosis)
}

/// A version as shown: one line, at most 64 characters.
fn shown_version(version: &str) -> String {
    let line: String = version
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    if line.is_empty() {
        "(not given)".to_string()
    } else {
        line
    }
}

/// The probes after the API answered: health, Istio's metrics, storage. Returns a note on
/// Istio's metrics.
async fn follow_up(
    client: &PrometheusClient,
    config: &PrometheusConfig,
    probes: &mut Vec<Probe>,
) -> String {
    probes.push(Probe {
        test: format!("health {}", client_health(config)),
        result: client
            .healthy()
            .await
            .map(|()| "healthy".to_string())
            .map_err(|e| e.to_string()),
    });
    let istio = istio_series(client).await;
    let note = match &istio {
        Ok(n) => format!("{n} series of Istio's request metrics"),
        Err(_) => "no Istio request metrics".to_string(),
    };
    probes.push(Probe {
        test: "Istio metrics (istio_requests_total)".to_string(),
        result: istio.map(|n| {
            format!("{n} series in the last 5 minutes: the graph and metrics pages have data")
        }),
    });
    let storage = client.storage().await;
    let source = if storage.configured {
        "from thanos_proxy"
    } else {
        "as Prometheus reports them, or its defaults"
    };
    probes.push(Probe {
        test: "storage".to_string(),
        result: Ok(format!(
            "scrape interval {}, retention {} ({source})",
            human(storage.scrape_interval),
            human(storage.retention)
        )),
    });
    note
}

fn client_health(config: &PrometheusConfig) -> String {
    meshtrace_config::redact_url(&config.health_url())
}

/// How many `istio_requests_total` series Prometheus holds now (within the scope), or why
/// there are none.
async fn istio_series(client: &PrometheusClient) -> Result<u64, String> {
    let n = client.istio_series().await.map_err(|e| e.to_string())?;
    if n > 0 {
        return Ok(n);
    }
    Err(format!(
        "none in the last 5 minutes: {}",
        no_istio_metrics(client)
    ))
}

/// Why a Prometheus that answers may have no Istio metrics, and what it means.
pub fn no_istio_metrics(client: &PrometheusClient) -> String {
    let scope = if client.scope().is_empty() {
        String::new()
    } else {
        let matchers: Vec<String> = client
            .scope()
            .iter()
            .map(|m| format!("{}={:?}", m.name.as_str(), m.value))
            .collect();
        format!(", or query_scope ({}) leaves none", matchers.join(", "))
    };
    format!(
        "Prometheus does not scrape Istio's proxies{scope}; the graph and metrics pages will be \
         empty (a meshtrace store has them once spans arrive)"
    )
}

/// `15s`, `30m`, `15d`, `100y`: the largest unit that divides the duration (as Prometheus
/// writes durations).
fn human(d: Duration) -> String {
    let s = d.as_secs();
    for (unit, size) in [("y", 365 * 86_400), ("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s >= size
            && s.checked_rem(size) == Some(0)
            && let Some(n) = s.checked_div(size)
        {
            return format!("{n}{unit}");
        }
    }
    format!("{s}s")
}
