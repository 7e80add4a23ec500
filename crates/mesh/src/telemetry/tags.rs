//! The tags the metrics read, found in one pass over a span's tags (then its process's, for
//! what is still missing) instead of a search per tag: derivation runs for every span stored.

use meshtrace_model::{Span, Value};

/// The tags of a span that the derived metrics read; None where the span has no such tag (or
/// a tag read as text is not a string).
#[derive(Debug, Clone, Copy, Default)]
pub struct SpanTags<'a> {
    pub node_id: Option<&'a str>,
    pub canonical_service: Option<&'a str>,
    pub canonical_revision: Option<&'a str>,
    pub cluster_id: Option<&'a str>,
    pub upstream_cluster: Option<&'a str>,
    pub http_url: Option<&'a str>,
    pub response_flags: Option<&'a str>,
    pub peer_address: Option<&'a str>,
    pub span_kind: Option<&'a str>,
    pub otel_status_code: Option<&'a str>,
    pub http_status_code: Option<&'a Value>,
    pub grpc_status_code: Option<&'a Value>,
    pub request_size: Option<&'a Value>,
    pub response_size: Option<&'a Value>,
    pub error: Option<&'a Value>,
}

impl<'a> SpanTags<'a> {
    pub fn of(span: &'a Span) -> SpanTags<'a> {
        let mut tags = SpanTags::default();
        for kv in &span.tags {
            tags.take(&kv.key, &kv.value, true);
        }
        // Resource attributes (the process's tags) may carry the proxy's identity; a span's own
        // tag wins.
        for kv in &span.process.tags {
            tags.take(&kv.key, &kv.value, false);
        }
        tags
    }

    fn take(&mut self, key: &str, value: &'a Value, own: bool) {
        let text = match value {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        };
        let slot_text = |slot: &mut Option<&'a str>| {
            if slot.is_none() {
                *slot = text;
            }
        };
        match key {
            "node_id" => slot_text(&mut self.node_id),
            "istio.canonical_service" => slot_text(&mut self.canonical_service),
            "istio.canonical_revision" => slot_text(&mut self.canonical_revision),
            "istio.cluster_id" => slot_text(&mut self.cluster_id),
            "upstream_cluster" => slot_text(&mut self.upstream_cluster),
            "http.url" => slot_text(&mut self.http_url),
            "response_flags" => slot_text(&mut self.response_flags),
            // What only the span itself says: who its peer was, its kind and status.
            _ if !own => {}
            "peer.address" => slot_text(&mut self.peer_address),
            "span.kind" => slot_text(&mut self.span_kind),
            "otel.status_code" => slot_text(&mut self.otel_status_code),
            "http.status_code" => self.http_status_code = self.http_status_code.or(Some(value)),
            "grpc.status_code" => self.grpc_status_code = self.grpc_status_code.or(Some(value)),
            "request_size" => self.request_size = self.request_size.or(Some(value)),
            "response_size" => self.response_size = self.response_size.or(Some(value)),
            "error" => self.error = self.error.or(Some(value)),
            _ => {}
        }
    }

    /// `error=true` (bool, or the string "true").
    pub fn has_error(&self) -> bool {
        match self.error {
            Some(Value::Bool(b)) => *b,
            Some(Value::Str(s)) => s == "true",
            _ => false,
        }
    }
}
