//! `meshtrace diagnose`: find how a tracing backend can be reached, and print the configuration.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use meshtrace_backend::Options;
use meshtrace_backend::diagnose::diagnose;
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
            .block_on(diagnose(&self.url, &base, &self.ports, &Options::default()))
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
