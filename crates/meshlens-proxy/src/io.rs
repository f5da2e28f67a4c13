//! I/O wrappers: [`Counted`] adds the bytes that cross a connection to its transport metrics as they flow,
//! and the OS error it failed with to its close (and, on an endpoint's HTTP/1 connection, keeps each
//! response head for diagnosis).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::http::response_head::HeadBytes;
use crate::metrics::TcpConnGuard;

/// A stream whose reads and writes are counted on a connection's metrics guard; closing the guard (on drop)
/// counts the close.
pub struct Counted<IO> {
    inner: IO,
    guard: TcpConnGuard,
    /// An endpoint's HTTP/1 connection keeps each response head, to say why one was invalid.
    head: Option<Arc<HeadBytes>>,
}

impl<IO> Counted<IO> {
    pub fn new(inner: IO, guard: TcpConnGuard) -> Self {
        Counted { inner, guard, head: None }
    }

    /// Keeps the head of each response read in `head`.
    pub fn recording(mut self, head: Arc<HeadBytes>) -> Self {
        self.head = Some(head);
        self
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Counted<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            self.guard.read(n as u64);
            if let Some(head) = &self.head {
                head.read(&buf.filled()[before..]);
            }
        }
        if let Poll::Ready(Err(e)) = &res {
            self.guard.set_io_error(e);
        }
        res
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Counted<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(head) = &self.head {
            head.write();
        }
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        match &res {
            Poll::Ready(Ok(n)) => self.guard.wrote(*n as u64),
            Poll::Ready(Err(e)) => self.guard.set_io_error(e),
            Poll::Pending => {}
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(head) = &self.head {
            head.write();
        }
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        match &res {
            Poll::Ready(Ok(n)) => self.guard.wrote(*n as u64),
            Poll::Ready(Err(e)) => self.guard.set_io_error(e),
            Poll::Pending => {}
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

    use super::Counted;
    use crate::metrics::{LabelSet, Registry, TcpMetrics};

    /// A peer that reset the connection: every read and write fails with ECONNRESET.
    struct Reset;

    impl AsyncRead for Reset {
        fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, _: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Err(io::Error::from_raw_os_error(104)))
        }
    }

    impl AsyncWrite for Reset {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
            Poll::Ready(Err(io::Error::from_raw_os_error(104)))
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_connection_that_fails_closes_with_its_errno() {
        let reg = Registry::new();
        let tcp = TcpMetrics::register(&reg);
        let target = tcp.target(LabelSet::new().with("peer", "dst"));
        for read in [true, false] {
            let mut conn = Counted::new(Reset, target.open());
            if read {
                assert!(conn.read(&mut [0; 8]).await.is_err());
            } else {
                assert!(conn.write_all(b"ping").await.is_err());
            }
        }
        let mut clean = Counted::new(tokio::io::empty(), target.open());
        assert_eq!(clean.read(&mut [0; 8]).await.unwrap(), 0);
        drop(clean);
        let text = reg.render();
        assert!(text.contains("tcp_close_total{peer=\"dst\",errno=\"ECONNRESET\"} 2"), "{text}");
        assert!(text.contains("tcp_close_total{peer=\"dst\",errno=\"\"} 1"), "{text}");
    }
}
