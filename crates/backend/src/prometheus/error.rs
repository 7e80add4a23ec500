//! What can go wrong asking Prometheus, said so that the user can act: every message names the
//! Prometheus (its URL without credentials, query string or fragment), the query when there is
//! one, what Prometheus itself said (`errorType`, `error`), and what to do. Nothing in a message
//! comes from Prometheus's answer without going through the client's [`Secrets`]
//! (crate::redact), so no credential the client sent can come back in one.

use std::fmt;
use std::time::Duration;

/// The longest query quoted in a message (Kiali's queries run to a few hundred bytes; one
/// longer is cut).
const SHOWN_QUERY_BYTES: usize = 2048;

#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusError {
    /// `Prometheus at http://prometheus.istio-system:9090`.
    pub prometheus: String,
    /// The query (as sent, scope included) or the API path asked.
    pub query: Option<String>,
    pub kind: ErrorKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ErrorKind {
    /// The configuration cannot make a client.
    Config(String),
    /// The credentials cannot be had: a file that cannot be read, an OAuth2 token URL that
    /// fails.
    Credentials(String),
    Unreachable(String),
    Timeout(Duration),
    Unauthorized(u16),
    /// Prometheus refused or failed the query and said why.
    Rejected {
        status: u16,
        error_type: String,
        error: String,
    },
    /// An answer that is not Prometheus's API (a wrong URL, a proxy's page), with an excerpt.
    NotPrometheus {
        status: u16,
        excerpt: String,
    },
    /// The answer was larger than the client reads.
    TooLarge {
        limit: usize,
    },
    /// The answer is Prometheus JSON but not of the expected shape.
    Decode(String),
    /// A query the client refuses to send (an invalid name or range).
    InvalidQuery(String),
}

impl PrometheusError {
    /// Whether the caller asked for something wrong (the console answers 400) rather than
    /// Prometheus failing (503).
    pub fn is_bad_request(&self) -> bool {
        match &self.kind {
            ErrorKind::InvalidQuery(_) => true,
            ErrorKind::Rejected { error_type, .. } => error_type == "bad_data",
            _ => false,
        }
    }

    fn query_shown(&self) -> String {
        match &self.query {
            Some(query) if query.len() > SHOWN_QUERY_BYTES => {
                let mut end = SHOWN_QUERY_BYTES;
                while !query.is_char_boundary(end) {
                    end = end.saturating_sub(1);
                }
                format!(" `{}…`", query.get(..end).unwrap_or(""))
            }
            Some(query) => format!(" `{query}`"),
            None => String::new(),
        }
    }
}

/// What to do about an error Prometheus reported, by its `errorType`.
fn rejected_hint(error_type: &str) -> &'static str {
    match error_type {
        "bad_data" => {
            "the query or one of its parameters is not valid for this server: check that the \
             url is a Prometheus (or a Prometheus-compatible server) recent enough for Kiali's \
             queries"
        }
        "timeout" | "canceled" => {
            "the query ran past Prometheus's own time limit: ask for a shorter duration or a \
             coarser step, or raise Prometheus's --query.timeout"
        }
        "execution" => {
            "Prometheus could not evaluate it (often too many samples): ask for a shorter \
             duration, a coarser step or fewer series"
        }
        "unavailable" => "Prometheus is not ready or is overloaded: try again shortly",
        _ => "see Prometheus's own log for more",
    }
}

impl fmt::Display for PrometheusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.prometheus;
        let q = self.query_shown();
        let asking = if q.is_empty() {
            String::new()
        } else {
            format!(" (asked{q})")
        };
        match &self.kind {
            ErrorKind::Config(message) => {
                write!(f, "{p}: {message} (check external_services.prometheus)")
            }
            ErrorKind::Credentials(message) => write!(
                f,
                "{p}: the credentials of external_services.prometheus.auth cannot be had{asking}: \
                 {message}"
            ),
            ErrorKind::Unreachable(reason) => write!(
                f,
                "{p} is unreachable{asking}: {reason}: check external_services.prometheus.url \
                 and that Prometheus is running and reachable from meshtrace"
            ),
            ErrorKind::Timeout(after) => write!(
                f,
                "{p} did not answer within {}s{asking}: Prometheus is overloaded or the query is \
                 too heavy; ask for a shorter duration or a coarser step",
                after.as_secs_f64()
            ),
            ErrorKind::Unauthorized(status) => write!(
                f,
                "{p} refused the credentials (HTTP {status}){asking}: check \
                 external_services.prometheus.auth (type and credentials) and custom_headers"
            ),
            ErrorKind::Rejected {
                status,
                error_type,
                error,
            } => write!(
                f,
                "{p} refused the query{q} (HTTP {status}, {error_type}): {error}: {}",
                rejected_hint(error_type)
            ),
            ErrorKind::NotPrometheus { status, excerpt } => {
                let hint = match status {
                    300..=399 => {
                        "it redirects to another address, which meshtrace does not follow (the \
                         credentials go to the configured server only): set \
                         external_services.prometheus.url to the final address"
                    }
                    500..=599 => {
                        "Prometheus, or a proxy in front of it, failed: check that Prometheus is \
                         running"
                    }
                    _ => {
                        "this is not Prometheus's HTTP API: check that \
                         external_services.prometheus.url is the Prometheus server (its API is \
                         under <url>/api/v1; a meshtrace store serves it under /prometheus)"
                    }
                };
                write!(
                    f,
                    "{p} answered HTTP {status}{asking} with {excerpt}: {hint}"
                )
            }
            ErrorKind::TooLarge { limit } => write!(
                f,
                "{p} answered more than {limit} bytes{asking}: the answer was dropped unread; ask \
                 for fewer series (more filters, fewer labels to group by) or fewer points (a \
                 shorter duration or a coarser step)"
            ),
            ErrorKind::Decode(message) => write!(
                f,
                "{p} sent an answer that cannot be read{asking}: {message}"
            ),
            ErrorKind::InvalidQuery(message) => {
                write!(f, "a query for {p} cannot be built{asking}: {message}")
            }
        }
    }
}

impl std::error::Error for PrometheusError {}
