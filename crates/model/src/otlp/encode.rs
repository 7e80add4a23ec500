//! Model → OTLP: the spans of the model grouped back into resources and scopes, as Jaeger's
//! translator writes them (the inverse of the rules in the parent module's docs).

use super::*;

/// Spans as OTLP, grouped by process and then by scope, with Jaeger's tags mapped back onto
/// OTLP fields (kind, status, scope, trace state, parent, links, events).
pub fn spans_to_otlp<'a>(spans: impl IntoIterator<Item = &'a Span>) -> Vec<ResourceSpans> {
    /// A scope's name and version, and its spans.
    type Scoped = ((String, String), Vec<OtlpSpan>);
    let mut out: Vec<(Arc<Process>, Vec<Scoped>)> = Vec::new();
    for span in spans {
        let (scope, otlp) = span_to_otlp(span);
        let index = match out
            .iter()
            .position(|(p, _)| Arc::ptr_eq(p, &span.process) || **p == *span.process)
        {
            Some(index) => index,
            None => {
                out.push((span.process.clone(), Vec::new()));
                out.len().saturating_sub(1)
            }
        };
        let Some((_, scopes)) = out.get_mut(index) else {
            continue;
        };
        match scopes.iter_mut().find(|(s, _)| *s == scope) {
            Some((_, list)) => list.push(otlp),
            None => scopes.push((scope, vec![otlp])),
        }
    }
    out.into_iter()
        .map(|(process, scopes)| {
            let mut attributes = vec![otlp_kv(
                "service.name",
                &Value::Str(process.service_name.clone()),
            )];
            attributes.extend(process.tags.iter().map(|kv| otlp_kv(&kv.key, &kv.value)));
            ResourceSpans {
                resource: Some(Resource {
                    attributes,
                    ..Default::default()
                }),
                scope_spans: scopes
                    .into_iter()
                    .map(|((name, version), spans)| ScopeSpans {
                        scope: Some(InstrumentationScope {
                            name,
                            version,
                            ..Default::default()
                        }),
                        spans,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect()
}

fn span_to_otlp(span: &Span) -> ((String, String), OtlpSpan) {
    let mut scope = (String::new(), String::new());
    let mut kind = span::SpanKind::Unspecified;
    let mut status = Status::default();
    let mut trace_state = String::new();
    let mut attributes = Vec::with_capacity(span.tags.len());
    for tag in &span.tags {
        let text = || match &tag.value {
            Value::Str(s) => s.clone(),
            other => other.as_text().into_owned(),
        };
        match tag.key.as_str() {
            "otel.scope.name" => scope.0 = text(),
            "otel.scope.version" => scope.1 = text(),
            "span.kind" => {
                kind = match text().as_str() {
                    "client" => span::SpanKind::Client,
                    "server" => span::SpanKind::Server,
                    "producer" => span::SpanKind::Producer,
                    "consumer" => span::SpanKind::Consumer,
                    "internal" => span::SpanKind::Internal,
                    _ => span::SpanKind::Unspecified,
                }
            }
            "otel.status_code" => {
                status.code = match text().as_str() {
                    "OK" => status::StatusCode::Ok as i32,
                    "ERROR" => status::StatusCode::Error as i32,
                    _ => status.code,
                }
            }
            "error" if span.has_error() => status.code = status::StatusCode::Error as i32,
            "otel.status_description" => status.message = text(),
            "w3c.tracestate" => trace_state = text(),
            _ => attributes.push(otlp_kv(&tag.key, &tag.value)),
        }
    }
    let parent = span.parent_span_id();
    let mut parent_taken = false;
    let links = span
        .references
        .iter()
        .filter(|r| {
            let is_parent =
                !parent_taken && Some(r.span_id) == parent && r.ref_type == RefType::ChildOf;
            parent_taken |= is_parent;
            !is_parent
        })
        .map(|r| span::Link {
            trace_id: r.trace_id.to_bytes().to_vec(),
            span_id: r.span_id.to_bytes().to_vec(),
            attributes: if r.ref_type == RefType::ChildOf {
                vec![otlp_kv(
                    "opentracing.ref_type",
                    &Value::Str("child_of".into()),
                )]
            } else {
                Vec::new()
            },
            ..Default::default()
        })
        .collect();
    let events = span
        .logs
        .iter()
        .map(|log| {
            let mut event = span::Event {
                time_unix_nano: log.timestamp.saturating_mul(1000),
                ..Default::default()
            };
            for field in &log.fields {
                match (&field.key[..], &field.value) {
                    ("event", Value::Str(name)) if event.name.is_empty() => {
                        event.name = name.clone();
                    }
                    _ => event.attributes.push(otlp_kv(&field.key, &field.value)),
                }
            }
            event
        })
        .collect();
    let otlp = OtlpSpan {
        trace_id: span.trace_id.to_bytes().to_vec(),
        span_id: span.span_id.to_bytes().to_vec(),
        trace_state,
        parent_span_id: parent.map(|p| p.to_bytes().to_vec()).unwrap_or_default(),
        flags: span.flags,
        name: span.operation_name.clone(),
        kind: kind as i32,
        // Saturating: a stored span is bounded (crate::limits), but nothing here may wrap.
        start_time_unix_nano: span.start_time.saturating_mul(1000),
        end_time_unix_nano: span.end_time().saturating_mul(1000),
        attributes,
        events,
        links,
        status: (status != Status::default()).then_some(status),
        ..Default::default()
    };
    (scope, otlp)
}

fn otlp_kv(key: &str, value: &Value) -> OtlpKeyValue {
    let value = match value {
        Value::Str(s) => any_value::Value::StringValue(s.clone()),
        Value::Bool(b) => any_value::Value::BoolValue(*b),
        Value::I64(i) => any_value::Value::IntValue(*i),
        Value::F64(f) => any_value::Value::DoubleValue(*f),
        Value::Binary(b) => any_value::Value::BytesValue(b.clone()),
    };
    OtlpKeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}
