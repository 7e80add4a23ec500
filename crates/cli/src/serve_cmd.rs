//! `meshtrace serve`: the console (web pages and Kiali's API) for the backend a Kiali
//! configuration names.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use meshtrace_console::{Console, ConsoleOptions};

use crate::address_args::parse_addr;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The Kiali configuration (config.yaml, ConfigMap or Kiali CR).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Where to listen; by default `server.address` and `server.port` of the config (:20001).
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    pub listen: Option<SocketAddr>,
    /// Let POST /api/tracing/check reach any destination, not only the configured backend
    /// (the live secrets still go to the configured backend only).
    #[arg(long)]
    pub allow_check_any_host: bool,
    #[command(flatten)]
    pub limits: crate::listen_args::ListenArgs,
    /// The OpenID client secret (`auth.strategy: openid`): the file Kiali's Secret is mounted
    /// at. Without the file the client is public and authenticates with PKCE alone.
    #[arg(long, value_name = "FILE", default_value = meshtrace_config::DEFAULT_OIDC_SECRET_FILE)]
    pub oidc_secret_file: PathBuf,
    /// An address or network (CIDR) of the authenticating proxy that `auth.strategy: header`
    /// believes; repeat for several. Requests from elsewhere are refused.
    #[arg(long = "auth-trusted-proxy", value_name = "CIDR", value_parser = parse_net)]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Require a session for /metrics too (by default it is open, for scrapers).
    #[arg(long)]
    pub private_metrics: bool,
}

/// An address (`10.0.0.7`, `::1`) or a network (`10.0.0.0/8`).
fn parse_net(text: &str) -> Result<ipnet::IpNet, String> {
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("`{text}` is not an IP address or a CIDR network (e.g. 10.0.0.0/8)"))
}

impl ServeArgs {
    pub fn run(self) -> anyhow::Result<()> {
        let loaded = meshtrace_config::load_file(&self.config).map_err(|e| {
            anyhow::anyhow!(
                "{e}: run `meshtrace config check {}`",
                self.config.display()
            )
        })?;
        for warning in &loaded.warnings {
            tracing::warn!(path = %warning.path, "{}", warning.message);
        }
        let config = loaded.config;
        let listen = match self.listen {
            Some(listen) => listen,
            None => {
                let host = if config.server.address.is_empty() {
                    "0.0.0.0"
                } else {
                    config.server.address.as_str()
                };
                parse_addr(&format!("{host}:{}", config.server.port)).map_err(anyhow::Error::msg)?
            }
        };
        let options = ConsoleOptions {
            allow_check_any_host: self.allow_check_any_host,
            limits: self.limits.limits(),
            auth: meshtrace_console::auth::AuthOptions {
                oidc_secret_file: self.oidc_secret_file,
                trusted_proxies: self.trusted_proxies,
                public_metrics: !self.private_metrics,
            },
            ..ConsoleOptions::default()
        };
        let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            let bound = listener.local_addr()?;
            let root = config.server.path_prefix().to_string();
            println!("meshtrace console: http://{bound}{root}/api/tracing");
            println!("  mode  {}", meshtrace_config::mode(&config.tracing));
            println!(
                "  {}",
                meshtrace_config::metrics_mode(&config.prometheus, &config.tracing)
            );
            let strategy = config.auth.strategy.as_str();
            let console = Console::new(config, options);
            if let Some(problem) = console.auth.problem() {
                anyhow::bail!("auth.strategy `{strategy}` cannot work: {problem}");
            }
            if strategy != "anonymous" {
                println!("  auth  {strategy}");
            }
            console
                .serve(listener, crate::shutdown_signal())
                .await
                .context("the console stopped")?;
            println!("console stopped");
            Ok(())
        })
    }
}
