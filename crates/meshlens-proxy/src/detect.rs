//! Protocol detection on a new connection: HTTP/2 preface, HTTP/1 request line, or opaque TCP.
//!
//! The bytes read while deciding are replayed to whoever handles the connection next ([`PrefixedIo`]).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Longest HTTP/1 method token we accept as a sign of HTTP (`PROPPATCH`, `MKCALENDAR`, extensions…).
const MAX_METHOD_LEN: usize = 24;
/// How much we read at most while looking for a request line that ends in `HTTP/1.x`.
const MAX_DETECT_BYTES: usize = 8 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    Http2,
    Tcp,
}

#[derive(Debug, PartialEq, Eq)]
enum Decision {
    Is(Protocol),
    NeedMore,
}

/// Decides from the bytes seen so far (`eof`: the peer closed or went silent past the detect timeout);
/// pure, so it is unit tested without sockets. Traffic that starts like HTTP is never opaque: a head that
/// stalls is HTTP, closed at the header-read timeout.
fn decide(buf: &[u8], eof: bool) -> Decision {
    if buf.len() >= H2_PREFACE.len() && buf.starts_with(H2_PREFACE) {
        return Decision::Is(Protocol::Http2);
    }
    if buf.len() < H2_PREFACE.len() && H2_PREFACE.starts_with(buf) && !eof {
        return Decision::NeedMore;
    }
    // Empty lines before a request line are ignored (RFC 9112 §2.2), by the framing guard and hyper too.
    let blank = buf.iter().take_while(|b| **b == b'\r' || **b == b'\n').count();
    let buf = &buf[blank..];
    if buf.is_empty() {
        return if eof { Decision::Is(Protocol::Http1) } else { Decision::NeedMore };
    }
    // `TOKEN SP` — a method followed by a space looks like HTTP/1; hyper validates the rest (400 when malformed).
    let token_len = buf.iter().take_while(|b| is_method_char(**b)).count();
    if token_len > 0 && token_len <= MAX_METHOD_LEN && buf.get(token_len) == Some(&b' ') {
        return Decision::Is(Protocol::Http1);
    }
    // Still inside what may be a method (`G`, `GE`…): more bytes decide; a stall is a slow HTTP head.
    if token_len == buf.len() && token_len <= MAX_METHOD_LEN {
        return if eof { Decision::Is(Protocol::Http1) } else { Decision::NeedMore };
    }
    // A malformed method (`G\0T / HTTP/1.1`) still has an HTTP/1 request line: find its end.
    if let Some(nl) = buf.iter().position(|b| *b == b'\n') {
        let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
        if line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0") {
            return Decision::Is(Protocol::Http1);
        }
        return Decision::Is(Protocol::Tcp);
    }
    let printable = buf.iter().all(|b| (0x20..0x7f).contains(b) || *b == b'\r' || *b == 0);
    if !eof && printable && buf.len() < MAX_DETECT_BYTES {
        return Decision::NeedMore;
    }
    Decision::Is(Protocol::Tcp)
}

fn is_method_char(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'-' || b == b'_'
}

/// What detection found: the protocol (or `None` when the peer sent nothing before the timeout) and the bytes read.
pub struct Detected<IO> {
    pub protocol: Option<Protocol>,
    pub io: PrefixedIo<IO>,
}

/// Reads from `io` until the protocol is known, the peer closes, or `timeout` passes.
pub async fn detect<IO: AsyncRead + Unpin>(mut io: IO, timeout: Duration) -> io::Result<Detected<IO>> {
    let mut buf = BytesMut::with_capacity(1024);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let read = tokio::time::timeout_at(deadline, io.read_buf(&mut buf)).await;
        let (eof, timed_out) = match read {
            Ok(Ok(0)) => (true, false),
            Ok(Ok(_)) => (false, false),
            Ok(Err(e)) => return Err(e),
            Err(_) => (false, true),
        };
        if buf.is_empty() && (eof || timed_out) {
            return Ok(Detected { protocol: None, io: PrefixedIo::new(buf, io) });
        }
        match decide(&buf, eof || timed_out) {
            Decision::Is(p) => {
                return Ok(Detected { protocol: Some(p), io: PrefixedIo::new(buf, io) });
            }
            Decision::NeedMore if timed_out => {
                return Ok(Detected { protocol: Some(Protocol::Tcp), io: PrefixedIo::new(buf, io) });
            }
            Decision::NeedMore => {}
        }
    }
}

/// An I/O stream that first yields `prefix`, then reads from `inner`. Writes go straight to `inner`.
pub struct PrefixedIo<IO> {
    prefix: BytesMut,
    inner: IO,
}

impl<IO> PrefixedIo<IO> {
    pub fn new(prefix: BytesMut, inner: IO) -> Self {
        PrefixedIo { prefix, inner }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for PrefixedIo<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(out.remaining());
            out.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, out)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for PrefixedIo<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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
    use super::*;

    #[test]
    fn decides() {
        use Decision::*;
        use Protocol::*;
        assert_eq!(decide(H2_PREFACE, false), Is(Http2));
        assert_eq!(decide(b"PRI * HTTP/2", false), NeedMore);
        assert_eq!(decide(b"GET / HTTP/1.1\r\n", false), Is(Http1));
        assert_eq!(decide(b"GE", false), NeedMore);
        assert_eq!(decide(b"GET ", false), Is(Http1));
        assert_eq!(decide(b"GET  / HTTP/1.1\r\n", false), Is(Http1));
        assert_eq!(decide(b"G\0T / HTTP/1.1\r\n", false), Is(Http1));
        assert_eq!(decide(b"\x16\x03\x01\x02\x00", false), Is(Tcp));
        assert_eq!(decide(b"hello world\n", false), Is(Tcp));
        assert_eq!(decide(b"SSH-2.0-OpenSSH_9.2\r\n", false), Is(Tcp));
        assert_eq!(decide(b"ping", true), Is(Tcp));
        // Empty lines before the request line (RFC 9112 §2.2), and heads that stall, are HTTP.
        assert_eq!(decide(b"\r\nGET /bypass HTTP/1.1\r\n", false), Is(Http1));
        assert_eq!(decide(b"\r\n\r\n", false), NeedMore);
        assert_eq!(decide(b"\r\n", true), Is(Http1));
        assert_eq!(decide(b"G", true), Is(Http1));
        assert_eq!(decide(b"\r\nPOS", true), Is(Http1));
        assert_eq!(decide(b"\r\nhello world\n", false), Is(Tcp));
    }

    #[tokio::test]
    async fn replays_the_prefix() {
        let (mut client, server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"GET / HTTP/1.1\r\n").await.unwrap();
        let d = detect(server, Duration::from_secs(5)).await.unwrap();
        assert_eq!(d.protocol, Some(Protocol::Http1));
        let mut io = d.io;
        let mut got = vec![0u8; 16];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test(start_paused = true)]
    async fn silent_peer_times_out() {
        let (_client, server) = tokio::io::duplex(64);
        let d = detect(server, Duration::from_secs(10)).await.unwrap();
        assert_eq!(d.protocol, None);
    }
}
