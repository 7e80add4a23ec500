//! Jaeger's gRPC query API, `jaeger.api_v2.QueryService` (`use_grpc: true`, Kiali's default):
//! the host and port of `internal_url`, its path ignored.
//!
//! When the call fails at the protocol level, the client asks the same address a plain HTTP
//! question: if it gets an HTTP answer, the classic mistake is made (gRPC pointed at Jaeger's
//! HTTP port 16686, or at port 80) and the error says so, with the fix. Status messages and
//! headers of the answer are shown only as excerpts without the credentials sent.

use std::time::Duration;

use tokio::time::{Instant, timeout_at};

use meshtrace_config::{TracingConfig, redact_url};
use meshtrace_model::{Span, Trace, TraceId, group_by_trace};
use meshtrace_proto::api_v2::query_service_client::QueryServiceClient;
use meshtrace_proto::api_v2::{
    FindTracesRequest, GetServicesRequest, GetTraceRequest, TraceQueryParameters,
};
use meshtrace_proto::convert::{duration, span_from_proto, timestamp};
use tonic::Code;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::Channel;

use crate::auth::Headers;
use crate::tls::{GrpcTlsConnector, http_client_builder};
use crate::{BackendError, Found, Options, TraceQuery, TracingBackend, backend_url, limit_reached};

pub struct JaegerGrpc {
    address: String,
    /// Asks the address a plain HTTP question when gRPC fails (same TLS settings).
    probe: reqwest::Client,
    shown: String,
    client: QueryServiceClient<Channel>,
    headers: Headers,
    timeout: Duration,
}

impl JaegerGrpc {
    pub fn new(config: &TracingConfig, options: &Options) -> Result<JaegerGrpc, BackendError> {
        let url = backend_url(config)?;
        let host = url
            .host_str()
            .ok_or_else(|| BackendError::Config("internal_url has no host".to_string()))?;
        let port = url.port_or_known_default().ok_or_else(|| {
            BackendError::Config("internal_url has no port and no default one".to_string())
        })?;
        let address = format!("{}://{host}:{port}", url.scheme());
        let shown = format!("Jaeger gRPC at {}", redact_url(&address));
        let endpoint = tonic::transport::Endpoint::from_shared(address.clone())
            .map_err(|e| {
                BackendError::Config(format!("internal_url cannot be used for gRPC: {e}"))
            })?
            .connect_timeout(config.query_timeout())
            // Traces stream in megabytes: HTTP/2's default 64 KiB windows would stall them.
            .initial_stream_window_size(2 << 20)
            .initial_connection_window_size(8 << 20)
            .tcp_nodelay(true);
        let channel = if url.scheme() == "https" {
            endpoint.connect_with_connector_lazy(GrpcTlsConnector::new(&config.auth)?)
        } else {
            endpoint.connect_lazy()
        };
        let probe = http_client_builder(&config.auth, &url)?
            .http1_only()
            .build()
            .map_err(|e| BackendError::Config(format!("the HTTP client cannot be built: {e}")))?;
        Ok(JaegerGrpc {
            address,
            probe,
            shown,
            client: QueryServiceClient::new(channel),
            headers: Headers::new(&crate::auth::Service::tracing(config), options)?,
            timeout: config.query_timeout(),
        })
    }

    /// A request with the auth header and custom headers as gRPC metadata (names lowercased, as
    /// gRPC requires), and a deadline.
    async fn request<T>(
        &self,
        message: T,
        deadline: Duration,
    ) -> Result<tonic::Request<T>, BackendError> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(deadline);
        let metadata = request.metadata_mut();
        if let Some(value) = self.headers.authorization().await? {
            let value = MetadataValue::try_from(value.as_str()).map_err(|_| {
                BackendError::Config("the credential holds characters a header cannot".to_string())
            })?;
            metadata.insert("authorization", value);
        }
        for (name, value) in self.headers.custom() {
            let key =
                MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()).map_err(|_| {
                    BackendError::Config(format!("custom header `{name}` cannot be gRPC metadata"))
                })?;
            let value = MetadataValue::try_from(value.as_str()).map_err(|_| {
                BackendError::Config(format!(
                    "the value of custom header `{name}` cannot be gRPC metadata"
                ))
            })?;
            metadata.insert(key, value);
        }
        Ok(request)
    }

    /// When a call started now must be over (`query_timeout`; a day if the clock cannot
    /// count that far).
    fn deadline(&self) -> Instant {
        let now = Instant::now();
        now.checked_add(self.timeout)
            .or_else(|| now.checked_add(Duration::from_secs(86_400)))
            .unwrap_or(now)
    }

    fn timed_out(&self) -> BackendError {
        BackendError::Timeout {
            backend: self.shown.clone(),
            after: self.timeout,
        }
    }

    async fn error(&self, status: tonic::Status, deadline: Duration) -> BackendError {
        match status.code() {
            Code::DeadlineExceeded => BackendError::Timeout {
                backend: self.shown.clone(),
                after: deadline,
            },
            Code::Unauthenticated | Code::PermissionDenied => BackendError::Protocol {
                backend: self.shown.clone(),
                message: format!(
                    "the credentials were refused ({:?}): check external_services.tracing.auth",
                    status.code()
                ),
            },
            Code::Unavailable | Code::Unknown | Code::Internal | Code::Unimplemented => {
                let http = self.speaks_http().await;
                if let Some((code @ (401 | 403), _)) = http {
                    // A proxy in front of the gRPC server turned the call away (nginx answers
                    // a gRPC call with an HTML 401 page).
                    return BackendError::Protocol {
                        backend: self.shown.clone(),
                        message: format!(
                            "the credentials were refused (HTTP {code}): check external_services.tracing.auth"
                        ),
                    };
                }
                if let Some((_, http)) = http {
                    return BackendError::Protocol {
                        backend: self.shown.clone(),
                        message: format!(
                            "this address answers plain HTTP ({http}), not gRPC. Jaeger serves its gRPC \
                             query API on port 16685 and its HTTP API and UI on 16686: point internal_url \
                             at port 16685, or set use_grpc: false to use the HTTP API"
                        ),
                    };
                }
                match status.code() {
                    Code::Unavailable => BackendError::Unreachable {
                        backend: self.shown.clone(),
                        reason: self.shown_message(&status),
                    },
                    code => BackendError::Protocol {
                        backend: self.shown.clone(),
                        message: format!("{code:?}: {}", self.shown_message(&status)),
                    },
                }
            }
            code => BackendError::Protocol {
                backend: self.shown.clone(),
                message: format!("{code:?}: {}", self.shown_message(&status)),
            },
        }
    }

    /// A status message as it may be shown: the server (or a gateway) wrote it, and may have
    /// put the request's metadata in it.
    fn shown_message(&self, status: &tonic::Status) -> String {
        self.headers.secrets().excerpt(status.message().as_bytes())
    }

    /// What an HTTP/1.1 request to the same address, with the same credentials and headers,
    /// gets back, if it gets an HTTP answer: the status, and the status with the content type.
    async fn speaks_http(&self) -> Option<(u16, String)> {
        let mut request = self
            .probe
            .get(format!("{}/", self.address))
            .timeout(Duration::from_secs(2));
        if let Ok(Some(value)) = self.headers.authorization().await {
            request = request.header("Authorization", value);
        }
        for (name, value) in self.headers.custom() {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send().await.ok()?;
        let kind = response
            .headers()
            .get("content-type")
            .map(|v| {
                v.as_bytes()
                    .split(|b| *b == b';')
                    .next()
                    .unwrap_or_default()
            })
            .map(|v| format!(", {}", self.headers.secrets().excerpt(v)))
            .unwrap_or_default();
        let status = response.status().as_u16();
        Some((status, format!("HTTP {status}{kind}")))
    }

    fn spans(
        &self,
        chunk: &meshtrace_proto::api_v2::SpansResponseChunk,
    ) -> Result<Vec<Span>, BackendError> {
        spans_from_chunk(chunk).map_err(|message| BackendError::Decode {
            backend: self.shown.clone(),
            message,
        })
    }
}

#[async_trait::async_trait]
impl TracingBackend for JaegerGrpc {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Found, BackendError> {
        let parameters = TraceQueryParameters {
            service_name: query.service.clone(),
            tags: query.tags.clone().into_iter().collect(),
            start_time_min: Some(timestamp(query.start)),
            start_time_max: Some(timestamp(query.end)),
            duration_min: query.min_duration.map(duration),
            search_depth: query.limit.min(i32::MAX as usize) as i32,
            ..Default::default()
        };
        // The deadline covers the whole call: gRPC's own timeout ends at the response headers,
        // so the stream is read against it here.
        let deadline = self.deadline();
        let request = self
            .request(
                FindTracesRequest {
                    query: Some(parameters),
                },
                self.timeout,
            )
            .await?;
        let mut client = self.client.clone();
        let mut stream = match timeout_at(deadline, client.find_traces(request)).await {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => return Err(self.error(status, self.timeout).await),
            Err(_) => return Err(self.timed_out()),
        };
        let mut spans = Vec::new();
        let mut partial = None;
        loop {
            let next = match timeout_at(deadline, stream.message()).await {
                Ok(next) => next,
                Err(_) => Err(tonic::Status::deadline_exceeded("query_timeout")),
            };
            match next {
                Ok(Some(chunk)) => spans.extend(self.spans(&chunk)?),
                Ok(None) => break,
                // Kiali drops this silently; the console says the list is incomplete.
                Err(status) if status.code() == Code::DeadlineExceeded && !spans.is_empty() => {
                    // The last trace may have been cut mid-way: it is left out rather than
                    // shown with missing spans.
                    let last = spans.last().map(|s: &Span| s.trace_id);
                    spans.retain(|s| Some(s.trace_id) != last);
                    partial = Some(format!(
                        "the query_timeout of {}s ran out while traces were arriving: the list is incomplete",
                        self.timeout.as_secs_f64()
                    ));
                    break;
                }
                Err(status) => return Err(self.error(status, self.timeout).await),
            }
        }
        let traces = group_by_trace(spans);
        if partial.is_none() {
            partial = limit_reached(traces.len(), query.limit);
        }
        Ok(Found { traces, partial })
    }

    async fn get_trace(&self, id: TraceId) -> Result<Option<Trace>, BackendError> {
        let deadline = self.deadline();
        let request = self
            .request(
                GetTraceRequest {
                    trace_id: id.to_bytes().to_vec(),
                    ..Default::default()
                },
                self.timeout,
            )
            .await?;
        let mut client = self.client.clone();
        let mut stream = match timeout_at(deadline, client.get_trace(request)).await {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) if status.code() == Code::NotFound => return Ok(None),
            Ok(Err(status)) => return Err(self.error(status, self.timeout).await),
            Err(_) => return Err(self.timed_out()),
        };
        let mut spans = Vec::new();
        loop {
            match timeout_at(deadline, stream.message()).await {
                Ok(Ok(Some(chunk))) => spans.extend(self.spans(&chunk)?),
                Ok(Ok(None)) => break,
                Ok(Err(status)) if status.code() == Code::NotFound => return Ok(None),
                Ok(Err(status)) => return Err(self.error(status, self.timeout).await),
                // Half a trace is not shown as the trace.
                Err(_) => return Err(self.timed_out()),
            }
        }
        Ok(group_by_trace(spans).into_iter().next())
    }

    async fn services(&self) -> Result<Vec<String>, BackendError> {
        let request = self.request(GetServicesRequest {}, self.timeout).await?;
        let mut client = self.client.clone();
        match tokio::time::timeout(self.timeout, client.get_services(request)).await {
            Ok(Ok(response)) => Ok(response.into_inner().services),
            Ok(Err(status)) => Err(self.error(status, self.timeout).await),
            Err(_) => Err(self.timed_out()),
        }
    }

    async fn status(&self) -> Result<(), BackendError> {
        self.services().await.map(|_| ())
    }

    /// Jaeger's gRPC API does not tell its version.
    async fn version(&self) -> Option<String> {
        None
    }
}

/// The spans of one streamed chunk. Public for the console's benchmark.
pub fn spans_from_chunk(
    chunk: &meshtrace_proto::api_v2::SpansResponseChunk,
) -> Result<Vec<Span>, String> {
    chunk
        .spans
        .iter()
        .map(span_from_proto)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}
