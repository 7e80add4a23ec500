//! `meshtrace sim`: Istio-shaped traffic from a simulated Bookinfo mesh.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use meshtrace_model::time::parse_go_duration_std;
use meshtrace_sim::export::Target;
use meshtrace_sim::metrics::IstioMetrics;
use meshtrace_sim::run::{RunOptions, Stats, run};
use meshtrace_sim::{Generator, Mesh, Options, Topology};
use tokio::sync::watch;

use crate::address_args::parse_addr;

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Send OTLP over gRPC to this URL (the default: http://127.0.0.1:4317).
    #[arg(long, value_name = "URL", group = "target")]
    pub otlp_grpc: Option<String>,
    /// Send OTLP over HTTP (protobuf) to this URL, e.g. http://127.0.0.1:4318/v1/traces.
    #[arg(long, value_name = "URL", group = "target")]
    pub otlp_http: Option<String>,
    /// Send Zipkin v2 JSON, as Envoy's Zipkin tracer does, e.g. http://127.0.0.1:9411/api/v2/spans.
    #[arg(long, value_name = "URL", group = "target")]
    pub zipkin: Option<String>,
    #[command(flatten)]
    pub traffic: TrafficArgs,
    /// Stop after this long (Go duration: 30s, 5m); without it, run until interrupted.
    #[arg(long, value_name = "DURATION", value_parser = parse_go_duration_std, conflicts_with = "burst")]
    pub duration: Option<Duration>,
    /// Send N requests as fast as the target accepts them, then stop (for load tests).
    #[arg(long, value_name = "N")]
    pub burst: Option<usize>,
    /// Serve the Istio metrics of the simulated proxies (GET /metrics, Prometheus text) on this
    /// address; after the traffic ends they stay served until interrupted.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub metrics_listen: Option<SocketAddr>,
}

/// What the simulated mesh looks like and how it behaves (shared with `meshtrace demo`).
#[derive(Debug, Clone, Args)]
pub struct TrafficArgs {
    /// Requests per second.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Share of requests that fail (HTTP 503 with response_flags=UH, or 500), 0 to 1.
    #[arg(long, default_value_t = 0.02, value_parser = parse_share)]
    pub error_rate: f64,
    /// Share of requests with one very slow hop, 0 to 1.
    #[arg(long, default_value_t = 0.01, value_parser = parse_share)]
    pub slow_rate: f64,
    /// Seed: the same seed gives the same pods, requests, latencies and faults.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Spread the workloads over N clusters, each with its own istio.cluster_id.
    #[arg(long, default_value_t = 1)]
    pub clusters: usize,
    /// Ambient mesh: waypoint spans instead of sidecar spans.
    #[arg(long)]
    pub ambient: bool,
    /// A topology as JSON instead of the built-in Bookinfo + travel mesh.
    #[arg(long, value_name = "FILE")]
    pub topology: Option<PathBuf>,
}

fn parse_share(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("`{text}` is not a share between 0 and 1")),
    }
}

impl TrafficArgs {
    pub fn generator(&self) -> anyhow::Result<Generator> {
        anyhow::ensure!(self.rate > 0.0, "--rate must be above zero");
        anyhow::ensure!(
            (1..=16).contains(&self.clusters),
            "--clusters must be from 1 to 16"
        );
        let topology = match &self.topology {
            Some(path) => Topology::from_file(path)?,
            None => Topology::bookinfo(),
        };
        let mesh = Mesh::new(topology, self.seed, self.clusters);
        let options = Options {
            error_rate: self.error_rate,
            slow_rate: self.slow_rate,
            ambient: self.ambient,
        };
        Ok(Generator::new(mesh, self.seed, options))
    }
}

impl SimArgs {
    fn target(&self) -> Target {
        match (&self.otlp_grpc, &self.otlp_http, &self.zipkin) {
            (_, Some(url), _) => Target::OtlpHttp(url.clone()),
            (_, _, Some(url)) => Target::Zipkin(url.clone()),
            (Some(url), _, _) => Target::OtlpGrpc(url.clone()),
            _ => Target::OtlpGrpc("http://127.0.0.1:4317".to_string()),
        }
    }

    pub fn run(self) -> anyhow::Result<()> {
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        runtime.block_on(self.simulate())
    }

    async fn simulate(self) -> anyhow::Result<()> {
        let generator = self.traffic.generator()?;
        let target = self.target();
        // One interrupt stops the traffic and the metrics endpoint alike.
        let interrupted = interrupt_watch();
        let metrics = match self.metrics_listen {
            Some(addr) => {
                Some(MetricsEndpoint::start(&generator, addr, until(&interrupted)).await?)
            }
            None => None,
        };
        let options = RunOptions {
            rate: self.traffic.rate,
            duration: self.duration,
            burst: self.burst,
            senders: if self.burst.is_some() { 4 } else { 2 },
            metrics: metrics.as_ref().map(|m| m.metrics.clone()),
            ..RunOptions::default()
        };
        let stats = Arc::new(Stats::default());
        let started = std::time::Instant::now();
        tracing::info!(%target, rate = options.rate, "simulating Bookinfo traffic");
        run(
            generator,
            target,
            options,
            stats.clone(),
            until(&interrupted),
        )
        .await;
        let elapsed = started.elapsed().as_secs_f64();
        let sent = stats.spans_sent.load(std::sync::atomic::Ordering::Relaxed);
        println!(
            "{} in {elapsed:.1}s ({:.0} spans/s)",
            stats.summary(),
            sent as f64 / elapsed.max(1e-9)
        );
        if let Some(endpoint) = metrics {
            // A Prometheus still needs to scrape the final counts, as it would from proxies
            // whose traffic stopped.
            tracing::info!(url = %endpoint.url(), "traffic ended; still serving the Istio metrics until interrupted");
            endpoint.stopped().await?;
        }
        Ok(())
    }
}

/// A flag raised on Ctrl-C or SIGTERM, which several tasks can wait for.
pub fn interrupt_watch() -> watch::Receiver<bool> {
    let (raise, watch) = watch::channel(false);
    tokio::spawn(async move {
        crate::shutdown_signal().await;
        let _ = raise.send(true);
    });
    watch
}

/// Completes once `flag` is raised (or its sender is gone).
pub fn until(
    flag: &watch::Receiver<bool>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let mut flag = flag.clone();
    async move {
        let _ = flag.wait_for(|raised| *raised).await;
    }
}

/// The simulator's Istio metrics, served on their own listener.
pub struct MetricsEndpoint {
    pub metrics: Arc<IstioMetrics>,
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl MetricsEndpoint {
    /// Binds `addr` and serves the metrics of `generator`'s mesh until `shutdown` completes.
    pub async fn start(
        generator: &Generator,
        addr: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<MetricsEndpoint> {
        let metrics = Arc::new(
            IstioMetrics::new(generator.mesh())
                .map_err(|reason| anyhow::anyhow!("cannot serve the Istio metrics: {reason}"))?,
        );
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} for the Istio metrics (--metrics-listen)")
        })?;
        let mut bound = listener.local_addr()?;
        // Listening on every interface: a local Prometheus reaches it on loopback.
        if bound.ip().is_unspecified() {
            bound.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let server = tokio::spawn(meshtrace_sim::metrics::serve(
            listener,
            metrics.clone(),
            shutdown,
        ));
        tracing::info!(addr = %bound, url = %format!("http://{bound}/metrics"), "Istio metrics ready");
        Ok(MetricsEndpoint {
            metrics,
            addr: bound,
            server,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// Waits until the endpoint has stopped.
    pub async fn stopped(self) -> anyhow::Result<()> {
        self.server
            .await
            .context("the Istio metrics task failed")?
            .context("the Istio metrics endpoint failed")
    }
}
