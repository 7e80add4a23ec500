//! The body deadline: a request's body must have arrived `body_timeout` after its head, or the
//! request is answered 408 and its connection closed. The body is watched as the handler reads
//! it, so a handler that has the whole body is never cut short, however long it then works.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use tower::ServiceExt;

/// A request body that records when it has been read to its end.
struct Watched {
    inner: Incoming,
    done: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.done.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Runs `router` on `request`, answering 408 when the body has not all arrived within
/// `body_timeout`.
pub async fn handle(
    router: axum::Router,
    request: Request<Incoming>,
    body_timeout: Duration,
) -> Result<Response, Infallible> {
    let done = Arc::new(AtomicBool::new(request.body().is_end_stream()));
    let watched = done.clone();
    let request = request.map(|inner| {
        Body::new(Watched {
            inner,
            done: watched,
        })
    });
    let mut answer = std::pin::pin!(router.oneshot(request));
    tokio::select! {
        response = &mut answer => return response,
        () = tokio::time::sleep(body_timeout) => {}
    }
    if done.load(Ordering::Acquire) {
        return answer.await;
    }
    tracing::info!(
        seconds = body_timeout.as_secs_f64(),
        "a request body did not arrive in time; answered 408"
    );
    Ok((
        StatusCode::REQUEST_TIMEOUT,
        // The rest of the body may still come: the connection cannot serve another request.
        [(header::CONNECTION, "close")],
        format!(
            "the request body did not arrive within {} s\n",
            body_timeout.as_secs_f64()
        ),
    )
        .into_response())
}
