//! Starts the store's listeners — OTLP/gRPC, OTLP/HTTP, Zipkin, Jaeger query HTTP — on
//! addresses bound up front (so tests can use port 0 and read back the real ports), runs the
//! retention task, and shuts everything down cleanly, flushing the engine last. Every listener
//! holds its clients to the same [`Limits`] (meshtrace-listen): header, body and idle timeouts,
//! and a cap on open connections.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
pub use meshtrace_listen::Limits;
use meshtrace_metrics::SeriesSource;
use meshtrace_metrics::http::{ApiOptions, router as prometheus_router};
use meshtrace_model::time::now_micros;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::unknown_route;
use crate::grpc_query::{QueryV2, QueryV3};
use crate::ingest::{Ingest, OtlpGrpc, otlp_http_routes, zipkin_routes};
use crate::jaeger_ui::JaegerUi;
use crate::{Store, api_v1, api_v3, archive, metrics, monitor, transform};

/// Where each listener binds.
#[derive(Debug, Clone)]
pub struct Addresses {
    pub otlp_grpc: SocketAddr,
    pub otlp_http: SocketAddr,
    pub zipkin: SocketAddr,
    pub query_http: SocketAddr,
    pub query_grpc: SocketAddr,
}

impl Addresses {
    /// Every listener on 127.0.0.1, each on a port the system picks.
    pub fn ephemeral_loopback() -> Addresses {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        Addresses {
            otlp_grpc: any,
            otlp_http: any,
            zipkin: any,
            query_http: any,
            query_grpc: any,
        }
    }
}

/// Listeners bound and ready to serve.
pub struct Listeners {
    otlp_grpc: TcpListener,
    otlp_http: TcpListener,
    zipkin: TcpListener,
    query_http: TcpListener,
    query_grpc: TcpListener,
}

impl Listeners {
    pub async fn bind(addresses: &Addresses) -> std::io::Result<Listeners> {
        let bind = |addr: SocketAddr, what: &'static str| async move {
            TcpListener::bind(addr).await.map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot listen for {what} on {addr}: {e}"))
            })
        };
        Ok(Listeners {
            otlp_grpc: bind(addresses.otlp_grpc, "OTLP/gRPC").await?,
            otlp_http: bind(addresses.otlp_http, "OTLP/HTTP").await?,
            zipkin: bind(addresses.zipkin, "Zipkin").await?,
            query_http: bind(addresses.query_http, "the Jaeger query API").await?,
            query_grpc: bind(addresses.query_grpc, "the Jaeger gRPC query API").await?,
        })
    }

    /// The addresses actually bound (port 0 resolved).
    pub fn addresses(&self) -> std::io::Result<Addresses> {
        Ok(Addresses {
            otlp_grpc: self.otlp_grpc.local_addr()?,
            otlp_http: self.otlp_http.local_addr()?,
            zipkin: self.zipkin.local_addr()?,
            query_http: self.query_http.local_addr()?,
            query_grpc: self.query_grpc.local_addr()?,
        })
    }
}

pub struct ServeOptions {
    pub max_body: usize,
    /// How often expired spans are removed.
    pub retention_interval: Duration,
    /// What every listener holds its clients to.
    pub limits: Limits,
    /// A Jaeger UI build served on the query HTTP port (`--jaeger-ui`).
    pub jaeger_ui: Option<JaegerUi>,
}

impl ServeOptions {
    /// Bodies up to `max_body`, retention checked hourly, the default limits, no Jaeger UI.
    pub fn new(max_body: usize) -> ServeOptions {
        ServeOptions {
            max_body,
            retention_interval: Duration::from_secs(3600),
            limits: Limits::default(),
            jaeger_ui: None,
        }
    }
}

/// The Jaeger query HTTP API: v1 and v3 routes, `/api/transform` (bodies up to `max_body`), the
/// archive, Jaeger's metrics API (`/api/metrics/*`), the store's own `/metrics`, and the
/// Prometheus-compatible query API over the derived series under `/prometheus`; with a Jaeger UI,
/// its pages on the other paths.
pub fn query_router(store: Arc<Store>, max_body: usize, jaeger_ui: Option<&JaegerUi>) -> Router {
    let source: Arc<dyn SeriesSource> = store.clone();
    // Kiali reads the scrape interval to choose its steps: the derivation's step plays that part.
    let options = ApiOptions {
        scrape_interval: store.derivation().map_or(Duration::from_secs(15), |d| {
            Duration::from_millis(d.step_ms())
        }),
        retention: store.retention(),
        ..ApiOptions::default()
    };
    let prometheus = prometheus_router(source, options);
    let api = api_v1::routes()
        .merge(api_v3::routes())
        .merge(transform::routes(max_body))
        .merge(archive::routes())
        .merge(monitor::routes())
        .merge(metrics::routes());
    let api = match jaeger_ui {
        Some(ui) => api.merge(ui.routes(store.derivation().is_some())),
        None => api.fallback(|| async { unknown_route() }),
    };
    api.with_state(store.clone())
        .nest("/prometheus", prometheus)
        // Every route, the fallback and the nested API timed under their templates.
        .layer(axum::middleware::from_fn_with_state(
            store,
            crate::stats::observe_query,
        ))
}

/// Serves until `shutdown` completes, then stops accepting, finishes what is in flight, and
/// flushes the engine.
pub async fn serve(
    store: Arc<Store>,
    listeners: Listeners,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let ingest = Ingest {
        store: store.clone(),
        max_body: options.max_body,
    };
    let addresses = listeners.addresses()?;
    let limits = options.limits;

    // OTLP batches are hundreds of kilobytes: HTTP/2's default 64 KiB windows would make every
    // request wait for several window updates. An export must be answered within the body
    // timeout: a client that stalls mid-message does not hold its stream forever.
    let grpc = meshtrace_listen::grpc::server(limits)
        .timeout(limits.body_timeout)
        .initial_stream_window_size(2 << 20)
        .initial_connection_window_size(8 << 20)
        .add_service(OtlpGrpc::new(ingest.clone()))
        .serve_with_incoming_shutdown(
            meshtrace_listen::grpc::incoming(listeners.otlp_grpc, limits),
            stopped(stop_rx.clone()),
        );
    let query_grpc = query_grpc_server(
        store.clone(),
        listeners.query_grpc,
        limits,
        stopped(stop_rx.clone()),
    )
    .await;
    let http = |listener: TcpListener, router: Router, rx: watch::Receiver<bool>| {
        meshtrace_listen::serve(listener, router, limits, stopped(rx))
    };
    let body_limit = axum::extract::DefaultBodyLimit::disable();
    let otlp_http = http(
        listeners.otlp_http,
        otlp_http_routes(ingest.clone()).layer(body_limit),
        stop_rx.clone(),
    );
    let zipkin = http(
        listeners.zipkin,
        zipkin_routes(ingest).layer(body_limit),
        stop_rx.clone(),
    );
    let query = http(
        listeners.query_http,
        query_router(store.clone(), options.max_body, options.jaeger_ui.as_ref()),
        stop_rx.clone(),
    );
    let pairing = pairing_task(store.clone(), stop_rx.clone());
    let retention = retention_task(store.clone(), options.retention_interval, stop_rx);

    tracing::info!(addr = %addresses.otlp_grpc, "OTLP/gRPC ingest ready");
    tracing::info!(addr = %addresses.otlp_http, "OTLP/HTTP ingest ready (POST /v1/traces)");
    tracing::info!(addr = %addresses.zipkin, "Zipkin ingest ready (POST /api/v2/spans)");
    tracing::info!(addr = %addresses.query_http, "Jaeger query API ready (/api/*, /api/v3/*)");
    tracing::info!(addr = %addresses.query_grpc, "Jaeger gRPC query API ready (api_v2, api_v3, health)");

    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down: finishing requests in flight");
        let _ = stop_tx.send(true);
    });
    let (grpc, otlp_http, zipkin, query, query_grpc, (), ()) = tokio::join!(
        grpc, otlp_http, zipkin, query, query_grpc, retention, pairing
    );
    query_grpc.map_err(|e| ServeError::Server(format!("gRPC query: {e}")))?;
    grpc.map_err(|e| ServeError::Server(format!("OTLP/gRPC: {e}")))?;
    otlp_http.map_err(|e| ServeError::Server(format!("OTLP/HTTP: {e}")))?;
    zipkin.map_err(|e| ServeError::Server(format!("Zipkin: {e}")))?;
    query.map_err(|e| ServeError::Server(format!("query API: {e}")))?;
    tokio::task::spawn_blocking(move || store.flush())
        .await
        .map_err(|e| ServeError::Server(format!("the final flush did not run: {e}")))??;
    tracing::info!("store flushed and closed");
    Ok(())
}

/// Jaeger's gRPC query services and the standard health service, on one listener.
async fn query_grpc_server(
    store: Arc<Store>,
    listener: TcpListener,
    limits: Limits,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = Result<(), tonic::transport::Error>> {
    use meshtrace_proto::{api_v2, api_v3};
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<api_v2::query_service_server::QueryServiceServer<QueryV2>>()
        .await;
    reporter
        .set_serving::<api_v3::query_service_server::QueryServiceServer<QueryV3>>()
        .await;
    // Answers are streamed: no call timeout here, but the connection limits hold.
    meshtrace_listen::grpc::server(limits)
        .initial_stream_window_size(2 << 20)
        .initial_connection_window_size(8 << 20)
        .add_service(health)
        .add_service(api_v2::query_service_server::QueryServiceServer::new(
            QueryV2::new(store.clone()),
        ))
        .add_service(api_v3::query_service_server::QueryServiceServer::new(
            QueryV3::new(store),
        ))
        .serve_with_incoming_shutdown(meshtrace_listen::grpc::incoming(listener, limits), stopped)
}

async fn retention_task(store: Arc<Store>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let store = store.clone();
        let retention = u64::try_from(store.retention().as_micros()).unwrap_or(u64::MAX);
        let cutoff = now_micros().saturating_sub(retention);
        match tokio::task::spawn_blocking(move || store.purge_before(cutoff)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::info!(removed, "expired spans removed"),
            Ok(Err(error)) => tracing::error!(%error, "retention pass failed"),
            Err(error) => tracing::error!(%error, "retention task panicked"),
        }
    }
}

/// Counts the requests of client spans whose wait for their server span is over when no batch
/// comes to carry them (those still waiting at the end are counted by the final flush).
async fn pairing_task(store: Arc<Store>, mut stop: watch::Receiver<bool>) {
    let mut ticker = tokio::time::interval(PAIRING_TICK);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if !store.waiting_due() {
            continue;
        }
        let store = store.clone();
        match tokio::task::spawn_blocking(move || store.derive_waiting(false)).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, "the metrics of client spans done waiting could not be written");
            }
            Err(error) => tracing::error!(%error, "the pairing task panicked"),
        }
    }
}

/// How often the pairing task looks for waits that are over.
const PAIRING_TICK: Duration = Duration::from_millis(250);

/// A store served on ephemeral loopback ports (tests, benchmarks, tools); stopped by `stop`, or
/// when dropped.
pub struct LoopbackServer {
    pub addresses: Addresses,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), ServeError>>>,
}

impl LoopbackServer {
    pub async fn start(store: Arc<Store>, max_body: usize) -> std::io::Result<LoopbackServer> {
        Self::start_with(store, ServeOptions::new(max_body)).await
    }

    pub async fn start_with(
        store: Arc<Store>,
        options: ServeOptions,
    ) -> std::io::Result<LoopbackServer> {
        let listeners = Listeners::bind(&Addresses::ephemeral_loopback()).await?;
        let addresses = listeners.addresses()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve(store, listeners, options, async {
            let _ = stopped.await;
        }));
        Ok(LoopbackServer {
            addresses,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Stops serving, waits until the store is flushed.
    pub async fn stop(mut self) -> Result<(), ServeError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .map_err(|e| ServeError::Server(format!("the server task: {e}")))?,
            None => Ok(()),
        }
    }
}

impl Drop for LoopbackServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Store(#[from] crate::StoreError),
    #[error("the {0} server failed")]
    Server(String),
}
