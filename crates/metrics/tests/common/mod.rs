//! Test helpers: the query API served on a loopback port over a [`MemorySource`]; the real
//! Prometheus started over the same samples is meshtrace-testkit's (shared with the
//! Prometheus client's tests).
#![allow(dead_code)]

pub mod bookinfo;
pub mod compare;

use std::net::SocketAddr;
use std::sync::Arc;

use meshtrace_metrics::MemorySource;
use meshtrace_metrics::http::{ApiOptions, router};

/// The API on `127.0.0.1:<free port>`, served until dropped.
pub struct Served {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    pub async fn start(source: MemorySource, options: ApiOptions) -> Served {
        let app = router(Arc::new(source), options);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Served { addr, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}
