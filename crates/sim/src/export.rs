//! Sends spans to a trace store the way a mesh's proxies do: OTLP/gRPC, OTLP/HTTP (protobuf)
//! or Zipkin v2 JSON, retrying with back-off while the target is unreachable or overloaded.

use std::time::Duration;

use meshtrace_model::Span;
use meshtrace_model::otlp::spans_to_otlp;
use meshtrace_model::zipkin::spans_to_zipkin;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `http://host:4317`
    OtlpGrpc(String),
    /// `http://host:4318/v1/traces`
    OtlpHttp(String),
    /// `http://host:9411/api/v2/spans`
    Zipkin(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::OtlpGrpc(url) => write!(f, "OTLP/gRPC {url}"),
            Target::OtlpHttp(url) => write!(f, "OTLP/HTTP {url}"),
            Target::Zipkin(url) => write!(f, "Zipkin {url}"),
        }
    }
}

/// What happened to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sent {
    pub accepted: usize,
    /// Refused by the target (invalid spans, or a batch it will never take).
    pub rejected: usize,
    /// Given up on after every retry failed.
    pub dropped: usize,
}

enum Failure {
    /// Worth trying again: unreachable, overloaded, unavailable.
    Retry(String),
    /// The target refused the batch; sending it again would not help.
    Refused(String),
}

pub struct Exporter {
    target: Target,
    http: reqwest::Client,
    grpc: Option<TraceServiceClient<tonic::transport::Channel>>,
    /// Back-off delays; the batch is dropped after the last.
    backoff: Vec<Duration>,
}

impl Exporter {
    #[allow(
        clippy::expect_used,
        reason = "building a client with a timeout fails only when TLS cannot initialise at all"
    )]
    pub fn new(target: Target) -> Exporter {
        Exporter {
            target,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client without TLS builds"),
            grpc: None,
            backoff: [100, 200, 400, 800, 1600, 3200]
                .map(Duration::from_millis)
                .to_vec(),
        }
    }

    /// Sends one batch, retrying with back-off.
    pub async fn send(&mut self, spans: &[Span]) -> Sent {
        let mut attempt = 0;
        loop {
            match self.try_send(spans).await {
                Ok(rejected) => {
                    return Sent {
                        accepted: spans.len() - rejected,
                        rejected,
                        dropped: 0,
                    };
                }
                Err(Failure::Refused(reason)) => {
                    tracing::warn!(target = %self.target, %reason, spans = spans.len(), "batch refused");
                    return Sent {
                        accepted: 0,
                        rejected: spans.len(),
                        dropped: 0,
                    };
                }
                Err(Failure::Retry(reason)) => {
                    let Some(delay) = self.backoff.get(attempt) else {
                        tracing::error!(target = %self.target, %reason, spans = spans.len(), "giving up on a batch");
                        return Sent {
                            accepted: 0,
                            rejected: 0,
                            dropped: spans.len(),
                        };
                    };
                    tracing::warn!(target = %self.target, %reason, retry_in_ms = delay.as_millis() as u64, "send failed");
                    tokio::time::sleep(*delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Returns how many spans the target rejected.
    #[allow(
        clippy::expect_used,
        reason = "the gRPC client is set just before it is taken"
    )]
    async fn try_send(&mut self, spans: &[Span]) -> Result<usize, Failure> {
        match self.target.clone() {
            Target::OtlpGrpc(url) => {
                let request = ExportTraceServiceRequest {
                    resource_spans: spans_to_otlp(spans),
                };
                if self.grpc.is_none() {
                    let client = TraceServiceClient::connect(url.clone())
                        .await
                        .map_err(|e| Failure::Retry(format!("cannot connect: {e}")))?;
                    self.grpc = Some(client);
                }
                let client = self.grpc.as_mut().expect("connected above");
                match client.export(request).await {
                    Ok(reply) => Ok(rejected_count(reply.into_inner())),
                    Err(status) => {
                        use tonic::Code::*;
                        let reason = format!("{:?}: {}", status.code(), status.message());
                        match status.code() {
                            Unavailable | ResourceExhausted | DeadlineExceeded | Aborted
                            | Unknown => {
                                self.grpc = None;
                                Err(Failure::Retry(reason))
                            }
                            _ => Err(Failure::Refused(reason)),
                        }
                    }
                }
            }
            Target::OtlpHttp(url) => {
                let body = ExportTraceServiceRequest {
                    resource_spans: spans_to_otlp(spans),
                }
                .encode_to_vec();
                let response = self
                    .http
                    .post(&url)
                    .header("content-type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| Failure::Retry(e.to_string()))?;
                let status = response.status();
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| Failure::Retry(e.to_string()))?;
                match status.as_u16() {
                    200..=299 => {
                        Ok(ExportTraceServiceResponse::decode(bytes).map_or(0, rejected_count))
                    }
                    429 | 502..=504 => Err(Failure::Retry(format!("HTTP {status}"))),
                    _ => Err(Failure::Refused(format!(
                        "HTTP {status}: {}",
                        String::from_utf8_lossy(&bytes).trim()
                    ))),
                }
            }
            Target::Zipkin(url) => {
                let response = self
                    .http
                    .post(&url)
                    .json(&spans_to_zipkin(spans))
                    .send()
                    .await
                    .map_err(|e| Failure::Retry(e.to_string()))?;
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                match status.as_u16() {
                    200..=299 => Ok(0),
                    429 | 502..=504 => Err(Failure::Retry(format!("HTTP {status}"))),
                    // meshtrace's store says how many it kept: "N span(s) stored; ...".
                    400 => match text.split(' ').next().and_then(|n| n.parse::<usize>().ok()) {
                        Some(stored) => Ok(spans.len().saturating_sub(stored)),
                        None => Err(Failure::Refused(format!("HTTP {status}: {}", text.trim()))),
                    },
                    _ => Err(Failure::Refused(format!("HTTP {status}: {}", text.trim()))),
                }
            }
        }
    }
}

fn rejected_count(reply: ExportTraceServiceResponse) -> usize {
    reply
        .partial_success
        .map_or(0, |p| p.rejected_spans.max(0) as usize)
}
