//! Jaeger's HTTP query API (`use_grpc: false`). The path of `internal_url` is kept (a Jaeger
//! behind `/jaeger`), and unlike Kiali a status check fails on any non-2xx answer.

use std::time::Duration;

use meshtrace_config::{TracingConfig, redact_url};
use meshtrace_model::jaeger_json::{JsonTrace, trace_from_json};
use meshtrace_model::{Trace, TraceId};
use serde::Deserialize;

use crate::auth::Headers;
use crate::error::excerpt;
use crate::{BackendError, Found, Options, TraceQuery, TracingBackend};

/// What a 404 on an API route means: the path of internal_url does not lead to Jaeger's API.
const NO_API: &str = "no Jaeger API at this path: check the path of internal_url (Jaeger may be \
                      served under a prefix such as /jaeger, or without one)";

pub struct JaegerHttp {
    base: String,
    shown: String,
    http: reqwest::Client,
    headers: Headers,
    timeout: Duration,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: Option<T>,
    #[serde(default)]
    errors: Option<Vec<EnvelopeError>>,
}

#[derive(Deserialize)]
struct EnvelopeError {
    #[serde(default)]
    msg: String,
}

impl JaegerHttp {
    pub fn new(config: &TracingConfig, options: &Options) -> Result<JaegerHttp, BackendError> {
        let url = url::Url::parse(&config.internal_url)
            .map_err(|e| BackendError::Config(format!("internal_url is not a valid URL: {e}")))?;
        if url.scheme() == "https" {
            return Err(BackendError::Config(
                "https backends are not available yet in this version of meshtrace".to_string(),
            ));
        }
        let base = config.internal_url.trim_end_matches('/').to_string();
        Ok(JaegerHttp {
            shown: format!("Jaeger HTTP at {}", redact_url(&base)),
            base,
            http: reqwest::Client::builder()
                .build()
                .map_err(|e| BackendError::Config(format!("cannot build the HTTP client: {e}")))?,
            headers: Headers::new(config, options)?,
            timeout: config.query_timeout(),
        })
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<T>, BackendError> {
        let mut request = self
            .http
            .get(format!("{}{path}", self.base))
            .query(query)
            .timeout(self.timeout)
            .header("Accept", "application/json");
        if let Some(value) = self.headers.authorization()? {
            request = request.header("Authorization", value);
        }
        for (name, value) in self.headers.custom() {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| self.transport(e))?;
        match status {
            200..=299 => serde_json::from_str(&body)
                .map(Some)
                .map_err(|e| BackendError::Decode {
                    backend: self.shown.clone(),
                    message: format!("{e} (body: {})", excerpt(&body)),
                }),
            404 => Ok(None),
            401 | 403 => Err(BackendError::Unauthorized {
                backend: self.shown.clone(),
                status,
            }),
            _ => Err(BackendError::Status {
                backend: self.shown.clone(),
                status,
                body: excerpt(&body),
            }),
        }
    }

    fn transport(&self, error: reqwest::Error) -> BackendError {
        if error.is_timeout() {
            BackendError::Timeout {
                backend: self.shown.clone(),
                after: self.timeout,
            }
        } else {
            // reqwest's message can hold the URL; ours already says which backend it is.
            let reason = std::error::Error::source(&error)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "the request failed".to_string());
            BackendError::Unreachable {
                backend: self.shown.clone(),
                reason,
            }
        }
    }
}

#[async_trait::async_trait]
impl TracingBackend for JaegerHttp {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Found, BackendError> {
        let mut params = vec![
            ("service", query.service.clone()),
            ("start", query.start.to_string()),
            ("end", query.end.to_string()),
            ("limit", query.limit.to_string()),
        ];
        if !query.tags.is_empty() {
            params.push((
                "tags",
                serde_json::to_string(&query.tags).expect("a string map serializes"),
            ));
        }
        if let Some(min) = query.min_duration {
            params.push(("minDuration", format!("{min}us")));
        }
        let envelope: Envelope<Vec<JsonTrace>> = self
            .get("/api/traces", &params)
            .await?
            .ok_or_else(|| BackendError::Status {
                backend: self.shown.clone(),
                status: 404,
                body: NO_API.to_string(),
            })?;
        let traces = envelope
            .data
            .unwrap_or_default()
            .iter()
            .map(trace_from_json)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BackendError::Decode {
                backend: self.shown.clone(),
                message: e.to_string(),
            })?;
        let mut partial = envelope.errors.filter(|e| !e.is_empty()).map(|e| {
            e.iter()
                .map(|x| x.msg.clone())
                .collect::<Vec<_>>()
                .join("; ")
        });
        if partial.is_none() && query.limit > 0 && traces.len() >= query.limit {
            partial = Some(format!(
                "the limit of {} traces was reached: there may be more",
                query.limit
            ));
        }
        Ok(Found { traces, partial })
    }

    async fn get_trace(&self, id: TraceId) -> Result<Option<Trace>, BackendError> {
        let envelope: Option<Envelope<Vec<JsonTrace>>> =
            self.get(&format!("/api/traces/{id}"), &[]).await?;
        let Some(json) = envelope
            .and_then(|e| e.data)
            .and_then(|d| d.into_iter().next())
        else {
            return Ok(None);
        };
        trace_from_json(&json)
            .map(Some)
            .map_err(|e| BackendError::Decode {
                backend: self.shown.clone(),
                message: e.to_string(),
            })
    }

    async fn services(&self) -> Result<Vec<String>, BackendError> {
        let envelope: Option<Envelope<Vec<String>>> = self.get("/api/services", &[]).await?;
        match envelope {
            Some(envelope) => Ok(envelope.data.unwrap_or_default()),
            None => Err(BackendError::Status {
                backend: self.shown.clone(),
                status: 404,
                body: NO_API.to_string(),
            }),
        }
    }

    async fn status(&self) -> Result<(), BackendError> {
        self.services().await.map(|_| ())
    }

    async fn version(&self) -> Option<String> {
        // Jaeger's UI page carries `const JAEGER_VERSION = {..."gitVersion":"v1.57.0"...}`.
        let mut request = self
            .http
            .get(format!("{}/", self.base))
            .timeout(self.timeout);
        if let Ok(Some(value)) = self.headers.authorization() {
            request = request.header("Authorization", value);
        }
        let page = request.send().await.ok()?.text().await.ok()?;
        let start = page.find("JAEGER_VERSION")?;
        let rest = &page[start..];
        let field = rest.find("\"gitVersion\"")?;
        let value = rest[field + 12..].trim_start_matches([':', ' ', '"']);
        let end = value.find('"')?;
        Some(value[..end].to_string())
    }
}
