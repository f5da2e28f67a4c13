//! A raw HTTP/1 client for bad-input tests: write arbitrary bytes, read one response, see if the peer closed.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// How long [`raw_http1`] waits, after the response, for the server to close the connection.
pub const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// One HTTP/1 response as read off the wire, leniently parsed.
#[derive(Clone, Debug, Default)]
pub struct RawResponse {
    /// `None` if no parsable status line arrived.
    pub status: Option<u16>,
    pub reason: String,
    /// In order, duplicates kept, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// De-chunked when the response was chunked.
    pub body: Vec<u8>,
    /// Trailers of a chunked response.
    pub trailers: Vec<(String, String)>,
    /// The whole response was read (by its framing, or up to the close for close-delimited bodies).
    pub complete: bool,
    /// The server closed the connection (EOF or reset) after the response, within the close wait.
    pub closed: bool,
    /// Every byte received, for debugging.
    pub raw: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` verbatim to `addr` and reads one response; waits up to [`CLOSE_WAIT`] (5 s)
/// afterwards to tell whether the server closed the connection.
///
/// Interim 1xx responses (other than 101) are skipped. Reading the response is bounded by the
/// [`patience`](crate::patience); a server that never answers yields `status: None`.
///
/// ```no_run
/// # async fn t(proxy: std::net::SocketAddr) {
/// let resp = meshlens_testkit::raw_http1(
///     proxy,
///     b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
/// )
/// .await;
/// assert_eq!(resp.status, Some(400));
/// assert!(resp.closed);
/// # }
/// ```
pub async fn raw_http1(addr: SocketAddr, request: impl AsRef<[u8]>) -> RawResponse {
    raw_http1_with(addr, request, CLOSE_WAIT).await
}

/// [`raw_http1`] with an explicit close wait (use a short one when the connection should stay open).
pub async fn raw_http1_with(addr: SocketAddr, request: impl AsRef<[u8]>, close_wait: Duration) -> RawResponse {
    let request = request.as_ref();
    let head_only = request.starts_with(b"HEAD ");
    let mut stream = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    let (mut rd, mut wr) = stream.split();
    // Write while reading: the server may answer (and stop reading) before taking all the bytes.
    // The write side stays open afterwards, so the server never sees our EOF.
    let mut write = std::pin::pin!(async move {
        let _ = wr.write_all(request).await;
    });
    let mut written = false;

    let deadline = Instant::now() + crate::patience();
    let mut resp = RawResponse::default();
    let mut buf = [0u8; 16 * 1024];
    let mut eof = false;
    loop {
        if let Some(parsed) = parse(&resp.raw, eof, head_only) {
            resp = RawResponse { raw: std::mem::take(&mut resp.raw), ..parsed };
            break;
        }
        if eof {
            break;
        }
        tokio::select! {
            () = &mut write, if !written => written = true,
            read = timeout_at(deadline, rd.read(&mut buf)) => match read {
                Ok(Ok(0) | Err(_)) => eof = true,
                Ok(Ok(n)) => resp.raw.extend_from_slice(&buf[..n]),
                Err(_elapsed) => break,
            },
        }
    }
    if resp.status.is_none() {
        // Keep whatever head was parsable, for the assertion message.
        if let Some(partial) = parse_head(&resp.raw) {
            resp.status = Some(partial.status);
            resp.reason = partial.reason;
            resp.headers = partial.headers;
        }
    }
    resp.closed = eof || {
        let mut probe = [0u8; 1];
        matches!(tokio::time::timeout(close_wait, rd.read(&mut probe)).await, Ok(Ok(0) | Err(_)))
    };
    resp
}

struct Head {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    len: usize,
}

/// Parses a status line and headers ending in an empty line (CRLF, or bare LF, tolerated).
fn parse_head(buf: &[u8]) -> Option<Head> {
    let end = find(buf, b"\r\n\r\n").map(|i| i + 4).or_else(|| find(buf, b"\n\n").map(|i| i + 2))?;
    let text = String::from_utf8_lossy(&buf[..end]);
    let mut lines = text.lines();
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let status = parts.next()?.trim().parse().ok()?;
    let reason = parts.next().unwrap_or("").trim().to_owned();
    let headers = lines
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once(':') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), v.trim().to_owned()),
            None => (l.trim().to_ascii_lowercase(), String::new()),
        })
        .collect();
    Some(Head { status, reason, headers, len: end })
}

/// Parses one complete response (skipping interim 1xx), or `None` if more bytes are needed.
fn parse(buf: &[u8], eof: bool, head_only: bool) -> Option<RawResponse> {
    let mut start = 0;
    loop {
        let head = parse_head(&buf[start..])?;
        let rest = &buf[start + head.len..];
        let header = |name: &'static str| head.headers.iter().filter(move |(k, _)| k == name).map(|(_, v)| v.as_str());
        let mut resp = RawResponse {
            status: Some(head.status),
            reason: head.reason.clone(),
            headers: head.headers.clone(),
            complete: true,
            ..RawResponse::default()
        };
        if (100..200).contains(&head.status) && head.status != 101 {
            start += head.len;
            continue;
        }
        if head_only || head.status == 101 || head.status == 204 || head.status == 304 {
            return Some(resp);
        }
        if header("transfer-encoding").any(|v| v.to_ascii_lowercase().contains("chunked")) {
            match dechunk(rest) {
                Some((body, trailers)) => {
                    resp.body = body;
                    resp.trailers = trailers;
                    return Some(resp);
                }
                None if eof => {
                    resp.complete = false;
                    resp.body = rest.to_vec();
                    return Some(resp);
                }
                None => return None,
            }
        }
        if let Some(len) = header("content-length").next() {
            let len: usize = len.trim().parse().unwrap_or(usize::MAX);
            if rest.len() >= len {
                resp.body = rest[..len].to_vec();
                return Some(resp);
            }
            if eof {
                resp.complete = false;
                resp.body = rest.to_vec();
                return Some(resp);
            }
            return None;
        }
        // Close-delimited.
        if eof {
            resp.body = rest.to_vec();
            return Some(resp);
        }
        return None;
    }
}

type Trailers = Vec<(String, String)>;

/// Decodes a complete chunked body, or `None` if more bytes are needed.
fn dechunk(mut buf: &[u8]) -> Option<(Vec<u8>, Trailers)> {
    let mut body = Vec::new();
    loop {
        let line_end = find(buf, b"\r\n")?;
        let size_text = String::from_utf8_lossy(&buf[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        buf = &buf[line_end + 2..];
        if size == 0 {
            let mut trailers = Vec::new();
            loop {
                let end = find(buf, b"\r\n")?;
                if end == 0 {
                    return Some((body, trailers));
                }
                let line = String::from_utf8_lossy(&buf[..end]);
                if let Some((k, v)) = line.split_once(':') {
                    trailers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
                }
                buf = &buf[end + 2..];
            }
        }
        if buf.len() < size + 2 {
            return None;
        }
        body.extend_from_slice(&buf[..size]);
        buf = &buf[size + 2..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_chunked_and_interim() {
        let r = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", false, false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (Some(200), &b"hi"[..]));
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nhi", false, false).is_none());

        let chunked = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                        2\r\nhi\r\n3;ext=1\r\n!!!\r\n0\r\ngrpc-status: 0\r\n\r\n";
        let r = parse(chunked, false, false).unwrap();
        assert_eq!(r.body, b"hi!!!");
        assert_eq!(r.trailers, [("grpc-status".to_owned(), "0".to_owned())]);

        let r = parse(b"HTTP/1.0 502 Bad Gateway\r\n\r\nbad", true, false).unwrap();
        assert_eq!((r.status, r.reason.as_str(), r.body_text().as_str()), (Some(502), "Bad Gateway", "bad"));
        assert!(parse(b"garbage\r\n\r\n", true, false).is_none());
    }
}
