//! Listening: the one [`Bind`] seam every listener goes through, and the accept loop that hands each
//! connection (counted in transport metrics) to its handler until the proxy drains.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::io::Counted;
use crate::metrics::TcpTargetMetrics;
use crate::shutdown::Drain;

/// Binds listeners. Tests and transparent mode substitute their own (e.g. a mocked original destination).
pub trait Bind: Send + Sync {
    fn bind(&self, addr: SocketAddr) -> io::Result<TcpListener>;

    /// The address the client meant to reach, when traffic was redirected to the proxy (transparent mode).
    fn original_dst(&self, _stream: &TcpStream) -> Option<SocketAddr> {
        None
    }
}

/// Plain TCP listeners.
pub struct TcpBind;

impl Bind for TcpBind {
    fn bind(&self, addr: SocketAddr) -> io::Result<TcpListener> {
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.set_reuseaddr(true)?;
        socket.set_nodelay(true)?;
        socket.bind(addr)?;
        socket.listen(1024)
    }
}

/// Accepts connections until `drain` is signalled, spawning `handle` for each one.
pub async fn accept_loop<F, Fut>(listener: TcpListener, drain: Drain, metrics: Arc<TcpTargetMetrics>, handle: F)
where
    F: Fn(Counted<TcpStream>, SocketAddr, Drain) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let io = Counted::new(stream, metrics.open());
                    tokio::spawn(handle(io, peer, drain.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    let listener = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
                    tracing::warn!(listener, reason = "accept_failed", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = drain.signaled() => return,
        }
    }
}
