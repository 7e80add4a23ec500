//! `meshtrace demo`: the trace store, the Bookinfo simulator and the console on one machine.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use meshtrace_console::ConsoleOptions;
use meshtrace_sim::export::Target;
use meshtrace_sim::run::{RunOptions, Stats, run};
use meshtrace_store::server::{Listeners, ServeOptions, serve};
use meshtrace_store::{Store, StoreOptions};

use crate::address_args::{StoreAddressArgs, on_loopback, parse_addr};
use crate::sim_cmd::{MetricsEndpoint, TrafficArgs};

#[derive(Debug, Args)]
#[command(mut_args(on_loopback))]
pub struct DemoArgs {
    /// Keep the store here; by default a temporary directory, removed at exit.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    // The store's listeners: the same flags as `meshtrace store`, on loopback by default.
    #[command(flatten)]
    pub store: StoreAddressArgs,
    /// The console's address (Kiali's port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:20001", value_parser = parse_addr)]
    pub console: std::net::SocketAddr,
    #[command(flatten)]
    pub traffic: TrafficArgs,
    /// Where the simulator serves its proxies' Istio metrics (GET /metrics), for a Prometheus
    /// to scrape (Envoy's own stats port).
    #[arg(long, value_name = "ADDR", default_value = ":15090", value_parser = parse_addr)]
    pub metrics_listen: std::net::SocketAddr,
    #[command(flatten)]
    pub metrics: crate::metrics_args::MetricsArgs,
    #[command(flatten)]
    pub jaeger_ui: crate::jaeger_ui_args::JaegerUiArgs,
}

impl DemoArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        runtime.block_on(self.serve())
    }

    async fn serve(self) -> anyhow::Result<()> {
        let generator = self.traffic.generator()?;
        let jaeger_ui = self.jaeger_ui.load()?;
        let temporary;
        let dir = match &self.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                dir.clone()
            }
            None => {
                temporary =
                    tempfile::tempdir().context("cannot create a temporary data directory")?;
                temporary.path().to_path_buf()
            }
        };
        let options = StoreOptions {
            metrics: self.metrics.options(),
            ..StoreOptions::new(Duration::from_secs(72 * 3600))
        };
        let store = Arc::new(
            Store::open_with(&dir, &options)
                .with_context(|| format!("cannot open the store in {}", dir.display()))?,
        );
        let listeners = Listeners::bind(&self.store.addresses()).await?;
        let bound = listeners.addresses()?;
        let (stop_store, store_stopped) = tokio::sync::oneshot::channel::<()>();
        let options = ServeOptions {
            max_body: 16 << 20,
            retention_interval: Duration::from_secs(60),
            limits: meshtrace_listen::Limits::default(),
            jaeger_ui,
        };
        let server = tokio::spawn(serve(store, listeners, options, async {
            let _ = store_stopped.await;
        }));

        // The console reads the store as Kiali would read Jaeger: gRPC on the query port; its
        // "Distributed Tracing" item and "View in Tracing" links lead to its own Jaeger-style
        // pages (/jaeger/...), so no Jaeger UI is needed.
        let console_listener = tokio::net::TcpListener::bind(self.console)
            .await
            .with_context(|| format!("cannot listen on {}", self.console))?;
        let mut console_addr = console_listener.local_addr()?;
        // Listening on every interface: the browser reaches it on loopback.
        if console_addr.ip().is_unspecified() {
            console_addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        // The store serves the metrics it derives as a Prometheus API: the console reads them
        // there, as it would read a cluster's Prometheus. Without derived metrics there are
        // none to read.
        let prometheus = if self.metrics.options().is_some() {
            format!("    url: http://{}/prometheus\n", bound.query_http)
        } else {
            "    enabled: false\n".to_string()
        };
        let config = meshtrace_config::load_str(&format!(
            "external_services:\n  tracing:\n    enabled: true\n    provider: jaeger\n    \
             internal_url: http://{}\n    use_grpc: true\n    external_url: http://{console_addr}/jaeger\n  \
             prometheus:\n{prometheus}",
            bound.query_grpc
        ))
        .map_err(|problems| anyhow::anyhow!("the demo's configuration is invalid: {problems:?}"))?
        .config;
        let metrics_mode = meshtrace_config::metrics_mode(&config.prometheus, &config.tracing);
        let console = meshtrace_console::Console::new(config, ConsoleOptions::default());
        let (stop_console, console_stopped) = tokio::sync::oneshot::channel::<()>();
        let console_task = tokio::spawn(console.serve(console_listener, async {
            let _ = console_stopped.await;
        }));

        let (stop_sim_metrics, sim_metrics_stopped) = tokio::sync::oneshot::channel::<()>();
        let sim_metrics = MetricsEndpoint::start(&generator, self.metrics_listen, async {
            let _ = sim_metrics_stopped.await;
        })
        .await?;

        println!("meshtrace demo: a simulated Bookinfo mesh sending traces to the embedded store");
        println!("  console           http://{console_addr}/console/overview");
        println!("  console API       http://{console_addr}/api/namespaces");
        if self.metrics.options().is_some() {
            // What `external_services.prometheus.url` names to read the mesh's metrics.
            println!("  Prometheus API    http://{}/prometheus", bound.query_http);
        }
        // What each simulated Envoy would expose, for a real Prometheus to scrape.
        println!("  Istio metrics     {}", sim_metrics.url());
        println!(
            "  Jaeger query API  http://{}/api/services",
            bound.query_http
        );
        if self.jaeger_ui.jaeger_ui.is_some() {
            println!("  Jaeger UI         http://{}/search", bound.query_http);
        }
        println!("  OTLP/gRPC ingest  {}", bound.otlp_grpc);
        println!("  OTLP/HTTP ingest  http://{}/v1/traces", bound.otlp_http);
        println!("  Zipkin ingest     http://{}/api/v2/spans", bound.zipkin);
        println!("  data directory    {}", dir.display());
        println!("  {metrics_mode}");
        println!("Press Ctrl-C to stop.");

        let stats = Arc::new(Stats::default());
        let target = Target::OtlpGrpc(format!("http://{}", bound.otlp_grpc));
        let sim = RunOptions {
            rate: self.traffic.rate,
            metrics: Some(sim_metrics.metrics.clone()),
            ..RunOptions::default()
        };
        run(
            generator,
            target,
            sim,
            stats.clone(),
            crate::shutdown_signal(),
        )
        .await;
        println!("simulator stopped: {}", stats.summary());
        let _ = stop_sim_metrics.send(());
        sim_metrics.stopped().await?;
        let _ = stop_console.send(());
        console_task.await.context("the console task failed")??;
        println!("console stopped");
        let _ = stop_store.send(());
        server.await.context("the store task failed")??;
        println!("store stopped");
        Ok(())
    }
}
