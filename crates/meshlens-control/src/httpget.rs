//! A minimal HTTP/1.1 GET over TCP (`Connection: close`, chunked or not): how the control plane reads
//! proxies' `/metrics` and asks Prometheus.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The most a response may hold (a Prometheus answer for a big mesh is a few MiB).
const MAX_RESPONSE_BYTES: u64 = 64 << 20;

/// A response: its status code and body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
}

/// `GET path_and_query` from `authority` (`host:port`; a name is resolved), with `accept`.
pub(crate) async fn get(authority: &str, path_and_query: &str, accept: &str) -> io::Result<Reply> {
    let mut conn = tokio::net::TcpStream::connect(authority).await?;
    let req =
        format!("GET {path_and_query} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAccept: {accept}\r\n\r\n");
    conn.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    conn.take(MAX_RESPONSE_BYTES + 1).read_to_end(&mut buf).await?;
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
    if buf.len() as u64 > MAX_RESPONSE_BYTES {
        return Err(bad("response larger than 64 MiB"));
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
    let status_line = head.lines().next().unwrap_or("");
    let status = match status_line.split_whitespace().collect::<Vec<_>>()[..] {
        [version, code, ..] if version.starts_with("http/1.") => code.parse::<u16>().ok(),
        _ => None,
    }
    .ok_or_else(|| bad(&format!("not an HTTP/1 response: {status_line:?}")))?;
    let body = &buf[end + 4..];
    let chunked = head.lines().any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
    let body = if chunked { dechunk(body).ok_or_else(|| bad("bad chunks"))? } else { body.to_vec() };
    let body = String::from_utf8(body).map_err(|_| bad("not UTF-8"))?;
    Ok(Reply { status, body })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn dechunks() {
        assert_eq!(super::dechunk(b"3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n").unwrap(), b"abcde");
        assert!(super::dechunk(b"5\r\nab").is_none());
    }

    /// Serves `reply` to one connection; returns its address.
    async fn serve_once(reply: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf).await;
            let _ = conn.write_all(reply.as_bytes()).await;
        });
        addr
    }

    #[tokio::test]
    async fn reads_status_and_body_of_any_status() {
        let addr = serve_once("HTTP/1.1 400 Bad Request\r\nContent-Length: 5\r\n\r\noops!").await;
        let r = super::get(&addr, "/x", "*/*").await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (400, "oops!"));
        let addr =
            serve_once("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n1\r\n!\r\n0\r\n\r\n").await;
        let r = super::get(&addr, "/x", "*/*").await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "ok!"));
        let addr = serve_once("SSH-2.0-OpenSSH\r\n\r\n").await;
        let e = super::get(&addr, "/x", "*/*").await.unwrap_err();
        assert!(e.to_string().contains("not an HTTP/1 response"), "{e}");
    }
}
