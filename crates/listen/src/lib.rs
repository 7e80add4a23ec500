//! How every meshtrace listener serves strangers: the store's OTLP/HTTP, Zipkin and query ports,
//! its two gRPC ports, and the console. A client can hold a connection only as long as it keeps
//! sending what a request needs:
//!
//! - a request head must arrive within [`Limits::header_timeout`] — from the connection's start,
//!   and on a kept-alive connection from the end of the previous answer, so an idle keep-alive
//!   connection (HTTP/1.1 or HTTP/2) is closed after it too;
//! - a request body must arrive within [`Limits::body_timeout`] of its head, else the answer is
//!   408 and the connection is closed; a gRPC call must be answered within it;
//! - a gRPC connection on which nothing is read for [`Limits::idle_timeout`] is closed (the
//!   server pings at half that period, so a live client always has something to send);
//! - at most [`Limits::max_connections`] connections are open per listener; more wait in the
//!   kernel's accept queue until one closes, so a flood of idle connections cannot exhaust the
//!   process's file descriptors and starve the other listeners.
//!
//! axum's own `serve` can set none of this: HTTP is served here with hyper-util's connection
//! builder, gRPC through tonic with [`grpc::incoming`].

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]

mod body;
mod conn;
pub mod grpc;
mod http;

use std::time::Duration;

pub use http::serve;

/// The label a request is counted and timed under: its matched route's template, or
/// `unmatched` when no route matched, so that a path a client sends never becomes a label value.
pub fn route_label(request: &axum::extract::Request) -> String {
    request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string())
}

/// The bounds a listener holds its clients to. See the crate's documentation for what each one
/// does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(120),
            max_connections: 1024,
        }
    }
}

/// Waits before accepting again after `accept` failed — out of file descriptors, most often —
/// so that the loop neither spins nor gives up; connections closing meanwhile free what it needs.
async fn accept_failed(error: &std::io::Error, what: &str) {
    tracing::warn!(%error, listener = what, "cannot accept a connection; retrying shortly");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
