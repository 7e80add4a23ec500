//! The metrics endpoint: `GET /metrics` answers the OpenMetrics text a Prometheus scrapes;
//! every other path is 404. Served through meshtrace's hardened listener (header and body
//! timeouts, a connection cap), like every other port of meshtrace.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use super::IstioMetrics;

/// The exposition format prometheus-client writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `metrics` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<IstioMetrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics);
    meshtrace_listen::serve(
        listener,
        router,
        meshtrace_listen::Limits::default(),
        shutdown,
    )
    .await
}

async fn scrape(
    axum::extract::State(metrics): axum::extract::State<Arc<IstioMetrics>>,
) -> axum::response::Response {
    match metrics.encode() {
        Ok(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(error) => {
            tracing::error!(%error, "cannot encode the Istio metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the metrics\n",
            )
                .into_response()
        }
    }
}
