//! Finds how a tracing backend can be reached: which ports of its host are open, and which of
//! Jaeger HTTP (with and without a `/jaeger` prefix), Jaeger gRPC and Tempo HTTP answer on them,
//! using the auth and headers of a given configuration. Every probe is reported; the
//! configurations that worked come back best first.

use std::time::Duration;

use meshtrace_config::{Provider, TracingConfig};

use crate::{JaegerGrpc, JaegerHttp, Options, TracingBackend};

/// The ports Jaeger and Tempo are usually found on.
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
}

impl Working {
    /// A ready-to-paste `external_services.tracing` block.
    pub fn yaml(&self) -> String {
        format!(
            "external_services:\n  tracing:\n    enabled: true\n    provider: {}\n    internal_url: {}\n    use_grpc: {}\n",
            self.provider.as_str(),
            self.internal_url,
            self.use_grpc
        )
    }
}

#[derive(Debug, Default)]
pub struct Diagnosis {
    pub probes: Vec<Probe>,
    pub working: Vec<Working>,
}

/// Probes the host of `target` (a URL, or `host[:port]`) on its own port, the usual ports and
/// `extra_ports`, with the auth and headers of `base`.
pub async fn diagnose(
    target: &str,
    base: &TracingConfig,
    extra_ports: &[u16],
    options: &Options,
) -> Result<Diagnosis, String> {
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
    let mut ports: Vec<u16> = url
        .port()
        .into_iter()
        .chain(extra_ports.iter().copied())
        .chain(USUAL_PORTS)
        .collect();
    let mut seen = std::collections::HashSet::new();
    ports.retain(|p| seen.insert(*p));
    let path = url.path().trim_end_matches('/').to_string();

    let mut diagnosis = Diagnosis::default();
    for port in ports {
        let open = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await;
        let open = matches!(open, Ok(Ok(_)));
        diagnosis.probes.push(Probe {
            test: format!("tcp {host}:{port}"),
            result: if open {
                Ok("open".into())
            } else {
                Err("closed or filtered".into())
            },
        });
        if !open {
            continue;
        }
        let root = format!("http://{host}:{port}");
        let mut prefixes = vec![path.clone(), String::new(), "/jaeger".to_string()];
        prefixes.dedup();
        let mut seen_prefix = std::collections::HashSet::new();
        prefixes.retain(|p| seen_prefix.insert(p.clone()));

        let grpc_url = root.clone();
        let grpc = probe(base, &grpc_url, Provider::Jaeger, true, options).await;
        let speaks_grpc = grpc.is_ok();
        record(
            &mut diagnosis,
            format!("Jaeger gRPC {grpc_url}"),
            grpc,
            Provider::Jaeger,
            true,
            &grpc_url,
        );
        if speaks_grpc {
            diagnosis.probes.push(Probe {
                test: format!("HTTP {root}"),
                result: Err("skipped: this port speaks gRPC".to_string()),
            });
            continue;
        }
        for prefix in prefixes {
            let http_url = format!("{root}{prefix}");
            let http = probe(base, &http_url, Provider::Jaeger, false, options).await;
            record(
                &mut diagnosis,
                format!("Jaeger HTTP {http_url}"),
                http,
                Provider::Jaeger,
                false,
                &http_url,
            );
        }
        let tempo = tempo_echo(&root).await;
        let tempo_url = root.clone();
        record(
            &mut diagnosis,
            format!("Tempo HTTP {tempo_url}/api/echo"),
            tempo,
            Provider::Tempo,
            false,
            &tempo_url,
        );
    }
    // Jaeger gRPC is Kiali's default; then Jaeger HTTP; Tempo last (its client is not there yet).
    diagnosis
        .working
        .sort_by_key(|w| match (w.provider, w.use_grpc) {
            (Provider::Jaeger, true) => 0,
            (Provider::Jaeger, false) => 1,
            (Provider::Tempo, _) => 2,
        });
    Ok(diagnosis)
}

fn record(
    diagnosis: &mut Diagnosis,
    test: String,
    result: Result<String, String>,
    provider: Provider,
    use_grpc: bool,
    url: &str,
) {
    if let Ok(note) = &result {
        diagnosis.working.push(Working {
            provider,
            use_grpc,
            internal_url: url.to_string(),
            note: note.clone(),
        });
    }
    diagnosis.probes.push(Probe { test, result });
}

async fn probe(
    base: &TracingConfig,
    url: &str,
    provider: Provider,
    use_grpc: bool,
    options: &Options,
) -> Result<String, String> {
    let mut config = base.clone();
    config.provider = provider;
    config.use_grpc = use_grpc;
    config.internal_url = url.to_string();
    config.query_timeout_secs = config.query_timeout_secs.min(3);
    let client: Box<dyn TracingBackend> = if use_grpc {
        Box::new(JaegerGrpc::new(&config, options).map_err(|e| e.to_string())?)
    } else {
        Box::new(JaegerHttp::new(&config, options).map_err(|e| e.to_string())?)
    };
    match client.services().await {
        Ok(services) => Ok(format!(
            "{} answers, {} services",
            client.describe(),
            services.len()
        )),
        Err(error) => Err(error.to_string()),
    }
}

async fn tempo_echo(root: &str) -> Result<String, String> {
    let response = reqwest::Client::new()
        .get(format!("{root}/api/echo"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| {
            format!(
                "no answer: {}",
                std::error::Error::source(&e)
                    .map(|s| s.to_string())
                    .unwrap_or_default()
            )
        })?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    if status == 200 && body.trim() == "echo" {
        Ok(format!(
            "Tempo at {root} answers (meshtrace's Tempo client arrives in a later version)"
        ))
    } else {
        Err(format!("HTTP {status}, not Tempo's echo"))
    }
}
