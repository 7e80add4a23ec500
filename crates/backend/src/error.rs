//! What can go wrong talking to the backend. Messages name the backend and never carry a
//! secret: URLs are shown with their password replaced, bodies are cut short and never echo
//! what we sent.

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
}

/// A response body for a message: one line, at most 200 characters.
pub fn excerpt(body: &str) -> String {
    let line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > 200 {
        format!("{}…", line.chars().take(200).collect::<String>())
    } else if line.is_empty() {
        "(empty body)".to_string()
    } else {
        line
    }
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
