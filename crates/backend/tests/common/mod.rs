//! What the backend's test suites share: a backend connected from a Kiali configuration text,
//! as the console connects one from its loaded configuration; the text of an enabled tracing
//! section written once.

use meshtrace_backend::{Options, TracingBackend, connect};

/// The tracing backend of the configuration `yaml` (which the test means to be valid).
pub fn backend_from_yaml(yaml: &str) -> Box<dyn TracingBackend> {
    let loaded = meshtrace_config::load_str(yaml).unwrap_or_else(|e| panic!("{e:?}: {yaml}"));
    connect(&loaded.config.tracing, &Options::default()).unwrap()
}

/// The tracing backend of an enabled tracing section: `provider` at `internal_url`, over gRPC
/// or HTTP, with the section's further lines `extra` (indented by four spaces).
pub fn tracing_backend(
    provider: &str,
    use_grpc: bool,
    internal_url: &str,
    extra: &str,
) -> Box<dyn TracingBackend> {
    backend_from_yaml(&format!(
        "external_services:\n  tracing:\n    enabled: true\n    provider: {provider}\n    use_grpc: {use_grpc}\n    internal_url: {internal_url}\n{extra}"
    ))
}
