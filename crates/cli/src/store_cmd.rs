//! `meshtrace store`: the embedded Jaeger-compatible trace store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use meshtrace_model::time::parse_go_duration_std;
use meshtrace_store::server::{Listeners, ServeOptions, serve};
use meshtrace_store::{DEFAULT_DICTIONARY_MAX_ENTRIES, Store, StoreOptions};

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Directory of the durable store (created if missing).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "./meshtrace-data",
        conflicts_with = "memory"
    )]
    pub data_dir: PathBuf,
    /// Keep everything in memory instead (lost when the process stops).
    #[arg(long)]
    pub memory: bool,
    #[command(flatten)]
    pub addresses: crate::address_args::StoreAddressArgs,
    /// How long spans are kept (Go duration: 72h, 30m, ...).
    #[arg(long, value_name = "DURATION", default_value = "72h", value_parser = parse_retention)]
    pub retention: Duration,
    /// The largest request body accepted, in bytes, before or after gzip.
    #[arg(long, value_name = "BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body: usize,
    /// The most strings (tag keys, repeated values, operation names) the dictionary holds in
    /// memory; past it, new strings are stored inline in the spans.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_DICTIONARY_MAX_ENTRIES)]
    pub dictionary_max_entries: u32,
    /// Verify the data directory instead of serving (the store must be stopped): prints what is
    /// damaged and exits 1 when anything is.
    #[arg(long, conflicts_with = "memory")]
    pub check: bool,
    #[command(flatten)]
    pub limits: crate::listen_args::ListenArgs,
    #[command(flatten)]
    pub metrics: crate::metrics_args::MetricsArgs,
    #[command(flatten)]
    pub jaeger_ui: crate::jaeger_ui_args::JaegerUiArgs,
}

fn parse_retention(text: &str) -> Result<Duration, String> {
    match parse_go_duration_std(text)? {
        Duration::ZERO => Err("the retention must be longer than zero".to_string()),
        retention => Ok(retention),
    }
}

impl StoreArgs {
    /// Serves until stopped; or, with `--check`, checks the data directory: exit code 0 when
    /// it is intact, 1 when it is damaged, 2 when it cannot be checked.
    pub fn run(self) -> anyhow::Result<ExitCode> {
        if self.check {
            return Ok(self.check());
        }
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        runtime.block_on(self.serve())?;
        Ok(ExitCode::SUCCESS)
    }

    fn check(&self) -> ExitCode {
        match meshtrace_store::check::check(&self.data_dir) {
            Ok(report) => {
                print!("{}\n{report}", self.data_dir.display());
                if report.is_damaged() {
                    ExitCode::FAILURE
                } else {
                    ExitCode::SUCCESS
                }
            }
            Err(error) => {
                eprintln!("error: cannot check {}: {error}", self.data_dir.display());
                ExitCode::from(2)
            }
        }
    }

    async fn serve(self) -> anyhow::Result<()> {
        let jaeger_ui = self.jaeger_ui.load()?;
        let options = StoreOptions {
            retention: self.retention,
            dictionary_max_entries: self.dictionary_max_entries,
            metrics: self.metrics.options(),
        };
        let store = if self.memory {
            tracing::info!("keeping spans in memory only (--memory)");
            Store::in_memory_with(&options)
        } else {
            std::fs::create_dir_all(&self.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    self.data_dir.display()
                )
            })?;
            let store = Store::open_with(&self.data_dir, &options)
                .with_context(|| format!("cannot open the store in {}", self.data_dir.display()))?;
            tracing::info!(dir = %self.data_dir.display(), "durable store opened");
            store
        };
        let listeners = Listeners::bind(&self.addresses.addresses()).await?;
        let options = ServeOptions {
            max_body: self.max_body,
            retention_interval: Duration::from_secs(60),
            limits: self.limits.limits(),
            jaeger_ui,
        };
        serve(
            Arc::new(store),
            listeners,
            options,
            crate::shutdown_signal(),
        )
        .await?;
        Ok(())
    }
}
