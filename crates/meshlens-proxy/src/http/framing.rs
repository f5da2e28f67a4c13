//! Request-smuggling guard for HTTP/1 servers: watches the bytes hyper reads and records, for each
//! request head in order, whether its framing is ambiguous (Content-Length together with
//! Transfer-Encoding, or conflicting Content-Length values). hyper itself would accept such a request
//! (dropping Content-Length); the proxy refuses it with 400 and closes (RFC 9112 §6.1).
//!
//! The scanner follows message boundaries (Content-Length bodies, chunked bodies with trailers) so it
//! finds every pipelined or keep-alive head; on anything it does not understand it stops judging, and
//! hyper's own parser stays the authority.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Verdicts for the request heads seen so far, in order: `true` = ambiguous framing.
#[derive(Clone, Default)]
pub struct Verdicts(Arc<Mutex<VecDeque<bool>>>);

impl Verdicts {
    /// The verdict for the next request hyper hands to the service (`false` when unknown).
    pub fn next_is_ambiguous(&self) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).pop_front().unwrap_or(false)
    }

    fn push(&self, ambiguous: bool) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push_back(ambiguous);
    }
}

const MAX_HEAD: usize = 128 * 1024;

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
    /// Upgraded, tunneled or not understood: stop judging.
    Done,
}

struct Scanner {
    state: State,
    head: Vec<u8>,
    verdicts: Verdicts,
}

impl Scanner {
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match &mut self.state {
                State::Done => return,
                State::Head => {
                    // Skip the empty lines that may precede a request (RFC 9112 §2.2).
                    if self.head.is_empty() {
                        let skip = data.iter().take_while(|b| **b == b'\r' || **b == b'\n').count();
                        data = &data[skip..];
                        if data.is_empty() {
                            return;
                        }
                    }
                    let start = self.head.len();
                    self.head.extend_from_slice(data);
                    let from = start.saturating_sub(3);
                    match find_head_end(&self.head[from..]) {
                        Some(end) => {
                            let end = from + end;
                            let rest_at = end - start;
                            let head = std::mem::take(&mut self.head);
                            self.state = self.judge(&head[..end]);
                            data = &data[rest_at..];
                        }
                        None => {
                            if self.head.len() > MAX_HEAD {
                                self.state = State::Done;
                            }
                            return;
                        }
                    }
                }
                State::Body(left) => {
                    let n = (*left).min(data.len() as u64);
                    *left -= n;
                    data = &data[n as usize..];
                    if *left == 0 {
                        self.state = State::Head;
                    }
                }
                State::ChunkSize { size, digits, in_ext } => {
                    let b = data[0];
                    data = &data[1..];
                    match b {
                        b'\n' => {
                            self.state = if *digits == 0 {
                                State::Done
                            } else if *size == 0 {
                                State::Trailers { line_len: 0 }
                            } else {
                                State::ChunkData(*size)
                            };
                        }
                        _ if *in_ext || b == b'\r' => {}
                        b';' => *in_ext = true,
                        _ => match (b as char).to_digit(16) {
                            Some(d) if *digits < 16 => {
                                *size = *size * 16 + d as u64;
                                *digits += 1;
                            }
                            _ if b == b' ' || b == b'\t' => *in_ext = true,
                            _ => self.state = State::Done,
                        },
                    }
                }
                State::ChunkData(left) => {
                    let n = (*left).min(data.len() as u64);
                    *left -= n;
                    data = &data[n as usize..];
                    if *left == 0 {
                        self.state = State::ChunkDataEnd { seen_cr: false };
                    }
                }
                State::ChunkDataEnd { seen_cr } => {
                    let b = data[0];
                    data = &data[1..];
                    match (b, *seen_cr) {
                        (b'\r', false) => *seen_cr = true,
                        (b'\n', _) => self.state = State::ChunkSize { size: 0, digits: 0, in_ext: false },
                        _ => self.state = State::Done,
                    }
                }
                State::Trailers { line_len } => {
                    let b = data[0];
                    data = &data[1..];
                    match b {
                        b'\n' if *line_len == 0 => self.state = State::Head,
                        b'\n' => *line_len = 0,
                        b'\r' => {}
                        _ => *line_len += 1,
                    }
                }
            }
        }
    }

    /// Records the verdict for one head and returns the state that follows it.
    fn judge(&mut self, head: &[u8]) -> State {
        let mut lines = head.split(|b| *b == b'\n');
        let request_line = lines.next().unwrap_or_default();
        let upgrade_like = request_line.starts_with(b"CONNECT ");
        let mut lengths: Vec<&[u8]> = Vec::new();
        let mut te: Option<&[u8]> = None;
        let mut upgrade = false;
        for line in lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|b| *b == b':') else { continue };
            let name = &line[..colon];
            let value = trim(&line[colon + 1..]);
            if name.eq_ignore_ascii_case(b"content-length") {
                lengths.push(value);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                te = Some(value);
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                upgrade = true;
            }
        }
        let conflicting = lengths.windows(2).any(|w| w[0] != w[1]);
        let ambiguous = (te.is_some() && !lengths.is_empty()) || conflicting;
        self.verdicts.push(ambiguous);
        if ambiguous || upgrade || upgrade_like {
            // The connection closes (400) or becomes a tunnel: nothing more to judge.
            return State::Done;
        }
        if let Some(te) = te {
            let last = te.rsplit(|b| *b == b',').next().map(trim).unwrap_or_default();
            return if last.eq_ignore_ascii_case(b"chunked") {
                State::ChunkSize { size: 0, digits: 0, in_ext: false }
            } else {
                State::Done
            };
        }
        match lengths.first().map(|v| std::str::from_utf8(v).ok().and_then(|s| s.parse::<u64>().ok())) {
            None => State::Head,
            Some(Some(0)) => State::Head,
            Some(Some(n)) => State::Body(n),
            Some(None) => State::Done,
        }
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !b.is_ascii_whitespace()).map_or(start, |e| e + 1);
    &v[start..end]
}

/// The end of a head (index just past the blank line), accepting `\r\n\r\n` and bare `\n\n`.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

/// An HTTP/1 server connection's I/O, scanned for ambiguous framing as hyper reads it.
pub struct FramingWatch<IO> {
    inner: IO,
    scanner: Scanner,
}

impl<IO> FramingWatch<IO> {
    pub fn new(inner: IO) -> (Self, Verdicts) {
        let verdicts = Verdicts::default();
        let scanner = Scanner { state: State::Head, head: Vec::new(), verdicts: verdicts.clone() };
        (FramingWatch { inner, scanner }, verdicts)
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for FramingWatch<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        if self.scanner.state != State::Done && buf.filled().len() > before {
            let this = &mut *self;
            this.scanner.feed(&buf.filled()[before..]);
        }
        res
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
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(input: &[u8], split: usize) -> Vec<bool> {
        let v = Verdicts::default();
        let mut s = Scanner { state: State::Head, head: Vec::new(), verdicts: v.clone() };
        for chunk in input.chunks(split) {
            s.feed(chunk);
        }
        let q = v.0.lock().unwrap();
        q.iter().copied().collect()
    }

    #[test]
    fn judges_each_head_across_bodies_in_any_split() {
        let input: &[u8] = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n\
POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello\
POST /b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n\
GET /c HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
GET /never HTTP/1.1\r\n\r\n";
        for split in [1, 2, 3, 7, 64, 4096] {
            assert_eq!(verdicts(input, split), vec![false, false, false, true], "split {split}");
        }
    }

    #[test]
    fn conflicting_lengths_are_ambiguous_and_equal_duplicates_are_not() {
        assert_eq!(verdicts(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 5), vec![true]);
        assert_eq!(verdicts(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", 5), vec![false]);
        assert_eq!(
            verdicts(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\ncontent-length: 2\r\n\r\n", 5),
            vec![true]
        );
    }

    #[test]
    fn stops_judging_after_an_upgrade() {
        let input = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nPOST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(verdicts(input, 9), vec![false]);
    }
}
