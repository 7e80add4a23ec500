//! `meshtrace diagnose`: find how a tracing backend can be reached, and print the configuration.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use meshtrace_backend::Options;
use meshtrace_backend::diagnose::{USUAL_PORTS, diagnose_ports};
use meshtrace_config::TracingConfig;

#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    /// The backend: a URL (http://tracing.istio-system:16685/jaeger) or a host[:port].
    pub url: String,
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
    /// Exit status: success when at least one configuration works.
    pub fn run(self) -> anyhow::Result<bool> {
        let base = match &self.config {
            Some(file) => {
                meshtrace_config::load_file(file)
                    .map_err(|e| {
                        anyhow::anyhow!("{e}: run `meshtrace config check {}`", file.display())
                    })?
                    .config
                    .tracing
            }
            None => TracingConfig::default(),
        };
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        let diagnosis = runtime
            .block_on(diagnose_ports(
                &self.url,
                &base,
                &self.ports,
                &self.usual_ports.0,
                &Options::default(),
            ))
            .map_err(anyhow::Error::msg)?;
        println!("probes:");
        for probe in &diagnosis.probes {
            match &probe.result {
                Ok(note) => println!("  ok    {}: {note}", probe.test),
                Err(reason) => println!("  no    {}: {reason}", probe.test),
            }
        }
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
}
