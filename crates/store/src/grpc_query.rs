//! Jaeger's gRPC query services over the same engine as the HTTP routes: `jaeger.api_v2`
//! (what Kiali calls with `use_grpc: true`) and `jaeger.api_v3`, with Jaeger's status codes:
//! `NotFound` for an unknown trace, `InvalidArgument` for a zero trace ID or a missing window
//! (codes from [`crate::error`], as on every surface).

use std::sync::Arc;

use meshtrace_model::otlp::spans_to_otlp;
use meshtrace_model::{Trace, TraceId};
use meshtrace_proto::convert::{duration_micros, span_to_proto, timestamp_micros};
use meshtrace_proto::{api_v2, api_v3};
use opentelemetry_proto::tonic::trace::v1::TracesData;
use tonic::{Request, Response, Status};

use crate::Store;
use crate::error::ErrorCode;
use crate::query::{TraceQuery, summarize};
use crate::request::blocking;

/// Jaeger's handler streams spans in chunks of this many.
const SPANS_PER_CHUNK: usize = 10;
const DEFAULT_SEARCH_DEPTH: usize = 100;

type Chunks<T> = tokio_stream::Iter<std::vec::IntoIter<Result<T, Status>>>;

fn stream<T>(items: Vec<T>) -> Chunks<T> {
    tokio_stream::iter(items.into_iter().map(Ok).collect::<Vec<_>>())
}

#[derive(Clone)]
pub struct QueryV2 {
    store: Arc<Store>,
}

#[derive(Clone)]
pub struct QueryV3 {
    store: Arc<Store>,
}

impl QueryV2 {
    pub fn new(store: Arc<Store>) -> Self {
        QueryV2 { store }
    }
}

impl QueryV3 {
    pub fn new(store: Arc<Store>) -> Self {
        QueryV3 { store }
    }
}

/// The fields the two versions' `TraceQueryParameters` share.
struct Params<'a> {
    service_name: &'a str,
    operation_name: &'a str,
    tags: Vec<(String, String)>,
    start_time_min: Option<&'a prost_types::Timestamp>,
    start_time_max: Option<&'a prost_types::Timestamp>,
    duration_min: Option<&'a prost_types::Duration>,
    duration_max: Option<&'a prost_types::Duration>,
    search_depth: i32,
}

fn trace_query(p: Params<'_>) -> Result<TraceQuery, Status> {
    let (Some(min), Some(max)) = (p.start_time_min, p.start_time_max) else {
        return Err(
            ErrorCode::InvalidArgument.status("start time min and max are required parameters")
        );
    };
    let (start_min, start_max) = (timestamp_micros(min), timestamp_micros(max));
    if start_max < start_min {
        return Err(
            ErrorCode::InvalidArgument.status("start time min must not be after start time max")
        );
    }
    let duration_min = p.duration_min.map(duration_micros).filter(|d| *d > 0);
    let duration_max = p.duration_max.map(duration_micros).filter(|d| *d > 0);
    if let (Some(min), Some(max)) = (duration_min, duration_max) {
        if max < min {
            return Err(
                ErrorCode::InvalidArgument.status("duration max must not be below duration min")
            );
        }
    }
    let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Ok(TraceQuery {
        service: non_empty(p.service_name),
        operation: non_empty(p.operation_name),
        tags: p.tags,
        start_min,
        start_max,
        duration_min,
        duration_max,
        limit: if p.search_depth > 0 {
            p.search_depth as usize
        } else {
            DEFAULT_SEARCH_DEPTH
        },
    })
}

fn trace_id_from_bytes(bytes: &[u8]) -> Result<TraceId, Status> {
    match TraceId::from_bytes(bytes) {
        Ok(id) if !id.is_zero() => Ok(id),
        Ok(_) => Err(ErrorCode::InvalidArgument.status("the trace ID is zero")),
        Err(_) if bytes.is_empty() => {
            Err(ErrorCode::InvalidArgument.status("the trace ID is missing"))
        }
        Err(e) => Err(ErrorCode::InvalidArgument.status(e.to_string())),
    }
}

/// Each trace's spans in chunks of at most [`SPANS_PER_CHUNK`]; a chunk never holds two traces
/// (as in Jaeger), so a client cut off mid-stream knows which trace may be incomplete.
fn spans_in_chunks(traces: &[Trace]) -> Vec<api_v2::SpansResponseChunk> {
    traces
        .iter()
        .flat_map(|trace| trace.spans.chunks(SPANS_PER_CHUNK))
        .map(|spans| api_v2::SpansResponseChunk {
            spans: spans.iter().map(span_to_proto).collect(),
        })
        .collect()
}

/// A service's operations, for both versions' GetOperations.
async fn operations_of(
    store: &Arc<Store>,
    service: String,
    span_kind: String,
) -> Result<Vec<crate::Operation>, Status> {
    if service.is_empty() {
        return Err(ErrorCode::InvalidArgument.status("service is required"));
    }
    let kind = (!span_kind.is_empty()).then_some(span_kind);
    Ok(blocking(store, move |s| s.operations(&service, kind.as_deref())).await?)
}

/// Calls between services in a window, for both versions' GetDependencies.
async fn dependencies_in(
    store: &Arc<Store>,
    start: Option<prost_types::Timestamp>,
    end: Option<prost_types::Timestamp>,
) -> Result<Vec<crate::DependencyLink>, Status> {
    let (Some(start), Some(end)) = (start, end) else {
        return Err(ErrorCode::InvalidArgument.status("start_time and end_time are required"));
    };
    let (start, end) = (timestamp_micros(&start), timestamp_micros(&end));
    Ok(blocking(store, move |s| {
        s.dependencies(end, end.saturating_sub(start))
    })
    .await?)
}

async fn sorted_services(store: &Arc<Store>) -> Result<Vec<String>, Status> {
    Ok(blocking(store, super::engine::Store::services).await?)
}

#[tonic::async_trait]
impl api_v2::query_service_server::QueryService for QueryV2 {
    type GetTraceStream = Chunks<api_v2::SpansResponseChunk>;
    type FindTracesStream = Chunks<api_v2::SpansResponseChunk>;

    async fn get_trace(
        &self,
        request: Request<api_v2::GetTraceRequest>,
    ) -> Result<Response<Self::GetTraceStream>, Status> {
        let id = trace_id_from_bytes(&request.get_ref().trace_id)?;
        match blocking(&self.store, move |s| s.get_trace_or_archived(id)).await? {
            Some(trace) => Ok(Response::new(stream(spans_in_chunks(&[trace])))),
            None => Err(ErrorCode::NotFound.status("trace not found")),
        }
    }

    async fn archive_trace(
        &self,
        _: Request<api_v2::ArchiveTraceRequest>,
    ) -> Result<Response<api_v2::ArchiveTraceResponse>, Status> {
        Err(ErrorCode::Unimplemented
            .status("archiving traces is not supported by meshtrace's store"))
    }

    async fn find_traces(
        &self,
        request: Request<api_v2::FindTracesRequest>,
    ) -> Result<Response<Self::FindTracesStream>, Status> {
        let query = request
            .into_inner()
            .query
            .ok_or_else(|| ErrorCode::InvalidArgument.status("missing query"))?;
        let query = trace_query(Params {
            service_name: &query.service_name,
            operation_name: &query.operation_name,
            tags: query.tags.clone().into_iter().collect(),
            start_time_min: query.start_time_min.as_ref(),
            start_time_max: query.start_time_max.as_ref(),
            duration_min: query.duration_min.as_ref(),
            duration_max: query.duration_max.as_ref(),
            search_depth: query.search_depth,
        })?;
        let traces = blocking(&self.store, move |s| s.find_traces(&query)).await?;
        Ok(Response::new(stream(spans_in_chunks(&traces))))
    }

    async fn get_services(
        &self,
        _: Request<api_v2::GetServicesRequest>,
    ) -> Result<Response<api_v2::GetServicesResponse>, Status> {
        Ok(Response::new(api_v2::GetServicesResponse {
            services: sorted_services(&self.store).await?,
        }))
    }

    async fn get_operations(
        &self,
        request: Request<api_v2::GetOperationsRequest>,
    ) -> Result<Response<api_v2::GetOperationsResponse>, Status> {
        let request = request.into_inner();
        let operations = operations_of(&self.store, request.service, request.span_kind).await?;
        let mut names: Vec<String> = operations.iter().map(|o| o.name.clone()).collect();
        names.sort();
        names.dedup();
        Ok(Response::new(api_v2::GetOperationsResponse {
            operation_names: names,
            operations: operations
                .into_iter()
                .map(|o| api_v2::Operation {
                    name: o.name,
                    span_kind: o.span_kind,
                })
                .collect(),
        }))
    }

    async fn get_dependencies(
        &self,
        request: Request<api_v2::GetDependenciesRequest>,
    ) -> Result<Response<api_v2::GetDependenciesResponse>, Status> {
        let request = request.into_inner();
        let links = dependencies_in(&self.store, request.start_time, request.end_time).await?;
        Ok(Response::new(api_v2::GetDependenciesResponse {
            dependencies: links
                .into_iter()
                .map(|l| api_v2::DependencyLink {
                    parent: l.parent,
                    child: l.child,
                    call_count: l.call_count,
                    source: "jaeger".to_string(),
                })
                .collect(),
        }))
    }
}

fn v3_query(query: Option<api_v3::TraceQueryParameters>) -> Result<TraceQuery, Status> {
    let query = query.ok_or_else(|| ErrorCode::InvalidArgument.status("missing query"))?;
    trace_query(Params {
        service_name: &query.service_name,
        operation_name: &query.operation_name,
        tags: query.attributes.clone().into_iter().collect(),
        start_time_min: query.start_time_min.as_ref(),
        start_time_max: query.start_time_max.as_ref(),
        duration_min: query.duration_min.as_ref(),
        duration_max: query.duration_max.as_ref(),
        search_depth: query.search_depth,
    })
}

fn traces_data(trace: &Trace) -> TracesData {
    TracesData {
        resource_spans: spans_to_otlp(&trace.spans),
    }
}

#[tonic::async_trait]
impl api_v3::query_service_server::QueryService for QueryV3 {
    type GetTraceStream = Chunks<TracesData>;
    type FindTracesStream = Chunks<TracesData>;
    type FindTraceSummariesStream = Chunks<api_v3::FindTraceSummariesResponse>;

    async fn get_trace(
        &self,
        request: Request<api_v3::GetTraceRequest>,
    ) -> Result<Response<Self::GetTraceStream>, Status> {
        let raw = &request.get_ref().trace_id;
        let id =
            TraceId::from_hex(raw).map_err(|e| ErrorCode::InvalidArgument.status(e.to_string()))?;
        if id.is_zero() {
            return Err(ErrorCode::InvalidArgument.status("the trace ID is zero"));
        }
        match blocking(&self.store, move |s| s.get_trace_or_archived(id)).await? {
            Some(trace) => Ok(Response::new(stream(vec![traces_data(&trace)]))),
            None => Err(ErrorCode::NotFound.status("trace not found")),
        }
    }

    async fn find_traces(
        &self,
        request: Request<api_v3::FindTracesRequest>,
    ) -> Result<Response<Self::FindTracesStream>, Status> {
        let query = v3_query(request.into_inner().query)?;
        let traces = blocking(&self.store, move |s| s.find_traces(&query)).await?;
        Ok(Response::new(stream(
            traces.iter().map(traces_data).collect(),
        )))
    }

    async fn get_services(
        &self,
        _: Request<api_v3::GetServicesRequest>,
    ) -> Result<Response<api_v3::GetServicesResponse>, Status> {
        Ok(Response::new(api_v3::GetServicesResponse {
            services: sorted_services(&self.store).await?,
        }))
    }

    async fn get_operations(
        &self,
        request: Request<api_v3::GetOperationsRequest>,
    ) -> Result<Response<api_v3::GetOperationsResponse>, Status> {
        let request = request.into_inner();
        let operations = operations_of(&self.store, request.service, request.span_kind).await?;
        Ok(Response::new(api_v3::GetOperationsResponse {
            operations: operations
                .into_iter()
                .map(|o| api_v3::Operation {
                    name: o.name,
                    span_kind: o.span_kind,
                })
                .collect(),
        }))
    }

    async fn get_dependencies(
        &self,
        request: Request<api_v3::GetDependenciesRequest>,
    ) -> Result<Response<api_v3::DependenciesResponse>, Status> {
        let request = request.into_inner();
        let links = dependencies_in(&self.store, request.start_time, request.end_time).await?;
        Ok(Response::new(api_v3::DependenciesResponse {
            dependencies: links
                .into_iter()
                .map(|l| api_v3::Dependency {
                    parent: l.parent,
                    child: l.child,
                    call_count: l.call_count,
                })
                .collect(),
        }))
    }

    async fn find_trace_summaries(
        &self,
        request: Request<api_v3::FindTraceSummariesRequest>,
    ) -> Result<Response<Self::FindTraceSummariesStream>, Status> {
        let query = v3_query(request.into_inner().query)?;
        let traces = blocking(&self.store, move |s| s.find_traces(&query)).await?;
        let summaries = traces
            .iter()
            .map(|trace| {
                let s = summarize(trace);
                api_v3::TraceSummary {
                    trace_id: s.trace_id.to_hex32(),
                    root_service_name: s.root_service_name,
                    root_operation_name: s.root_operation_name,
                    min_start_time_unix_nano: s.min_start_time_unix_nano,
                    max_end_time_unix_nano: s.max_end_time_unix_nano,
                    span_count: s.span_count as i32,
                    error_span_count: s.error_span_count as i32,
                    orphan_span_count: s.orphan_span_count as i32,
                    services: s
                        .services
                        .into_iter()
                        .map(|(name, spans, errors)| api_v3::ServiceSummary {
                            name,
                            span_count: spans as i32,
                            error_span_count: errors as i32,
                        })
                        .collect(),
                }
            })
            .collect();
        Ok(Response::new(stream(vec![
            api_v3::FindTraceSummariesResponse { summaries },
        ])))
    }
}
