//! The `meshtrace` binary: a thin layer of argument parsing over the library crates.

// No unwrap or expect outside tests (clippy.toml allows them there): every one left says why.
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod address_args;
mod config_cmd;
mod demo_cmd;
mod diagnose_cmd;
mod jaeger_ui_args;
mod listen_args;
mod metrics_args;
mod serve_cmd;
mod sim_cmd;
mod store_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// The store allocates and frees many small buffers per span; glibc's allocator spent about a
/// third of the ingest CPU time on them (measured with perf), mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A tracing console for service meshes that reads Kiali's tracing configuration.
#[derive(Debug, Parser)]
#[command(name = "meshtrace", version, about, long_about = None)]
struct Cli {
    /// Log line format (the level is set with RUST_LOG, default `info`).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check or show a Kiali configuration (config.yaml, ConfigMap or Kiali CR).
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Run the embedded Jaeger-compatible trace store: OTLP and Zipkin in, Jaeger query API out.
    Store(store_cmd::StoreArgs),
    /// Simulate a Bookinfo mesh whose proxies send Istio-shaped spans to a trace store.
    Sim(sim_cmd::SimArgs),
    /// Run the trace store, the simulator and the console together on this machine.
    Demo(demo_cmd::DemoArgs),
    /// Find how a tracing backend can be reached and print a working configuration.
    Diagnose(diagnose_cmd::DiagnoseArgs),
    /// Run the console (web pages and Kiali's API) for the tracing backend a Kiali
    /// configuration names.
    Serve(serve_cmd::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match cli.command {
        Command::Config(command) => command.run(),
        Command::Store(args) => match args.run() {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
        Command::Sim(args) => report(args.run()),
        Command::Demo(args) => report(args.run()),
        Command::Serve(args) => report(args.run()),
        Command::Diagnose(args) => match args.run() {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        // The storage engine reports routine maintenance at info level; keep that out by default.
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,fjall=warn,lsm_tree=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    fn parse(args: &[&str]) -> Command {
        Cli::try_parse_from(args).unwrap().command
    }

    #[test]
    fn store_listens_everywhere_and_the_demo_on_loopback_by_default() {
        let Command::Store(store) = parse(&["meshtrace", "store"]) else {
            panic!("not the store command");
        };
        let Command::Demo(demo) = parse(&["meshtrace", "demo"]) else {
            panic!("not the demo command");
        };
        let (store, demo) = (store.addresses.addresses(), demo.store.addresses());
        let everywhere = [
            "0.0.0.0:4317",
            "0.0.0.0:4318",
            "0.0.0.0:9411",
            "0.0.0.0:16686",
            "0.0.0.0:16685",
        ];
        let loopback = [
            "127.0.0.1:4317",
            "127.0.0.1:4318",
            "127.0.0.1:9411",
            "127.0.0.1:16686",
            "127.0.0.1:16685",
        ];
        for (addresses, expected) in [(store, everywhere), (demo, loopback)] {
            let found = [
                addresses.otlp_grpc,
                addresses.otlp_http,
                addresses.zipkin,
                addresses.query_http,
                addresses.query_grpc,
            ]
            .map(|a| a.to_string());
            assert_eq!(found, expected);
        }
    }

    #[test]
    fn the_demo_takes_the_store_address_flags() {
        let Command::Demo(demo) = parse(&["meshtrace", "demo", "--query-grpc", ":26685"]) else {
            panic!("not the demo command");
        };
        assert_eq!(demo.store.query_grpc.to_string(), "0.0.0.0:26685");
        assert_eq!(demo.console.to_string(), "127.0.0.1:20001");
        Cli::command().debug_assert();
    }
}
