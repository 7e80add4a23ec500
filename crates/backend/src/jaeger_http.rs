//! Jaeger's HTTP query API (`use_grpc: false`). The path of `internal_url` is kept (a Jaeger
//! behind `/jaeger`), and unlike Kiali a status check fails on any non-2xx answer.

use meshtrace_config::{TracingConfig, redact_url};
use meshtrace_model::jaeger_json::{JsonTrace, trace_from_json_owned};
use meshtrace_model::{Trace, TraceId};
use serde::Deserialize;

use crate::http::HttpCaller;
use crate::{BackendError, Found, Options, TraceQuery, TracingBackend, backend_url, limit_reached};

/// What a 404 on an API route means: the path of internal_url does not lead to Jaeger's API.
const NO_API: &str = "no Jaeger API at this path: check the path of internal_url (Jaeger may be \
                      served under a prefix such as /jaeger, or without one)";

pub struct JaegerHttp {
    base: String,
    caller: HttpCaller,
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
        let url = backend_url(config)?;
        let base = config.internal_url.trim_end_matches('/').to_string();
        let shown = format!("Jaeger HTTP at {}", redact_url(&base));
        Ok(JaegerHttp {
            caller: HttpCaller::new(shown, config, options, &url, Vec::new())?,
            base,
        })
    }

    /// A GET's body; `None` on 404.
    async fn get_raw(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<Vec<u8>>, BackendError> {
        let (status, body) = self
            .caller
            .get(&format!("{}{path}", self.base), query, "application/json")
            .await?;
        Ok((status != 404).then_some(body))
    }

    /// A JSON GET; `None` on 404.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<T>, BackendError> {
        let Some(body) = self.get_raw(path, query).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| self.caller.unreadable(e, &body))
    }
}

#[async_trait::async_trait]
impl TracingBackend for JaegerHttp {
    fn describe(&self) -> String {
        self.caller.shown.clone()
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Found, BackendError> {
        let mut params = vec![
            ("service", query.service.clone()),
            ("start", query.start.to_string()),
            ("end", query.end.to_string()),
            ("limit", query.limit.to_string()),
        ];
        if !query.tags.is_empty() {
            let tags = serde_json::to_string(&query.tags)
                .map_err(|e| BackendError::InvalidQuery(format!("tags: {e}")))?;
            params.push(("tags", tags));
        }
        if let Some(min) = query.min_duration {
            params.push(("minDuration", format!("{min}us")));
        }
        let body =
            self.get_raw("/api/traces", &params)
                .await?
                .ok_or_else(|| BackendError::Status {
                    backend: self.caller.shown.clone(),
                    status: 404,
                    body: NO_API.to_string(),
                })?;
        let (traces, partial) =
            decode_find_traces(&body).map_err(|e| self.caller.unreadable(e, &body))?;
        // Jaeger's own errors are shown as the reason the list is partial: from a gateway
        // they could be anything.
        let mut partial = partial.map(|p| self.caller.secrets().excerpt(p.as_bytes()));
        if partial.is_none() {
            partial = limit_reached(traces.len(), query.limit);
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
        trace_from_json_owned(json)
            .map(Some)
            .map_err(|e| self.caller.decode_error(e.to_string()))
    }

    async fn services(&self) -> Result<Vec<String>, BackendError> {
        let envelope: Option<Envelope<Vec<String>>> = self.get("/api/services", &[]).await?;
        match envelope {
            Some(envelope) => Ok(envelope.data.unwrap_or_default()),
            None => Err(BackendError::Status {
                backend: self.caller.shown.clone(),
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
        let (status, body) = self
            .caller
            .get(&format!("{}/", self.base), &[], "text/html")
            .await
            .ok()?;
        (status == 200).then_some(())?;
        let page = String::from_utf8_lossy(&body);
        let (_, rest) = page.split_once("JAEGER_VERSION")?;
        let (_, value) = rest.split_once("\"gitVersion\"")?;
        let (version, _) = value.trim_start_matches([':', ' ', '"']).split_once('"')?;
        // A version, not a page: shown on the console's status.
        (version.len() <= 64).then(|| version.to_string())
    }
}

/// The traces of a `GET /api/traces` answer, and the errors Jaeger reported beside them (the
/// answer is then partial). Public for the console's benchmark. The messages quote the answer:
/// they are shown only as excerpts (`HttpCaller::unreadable`).
pub fn decode_find_traces(body: &[u8]) -> Result<(Vec<Trace>, Option<String>), String> {
    let envelope: Envelope<Vec<JsonTrace>> =
        serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let traces = envelope
        .data
        .unwrap_or_default()
        .into_iter()
        .map(trace_from_json_owned)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let errors = envelope.errors.filter(|e| !e.is_empty()).map(|e| {
        e.iter()
            .map(|x| x.msg.clone())
            .collect::<Vec<_>>()
            .join("; ")
    });
    Ok((traces, errors))
}
