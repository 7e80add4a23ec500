//! What the backend's test suites share: a backend connected from a Kiali configuration text,
//! as the console connects one from its loaded configuration.

use meshtrace_backend::{Options, TracingBackend, connect};

/// The tracing backend of the configuration `yaml` (which the test means to be valid).
pub fn backend_from_yaml(yaml: &str) -> Box<dyn TracingBackend> {
    let loaded = meshtrace_config::load_str(yaml).unwrap_or_else(|e| panic!("{e:?}: {yaml}"));
    connect(&loaded.config.tracing, &Options::default()).unwrap()
}
