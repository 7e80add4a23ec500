//! HTTP serving with hyper-util's connection builder: HTTP/1.1, and HTTP/2 for the clients that
//! speak it in clear text (as axum's own server did). hyper's header timeout bounds an HTTP/1.1
//! head; the connection's idle period, set to the same timeout, bounds a silent client before
//! its first request, between requests, and on HTTP/2, where hyper has no such timer. Then the
//! body deadline, the connection cap and graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::Limits;
use crate::conn::{Guarded, InFlight};

/// Serves `router` on `listener` within `limits` until `shutdown` completes; then stops
/// accepting, closes idle connections and waits for the requests in flight.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let what = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(128)
        .max_header_list_size(64 << 10);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A slot first: past the cap, connections wait in the kernel's queue, not in ours.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    crate::accept_failed(&error, &what).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let body_timeout = limits.body_timeout;
        let in_flight = InFlight::default();
        let io = Guarded::new(stream, slot, limits.header_timeout, Some(in_flight.clone()));
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            // The peer's address, for handlers that trust only some (axum's `ConnectInfo`).
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            let answering = in_flight.enter();
            let answer = crate::body::handle(router.clone(), request, body_timeout);
            async move {
                let response = answer.await;
                drop(answering);
                response
            }
        });
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
