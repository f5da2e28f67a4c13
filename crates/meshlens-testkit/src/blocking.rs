//! A blocking HTTP/1.1 GET for whole-binary tests (apps, proxies and admin listeners of child processes):
//! `Connection: close`, the whole answer read, the head kept (for `l5d-proxy-error` and other headers).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// What [`http_get`] read.
#[derive(Clone, Debug)]
pub struct HttpReply {
    /// 0 when the answer has no status line.
    pub status: u16,
    /// The status line and headers.
    pub head: String,
    pub body: String,
}

impl HttpReply {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// `HTTP 502 (l5d-proxy-error: connect_error)`, or the status with the head and the body's start.
    pub fn describe(&self) -> String {
        match self.header("l5d-proxy-error") {
            Some(e) => format!("HTTP {} (l5d-proxy-error: {e})", self.status),
            None => format!(
                "HTTP {} without l5d-proxy-error: {:?} {:?}",
                self.status,
                self.head.replace("\r\n", " | "),
                self.body.chars().take(120).collect::<String>()
            ),
        }
    }
}

/// `GET target` with `Host: host` on a new connection to `addr`: `target` in origin form (`/path`), or in
/// absolute form (`http://host/path`) to send it through a proxy. Connecting may take 2 s, reading and
/// writing `timeout` each.
pub fn http_get(addr: SocketAddr, host: &str, target: &str, timeout: Duration) -> std::io::Result<HttpReply> {
    http_get_as(addr, host, target, timeout, None)
}

/// [`http_get`] with `Authorization: Bearer <token>` when a token is given.
pub fn http_get_as(
    addr: SocketAddr,
    host: &str,
    target: &str,
    timeout: Duration,
    token: Option<&str>,
) -> std::io::Result<HttpReply> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {target} HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n")?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok(HttpReply { status, head: head.to_owned(), body: body.to_owned() })
}
