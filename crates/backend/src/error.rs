//! What can go wrong talking to the backend. Messages name the backend and never carry a
//! secret: URLs are shown with their password replaced, and every piece of a backend's answer
//! in a message is an excerpt made by [`crate::redact::Secrets::excerpt`] (credentials
//! replaced, markup reduced to text, cut short).

use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error("{0}")]
    Config(String),
    #[error("{backend} is unreachable: {reason}")]
    Unreachable { backend: String, reason: String },
    #[error("{backend} did not answer within {}s (query_timeout)", .after.as_secs_f64())]
    Timeout { backend: String, after: Duration },
    #[error(
        "{backend} refused the credentials (HTTP {status}): check external_services.tracing.auth"
    )]
    Unauthorized { backend: String, status: u16 },
    #[error("{backend} answered HTTP {status}: {body}")]
    Status {
        backend: String,
        status: u16,
        body: String,
    },
    #[error("{backend}: {message}")]
    Protocol { backend: String, message: String },
    #[error("{backend} sent an answer that cannot be read: {message}")]
    Decode { backend: String, message: String },
    #[error("cannot read a credential: {0}")]
    Credential(#[from] meshtrace_config::CredentialError),
    /// The search cannot be put to the backend as asked (a tag key TraceQL cannot name): the
    /// caller's mistake, not the backend's (the console answers 400).
    #[error("{0}")]
    InvalidQuery(String),
}

/// Why a connection failed, from the innermost error of `error`'s chain (the outer ones say
/// "client error (Connect)"), with a hint when a certificate was refused.
pub fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut innermost = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    let reason = innermost.to_string();
    if reason.contains("certificate") || reason.contains("UnknownIssuer") {
        format!(
            "{reason} (set auth.ca_file to the CA that signed the backend's certificate, or \
             auth.insecure_skip_verify: true to skip the check)"
        )
    } else {
        reason
    }
}
