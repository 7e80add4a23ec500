//! Grafana Tempo over HTTP: search with TraceQL (`/api/search`), traces by ID as protobuf (so
//! IDs and enums decode as OTLP defines them, not as Tempo's JSON writes them), status
//! (`/api/echo` or `health_check_url`), version (`/api/status/buildinfo`), services (the values
//! of `service.name`). A tenant adds the TempoStack gateway path when `internal_url` has no path,
//! and the `X-Scope-OrgID` header. Traces read by ID are cached (`tempo_config.cache_*`).
//!
//! A search's answer is checked against the query: a span that does not carry every compared
//! tag (`query_scope` among them) is dropped, whatever made Tempo return it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use meshtrace_config::{TracingConfig, redact_url};
use meshtrace_model::otlp::spans_from_otlp;
use meshtrace_model::{KeyValue, Process, Span, SpanId, Trace, TraceId, Value};
use opentelemetry_proto::tonic::common::v1::{KeyValue as OtlpKeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use prost::Message;
use serde::Deserialize;

use crate::http::HttpCaller;
use crate::traceql::{compared, traceql};
use crate::{BackendError, Found, Options, TraceQuery, TracingBackend, backend_url, limit_reached};

/// How long a trace read by ID stays cached (Kiali: 5 minutes).
const CACHE_TTL: Duration = Duration::from_secs(300);
/// Spans per span set Tempo returns in a search (its default is 3).
const SPANS_PER_SPANSET: &str = "10";

pub struct TempoHttp {
    base: String,
    caller: HttpCaller,
    health_url: Option<String>,
    cache: Option<Mutex<VecDeque<(TraceId, Instant, Trace)>>>,
    cache_capacity: usize,
}

#[derive(Deserialize)]
struct SearchResponse {
    #[serde(default)]
    traces: Vec<SearchTrace>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchTrace {
    #[serde(rename = "traceID")]
    trace_id: String,
    #[serde(default)]
    root_trace_name: String,
    #[serde(default)]
    span_sets: Option<Vec<SpanSet>>,
    #[serde(default)]
    span_set: Option<SpanSet>,
}

#[derive(Deserialize)]
struct SpanSet {
    #[serde(default)]
    spans: Vec<SearchSpan>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchSpan {
    #[serde(rename = "spanID")]
    span_id: String,
    #[serde(default)]
    name: Option<String>,
    start_time_unix_nano: String,
    duration_nanos: String,
    #[serde(default)]
    attributes: Vec<OtlpKeyValue>,
}

impl TempoHttp {
    pub fn new(config: &TracingConfig, options: &Options) -> Result<TempoHttp, BackendError> {
        let url = backend_url(config)?;
        let tempo = &config.tempo_config;
        let mut base = config.internal_url.trim_end_matches('/').to_string();
        let mut fixed = Vec::new();
        if !tempo.tenant.is_empty() {
            if url.path().is_empty() || url.path() == "/" {
                base = format!("{base}/api/traces/v1/{}/tempo", tempo.tenant);
            }
            fixed.push(("X-Scope-OrgID", tempo.tenant.clone()));
        }
        let shown = format!("Tempo at {}", redact_url(&base));
        Ok(TempoHttp {
            caller: HttpCaller::new(shown, config, options, &url, fixed)?,
            base,
            health_url: (!config.health_check_url.is_empty())
                .then(|| config.health_check_url.clone()),
            cache: tempo.cache_enabled.then(|| Mutex::new(VecDeque::new())),
            cache_capacity: tempo.cache_capacity as usize,
        })
    }

    fn cached(&self, id: TraceId) -> Option<Trace> {
        let mut cache = self
            .cache
            .as_ref()?
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.retain(|(_, at, _)| at.elapsed() < CACHE_TTL);
        cache
            .iter()
            .find(|(cached, _, _)| *cached == id)
            .map(|(_, _, t)| t.clone())
    }

    fn remember(&self, id: TraceId, trace: &Trace) {
        if let Some(cache) = &self.cache {
            let mut cache = cache
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            while cache.len() >= self.cache_capacity.max(1) {
                cache.pop_front();
            }
            cache.push_back((id, Instant::now(), trace.clone()));
        }
    }
}

/// Whether a span of a search answer carries every compared tag as a string attribute with
/// its value. Tempo returns the attributes a query compares and selects on each span it
/// matched, so a span without them was not matched by the conditions asked.
fn carries(attributes: &[OtlpKeyValue], compared: &[(&str, &str)]) -> bool {
    compared.iter().all(|(key, value)| {
        attributes.iter().any(|kv| {
            kv.key == *key
                && matches!(
                    kv.value.as_ref().and_then(|v| v.value.as_ref()),
                    Some(any_value::Value::StringValue(s)) if s == value
                )
        })
    })
}

fn kv_from_otlp(kv: &OtlpKeyValue) -> Option<KeyValue> {
    let value = match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Value::Str(s.clone()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => Value::I64(*i),
        any_value::Value::DoubleValue(d) => Value::F64(*d),
        _ => return None,
    };
    Some(KeyValue::new(kv.key.clone(), value))
}

#[async_trait::async_trait]
impl TracingBackend for TempoHttp {
    fn describe(&self) -> String {
        self.caller.shown.clone()
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Found, BackendError> {
        let mut params = vec![
            ("q", traceql(query)?),
            ("start", query.start.div_euclid(1_000_000).to_string()),
            ("end", query.end.div_ceil(1_000_000).to_string()),
            ("spss", SPANS_PER_SPANSET.to_string()),
            ("limit", query.limit.to_string()),
        ];
        if let Some(min) = query.min_duration {
            params.push(("minDuration", format!("{}ms", min.div_euclid(1000))));
        }
        let (status, body) = self
            .caller
            .get(
                &format!("{}/api/search", self.base),
                &params,
                "application/json",
            )
            .await?;
        if status == 404 {
            return Err(BackendError::Status {
                backend: self.caller.shown.clone(),
                status,
                body: "no Tempo search API at this path: check the path of internal_url and tempo_config.tenant".into(),
            });
        }
        let response: SearchResponse =
            serde_json::from_slice(&body).map_err(|e| self.caller.decode_error(e.to_string()))?;
        let service = Arc::new(Process {
            service_name: query.service.clone(),
            tags: Vec::new(),
        });
        let compared = compared(query);
        let answered = response.traces.len();
        let mut dropped = 0usize;
        let mut traces = Vec::new();
        for found in response.traces {
            // Tempo trims the leading zeros of search trace IDs.
            let trace_id = TraceId::from_hex(&format!("{:0>32}", found.trace_id))
                .map_err(|e| self.caller.decode_error(e.to_string()))?;
            let sets = found
                .span_sets
                .or(found.span_set.map(|s| vec![s]))
                .unwrap_or_default();
            let mut spans = Vec::new();
            for span in sets.into_iter().flat_map(|s| s.spans) {
                if !carries(&span.attributes, &compared) {
                    dropped = dropped.saturating_add(1);
                    continue;
                }
                let span_id = SpanId::from_hex(&span.span_id)
                    .map_err(|e| self.caller.decode_error(e.to_string()))?;
                let nanos = |text: &str| {
                    text.parse::<u64>().map_err(|_| {
                        self.caller
                            .decode_error(format!("`{text}` is not a time in ns"))
                    })
                };
                let mut tags: Vec<KeyValue> = Vec::new();
                let mut process = service.clone();
                for attribute in &span.attributes {
                    let Some(kv) = kv_from_otlp(attribute) else {
                        continue;
                    };
                    match (kv.key.as_str(), &kv.value) {
                        ("service.name", Value::Str(name)) if *name != process.service_name => {
                            process = Arc::new(Process {
                                service_name: name.clone(),
                                tags: Vec::new(),
                            });
                        }
                        ("service.name", _) => {}
                        ("status", Value::Str(s)) if s == "error" => {
                            tags.push(kv.clone());
                            tags.push(KeyValue::new("error", Value::Bool(true)));
                        }
                        _ => tags.push(kv),
                    }
                }
                spans.push(Span {
                    trace_id,
                    span_id,
                    operation_name: span
                        .name
                        .clone()
                        .unwrap_or_else(|| found.root_trace_name.clone()),
                    references: Vec::new(),
                    flags: 0,
                    start_time: nanos(&span.start_time_unix_nano)?.div_euclid(1000),
                    duration: nanos(&span.duration_nanos)?.div_euclid(1000),
                    tags,
                    logs: Vec::new(),
                    process,
                    warnings: Vec::new(),
                });
            }
            // A trace none of whose spans matched is not in the answer.
            if !spans.is_empty() || compared.is_empty() {
                traces.push(Trace {
                    spans,
                    warnings: Vec::new(),
                });
            }
        }
        if dropped > 0 {
            tracing::warn!(
                backend = %self.caller.shown,
                dropped,
                "Tempo returned spans without the searched tags: they were dropped"
            );
        }
        // As many traces as the limit came back: there may be more, even if some were dropped.
        let partial = limit_reached(answered, query.limit);
        Ok(Found { traces, partial })
    }

    async fn get_trace(&self, id: TraceId) -> Result<Option<Trace>, BackendError> {
        if let Some(trace) = self.cached(id) {
            return Ok(Some(trace));
        }
        let url = format!("{}/api/traces/{}", self.base, id.to_hex32());
        let (status, body) = self.caller.get(&url, &[], "application/protobuf").await?;
        if status == 404 {
            return Ok(None);
        }
        // Tempo's `Trace { repeated ResourceSpans batches = 1 }` has OTLP TracesData's layout.
        let data = TracesData::decode(body.as_slice())
            .map_err(|e| self.caller.decode_error(format!("not an OTLP trace: {e}")))?;
        let converted = spans_from_otlp(&data.resource_spans);
        if converted.spans.is_empty() {
            return Ok(None);
        }
        let trace = Trace {
            spans: converted.spans,
            warnings: converted
                .rejected
                .iter()
                .map(|r| format!("{}: {}", r.location, r.reason))
                .collect(),
        };
        self.remember(id, &trace);
        Ok(Some(trace))
    }

    async fn services(&self) -> Result<Vec<String>, BackendError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Values {
            #[serde(default)]
            tag_values: Vec<String>,
        }
        let url = format!("{}/api/search/tag/service.name/values", self.base);
        let (_, body) = self.caller.get(&url, &[], "application/json").await?;
        let values: Values =
            serde_json::from_slice(&body).map_err(|e| self.caller.decode_error(e.to_string()))?;
        let mut services = values.tag_values;
        services.sort();
        Ok(services)
    }

    async fn status(&self) -> Result<(), BackendError> {
        let url = self
            .health_url
            .clone()
            .unwrap_or_else(|| format!("{}/api/echo", self.base));
        let (status, body) = self.caller.get(&url, &[], "*/*").await?;
        if status == 200 {
            Ok(())
        } else {
            Err(self.caller.status(status, &body))
        }
    }

    async fn version(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct BuildInfo {
            version: String,
        }
        let url = format!("{}/api/status/buildinfo", self.base);
        let (status, body) = self.caller.get(&url, &[], "application/json").await.ok()?;
        (status == 200).then_some(())?;
        // A version, not a text: shown on the console's status.
        serde_json::from_slice::<BuildInfo>(&body)
            .ok()
            .map(|b| b.version)
            .filter(|v| v.len() <= 64)
    }
}
