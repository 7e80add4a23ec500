//! The per-service key of every span, Istio-shaped or not: what OpenTelemetry's span metrics
//! (and so Jaeger's Monitor tab) count calls, errors and latencies by — service, operation,
//! span kind, status code.

use meshtrace_model::{Span, Value};

use super::tags::SpanTags;

/// OpenTelemetry's span kinds, named as Jaeger's metrics API writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SpanKind {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    pub const ALL: [SpanKind; 6] = [
        SpanKind::Unspecified,
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];

    /// The kind of a span from its `span.kind` tag (none: unspecified).
    pub fn of(span: &Span) -> SpanKind {
        SpanKind::from_tag(span.kind()).unwrap_or(SpanKind::Unspecified)
    }

    /// `server`, `client`... as a Jaeger span's `span.kind` tag or Jaeger's `spanKind` query
    /// parameter writes it (any case); `unspecified` is the parameter's name for no kind.
    pub fn from_tag(text: &str) -> Option<SpanKind> {
        SpanKind::ALL
            .into_iter()
            .find(|k| k.tag().eq_ignore_ascii_case(text))
    }

    pub fn tag(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    /// `SPAN_KIND_SERVER`...: the label value OpenTelemetry's span metrics write.
    pub fn otel(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "SPAN_KIND_UNSPECIFIED",
            SpanKind::Internal => "SPAN_KIND_INTERNAL",
            SpanKind::Server => "SPAN_KIND_SERVER",
            SpanKind::Client => "SPAN_KIND_CLIENT",
            SpanKind::Producer => "SPAN_KIND_PRODUCER",
            SpanKind::Consumer => "SPAN_KIND_CONSUMER",
        }
    }
}

/// A span's status as OpenTelemetry's span metrics label it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusCode {
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    pub const ALL: [StatusCode; 3] = [StatusCode::Unset, StatusCode::Ok, StatusCode::Error];

    /// `error=true` (OTLP's ERROR status and Zipkin's `error` tag become it) is an error;
    /// `otel.status_code=OK` is OK; anything else is unset.
    pub fn of(span: &Span) -> StatusCode {
        if span.has_error() {
            return StatusCode::Error;
        }
        match span.tag("otel.status_code") {
            Some(Value::Str(code)) if code == "OK" => StatusCode::Ok,
            Some(Value::Str(code)) if code == "ERROR" => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }

    pub fn otel(self) -> &'static str {
        match self {
            StatusCode::Unset => "STATUS_CODE_UNSET",
            StatusCode::Ok => "STATUS_CODE_OK",
            StatusCode::Error => "STATUS_CODE_ERROR",
        }
    }

    pub fn from_otel(text: &str) -> Option<StatusCode> {
        StatusCode::ALL.into_iter().find(|s| s.otel() == text)
    }
}

/// What a span is counted under in the per-service metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceKey<'a> {
    /// The process's service name (`productpage.bookinfo` for an Istio proxy).
    pub service: &'a str,
    pub operation: &'a str,
    pub kind: SpanKind,
    pub status: StatusCode,
}

impl<'a> ServiceKey<'a> {
    pub fn of(span: &'a Span) -> ServiceKey<'a> {
        ServiceKey::with_tags(span, &SpanTags::of(span))
    }

    /// [`ServiceKey::of`] with the span's tags already read.
    pub fn with_tags(span: &'a Span, tags: &SpanTags<'a>) -> ServiceKey<'a> {
        let status = if tags.has_error() {
            StatusCode::Error
        } else {
            match tags.otel_status_code {
                Some("OK") => StatusCode::Ok,
                Some("ERROR") => StatusCode::Error,
                _ => StatusCode::Unset,
            }
        };
        ServiceKey {
            service: &span.process.service_name,
            operation: &span.operation_name,
            kind: tags
                .span_kind
                .and_then(SpanKind::from_tag)
                .unwrap_or(SpanKind::Unspecified),
            status,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::span;

    #[test]
    fn kinds_and_statuses_are_read_as_otel_names_them() {
        let server = span("GET /", &[("span.kind", "server")]);
        let key = ServiceKey::of(&server);
        assert_eq!(key.service, "reviews.bookinfo");
        assert_eq!(key.operation, "GET /");
        assert_eq!(key.kind.otel(), "SPAN_KIND_SERVER");
        assert_eq!(key.status, StatusCode::Unset);

        let failed = span("x", &[("error", "true"), ("span.kind", "client")]);
        assert_eq!(ServiceKey::of(&failed).status.otel(), "STATUS_CODE_ERROR");
        let ok = span("x", &[("otel.status_code", "OK")]);
        assert_eq!(ServiceKey::of(&ok).status, StatusCode::Ok);
        assert_eq!(ServiceKey::of(&ok).kind, SpanKind::Unspecified);

        assert_eq!(SpanKind::from_tag("Consumer"), Some(SpanKind::Consumer));
        assert_eq!(
            SpanKind::from_tag("UNSPECIFIED"),
            Some(SpanKind::Unspecified)
        );
        assert_eq!(SpanKind::from_tag("bogus"), None);
    }
}
