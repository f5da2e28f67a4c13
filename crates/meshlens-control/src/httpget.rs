//! One HTTP/1.1 GET on a fresh connection (hyper), with a deadline over the whole exchange and a size cap:
//! how the control plane reads proxies' admin pages (`/metrics`, `/logs`, `/endpoints`) and asks Prometheus.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Request, header};
use hyper_util::rt::TokioIo;

/// The most a response may hold (a Prometheus answer for a big mesh is a few MiB).
const MAX_RESPONSE_BYTES: usize = 64 << 20;

/// A response: its status code, body, and `Date` header (when it had a valid one).
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
    pub date: Option<std::time::SystemTime>,
}

/// `GET path_and_query` from `authority` (`host:port`; a name is resolved), with `accept`, answered in full
/// within `timeout` (else `TimedOut`). An answer that is no HTTP/1 response, too large or not UTF-8 is
/// `InvalidData`.
pub(crate) async fn get(authority: &str, path_and_query: &str, accept: &str, timeout: Duration) -> io::Result<Reply> {
    tokio::time::timeout(timeout, exchange(authority, path_and_query, accept))
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, format!("no answer within {}", secs(timeout)))))
}

/// `GET path` from a proxy's admin listener, decoded as JSON; any failure is the message to report.
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    admin: std::net::SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<T, String> {
    let reply = get(&admin.to_string(), path, "application/json", timeout)
        .await
        .map_err(|e| format!("cannot read {admin}{path}: {e}"))?;
    if reply.status != 200 {
        let body: String = reply.body.chars().take(200).collect();
        return Err(format!("{admin}{path} answered {}: {}", reply.status, body.trim()));
    }
    serde_json::from_str(&reply.body).map_err(|e| format!("{admin}{path} answered something unreadable: {e}"))
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

async fn exchange(authority: &str, path_and_query: &str, accept: &str) -> io::Result<Reply> {
    let tcp = tokio::net::TcpStream::connect(authority).await?;
    let _ = tcp.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await.map_err(hyper_error)?;
    let req = Request::get(path_and_query)
        .header(header::HOST, authority)
        .header(header::ACCEPT, accept)
        .body(Empty::<Bytes>::new())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let work = async move {
        let resp = sender.send_request(req).await.map_err(hyper_error)?;
        let status = resp.status().as_u16();
        let date = resp.headers().get(header::DATE).and_then(|d| httpdate::parse_http_date(d.to_str().ok()?).ok());
        let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES).collect().await.map_err(|e| match e
            .downcast::<hyper::Error>()
        {
            Ok(e) => hyper_error(*e),
            Err(_) => invalid("response larger than 64 MiB".into()),
        })?;
        let body = String::from_utf8(body.to_bytes().to_vec()).map_err(|_| invalid("not UTF-8".into()))?;
        Ok(Reply { status, body, date })
    };
    // The connection is driven here, not in a task of its own, so a deadline that drops this future closes it.
    tokio::pin!(work, conn);
    tokio::select! {
        biased;
        reply = &mut work => return reply,
        _ = &mut conn => {}
    }
    // The connection ended (`Connection: close`): what it delivered is still to be read.
    work.await
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Parse errors are `InvalidData` (the peer is no HTTP/1 server); the rest keep hyper's words.
fn hyper_error(e: hyper::Error) -> io::Error {
    if e.is_parse() || e.is_parse_status() {
        return invalid(format!("not an HTTP/1 response: {e}"));
    }
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(s) = src {
        msg = format!("{msg}: {s}");
        src = s.source();
    }
    io::Error::other(msg)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const PATIENCE: Duration = Duration::from_secs(10);

    /// Serves `reply` to one connection (and holds it open if `hold`); returns its address.
    async fn serve_once(reply: &'static str, hold: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let _ = conn.write_all(reply.as_bytes()).await;
            if hold {
                let _ = conn.read(&mut buf).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn reads_status_and_body_of_any_status() {
        let addr = serve_once("HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\noops!", false).await;
        let r = super::get(&addr, "/x", "*/*", PATIENCE).await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (400, "oops!"));
        let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n1\r\n!\r\n0\r\n\r\n";
        let r = super::get(&serve_once(chunked, false).await, "/x", "*/*", PATIENCE).await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "ok!"));
        let close_delimited = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end";
        let r = super::get(&serve_once(close_delimited, false).await, "/x", "*/*", PATIENCE).await.unwrap();
        assert_eq!(r.body, "until the end");
        let e =
            super::get(&serve_once("SSH-2.0-OpenSSH\r\n\r\n", false).await, "/x", "*/*", PATIENCE).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData, "{e}");
        assert!(e.to_string().contains("not an HTTP/1 response"), "{e}");
    }

    #[tokio::test]
    async fn a_peer_that_never_finishes_is_a_timeout() {
        let addr = serve_once("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", true).await;
        let e = super::get(&addr, "/x", "*/*", Duration::from_millis(300)).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
        assert!(e.to_string().contains("no answer within 0.3s"), "{e}");
    }
}
