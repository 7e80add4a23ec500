//! The HTTP exchanges with Prometheus: auth and custom headers on every request (read at the
//! time of the request), TLS as the tracing clients do it, redirects followed only within the
//! origin, one deadline over the whole exchange (credentials, connection, answer), and answers
//! read up to a cap. Queries go as a form POST and fall back to GET on 405 or 501, as
//! Prometheus's Go client (and so Kiali) does.

use std::time::Duration;

use super::error::{ErrorKind, PrometheusError};
use crate::BackendError;
use crate::auth::Headers;
use crate::error::cause;
use crate::redact::Secrets;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    /// POST with the parameters as a form; GET when the server does not take POST.
    Post,
}

pub(super) struct Transport {
    pub http: reqwest::Client,
    pub headers: Headers,
    pub timeout: Duration,
    pub max_body: usize,
    /// The configured URL: its path prefixes every API path; its query pairs are kept.
    pub base: url::Url,
    /// `Prometheus at <url without credentials, query or fragment>`.
    pub shown: String,
}

impl Transport {
    pub fn secrets(&self) -> &Secrets {
        self.headers.secrets()
    }

    pub fn error(&self, query: Option<&str>, kind: ErrorKind) -> PrometheusError {
        PrometheusError {
            prometheus: self.shown.clone(),
            query: query.map(str::to_string),
            kind,
        }
    }

    /// `<url>/<path>` with the URL's own query pairs.
    pub fn endpoint(&self, path: &str) -> url::Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            segments.extend(path.split('/').filter(|s| !s.is_empty()));
        }
        url
    }

    /// The status and body of the answer to `path` with `params`; `shown` is what errors quote
    /// (the query, or the path). Refused credentials are an error; every other status comes
    /// back with its body for the caller to read Prometheus's error from.
    pub async fn call(
        &self,
        url: url::Url,
        params: &[(&str, String)],
        method: Method,
        shown: Option<&str>,
    ) -> Result<(u16, Vec<u8>), PrometheusError> {
        let exchange = async {
            let first = self.send(url.clone(), params, method, shown).await?;
            if method == Method::Post && matches!(first.status().as_u16(), 405 | 501) {
                return self
                    .read(self.send(url, params, Method::Get, shown).await?, shown)
                    .await;
            }
            self.read(first, shown).await
        };
        // The deadline covers reading credentials and an OAuth2 token too.
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(self.error(shown, ErrorKind::Timeout(self.timeout))),
        }
    }

    async fn send(
        &self,
        mut url: url::Url,
        params: &[(&str, String)],
        method: Method,
        shown: Option<&str>,
    ) -> Result<reqwest::Response, PrometheusError> {
        let request = match method {
            Method::Get => {
                if !params.is_empty() {
                    url.query_pairs_mut()
                        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
                }
                self.http.get(url)
            }
            Method::Post => {
                let form = form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
                    .finish();
                self.http
                    .post(url)
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(form)
            }
        };
        let request = request
            .timeout(self.timeout)
            .header("Accept", "application/json");
        let request = self
            .headers
            .apply(request)
            .await
            .map_err(|e| self.auth_error(shown, e))?;
        request.send().await.map_err(|e| self.transport(shown, &e))
    }

    /// The body, up to `max_body` bytes; refused credentials are an error.
    async fn read(
        &self,
        mut response: reqwest::Response,
        shown: Option<&str>,
    ) -> Result<(u16, Vec<u8>), PrometheusError> {
        let status = response.status().as_u16();
        if matches!(status, 401 | 403) {
            return Err(self.error(shown, ErrorKind::Unauthorized(status)));
        }
        let too_large = || {
            self.error(
                shown,
                ErrorKind::TooLarge {
                    limit: self.max_body,
                },
            )
        };
        if response
            .content_length()
            .is_some_and(|len| len > u64::try_from(self.max_body).unwrap_or(u64::MAX))
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport(shown, &e))?
        {
            if body.len().saturating_add(chunk.len()) > self.max_body {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }

    fn transport(&self, shown: Option<&str>, error: &reqwest::Error) -> PrometheusError {
        if error.is_timeout() {
            self.error(shown, ErrorKind::Timeout(self.timeout))
        } else {
            // The innermost cause only: reqwest's own message holds the URL, with its query.
            let reason = self.secrets().redact(&cause(error));
            self.error(shown, ErrorKind::Unreachable(reason))
        }
    }

    /// The credentials could not be read or fetched (a file, an OAuth2 token URL).
    pub fn auth_error(&self, shown: Option<&str>, error: BackendError) -> PrometheusError {
        let message = self.secrets().redact(&error.to_string());
        self.error(shown, ErrorKind::Credentials(message))
    }
}
