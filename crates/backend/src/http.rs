//! The HTTP calls the Jaeger HTTP and Tempo clients share: auth and custom headers on every
//! request, the `query_timeout`, and the mapping of failures to errors that name the backend
//! and show no secret (every excerpt of an answer goes through the headers' [`Secrets`]).

use std::time::Duration;

use meshtrace_config::TracingConfig;

use crate::auth::{Headers, Service};
use crate::error::cause;
use crate::redact::Secrets;
use crate::{BackendError, Options};

pub struct HttpCaller {
    http: reqwest::Client,
    headers: Headers,
    /// Headers of the backend itself (Tempo's `X-Scope-OrgID`).
    fixed: Vec<(&'static str, String)>,
    timeout: Duration,
    /// The backend as messages name it.
    pub shown: String,
}

impl HttpCaller {
    /// A caller of the backend at `url` (which decides whether TLS is used).
    pub fn new(
        shown: String,
        config: &TracingConfig,
        options: &Options,
        url: &url::Url,
        fixed: Vec<(&'static str, String)>,
    ) -> Result<HttpCaller, BackendError> {
        Ok(HttpCaller {
            http: crate::tls::http_client(&config.auth, url)?,
            headers: Headers::new(&Service::tracing(config), options)?,
            fixed,
            timeout: config.query_timeout(),
            shown,
        })
    }

    /// A GET: 2xx and 404 come back with their body; refused credentials and other statuses
    /// are errors.
    pub async fn get(
        &self,
        url: &str,
        query: &[(&str, String)],
        accept: &str,
    ) -> Result<(u16, Vec<u8>), BackendError> {
        let mut request = self
            .http
            .get(url)
            .query(query)
            .timeout(self.timeout)
            .header("Accept", accept);
        for (name, value) in &self.fixed {
            request = request.header(*name, value.as_str());
        }
        let request = self.headers.apply(request).await?;
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| self.transport(e))?;
        match status {
            200..=299 | 404 => Ok((status, body.to_vec())),
            401 | 403 => Err(BackendError::Unauthorized {
                backend: self.shown.clone(),
                status,
            }),
            _ => Err(self.status(status, &body)),
        }
    }

    pub fn status(&self, status: u16, body: &[u8]) -> BackendError {
        BackendError::Status {
            backend: self.shown.clone(),
            status,
            body: self.secrets().excerpt(body),
        }
    }

    /// An answer that cannot be read. `message` may quote the answer (serde's messages quote
    /// the strings they did not expect), so it is an excerpt too.
    pub fn decode_error(&self, message: impl AsRef<str>) -> BackendError {
        BackendError::Decode {
            backend: self.shown.clone(),
            message: self.secrets().excerpt(message.as_ref().as_bytes()),
        }
    }

    /// An answer that cannot be read, with an excerpt of its body.
    pub fn unreadable(&self, message: impl std::fmt::Display, body: &[u8]) -> BackendError {
        let secrets = self.secrets();
        BackendError::Decode {
            backend: self.shown.clone(),
            message: format!(
                "{} (body: {})",
                secrets.excerpt(message.to_string().as_bytes()),
                secrets.excerpt(body)
            ),
        }
    }

    /// The secrets this caller sends.
    pub fn secrets(&self) -> &Secrets {
        self.headers.secrets()
    }

    fn transport(&self, error: reqwest::Error) -> BackendError {
        if error.is_timeout() {
            BackendError::Timeout {
                backend: self.shown.clone(),
                after: self.timeout,
            }
        } else {
            // reqwest's message can hold the URL; ours already says which backend it is.
            BackendError::Unreachable {
                backend: self.shown.clone(),
                reason: self.secrets().redact(&cause(&error)),
            }
        }
    }
}
