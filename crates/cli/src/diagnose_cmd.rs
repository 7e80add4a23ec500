//! `meshtrace diagnose`: find how a tracing backend (and a Prometheus, with `--prometheus`) can be
//! reached, and print the configuration.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use meshtrace_backend::Options;
use meshtrace_backend::diagnose::{USUAL_PORTS, diagnose_ports, diagnose_prometheus};
use meshtrace_backend::prometheus::PrometheusOptions;
use meshtrace_config::Config;

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// The tracing backend: a URL (http://tracing.istio-system:16685/jaeger) or a host[:port].
    #[arg(required_unless_present = "prometheus")]
    pub url: Option<String>,
    /// A Prometheus to probe too (or only): a URL (http://prometheus.istio-system:9090) or a
    /// host[:port] (port 9090 when none), with the `external_services.prometheus` auth, headers
    /// and query_scope of --config.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
    /// A Kiali configuration whose auth and custom headers the probes use.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Another port to try, besides the URL's and the usual ones (repeatable).
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,
    /// The usual ports of Jaeger and Tempo, tried besides these: comma-separated, or `none`.
    #[arg(
        long,
        value_name = "PORTS",
        value_parser = parse_port_list,
        default_value_t = PortList(USUAL_PORTS.to_vec())
    )]
    pub usual_ports: PortList,
}

/// A list of ports given as `16686,16685`, or `none`.
#[derive(Debug, Clone)]
pub struct PortList(Vec<u16>);

impl std::fmt::Display for PortList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let ports: Vec<String> = self.0.iter().map(u16::to_string).collect();
        f.write_str(&ports.join(","))
    }
}

fn parse_port_list(text: &str) -> Result<PortList, String> {
    let text = text.trim();
    if text.is_empty() || text == "none" {
        return Ok(PortList(Vec::new()));
    }
    text.split(',')
        .map(|port| {
            let port = port.trim();
            match port.parse::<u16>() {
                Ok(0) | Err(_) => Err(format!(
                    "`{port}` is not a port (1-65535); give ports as 16686,16685 or `none`"
                )),
                Ok(port) => Ok(port),
            }
        })
        .collect::<Result<_, _>>()
        .map(PortList)
}

impl DiagnoseArgs {
    /// Exit status: success when every service asked about has a configuration that works.
    pub fn run(self) -> anyhow::Result<bool> {
        let config = match &self.config {
            Some(file) => {
                meshtrace_config::load_file(file)
                    .map_err(|e| {
                        anyhow::anyhow!("{e}: run `meshtrace config check {}`", file.display())
                    })?
                    .config
            }
            None => Config::default(),
        };
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        let mut ok = true;
        if let Some(url) = &self.url {
            ok &= runtime.block_on(self.tracing(url, &config))?;
        }
        if let Some(url) = &self.prometheus {
            if self.url.is_some() {
                println!();
            }
            ok &= runtime.block_on(self.prometheus(url, &config))?;
        }
        Ok(ok)
    }

    async fn tracing(&self, url: &str, config: &Config) -> anyhow::Result<bool> {
        let diagnosis = diagnose_ports(
            url,
            &config.tracing,
            &self.ports,
            &self.usual_ports.0,
            &Options::default(),
        )
        .await
        .map_err(anyhow::Error::msg)?;
        println!("probes:");
        print_probes(&diagnosis.probes);
        if diagnosis.working.is_empty() {
            println!("\nno configuration worked");
            return Ok(false);
        }
        println!("\nworking configurations, best first:");
        for (i, working) in diagnosis.working.iter().enumerate() {
            println!("\n# {}. {}", i + 1, working.note);
            print!("{}", working.yaml());
        }
        if self.config.is_some() {
            println!("\n# keep the auth and custom_headers of your configuration with these.");
        }
        Ok(true)
    }

    async fn prometheus(&self, url: &str, config: &Config) -> anyhow::Result<bool> {
        let diagnosis = diagnose_prometheus(url, &config.prometheus, &PrometheusOptions::default())
            .await
            .map_err(anyhow::Error::msg)?;
        println!("prometheus probes:");
        print_probes(&diagnosis.probes);
        let Some(working) = diagnosis.working else {
            println!("\nno Prometheus answered");
            return Ok(false);
        };
        println!("\nworking Prometheus configuration:\n\n# {}", working.note);
        print!("{}", working.yaml());
        Ok(true)
    }
}

fn print_probes(probes: &[meshtrace_backend::diagnose::Probe]) {
    for probe in probes {
        match &probe.result {
            Ok(note) => println!("  ok    {}: {note}", probe.test),
            Err(reason) => println!("  no    {}: {reason}", probe.test),
        }
    }
}
