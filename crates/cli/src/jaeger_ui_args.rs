//! The flags that serve a Jaeger UI build on the store's query HTTP port, shared by `store` and
//! `demo`.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use meshtrace_store::jaeger_ui::JaegerUi;

#[derive(Debug, Clone, Args)]
pub struct JaegerUiArgs {
    /// A Jaeger UI build (the directory holding its `index.html` and `static/`) to serve on the
    /// query HTTP port, as Jaeger's query service serves its UI: Search, Trace, Compare, System
    /// Architecture and the Monitor tab over this store.
    #[arg(long, value_name = "DIR")]
    pub jaeger_ui: Option<PathBuf>,
    /// The Jaeger UI's configuration, as Jaeger's `--query.ui-config`: a `.json` object or a
    /// `.js` file defining `UIConfig()`.
    #[arg(long, value_name = "FILE", requires = "jaeger_ui")]
    pub jaeger_ui_config: Option<PathBuf>,
}

impl JaegerUiArgs {
    /// Reads the build and the config now, so that a wrong path stops the start.
    pub fn load(&self) -> anyhow::Result<Option<JaegerUi>> {
        let Some(dir) = &self.jaeger_ui else {
            return Ok(None);
        };
        let ui = JaegerUi::load(dir, self.jaeger_ui_config.as_deref())
            .with_context(|| format!("cannot serve the Jaeger UI in {}", dir.display()))?;
        Ok(Some(ui))
    }
}
