//! One proxy's tap stream: `GET /tap?<filter>` on its tap listener over HTTP/1 with the bearer token,
//! read as NDJSON lines.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A line longer than this is not a tap event: the stream is given up.
const MAX_LINE: usize = 1 << 20;

/// An open tap stream. Dropping it closes the connection.
pub(crate) struct Upstream {
    body: Incoming,
    buf: BytesMut,
    conn: JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// Opens the stream; the reason when the proxy cannot be reached or refuses (status and body).
pub(crate) async fn open(addr: SocketAddr, query: &str, token: &str) -> Result<Upstream, String> {
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("connecting to {addr} timed out"))?
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(|e| format!("{addr}: {e}"))?;
    let conn = tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::get(format!("/tap?{query}"))
        .header(header::HOST, addr.to_string())
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::ACCEPT, "application/x-ndjson")
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| format!("{addr}: {e}"))?;
    let status = resp.status();
    if status != StatusCode::OK {
        let body = tokio::time::timeout(CONNECT_TIMEOUT, resp.into_body().collect()).await;
        let text = match body {
            Ok(Ok(b)) => String::from_utf8_lossy(&b.to_bytes()).chars().take(200).collect(),
            _ => String::new(),
        };
        conn.abort();
        return Err(format!("{addr} answered {status}: {}", text.trim()));
    }
    Ok(Upstream { body: resp.into_body(), buf: BytesMut::new(), conn })
}

impl Upstream {
    /// The next non-empty line (without its newline); `None` when the stream ended cleanly.
    pub async fn next_line(&mut self) -> Option<Result<Bytes, String>> {
        loop {
            while let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line = self.buf.split_to(end + 1).freeze().slice(..end);
                if !line.iter().all(u8::is_ascii_whitespace) {
                    return Some(Ok(line));
                }
            }
            if self.buf.len() > MAX_LINE {
                return Some(Err(format!("a line longer than {MAX_LINE} bytes")));
            }
            match self.body.frame().await {
                None => return None,
                Some(Err(e)) => return Some(Err(e.to_string())),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}
