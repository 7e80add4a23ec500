//! Span ingest: OTLP/gRPC, OTLP/HTTP (protobuf and JSON) and Zipkin v2 JSON.
//!
//! A batch is acknowledged only after its spans are in the engine's fsync'ed journal. A body
//! that cannot be decoded is refused whole (400, gRPC `InvalidArgument`) with what was wrong
//! and where; spans that cannot be stored are refused one by one — OTLP reports them through
//! `partial_success` — while the good spans of the same batch are stored.
//!
//! Bodies are bounded before they are read: a `Content-Length` above `--max-body` is refused at
//! once, a body is read up to the limit and no further, and a gzip body must inflate to at most
//! the limit and hold nothing but gzip members.

use std::io::Read;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use meshtrace_model::Span;
use meshtrace_model::otlp::{Rejection, spans_from_otlp_owned};
use meshtrace_model::zipkin::{ZipkinSpan, spans_from_zipkin};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::Store;
use crate::error::ErrorCode;
use crate::raw_codec::ServerCodec;
use crate::request::{blocking_in_place, media_type};
use crate::stats::{BatchRefusal, Protocol};

/// How many rejected spans a message lists before it says "and N more".
const LISTED_REJECTIONS: usize = 5;

#[derive(Clone)]
pub struct Ingest {
    pub store: Arc<Store>,
    pub max_body: usize,
}

/// What became of a batch.
#[derive(Debug)]
pub struct Outcome {
    pub accepted: usize,
    pub rejected: Vec<Rejection>,
}

impl Outcome {
    /// One message for all rejected spans, e.g. `2 spans rejected: resourceSpans[0]...: no trace ID; ...`.
    pub fn message(&self) -> String {
        if self.rejected.is_empty() {
            return String::new();
        }
        let listed: Vec<String> = self
            .rejected
            .iter()
            .take(LISTED_REJECTIONS)
            .map(|r| format!("{}: {}", r.location, r.reason))
            .collect();
        let mut message = format!(
            "{} span(s) rejected: {}",
            self.rejected.len(),
            listed.join("; ")
        );
        if let Some(more) = self.rejected.len().checked_sub(LISTED_REJECTIONS) {
            if more > 0 {
                message.push_str(&format!("; and {more} more"));
            }
        }
        message
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{0}")]
    Undecodable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("the request body is larger than the limit of {0} bytes (--max-body)")]
    TooLarge(usize),
    #[error("the request body could not be read: {0}")]
    Unreadable(String),
    /// Some spans of a batch that has no way to say so (Zipkin) could not be stored.
    #[error("{0}")]
    Rejected(String),
    #[error("the spans could not be stored: {0}")]
    Storage(#[from] crate::StoreError),
}

impl Ingest {
    async fn store_spans(
        &self,
        protocol: Protocol,
        spans: Vec<Span>,
        rejected: Vec<Rejection>,
    ) -> Result<Outcome, IngestError> {
        let accepted = spans.len();
        let stats = self.store.stats();
        stats.batch_decoded(
            protocol,
            accepted.saturating_add(rejected.len()),
            rejected.len(),
        );
        if accepted > 0 {
            let written = blocking_in_place(&self.store, move |s| s.write(&spans)).await;
            self.store
                .stats()
                .batch_written(protocol, accepted, written.is_ok());
            written?;
        }
        if let Some(first) = rejected.first() {
            tracing::warn!(accepted, rejected = rejected.len(), first = %first.reason, "spans rejected");
        }
        Ok(Outcome { accepted, rejected })
    }

    pub async fn otlp(
        &self,
        protocol: Protocol,
        request: ExportTraceServiceRequest,
    ) -> Result<Outcome, IngestError> {
        let converted = spans_from_otlp_owned(request.resource_spans);
        self.store_spans(protocol, converted.spans, converted.rejected)
            .await
    }

    pub async fn zipkin(&self, batch: Vec<ZipkinSpan>) -> Result<Outcome, IngestError> {
        let (spans, rejected) = spans_from_zipkin(&batch);
        self.store_spans(Protocol::Zipkin, spans, rejected).await
    }

    /// Counts a batch refused whole before its spans were looked at, and hands the error back.
    /// (A failed write is counted where it happens, in `store_spans`.)
    fn refused(&self, protocol: Protocol, error: IngestError) -> IngestError {
        if let Some(reason) = error.refusal() {
            self.store.stats().batch_refused(protocol, reason);
        }
        error
    }

    /// Counts the bytes of a body that was read.
    fn received(&self, protocol: Protocol, bytes: &Bytes) {
        self.store.stats().body(protocol, bytes.len());
    }
}

// ---- HTTP -----------------------------------------------------------------------------------

pub fn otlp_http_routes(ingest: Ingest) -> Router {
    Router::new()
        .route("/v1/traces", post(otlp_http))
        .with_state(ingest)
}

pub fn zipkin_routes(ingest: Ingest) -> Router {
    Router::new()
        .route("/api/v2/spans", post(zipkin_http))
        .with_state(ingest)
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Protobuf,
    Json,
}

impl IngestError {
    /// The kind of failure: a batch the store could not take is retryable (`Unavailable`),
    /// anything wrong with the request itself is not.
    fn code(&self) -> ErrorCode {
        match self {
            IngestError::Undecodable(_) | IngestError::Unreadable(_) | IngestError::Rejected(_) => {
                ErrorCode::InvalidArgument
            }
            IngestError::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            IngestError::TooLarge(_) => ErrorCode::TooLarge,
            IngestError::Storage(_) => ErrorCode::Unavailable,
        }
    }

    /// What `/metrics` counts a batch refused with this error under; None for the errors
    /// counted where they happen (a failed write, spans of a batch refused one by one).
    fn refusal(&self) -> Option<BatchRefusal> {
        match self {
            IngestError::Undecodable(_) => Some(BatchRefusal::Undecodable),
            IngestError::UnsupportedMediaType(_) => Some(BatchRefusal::UnsupportedMediaType),
            IngestError::TooLarge(_) => Some(BatchRefusal::TooLarge),
            IngestError::Unreadable(_) => Some(BatchRefusal::Unreadable),
            IngestError::Rejected(_) | IngestError::Storage(_) => None,
        }
    }
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error response.
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

fn otlp_error(error: IngestError, format: Format) -> Response {
    let code = error.code();
    let body = RpcStatus {
        code: code.grpc_code() as i32,
        message: error.to_string(),
    };
    encode_reply(code.http_status(), &body, format)
}

/// A reply message as OTLP/HTTP's JSON encoding (protojson) writes it.
trait ToProtojson {
    fn to_protojson(&self) -> serde_json::Value;
}

impl ToProtojson for ExportTraceServiceResponse {
    fn to_protojson(&self) -> serde_json::Value {
        crate::protojson::export_response(self)
    }
}

impl ToProtojson for RpcStatus {
    fn to_protojson(&self) -> serde_json::Value {
        crate::protojson::Object::new()
            .int("code", self.code)
            .string("message", &self.message)
            .build()
    }
}

fn encode_reply<M: Message + ToProtojson>(
    status: StatusCode,
    message: &M,
    format: Format,
) -> Response {
    match format {
        Format::Protobuf => (
            status,
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            message.encode_to_vec(),
        )
            .into_response(),
        Format::Json => {
            let body = message.to_protojson().to_string();
            (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
    }
}

/// How far past the limit a body announced too large is still read, and dropped, before it is
/// refused: a client still writing when the server closes the connection gets a broken pipe
/// instead of the 413 and its message. A body announced larger still is refused unread.
const DRAINED_PAST_LIMIT: u64 = 1 << 20;

/// Reads the body, at most `max` bytes, and inflates it when it is gzip-encoded (again at
/// most `max` bytes: a small bomb must not become a large allocation). A body announced larger
/// than `max` is refused without being kept.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    max: usize,
) -> Result<Bytes, IngestError> {
    let max_u64 = u64::try_from(max).unwrap_or(u64::MAX);
    // The lower bound is the Content-Length when there is one.
    let announced = http_body::Body::size_hint(&body).lower();
    if announced > max_u64 {
        if announced <= max_u64.saturating_add(DRAINED_PAST_LIMIT) {
            drain(body, announced).await;
        }
        return Err(IngestError::TooLarge(max));
    }
    let raw = axum::body::to_bytes(body, max).await.map_err(|e| {
        if is_length_limit(&e) {
            IngestError::TooLarge(max)
        } else {
            IngestError::Unreadable(e.to_string())
        }
    })?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(raw),
        "gzip" => gunzip(&raw, max).map(Bytes::from),
        other => Err(IngestError::UnsupportedMediaType(format!(
            "Content-Encoding `{other}` is not supported; send the body uncompressed or gzip-encoded"
        ))),
    }
}

/// Reads and drops at most about `at_most` bytes of `body` (a read error ends it early).
async fn drain(mut body: Body, at_most: u64) {
    use http_body_util::BodyExt;
    let mut read: u64 = 0;
    while read < at_most {
        match body.frame().await {
            Some(Ok(frame)) => {
                let len = frame.data_ref().map_or(0, Bytes::len);
                read = read.saturating_add(u64::try_from(len).unwrap_or(u64::MAX));
            }
            _ => break,
        }
    }
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// Inflates one or more concatenated gzip members (RFC 1952 §2.2, as Go's reader accepts them)
/// into at most `max` bytes. Anything after the last member that is not another member is an
/// error: a body is gzip or it is not.
fn gunzip(mut compressed: &[u8], max: usize) -> Result<Vec<u8>, IngestError> {
    const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
    let invalid = |e: String| IngestError::Undecodable(format!("the body is not valid gzip: {e}"));
    let mut inflated = Vec::new();
    loop {
        let room = max.saturating_sub(inflated.len());
        let mut member = flate2::bufread::GzDecoder::new(compressed);
        // One byte more than the room tells a body at the limit from one past it.
        (&mut member)
            .take(u64::try_from(room).unwrap_or(u64::MAX).saturating_add(1))
            .read_to_end(&mut inflated)
            .map_err(|e| invalid(e.to_string()))?;
        if inflated.len() > max {
            return Err(IngestError::TooLarge(max));
        }
        // The bufread decoder consumes exactly its member: what is left follows it.
        compressed = member.into_inner();
        if compressed.is_empty() {
            return Ok(inflated);
        }
        if !compressed.starts_with(&GZIP_MAGIC) {
            return Err(invalid(format!(
                "{} bytes follow the end of the compressed data",
                compressed.len()
            )));
        }
    }
}

async fn otlp_http(State(ingest): State<Ingest>, headers: HeaderMap, body: Body) -> Response {
    let format = match media_type(&headers).as_str() {
        "application/x-protobuf" | "application/protobuf" => Format::Protobuf,
        "application/json" => Format::Json,
        other => {
            let found = if other.is_empty() {
                "no Content-Type".to_string()
            } else {
                format!("Content-Type `{other}`")
            };
            let error = IngestError::UnsupportedMediaType(format!(
                "{found}: OTLP/HTTP takes application/x-protobuf or application/json"
            ));
            return otlp_error(ingest.refused(Protocol::OtlpHttp, error), Format::Json);
        }
    };
    let bytes = match read_body(body, &headers, ingest.max_body).await {
        Ok(bytes) => bytes,
        Err(error) => return otlp_error(ingest.refused(Protocol::OtlpHttp, error), format),
    };
    ingest.received(Protocol::OtlpHttp, &bytes);
    let request = match format {
        Format::Protobuf => ExportTraceServiceRequest::decode(bytes).map_err(|e| {
            IngestError::Undecodable(format!(
                "the body is not a valid OTLP ExportTraceServiceRequest protobuf: {e}"
            ))
        }),
        Format::Json => serde_json::from_slice(&bytes)
            .map_err(|e| IngestError::Undecodable(format!("the body is not valid OTLP JSON: {e}"))),
    };
    let outcome = match request {
        Ok(request) => ingest.otlp(Protocol::OtlpHttp, request).await,
        Err(error) => Err(ingest.refused(Protocol::OtlpHttp, error)),
    };
    match outcome {
        Ok(outcome) => encode_reply(StatusCode::OK, &export_response(&outcome), format),
        Err(error) => otlp_error(error, format),
    }
}

fn export_response(outcome: &Outcome) -> ExportTraceServiceResponse {
    ExportTraceServiceResponse {
        partial_success: (!outcome.rejected.is_empty()).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(outcome.rejected.len()).unwrap_or(i64::MAX),
            error_message: outcome.message(),
        }),
    }
}

async fn zipkin_http(State(ingest): State<Ingest>, headers: HeaderMap, body: Body) -> Response {
    // Zipkin's collector answers in plain text.
    let plain =
        |error: IngestError| (error.code().http_status(), error.to_string() + "\n").into_response();
    let refused = |error: IngestError| plain(ingest.refused(Protocol::Zipkin, error));
    match media_type(&headers).as_str() {
        "application/json" | "" => {}
        "application/x-protobuf" => {
            return refused(IngestError::UnsupportedMediaType(
                "Zipkin protobuf is not supported: send Zipkin v2 JSON (application/json)".into(),
            ));
        }
        other => {
            return refused(IngestError::UnsupportedMediaType(format!(
                "Content-Type `{other}`: Zipkin v2 ingest takes application/json"
            )));
        }
    }
    let bytes = match read_body(body, &headers, ingest.max_body).await {
        Ok(bytes) => bytes,
        Err(error) => return refused(error),
    };
    ingest.received(Protocol::Zipkin, &bytes);
    let batch: Vec<ZipkinSpan> = match serde_json::from_slice(&bytes) {
        Ok(batch) => batch,
        Err(e) => {
            return refused(IngestError::Undecodable(format!(
                "the body is not a valid Zipkin v2 JSON list of spans: {e}"
            )));
        }
    };
    match ingest.zipkin(batch).await {
        Ok(outcome) if outcome.rejected.is_empty() => StatusCode::ACCEPTED.into_response(),
        // Zipkin has no partial success: a batch with rejected spans is a bad request, and the
        // message says how many of its spans were stored.
        Ok(outcome) => plain(IngestError::Rejected(format!(
            "{} span(s) stored; {}",
            outcome.accepted,
            outcome.message()
        ))),
        Err(error) => plain(error),
    }
}

// ---- gRPC -----------------------------------------------------------------------------------

/// `opentelemetry.proto.collector.trace.v1.TraceService`, served with a codec that hands us the
/// raw message, so that an undecodable one is answered with `InvalidArgument` and a precise
/// message (tonic's own codec would answer `Internal`).
#[derive(Clone)]
pub struct OtlpGrpc {
    ingest: Ingest,
}

impl OtlpGrpc {
    pub fn new(ingest: Ingest) -> Self {
        OtlpGrpc { ingest }
    }

    async fn export(&self, raw: Bytes) -> Result<ExportTraceServiceResponse, tonic::Status> {
        self.ingest.received(Protocol::OtlpGrpc, &raw);
        let outcome = match ExportTraceServiceRequest::decode(raw) {
            Ok(request) => self.ingest.otlp(Protocol::OtlpGrpc, request).await,
            Err(e) => Err(self.ingest.refused(
                Protocol::OtlpGrpc,
                IngestError::Undecodable(format!(
                    "the message is not a valid OTLP ExportTraceServiceRequest: {e}"
                )),
            )),
        };
        outcome
            .map(|outcome| export_response(&outcome))
            .map_err(|error| error.code().status(error.to_string()))
    }
}

impl tonic::server::NamedService for OtlpGrpc {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl<B> tower_service::Service<axum::http::Request<B>> for OtlpGrpc
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = axum::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let this = self.clone();
        let max = self.ingest.max_body;
        Box::pin(async move {
            if request.uri().path() != "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
            {
                return Ok(ErrorCode::Unimplemented
                    .status("only TraceService/Export is served here")
                    .into_http());
            }
            let mut grpc = tonic::server::Grpc::new(ServerCodec::default())
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                .apply_max_message_size_config(Some(max), None);
            let ingest = this.ingest.clone();
            let response = grpc.unary(ExportMethod(this), request).await;
            Ok(too_large_as_ours(response, max, &ingest))
        })
    }
}

/// tonic refuses a message past the limit itself, before the service sees it: `OutOfRange` when
/// the message is too large as sent, `ResourceExhausted` when it inflates past the limit. The
/// export never answers either code of its own, so either one here is a message past
/// `--max-body`, answered as OTLP/HTTP answers it.
fn too_large_as_ours(
    response: axum::http::Response<tonic::body::Body>,
    max: usize,
    ingest: &Ingest,
) -> axum::http::Response<tonic::body::Body> {
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32);
    match code {
        Some(tonic::Code::OutOfRange | tonic::Code::ResourceExhausted) => {
            let error = ingest.refused(Protocol::OtlpGrpc, IngestError::TooLarge(max));
            error.code().status(error.to_string()).into_http()
        }
        _ => response,
    }
}

struct ExportMethod(OtlpGrpc);

impl tonic::server::UnaryService<Bytes> for ExportMethod {
    type Response = ExportTraceServiceResponse;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = Result<tonic::Response<Self::Response>, tonic::Status>>
                + Send,
        >,
    >;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move {
            service
                .export(request.into_inner())
                .await
                .map(tonic::Response::new)
        })
    }
}
