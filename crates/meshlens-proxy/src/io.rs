//! I/O wrappers: [`Counted`] adds the bytes that cross a connection to its transport metrics as they flow
//! (and, on an endpoint's HTTP/1 connection, keeps each response head for diagnosis).

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
        res
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Counted<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(head) = &self.head {
            head.write();
        }
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            self.guard.wrote(n as u64);
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
        if let Poll::Ready(Ok(n)) = res {
            self.guard.wrote(n as u64);
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
