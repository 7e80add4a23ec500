//! The console's Prometheus client, built from Kiali's `external_services.prometheus`: instant
//! and range queries, series, label values, build info, health and the storage settings Kiali
//! reads, over HTTP(S) with the section's `auth` (none, basic, bearer, OAuth2, `use_kiali_token`;
//! credentials read from files at each request), TLS (`ca_file`, client certificates,
//! `insecure_skip_verify`), `custom_headers`, a deadline over each exchange and a cap on each
//! answer's size.
//!
//! Queries are [`Expr`]s, never text: the client renders each with `query_scope`'s matchers in
//! every selector ([`promql`]), as Kiali adds them to every query it sends. Answers are typed
//! ([`Answer`]). Errors ([`PrometheusError`]) name the Prometheus, the query and Prometheus's
//! own `errorType` and `error`, and say what to do; none holds a secret.
//!
//! `thanos_proxy` is applied as Kiali applies it: a Thanos querier does not answer
//! `/api/v1/status/config` and `/runtimeinfo`, so [`PrometheusClient::storage`] takes the scrape
//! interval and retention from the configuration instead of asking.

mod answer;
mod error;
pub mod promql;
mod transport;

use std::path::PathBuf;
use std::time::Duration;

use meshtrace_config::PrometheusConfig;
use serde::de::DeserializeOwned;

pub use answer::{Answer, BuildInfo, Labels, Point, Sample, Series, Value, sample_value};
pub use error::{ErrorKind, PrometheusError};
pub use promql::{Expr, LabelName, MatchOp, Matcher, Selector};

use answer::{Envelope, ErrorEnvelope, QueryData};
use transport::{Method, Transport};

/// How long an exchange with Prometheus may take when nothing else is set (Kiali's HTTP
/// timeout). Kiali's configuration has no key for it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read when nothing else is set.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 << 20;
/// Warnings (and infos) of an answer kept; Prometheus gives a handful at most.
const MAX_NOTES: usize = 32;
/// Prometheus's own defaults, which Kiali uses when `thanos_proxy` holds values that do not
/// parse, or Prometheus does not tell.
const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(15);
const DEFAULT_RETENTION: Duration = Duration::from_secs(15 * 24 * 3600);

/// Settings of the client that are not in Kiali's configuration.
#[derive(Debug, Clone)]
pub struct PrometheusOptions {
    /// The deadline of each exchange: credentials, connection, query, the whole answer.
    pub timeout: Duration,
    /// Answers larger than this are dropped unread, with an error.
    pub max_body_bytes: usize,
    /// Where `use_kiali_token` reads the bearer token.
    pub service_account_token: PathBuf,
}

impl Default for PrometheusOptions {
    fn default() -> Self {
        PrometheusOptions {
            timeout: DEFAULT_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            service_account_token: PathBuf::from(meshtrace_config::SERVICE_ACCOUNT_TOKEN),
        }
    }
}

/// How far back Prometheus keeps samples, and how often it scrapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Storage {
    pub scrape_interval: Duration,
    pub retention: Duration,
    /// Whether the values come from `thanos_proxy` (true) or from Prometheus.
    pub configured: bool,
}

pub struct PrometheusClient {
    transport: Transport,
    scope: Vec<Matcher>,
    health_url: String,
    /// `thanos_proxy`'s scrape interval and retention, when it is enabled.
    thanos: Option<Storage>,
}

/// The URL as messages show it: no user, password, query or fragment.
fn shown_url(url: &url::Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.as_str().trim_end_matches('/').to_string()
}

/// Milliseconds since the epoch as Prometheus reads a time: seconds, with the milliseconds
/// after the point.
fn seconds(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let abs = ms.unsigned_abs();
    format!("{sign}{}.{:03}", abs / 1000, abs % 1000)
}

impl PrometheusClient {
    pub fn new(
        config: &PrometheusConfig,
        options: &PrometheusOptions,
    ) -> Result<PrometheusClient, PrometheusError> {
        let config_error = |shown: &str, message: String| PrometheusError {
            prometheus: shown.to_string(),
            query: None,
            kind: ErrorKind::Config(message),
        };
        if !config.enabled {
            return Err(config_error(
                "Prometheus",
                "Prometheus is disabled (enabled: false): there are no metrics".to_string(),
            ));
        }
        let base = url::Url::parse(&config.url).map_err(|e| {
            config_error(
                "Prometheus",
                format!(
                    "url `{}` is not a URL: {e}",
                    meshtrace_config::redact_url(&config.url)
                ),
            )
        })?;
        let shown = format!("Prometheus at {}", shown_url(&base));
        if !matches!(base.scheme(), "http" | "https") {
            return Err(config_error(
                &shown,
                format!("url must be http or https, not `{}`", base.scheme()),
            ));
        }
        let scope = config
            .query_scope_labels()
            .into_iter()
            .map(|(name, value)| Matcher::new(&name, MatchOp::Equal, value))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| config_error(&shown, format!("query_scope: {e}")))?;
        let service = crate::auth::Service {
            auth: &config.auth,
            custom_headers: &config.custom_headers,
            timeout: options.timeout,
        };
        let backend_options = crate::Options {
            service_account_token: options.service_account_token.clone(),
        };
        let headers = crate::auth::Headers::new(&service, &backend_options)
            .map_err(|e| config_error(&shown, e.to_string()))?;
        // reqwest sends a password in the URL as Basic credentials: hide it like the others.
        if let Some(password) = base.password() {
            headers
                .secrets()
                .add_basic(&percent_decode(base.username()), &percent_decode(password));
            headers.secrets().add(password);
        }
        let http = crate::tls::http_client(&config.auth, &base)
            .map_err(|e| config_error(&shown, e.to_string()))?;
        let thanos = &config.thanos_proxy;
        Ok(PrometheusClient {
            transport: Transport {
                http,
                headers,
                timeout: options.timeout,
                max_body: options.max_body_bytes,
                base,
                shown,
            },
            scope,
            health_url: config.health_url(),
            thanos: thanos.enabled.then(|| Storage {
                scrape_interval: thanos.scrape_every().unwrap_or(DEFAULT_SCRAPE_INTERVAL),
                retention: thanos.retention().unwrap_or(DEFAULT_RETENTION),
                configured: true,
            }),
        })
    }

    /// `Prometheus at <url>`, for messages.
    pub fn describe(&self) -> &str {
        &self.transport.shown
    }

    /// `query_scope`'s matchers, added to every selector.
    pub fn scope(&self) -> &[Matcher] {
        &self.scope
    }

    /// `expr` as it is sent: with the scope.
    pub fn render(&self, expr: &Expr) -> String {
        expr.render(&self.scope)
    }

    /// `/api/v1/query`: `expr` at `time_ms` (Prometheus's now when `None`).
    pub async fn query(
        &self,
        expr: &Expr,
        time_ms: Option<i64>,
    ) -> Result<Answer, PrometheusError> {
        let text = self.render(expr);
        let mut params = vec![("query", text.clone())];
        if let Some(time) = time_ms {
            params.push(("time", seconds(time)));
        }
        self.evaluate("/api/v1/query", params, text).await
    }

    /// `/api/v1/query_range`: `expr` from `start_ms` to `end_ms` every `step`.
    pub async fn query_range(
        &self,
        expr: &Expr,
        start_ms: i64,
        end_ms: i64,
        step: Duration,
    ) -> Result<Answer, PrometheusError> {
        let text = self.render(expr);
        if step.as_millis() == 0 || end_ms < start_ms {
            return Err(self.transport.error(
                Some(&text),
                ErrorKind::InvalidQuery(format!(
                    "a range query needs a step of at least 1ms and an end not before its start \
                     (step {step:?}, start {start_ms} ms, end {end_ms} ms)"
                )),
            ));
        }
        let step_ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
        let params = vec![
            ("query", text.clone()),
            ("start", seconds(start_ms)),
            ("end", seconds(end_ms)),
            ("step", seconds(step_ms)),
        ];
        self.evaluate("/api/v1/query_range", params, text).await
    }

    async fn evaluate(
        &self,
        path: &str,
        mut params: Vec<(&str, String)>,
        text: String,
    ) -> Result<Answer, PrometheusError> {
        // Prometheus stops evaluating when the client gives up.
        let timeout_ms = i64::try_from(self.transport.timeout.as_millis()).unwrap_or(i64::MAX);
        params.push(("timeout", seconds(timeout_ms)));
        tracing::debug!(prometheus = %self.transport.shown, query = %text, path, "Prometheus query");
        let (data, warnings, infos): (QueryData, _, _) =
            self.api(path, &params, Method::Post, &text).await?;
        let value = data
            .into_value()
            .map_err(|e| self.transport.error(Some(&text), ErrorKind::Decode(e)))?;
        // Shown and logged: excerpts, like every other piece of an answer.
        let excerpts = |notes: Vec<String>| -> Vec<String> {
            notes
                .iter()
                .take(MAX_NOTES)
                .map(|n| self.transport.secrets().excerpt(n.as_bytes()))
                .collect()
        };
        let (warnings, infos) = (excerpts(warnings), excerpts(infos));
        if !warnings.is_empty() {
            tracing::warn!(prometheus = %self.transport.shown, query = %text, ?warnings, "Prometheus answered with warnings");
        }
        Ok(Answer {
            value,
            warnings,
            infos,
        })
    }

    /// `/api/v1/series`: the label sets of the series the selectors match (each with the
    /// scope) between `start_ms` and `end_ms`.
    pub async fn series(
        &self,
        selectors: &[Selector],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<Labels>, PrometheusError> {
        let mut params: Vec<(&str, String)> = selectors
            .iter()
            .map(|s| ("match[]", s.render(&self.scope)))
            .collect();
        let shown = params
            .iter()
            .map(|(_, s)| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        params.push(("start", seconds(start_ms)));
        params.push(("end", seconds(end_ms)));
        let (data, _, _) = self
            .api("/api/v1/series", &params, Method::Post, &shown)
            .await?;
        Ok(data)
    }

    /// `/api/v1/label/<name>/values`, of the series the selectors match (with the scope).
    pub async fn label_values(
        &self,
        name: &LabelName,
        selectors: &[Selector],
    ) -> Result<Vec<String>, PrometheusError> {
        let params: Vec<(&str, String)> = selectors
            .iter()
            .map(|s| ("match[]", s.render(&self.scope)))
            .collect();
        let path = format!("/api/v1/label/{}/values", name.as_str());
        let (data, _, _) = self.api(&path, &params, Method::Get, &path).await?;
        Ok(data)
    }

    /// `/api/v1/status/buildinfo` (Kiali reads the version from it).
    pub async fn buildinfo(&self) -> Result<BuildInfo, PrometheusError> {
        let path = "/api/v1/status/buildinfo";
        let (data, _, _) = self.api(path, &[], Method::Get, path).await?;
        Ok(data)
    }

    /// `Ok` when the health URL (`health_check_url`, else `<url>/-/healthy`) answers 2xx, as
    /// Kiali's component health checks it, with the same credentials.
    pub async fn healthy(&self) -> Result<(), PrometheusError> {
        let t = &self.transport;
        let shown_health = url::Url::parse(&self.health_url)
            .map_or_else(|_| "the health_check_url".to_string(), |u| shown_url(&u));
        let url = url::Url::parse(&self.health_url).map_err(|e| {
            t.error(
                None,
                ErrorKind::Config(format!("health_check_url is not a URL: {e}")),
            )
        })?;
        let (status, body) = t.call(url, &[], Method::Get, Some(&shown_health)).await?;
        if (200..300).contains(&status) {
            Ok(())
        } else {
            Err(t.error(
                Some(&shown_health),
                ErrorKind::NotPrometheus {
                    status,
                    excerpt: t.secrets().excerpt(&body),
                },
            ))
        }
    }

    /// How many `istio_requests_total` series Prometheus holds now (sampled within its lookback,
    /// 5 minutes by default), within the scope: 0 means Kiali's graph and metrics pages would be
    /// empty.
    pub async fn istio_series(&self) -> Result<u64, PrometheusError> {
        let selector = Selector::metric("istio_requests_total").map_err(|e| {
            self.transport
                .error(None, ErrorKind::InvalidQuery(e.to_string()))
        })?;
        let count = Expr::aggregate(
            promql::Aggregation::Count,
            promql::Grouping::None,
            Expr::vector(selector),
        );
        let answer = self.query(&count, None).await?;
        let n = match answer.value {
            Value::Vector(samples) => samples.first().map_or(0.0, |s| s.point.value),
            _ => 0.0,
        };
        // A count of series: a whole number, far below 2^53 (and 0 for anything else).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(if n >= 1.0 { n as u64 } else { 0 })
    }

    /// The scrape interval and retention, as Kiali finds them: from `thanos_proxy` when it is
    /// enabled, else from Prometheus's `/status/config` and `/status/runtimeinfo`, each
    /// falling back to Prometheus's defaults (15s, 15d) when it cannot be read.
    pub async fn storage(&self) -> Storage {
        if let Some(configured) = self.thanos {
            return configured;
        }
        #[derive(serde::Deserialize)]
        struct ConfigData {
            yaml: String,
        }
        #[derive(serde::Deserialize)]
        struct RuntimeData {
            #[serde(rename = "storageRetention", default)]
            storage_retention: String,
        }
        let path = "/api/v1/status/config";
        let scrape_interval = self
            .api::<ConfigData>(path, &[], Method::Get, path)
            .await
            .ok()
            .and_then(|(c, _, _)| global_scrape_interval(&c.yaml));
        let path = "/api/v1/status/runtimeinfo";
        let retention = self
            .api::<RuntimeData>(path, &[], Method::Get, path)
            .await
            .ok()
            .and_then(|(r, _, _)| time_retention(&r.storage_retention));
        Storage {
            scrape_interval: scrape_interval.unwrap_or(DEFAULT_SCRAPE_INTERVAL),
            retention: retention.unwrap_or(DEFAULT_RETENTION),
            configured: false,
        }
    }

    /// Prometheus's envelope around `T`: the data with the warnings and infos, or the error
    /// that says why there is none.
    async fn api<T: DeserializeOwned>(
        &self,
        path: &str,
        params: &[(&str, String)],
        method: Method,
        shown: &str,
    ) -> Result<(T, Vec<String>, Vec<String>), PrometheusError> {
        let t = &self.transport;
        let (status, body) = t
            .call(t.endpoint(path), params, method, Some(shown))
            .await?;
        let fail = |kind| Err(t.error(Some(shown), kind));
        let secrets = t.secrets();
        match serde_json::from_slice::<Envelope<T>>(&body) {
            Ok(envelope) if envelope.status == "success" => match envelope.data {
                Some(data) => Ok((data, envelope.warnings, envelope.infos)),
                None => fail(ErrorKind::Decode("a success without data".to_string())),
            },
            Ok(envelope) => fail(rejected(
                status,
                &envelope.status,
                envelope.error_type,
                envelope.error,
                secrets,
            )),
            Err(e) => match serde_json::from_slice::<ErrorEnvelope>(&body) {
                Ok(envelope) if envelope.status != "success" => fail(rejected(
                    status,
                    &envelope.status,
                    envelope.error_type,
                    envelope.error,
                    secrets,
                )),
                Ok(_) if (200..300).contains(&status) => {
                    fail(ErrorKind::Decode(secrets.excerpt(e.to_string().as_bytes())))
                }
                _ => fail(ErrorKind::NotPrometheus {
                    status,
                    excerpt: secrets.excerpt(&body),
                }),
            },
        }
    }
}

/// Prometheus's error, as excerpts (a proxy may have put anything there).
fn rejected(
    status: u16,
    envelope_status: &str,
    error_type: Option<String>,
    error: Option<String>,
    secrets: &crate::redact::Secrets,
) -> ErrorKind {
    let error_type = error_type.unwrap_or_else(|| format!("status {envelope_status}"));
    ErrorKind::Rejected {
        status,
        error_type: secrets.excerpt(error_type.as_bytes()),
        error: secrets.excerpt(error.unwrap_or_default().as_bytes()),
    }
}

/// `global.scrape_interval` of the YAML Prometheus writes for `/status/config` (its own
/// marshalling: `global:` at the start of a line, its keys indented below it).
fn global_scrape_interval(yaml: &str) -> Option<Duration> {
    let mut in_global = false;
    for line in yaml.lines() {
        if !line.starts_with(' ') {
            in_global = line.trim_end() == "global:";
            continue;
        }
        if in_global && let Some(value) = line.trim().strip_prefix("scrape_interval:") {
            return meshtrace_model::time::parse_prometheus_duration(
                value.trim().trim_matches('"'),
            );
        }
    }
    None
}

/// The time part of `storageRetention` (`15d`, `15d or 10GiB`); `None` when the retention
/// is by size only (Kiali then uses the default).
fn time_retention(text: &str) -> Option<Duration> {
    let first = text.split_whitespace().next()?;
    if first.to_ascii_lowercase().contains('b') {
        return None;
    }
    meshtrace_model::time::parse_prometheus_duration(first)
}

/// `%XX` sequences decoded (a URL's user and password are kept percent-encoded).
fn percent_decode(text: &str) -> String {
    let pairs = form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
        .map(|(_, v)| v.into_owned())
        .next();
    pairs.unwrap_or_else(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_seconds_with_milliseconds() {
        assert_eq!(seconds(1_700_000_000_781), "1700000000.781");
        assert_eq!(seconds(5), "0.005");
        assert_eq!(seconds(-1), "-0.001");
        assert_eq!(seconds(-1500), "-1.500");
        assert_eq!(seconds(15_000), "15.000");
    }

    #[test]
    fn urls_are_shown_without_credentials_or_query() {
        let url = url::Url::parse("https://kiali:pw@prom.example:9443/base/?token=abc#x").unwrap();
        assert_eq!(shown_url(&url), "https://prom.example:9443/base");
    }

    #[test]
    fn storage_settings_from_prometheus_texts() {
        let yaml = "global:\n  scrape_interval: 30s\n  scrape_timeout: 10s\nscrape_configs:\n- job_name: x\n  scrape_interval: 5s\n";
        assert_eq!(global_scrape_interval(yaml), Some(Duration::from_secs(30)));
        assert_eq!(global_scrape_interval("scrape_configs: []\n"), None);
        assert_eq!(time_retention("15d"), Some(Duration::from_secs(15 * 86400)));
        assert_eq!(
            time_retention("1d or 10GiB"),
            Some(Duration::from_secs(86400))
        );
        assert_eq!(time_retention("10GB"), None);
        assert_eq!(percent_decode("p%40ss+w"), "p@ss+w");
    }
}
