//! Finds how a tracing backend can be reached: which ports of its host are open, and which of
//! Jaeger HTTP (with and without a `/jaeger` prefix), Jaeger gRPC and Tempo HTTP answer on them,
//! using the auth and headers of a given configuration. A port that answers a TLS handshake is
//! probed over https (with the configuration's CA and client certificate). Every probe is
//! reported; the configurations that worked come back best first. [`diagnose_prometheus`] does
//! the same for a Prometheus.

mod prometheus;

pub use prometheus::{
    PrometheusDiagnosis, PrometheusWorking, diagnose_prometheus, no_istio_metrics,
};

use std::time::Duration;

use meshtrace_config::{Provider, TracingConfig};

use crate::Options;

/// The ports Jaeger and Tempo are usually found on: what [`diagnose`] tries besides the URL's.
pub const USUAL_PORTS: [u16; 8] = [16686, 16685, 80, 443, 3200, 3100, 8080, 9095];

const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// What was tried: `tcp 16685`, `Jaeger gRPC http://h:16685`.
    pub test: String,
    /// What came of it: `Ok` with a short note, or `Err` with the reason.
    pub result: Result<String, String>,
}

/// A configuration that answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Working {
    pub provider: Provider,
    pub use_grpc: bool,
    pub internal_url: String,
    pub note: String,
    /// The `auth` and `custom_headers` lines of the configuration the probe used (secrets as
    /// `xxx`, file paths as they are).
    pub settings: String,
}

impl Working {
    /// A ready-to-paste `external_services.tracing` block.
    pub fn yaml(&self) -> String {
        format!(
            "external_services:\n  tracing:\n    enabled: true\n    provider: {}\n    internal_url: {}\n    use_grpc: {}\n{}",
            self.provider.as_str(),
            self.internal_url,
            self.use_grpc,
            self.settings
        )
    }
}

/// The auth and header settings of a service's configuration that differ from the defaults, as
/// YAML lines under `tracing:` or `prometheus:`. A secret given literally shows as `xxx`
/// (paste your own); a secret read from a file shows its path.
fn settings_yaml(
    auth: &meshtrace_config::Auth,
    custom_headers: &std::collections::BTreeMap<String, String>,
) -> String {
    use std::fmt::Write as _;
    let shown = |c: &meshtrace_config::Credential| match c.file() {
        Some(path) => path.display().to_string(),
        None => c.obfuscated().to_string(),
    };
    let mut lines = String::new();
    if auth.kind != meshtrace_config::AuthType::None {
        let _ = writeln!(lines, "      type: {}", auth.kind.as_str());
    }
    for (key, credential) in [
        ("username", &auth.username),
        ("password", &auth.password),
        ("token", &auth.token),
        ("cert_file", &auth.cert_file),
        ("key_file", &auth.key_file),
    ] {
        if !credential.is_empty() {
            let _ = writeln!(lines, "      {key}: {}", shown(credential));
        }
    }
    if !auth.ca_file.is_empty() {
        let _ = writeln!(lines, "      ca_file: {}", auth.ca_file);
    }
    if auth.insecure_skip_verify {
        lines.push_str("      insecure_skip_verify: true\n");
    }
    if auth.use_kiali_token {
        lines.push_str("      use_kiali_token: true\n");
    }
    let mut out = String::new();
    if !lines.is_empty() {
        out = format!("    auth:\n{lines}");
    }
    if !custom_headers.is_empty() {
        out.push_str("    custom_headers:\n");
        for name in custom_headers.keys() {
            let _ = writeln!(out, "      {name}: xxx");
        }
    }
    out
}

/// `target` (a URL, or `host[:port]` taken as `http://`) as a URL, and its host.
fn target_url(target: &str) -> Result<(url::Url, String), String> {
    let with_scheme = if target.contains("://") {
        target.to_string()
    } else {
        format!("http://{target}")
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| format!("`{target}` is not a URL or host: {e}"))?;
    let host = url
        .host_str()
        .ok_or_else(|| format!("`{target}` has no host"))?
        .to_string();
    Ok((url, host))
}

/// Whether `host:port` accepts a connection within [`CONNECT_TIMEOUT`], reported as the probe
/// `tcp host:port` in `probes` (`closed` says what to do when it does not).
async fn probe_port(probes: &mut Vec<Probe>, host: &str, port: u16, closed: &str) -> bool {
    let open = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect((host, port)),
    );
    let open = matches!(open.await, Ok(Ok(_)));
    probes.push(Probe {
        test: format!("tcp {host}:{port}"),
        result: if open {
            Ok("open".into())
        } else {
            Err(closed.into())
        },
    });
    open
}

#[derive(Debug, Default)]
pub struct Diagnosis {
    pub probes: Vec<Probe>,
    pub working: Vec<Working>,
}

/// Probes the host of `target` (a URL, or `host[:port]`) on its own port, `extra_ports` and
/// the [`USUAL_PORTS`], with the auth and headers of `base`.
pub async fn diagnose(
    target: &str,
    base: &TracingConfig,
    extra_ports: &[u16],
    options: &Options,
) -> Result<Diagnosis, String> {
    diagnose_ports(target, base, extra_ports, &USUAL_PORTS, options).await
}

/// [`diagnose`] with another list of usual ports (`meshtrace diagnose --usual-ports`): a test,
/// or a user who knows the backend is not on Jaeger's and Tempo's ports, sets its own, so that
/// whatever else listens on those ports of the host plays no part.
pub async fn diagnose_ports(
    target: &str,
    base: &TracingConfig,
    extra_ports: &[u16],
    usual_ports: &[u16],
    options: &Options,
) -> Result<Diagnosis, String> {
    let (url, host) = target_url(target)?;
    let mut ports: Vec<u16> = url
        .port()
        .into_iter()
        .chain(extra_ports.iter().copied())
        .chain(usual_ports.iter().copied())
        .collect();
    let mut seen = std::collections::HashSet::new();
    ports.retain(|p| seen.insert(*p));
    let path = url.path().trim_end_matches('/').to_string();

    let settings = settings_yaml(&base.auth, &base.custom_headers);
    let mut diagnosis = Diagnosis::default();
    for port in ports {
        if !probe_port(&mut diagnosis.probes, &host, port, "closed or filtered").await {
            continue;
        }
        let tls = speaks_tls(&host, port).await;
        if tls {
            diagnosis.probes.push(Probe {
                test: format!("tls {host}:{port}"),
                result: Ok("speaks TLS: probing over https".into()),
            });
        }
        let scheme = if tls { "https" } else { "http" };
        let root = format!("{scheme}://{host}:{port}");
        let mut prober = Prober {
            diagnosis: &mut diagnosis,
            settings: &settings,
            base,
            options,
        };
        if prober.attempt(&root, Provider::Jaeger, true).await {
            prober.diagnosis.probes.push(Probe {
                test: format!("HTTP {root}"),
                result: Err("skipped: this port speaks gRPC".to_string()),
            });
            continue;
        }
        // Jaeger HTTP at the URL's path, at the root, under /jaeger: the first that answers.
        let mut prefixes = vec![path.clone()];
        for prefix in ["", "/jaeger"] {
            if !prefixes.iter().any(|p| p == prefix) {
                prefixes.push(prefix.to_string());
            }
        }
        for prefix in prefixes {
            if prober
                .attempt(&format!("{root}{prefix}"), Provider::Jaeger, false)
                .await
            {
                break;
            }
        }
        prober.attempt(&root, Provider::Tempo, false).await;
    }
    // Jaeger gRPC is Kiali's default; then Jaeger HTTP; then Tempo.
    diagnosis
        .working
        .sort_by_key(|w| match (w.provider, w.use_grpc) {
            (Provider::Jaeger, true) => 0,
            (Provider::Jaeger, false) => 1,
            (Provider::Tempo, _) => 2,
        });
    Ok(diagnosis)
}

/// Runs probes with the auth and headers of one configuration and records their results.
struct Prober<'a> {
    diagnosis: &'a mut Diagnosis,
    settings: &'a str,
    base: &'a TracingConfig,
    options: &'a Options,
}

impl Prober<'_> {
    /// Tries the client `provider`/`use_grpc` at `url`; true when it answered.
    async fn attempt(&mut self, url: &str, provider: Provider, use_grpc: bool) -> bool {
        let test = match (provider, use_grpc) {
            (Provider::Jaeger, true) => format!("Jaeger gRPC {url}"),
            (Provider::Jaeger, false) => format!("Jaeger HTTP {url}"),
            (Provider::Tempo, _) => format!("Tempo HTTP {url}"),
        };
        let mut config = self.base.clone();
        config.provider = provider;
        config.use_grpc = use_grpc;
        config.internal_url = url.to_string();
        config.query_timeout_secs = config.query_timeout_secs.min(3);
        let result = probe(&config, self.options).await;
        if let Ok(note) = &result {
            self.diagnosis.working.push(Working {
                provider,
                use_grpc,
                internal_url: url.to_string(),
                note: note.clone(),
                settings: self.settings.to_string(),
            });
        }
        let answered = result.is_ok();
        self.diagnosis.probes.push(Probe { test, result });
        answered
    }
}

/// Asks the client the configuration names for its services (and Tempo for its echo first,
/// which tells it apart from any HTTP server).
async fn probe(config: &TracingConfig, options: &Options) -> Result<String, String> {
    let client = crate::connect(config, options).map_err(|e| e.to_string())?;
    if config.provider == Provider::Tempo {
        client.status().await.map_err(|e| e.to_string())?;
    }
    let services = client.services().await.map_err(|e| e.to_string())?;
    Ok(format!(
        "{} answers, {} services",
        client.describe(),
        services.len()
    ))
}

/// True when the port completes a TLS handshake (any certificate: this only asks which
/// scheme to use; the probes then verify as the configuration says).
async fn speaks_tls(host: &str, port: u16) -> bool {
    let Ok(name) = rustls::pki_types::ServerName::try_from(host.to_string()) else {
        return false;
    };
    let insecure = meshtrace_config::Auth {
        insecure_skip_verify: true,
        ..Default::default()
    };
    let Ok(config) = crate::tls::client_config(&insecure, &[b"h2", b"http/1.1"]) else {
        return false;
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let handshake = async {
        let tcp = tokio::net::TcpStream::connect((host, port)).await.ok()?;
        connector.connect(name, tcp).await.ok()
    };
    matches!(
        tokio::time::timeout(CONNECT_TIMEOUT.saturating_mul(2), handshake).await,
        Ok(Some(_))
    )
}
