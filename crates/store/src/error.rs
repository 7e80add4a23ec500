//! What went wrong, and how every surface of the store says it: one [`ErrorCode`] per kind of
//! failure, with its HTTP status and its gRPC code side by side, so that the same failure gets
//! the same answer on Jaeger's HTTP API (v1 and v3), Jaeger's gRPC query services, OTLP/HTTP,
//! OTLP/gRPC and Zipkin. Each surface keeps its own body shape (Jaeger's envelope, the v3
//! gateway error, OTLP's `Status`, plain text); only the codes come from here.
//!
//! The pairs follow Jaeger's query service and the OpenTelemetry Collector's OTLP receiver:
//! a read the store could not do is a server fault (500, `Internal`), as Jaeger answers; a batch
//! the store could not take is retryable (503, `Unavailable`), as the Collector answers a
//! non-permanent failure, so that producers send it again rather than drop it.

use std::marker::PhantomData;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::StoreError;

/// A kind of failure, as every surface reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request cannot be read: a malformed parameter, ID or body.
    InvalidArgument,
    /// What was asked for is not stored.
    NotFound,
    /// A body past `--max-body`, before or after inflating.
    TooLarge,
    /// A `Content-Type` or `Content-Encoding` the surface does not take.
    UnsupportedMediaType,
    /// The store could not take a batch now; sending it again may succeed.
    Unavailable,
    /// The store failed while reading.
    Internal,
    /// Something the store does not do (archiving, trace metrics, an unknown method).
    Unimplemented,
}

impl ErrorCode {
    pub const fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        }
    }

    pub const fn grpc_code(self) -> tonic::Code {
        match self {
            // A media type gRPC has no code for: the request as sent cannot be read, and
            // sending it again will not help.
            ErrorCode::InvalidArgument | ErrorCode::UnsupportedMediaType => {
                tonic::Code::InvalidArgument
            }
            ErrorCode::NotFound => tonic::Code::NotFound,
            // What gRPC servers answer for a message past their limit.
            ErrorCode::TooLarge => tonic::Code::ResourceExhausted,
            ErrorCode::Unavailable => tonic::Code::Unavailable,
            ErrorCode::Internal => tonic::Code::Internal,
            ErrorCode::Unimplemented => tonic::Code::Unimplemented,
        }
    }

    /// A gRPC status of this kind.
    pub fn status(self, message: impl Into<String>) -> tonic::Status {
        tonic::Status::new(self.grpc_code(), message)
    }
}

/// A query that failed: its kind and the message the reader sees. The query surfaces (HTTP v1,
/// HTTP v3, gRPC) each write it in their own body ([`HttpError`], `tonic::Status`).
/// What the query port answers for a path it has no route for: Go's mux's words, as Jaeger's.
pub fn unknown_route() -> Response {
    (ErrorCode::NotFound.http_status(), "404 page not found\n").into_response()
}

#[derive(Debug)]
pub struct QueryError {
    pub code: ErrorCode,
    pub message: String,
}

impl QueryError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        QueryError {
            code,
            message: message.into(),
        }
    }
}

/// A read the store could not do. Logged here, once for every surface.
impl From<StoreError> for QueryError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "query failed");
        QueryError::new(ErrorCode::Internal, error.to_string())
    }
}

/// How one HTTP query surface writes an error: Jaeger's v1 envelope, the v3 gateway's body.
pub trait ErrorBody {
    fn response(status: StatusCode, message: String) -> Response;
}

/// A query failure on the HTTP surface whose error body is `B`'s; the status is its code's.
pub struct HttpError<B>(QueryError, PhantomData<fn() -> B>);

impl<B> HttpError<B> {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        QueryError::new(code, message).into()
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        HttpError::new(ErrorCode::InvalidArgument, message)
    }
}

impl<B> From<QueryError> for HttpError<B> {
    fn from(error: QueryError) -> Self {
        HttpError(error, PhantomData)
    }
}

impl<B> From<StoreError> for HttpError<B> {
    fn from(error: StoreError) -> Self {
        QueryError::from(error).into()
    }
}

impl<B: ErrorBody> IntoResponse for HttpError<B> {
    fn into_response(self) -> Response {
        B::response(self.0.code.http_status(), self.0.message)
    }
}

/// A read the store could not do, as the gRPC query services answer it.
impl From<StoreError> for tonic::Status {
    fn from(error: StoreError) -> Self {
        QueryError::from(error).into()
    }
}

impl From<QueryError> for tonic::Status {
    fn from(error: QueryError) -> Self {
        error.code.status(error.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The HTTP status and gRPC code of each kind agree with the standard pairing where there
    /// is one (grpc-gateway's table), so a client of either protocol reads the same failure.
    #[test]
    fn each_kind_has_one_http_status_and_one_grpc_code() {
        let expected = [
            (
                ErrorCode::InvalidArgument,
                400,
                tonic::Code::InvalidArgument,
            ),
            (ErrorCode::NotFound, 404, tonic::Code::NotFound),
            (ErrorCode::TooLarge, 413, tonic::Code::ResourceExhausted),
            (
                ErrorCode::UnsupportedMediaType,
                415,
                tonic::Code::InvalidArgument,
            ),
            (ErrorCode::Unavailable, 503, tonic::Code::Unavailable),
            (ErrorCode::Internal, 500, tonic::Code::Internal),
            (ErrorCode::Unimplemented, 501, tonic::Code::Unimplemented),
        ];
        for (code, http, grpc) in expected {
            assert_eq!(code.http_status().as_u16(), http, "{code:?}");
            assert_eq!(code.grpc_code(), grpc, "{code:?}");
        }
    }

    #[test]
    fn a_store_failure_on_a_read_is_internal() {
        let error = QueryError::from(StoreError::Corrupt("a table is missing"));
        assert_eq!(error.code, ErrorCode::Internal);
        let status = tonic::Status::from(error);
        assert_eq!(status.code(), tonic::Code::Internal);
        assert_eq!(
            status.message(),
            "stored data is corrupt: a table is missing"
        );
    }
}
