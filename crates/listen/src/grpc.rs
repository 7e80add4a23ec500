//! gRPC listeners: the connections tonic serves, capped per listener and closed when idle, and
//! the server settings that go with them.

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::Limits;
pub use crate::conn::Guarded;

/// The connections of `listener`, at most `limits.max_connections` open at once, for
/// `Server::serve_with_incoming_shutdown`. Accepting stops when the server stops taking them.
pub fn incoming(listener: TcpListener, limits: Limits) -> ReceiverStream<std::io::Result<Guarded>> {
    let (sender, receiver) = mpsc::channel(1);
    let slots = std::sync::Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let what = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    tokio::spawn(async move {
        loop {
            let slot = tokio::select! {
                slot = slots.clone().acquire_owned() => slot,
                () = sender.closed() => return,
            };
            let Ok(slot) = slot else { return };
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(error) => {
                        crate::accept_failed(&error, &what).await;
                        continue;
                    }
                },
                () = sender.closed() => return,
            };
            // Answers stream in many small chunks: without TCP_NODELAY, Nagle's algorithm and
            // the peer's delayed ACKs stall them for tens of milliseconds each.
            let _ = stream.set_nodelay(true);
            let guarded = Guarded::new(stream, slot, limits.idle_timeout, None);
            if sender.send(Ok(guarded)).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream::new(receiver)
}

/// A tonic server builder with the limits that go with [`incoming`]: HTTP/2 pings at half the
/// idle timeout (so a live client always has something to send, and a dead one is noticed), and
/// a bound on the streams of one connection.
pub fn server(limits: Limits) -> tonic::transport::Server {
    let ping_every = limits
        .idle_timeout
        .checked_div(2)
        .unwrap_or(limits.idle_timeout);
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(ping_every))
        .http2_keepalive_timeout(Some(limits.header_timeout))
        .max_concurrent_streams(Some(128))
}

impl Connected for Guarded {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream().connect_info()
    }
}
