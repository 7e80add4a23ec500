//! The `meshtrace` binary: a thin layer of argument parsing over the library crates.

mod config_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A tracing console for service meshes that reads Kiali's tracing configuration.
#[derive(Debug, Parser)]
#[command(name = "meshtrace", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check or show a Kiali configuration (config.yaml, ConfigMap or Kiali CR).
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Config(command) => command.run(),
    }
}
