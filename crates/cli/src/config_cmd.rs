//! `meshtrace config check` and `meshtrace config show`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use meshtrace_config::{Diagnostic, LoadError, Loaded, load_file};

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration: exit 0 when valid (warnings go to stderr), exit 1 with every
    /// problem listed when not.
    Check {
        /// A Kiali config.yaml, a ConfigMap holding one, or a Kiali CR (YAML or JSON).
        file: PathBuf,
    },
    /// Print the effective configuration (tracing, Prometheus and the keys beside them, after
    /// deprecated keys and defaults), secrets shown as `xxx`, then a line that states the
    /// mode and one that says where metrics come from.
    Show {
        /// A Kiali config.yaml, a ConfigMap holding one, or a Kiali CR (YAML or JSON).
        file: PathBuf,
        /// Output format. With json, stdout holds only the JSON document and the mode line goes
        /// to stderr.
        #[arg(long, value_enum, default_value_t = Format::Yaml)]
        format: Format,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

impl ConfigCommand {
    pub fn run(self) -> ExitCode {
        match self {
            ConfigCommand::Check { file } => {
                let Some(loaded) = load(&file) else {
                    return ExitCode::FAILURE;
                };
                let t = &loaded.config.tracing;
                println!(
                    "{}: valid ({}); mode: {}",
                    file.display(),
                    loaded.config.shape.describe(),
                    meshtrace_config::mode(t)
                );
                ExitCode::SUCCESS
            }
            ConfigCommand::Show { file, format } => {
                let Some(loaded) = load(&file) else {
                    return ExitCode::FAILURE;
                };
                let effective = meshtrace_config::effective(&loaded.config);
                let mode = meshtrace_config::mode(&loaded.config.tracing);
                let metrics = meshtrace_config::metrics_mode(
                    &loaded.config.prometheus,
                    &loaded.config.tracing,
                );
                match format {
                    Format::Yaml => {
                        print!("{}", meshtrace_config::to_yaml(&effective));
                        println!("# mode: {mode}");
                        println!("# {metrics}");
                    }
                    Format::Json => {
                        #[allow(clippy::expect_used, reason = "a JSON value always serializes")]
                        let text = serde_json::to_string_pretty(&effective)
                            .expect("a JSON value always serializes");
                        println!("{text}");
                        eprintln!("mode: {mode}");
                        eprintln!("{metrics}");
                    }
                }
                ExitCode::SUCCESS
            }
        }
    }
}

/// Loads a configuration, printing warnings; on failure prints every problem and a summary.
fn load(file: &Path) -> Option<Loaded> {
    let origin = file.display().to_string();
    match load_file(file) {
        Ok(loaded) => {
            print_all(&loaded.warnings, &origin);
            Some(loaded)
        }
        Err(LoadError::Invalid(diagnostics)) => {
            print_all(&diagnostics, &origin);
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            let warnings = diagnostics.len() - errors;
            eprintln!("{origin}: invalid: {errors} error(s), {warnings} warning(s)");
            None
        }
        Err(error @ LoadError::Read { .. }) => {
            eprintln!("error: {error}");
            None
        }
    }
}

fn print_all(diagnostics: &[Diagnostic], origin: &str) {
    for diagnostic in diagnostics {
        eprintln!("{}", diagnostic.render(origin));
    }
}
