//! The HTTP/1 request guard: every request head is checked before hyper sees it. Malformed heads (bad
//! request line, bad header syntax, missing or repeated Host), ambiguous framing (Content-Length with
//! Transfer-Encoding, conflicting lengths: request smuggling) and oversize heads are refused by the proxy
//! itself with 400 or 431 and `l5d-proxy-error`, after the responses to earlier requests, and the connection
//! is closed. hyper only ever parses heads that passed, so every refusal speaks the proxy's vocabulary.
//!
//! The guard follows message boundaries (Content-Length bodies, chunked bodies with trailers) to find every
//! pipelined or keep-alive head. Head bytes are held back until the head is complete; body bytes pass at once.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, BytesMut};
use meshlens_api::ProxyErrorReason;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::http::server::{EdgeRefusal, OnRefused};

/// Limits the guard enforces on request heads.
#[derive(Clone, Copy, Debug)]
pub struct HeadLimits {
    pub max_bytes: usize,
    pub max_headers: usize,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Head,
    Body(u64),
    ChunkSize {
        size: u64,
        digits: usize,
        in_ext: bool,
    },
    ChunkData(u64),
    ChunkDataEnd {
        seen_cr: bool,
    },
    Trailers {
        line_len: usize,
    },
    /// Upgraded or tunneled: bytes pass untouched from here on.
    Passthrough,
}

/// Why a head was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub reason: ProxyErrorReason,
    pub why: &'static str,
}

fn bad(why: &'static str) -> Refusal {
    Refusal { reason: ProxyErrorReason::BadRequest, why }
}

fn too_large(why: &'static str) -> Refusal {
    Refusal { reason: ProxyErrorReason::HeadersTooLarge, why }
}

/// The byte-level state machine; `advance` moves through `buf[from..]` and says how far bytes may pass.
struct Scanner {
    state: State,
    limits: HeadLimits,
    /// Heads that passed.
    heads: usize,
}

enum Step {
    /// Bytes up to this offset may go to hyper; more input is needed to go further.
    Ready(usize),
    /// Bytes up to this offset may go to hyper; the head that starts there is refused.
    Refuse(usize, Refusal),
}

impl Scanner {
    fn advance(&mut self, buf: &[u8], mut at: usize) -> Step {
        while at < buf.len() {
            match &mut self.state {
                State::Passthrough => return Step::Ready(buf.len()),
                State::Head => {
                    // Empty lines before a request are allowed (RFC 9112 §2.2).
                    while at < buf.len() && (buf[at] == b'\r' || buf[at] == b'\n') {
                        at += 1;
                    }
                    if at == buf.len() {
                        break;
                    }
                    match find_head_end(&buf[at..]) {
                        Some(len) => match self.judge(&buf[at..at + len]) {
                            Ok(next) => {
                                self.state = next;
                                self.heads += 1;
                                at += len;
                            }
                            Err(refusal) => return Step::Refuse(at, refusal),
                        },
                        None if buf.len() - at > self.limits.max_bytes => {
                            return Step::Refuse(at, too_large("request head over the size limit"));
                        }
                        None => return Step::Ready(at),
                    }
                }
                State::Body(left) => {
                    let n = (*left).min((buf.len() - at) as u64);
                    *left -= n;
                    at += n as usize;
                    if *left == 0 {
                        self.state = State::Head;
                    }
                }
                State::ChunkSize { size, digits, in_ext } => {
                    let b = buf[at];
                    at += 1;
                    match b {
                        b'\n' => {
                            self.state = if *digits == 0 {
                                // Not chunked framing we understand: hyper will refuse it mid-body.
                                State::Passthrough
                            } else if *size == 0 {
                                State::Trailers { line_len: 0 }
                            } else {
                                State::ChunkData(*size)
                            };
                        }
                        _ if *in_ext || b == b'\r' => {}
                        b';' | b' ' | b'\t' => *in_ext = true,
                        _ => match (b as char).to_digit(16) {
                            Some(d) if *digits < 16 => {
                                *size = *size * 16 + d as u64;
                                *digits += 1;
                            }
                            _ => self.state = State::Passthrough,
                        },
                    }
                }
                State::ChunkData(left) => {
                    let n = (*left).min((buf.len() - at) as u64);
                    *left -= n;
                    at += n as usize;
                    if *left == 0 {
                        self.state = State::ChunkDataEnd { seen_cr: false };
                    }
                }
                State::ChunkDataEnd { seen_cr } => {
                    let b = buf[at];
                    at += 1;
                    match (b, *seen_cr) {
                        (b'\r', false) => *seen_cr = true,
                        (b'\n', _) => self.state = State::ChunkSize { size: 0, digits: 0, in_ext: false },
                        _ => self.state = State::Passthrough,
                    }
                }
                State::Trailers { line_len } => {
                    let b = buf[at];
                    at += 1;
                    match b {
                        b'\n' if *line_len == 0 => self.state = State::Head,
                        b'\n' => *line_len = 0,
                        b'\r' => {}
                        _ => *line_len += 1,
                    }
                }
            }
        }
        Step::Ready(at.min(buf.len()))
    }

    /// Checks one complete head; returns the state that follows it.
    fn judge(&self, head: &[u8]) -> Result<State, Refusal> {
        if head.len() > self.limits.max_bytes {
            return Err(too_large("request head over the size limit"));
        }
        let mut lines = head.split(|b| *b == b'\n');
        let request_line = lines.next().unwrap_or_default();
        let request_line = request_line.strip_suffix(b"\r").ok_or(bad("request line must end with CRLF"))?;
        let (method, version) = parse_request_line(request_line)?;
        let http11 = version == b"HTTP/1.1";
        let mut lengths: Vec<&[u8]> = Vec::new();
        let mut te: Option<&[u8]> = None;
        let (mut hosts, mut count, mut upgrade) = (0, 0, false);
        for line in lines {
            if line.is_empty() || line == b"\r" {
                continue; // the blank line ending the head
            }
            let line = line.strip_suffix(b"\r").ok_or(bad("header line must end with CRLF"))?;
            count += 1;
            if count > self.limits.max_headers {
                return Err(too_large("too many request headers"));
            }
            if line[0] == b' ' || line[0] == b'\t' {
                return Err(bad("obsolete header line folding"));
            }
            let colon = line.iter().position(|b| *b == b':').ok_or(bad("header line without a colon"))?;
            let name = &line[..colon];
            if name.is_empty() || !name.iter().all(|b| is_tchar(*b)) {
                return Err(bad("invalid header name"));
            }
            let value = trim(&line[colon + 1..]);
            if value.iter().any(|b| (*b < 0x20 && *b != b'\t') || *b == 0x7f) {
                return Err(bad("control character in a header value"));
            }
            if name.eq_ignore_ascii_case(b"content-length") {
                if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
                    return Err(bad("invalid Content-Length"));
                }
                lengths.push(value);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                if te.is_some() {
                    return Err(bad("repeated Transfer-Encoding"));
                }
                te = Some(value);
            } else if name.eq_ignore_ascii_case(b"host") {
                hosts += 1;
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                // h2c is never performed (the server strips it): what follows is still HTTP/1.
                upgrade |= !value.split(|b| *b == b',').all(|p| trim(p).eq_ignore_ascii_case(b"h2c"));
            }
        }
        if hosts > 1 {
            return Err(bad("more than one Host header"));
        }
        if http11 && hosts == 0 {
            return Err(bad("HTTP/1.1 request without a Host header"));
        }
        if lengths.windows(2).any(|w| w[0] != w[1]) {
            return Err(bad("conflicting Content-Length values"));
        }
        if te.is_some() && !lengths.is_empty() {
            return Err(bad("ambiguous message framing: Content-Length with Transfer-Encoding"));
        }
        if method == b"CONNECT" || upgrade {
            // Answered, then tunneled (or refused by the handler): nothing more to parse as HTTP.
            return Ok(State::Passthrough);
        }
        if let Some(te) = te {
            if !http11 {
                return Err(bad("Transfer-Encoding on an HTTP/1.0 request"));
            }
            let last = te.rsplit(|b| *b == b',').next().map(trim).unwrap_or_default();
            if !last.eq_ignore_ascii_case(b"chunked") {
                return Err(bad("Transfer-Encoding must end in chunked"));
            }
            return Ok(State::ChunkSize { size: 0, digits: 0, in_ext: false });
        }
        match lengths.first().map(|v| std::str::from_utf8(v).ok().and_then(|s| s.parse::<u64>().ok())) {
            None | Some(Some(0)) => Ok(State::Head),
            Some(Some(n)) => Ok(State::Body(n)),
            Some(None) => Err(bad("invalid Content-Length")),
        }
    }
}

/// `METHOD SP request-target SP HTTP/1.x`, exactly one space each; returns the method and version.
fn parse_request_line(line: &[u8]) -> Result<(&[u8], &[u8]), Refusal> {
    let mut parts = line.split(|b| *b == b' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    if method.is_empty() || !method.iter().all(|b| is_tchar(*b)) {
        return Err(bad("invalid method"));
    }
    if target.is_empty() || !target.iter().all(|b| (0x21..0x7f).contains(b)) {
        return Err(bad("invalid request target"));
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err(bad("unsupported HTTP version"));
    }
    Ok((method, version))
}

/// RFC 9110 token characters.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| *b != b' ' && *b != b'\t').unwrap_or(v.len());
    let end = v.iter().rposition(|b| *b != b' ' && *b != b'\t').map_or(start, |e| e + 1);
    &v[start..end]
}

/// The length of a head ending in a blank line (`\r\n\r\n`; a bare `\n\n` is found too and then refused).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(nl) = buf[i..].iter().position(|b| *b == b'\n') {
        let at = i + nl;
        match buf.get(at + 1) {
            Some(b'\n') => return Some(at + 2),
            Some(b'\r') if buf.get(at + 2) == Some(&b'\n') => return Some(at + 3),
            _ => i = at + 1,
        }
    }
    None
}

/// What can be read of a refused head: its method, target and Host, when they parse.
fn readable_request(head: &[u8]) -> Option<http::Request<()>> {
    let head = &head[..head.len().min(8 * 1024)];
    let mut lines = head.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut parts = lines.next()?.split(|b| *b == b' ');
    let (method, target) = (parts.next()?, parts.next()?);
    let mut req = http::Request::builder().method(method).uri(target);
    let host = lines.take_while(|l| !l.is_empty()).find_map(|l| {
        let colon = l.iter().position(|b| *b == b':')?;
        l[..colon].eq_ignore_ascii_case(b"host").then(|| trim(&l[colon + 1..]))
    });
    if let Some(host) = host {
        req = req.header(http::header::HOST, host);
    }
    req.body(()).ok()
}

/// Counts the responses hyper has finished (their bodies dropped), so a refusal is written only after
/// the responses to every request that came before it.
#[derive(Clone, Default)]
pub struct Responded(Arc<AtomicUsize>);

impl Responded {
    pub fn done(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }

    fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

/// An HTTP/1 server connection's I/O with the request guard in front of hyper.
pub struct FramingWatch<IO> {
    inner: IO,
    scanner: Scanner,
    /// Bytes read from the client: the front `ready` bytes may go to hyper, the rest wait for their head.
    held: BytesMut,
    ready: usize,
    scanned: usize,
    eof: bool,
    /// Request heads passed to hyper, and responses it finished.
    heads: usize,
    responded: Responded,
    /// `responded` as it was when hyper last completed a flush.
    flushed_after: usize,
    refusal: Option<Refusal>,
    /// The refusal response still to write; `None` with a refusal means it was written.
    reply: Option<BytesMut>,
    read_waker: Option<Waker>,
    /// Counts, taps and logs a refusal (the listener's accounting); without it the refusal is only logged.
    on_refused: Option<OnRefused>,
}

impl<IO> FramingWatch<IO> {
    pub(crate) fn new(inner: IO, limits: HeadLimits, responded: Responded, on_refused: Option<OnRefused>) -> Self {
        FramingWatch {
            inner,
            scanner: Scanner { state: State::Head, limits, heads: 0 },
            held: BytesMut::new(),
            ready: 0,
            scanned: 0,
            eof: false,
            heads: 0,
            responded,
            flushed_after: 0,
            refusal: None,
            reply: None,
            read_waker: None,
            on_refused,
        }
    }

    /// Every earlier request has its response on the wire: the refusal can follow.
    fn may_reply(&self) -> bool {
        self.heads == 0 || (self.responded.count() >= self.heads && self.flushed_after >= self.heads)
    }

    /// Refuses the head that starts `head` (the bytes read of it so far).
    fn refuse(&mut self, refusal: Refusal, head: &[u8]) {
        match &self.on_refused {
            Some(on_refused) => {
                let request = readable_request(head);
                on_refused(EdgeRefusal { reason: refusal.reason, why: refusal.why, request });
            }
            None => tracing::warn!(
                reason = refusal.reason.as_str(),
                why = refusal.why,
                "refused a malformed request from the client"
            ),
        }
        self.refusal = Some(refusal);
        self.reply = Some(BytesMut::from(&crate::errors::rescue_http1(refusal.reason)[..]));
    }
}

impl<IO: AsyncWrite + Unpin> FramingWatch<IO> {
    /// Writes the pending refusal response; Ready once it is all written.
    fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(reply) = self.reply.as_mut() {
            if reply.is_empty() {
                self.reply = None;
                break;
            }
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, reply))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            reply.advance(n);
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }
}

impl<IO: AsyncRead + AsyncWrite + Unpin> AsyncRead for FramingWatch<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ready > 0 {
                let n = this.ready.min(out.remaining());
                out.put_slice(&this.held[..n]);
                this.held.advance(n);
                this.ready -= n;
                this.scanned -= n;
                return Poll::Ready(Ok(()));
            }
            if this.refusal.is_some() {
                if this.reply.is_some() {
                    if !this.may_reply() {
                        // Responses to earlier requests are still being written: poll_flush wakes us.
                        this.read_waker = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                    ready!(this.poll_reply(cx))?;
                }
                // Refusal written: hyper sees the end of input and closes the connection.
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                // Whatever is left is an incomplete head: let hyper see it and end the connection its way.
                let n = this.held.len().min(out.remaining());
                out.put_slice(&this.held[..n]);
                this.held.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.held.is_empty() {
                // Fast path: read straight into hyper's buffer and take back only what may not pass yet
                // (the start of an incomplete head): no copy for the usual whole-head-in-one-read request.
                let before = out.filled().len();
                ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
                let got = out.filled().len() - before;
                if got == 0 {
                    this.eof = true;
                    return Poll::Ready(Ok(()));
                }
                let heads_before = this.scanner.heads;
                let step = this.scanner.advance(&out.filled()[before..], 0);
                this.heads += this.scanner.heads - heads_before;
                let at = match step {
                    Step::Ready(at) => {
                        this.held.extend_from_slice(&out.filled()[before + at..]);
                        at
                    }
                    Step::Refuse(at, refusal) => {
                        let head = out.filled()[before + at..].to_vec();
                        this.refuse(refusal, &head);
                        at
                    }
                };
                out.set_filled(before + at);
                if at > 0 {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            // Slow path, after an incomplete head: reads land in `held` until the head is complete.
            this.held.reserve(16 * 1024);
            let got = ready!(tokio_util::io::poll_read_buf(Pin::new(&mut this.inner), cx, &mut this.held))?;
            if got == 0 {
                this.eof = true;
                continue;
            }
            let heads_before = this.scanner.heads;
            match this.scanner.advance(&this.held, this.scanned) {
                Step::Ready(at) => {
                    this.ready = at;
                    this.scanned = at;
                }
                Step::Refuse(at, refusal) => {
                    this.ready = at;
                    this.scanned = at;
                    let head = this.held.split_off(at);
                    this.refuse(refusal, &head);
                }
            }
            this.heads += this.scanner.heads - heads_before;
        }
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for FramingWatch<IO> {
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
        let this = &mut *self;
        let responded = this.responded.count();
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        this.flushed_after = this.flushed_after.max(responded);
        if this.refusal.is_some()
            && this.may_reply()
            && let Some(w) = this.read_waker.take()
        {
            w.wake();
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.refusal.is_some() && this.reply.is_some() {
            ready!(this.poll_reply(cx))?;
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
