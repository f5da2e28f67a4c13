//! Issue 12's reproductions against the control plane's server: slow and silent connections are closed at
//! the header-read timeout; connections over the cap get a JSON 503 while authenticated callers still get in.

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Reads until the peer closes; the time it took (None: still open after `within`).
async fn closed_within(conn: &mut TcpStream, within: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(within.saturating_sub(t0.elapsed()), conn.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return Some(t0.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test]
async fn slow_and_silent_connections_are_closed_at_the_header_read_timeout() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    let t0 = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    // Slow: a request head trickling in, a byte every 2 s.
    let slow = tokio::spawn(async move {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        for b in b"GET /api/v1/status HTTP/1.1\r\n".iter().cycle().take(20) {
            if conn.write_all(&[*b]).await.is_err() {
                return Instant::now();
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        Instant::now()
    });
    for conn in &mut silent {
        let took = closed_within(conn, Duration::from_secs(15)).await;
        assert!(took.is_some(), "a silent connection is still open after 15 s");
    }
    let silent_closed = t0.elapsed();
    let slow_closed = slow.await.unwrap();
    assert!(silent_closed < Duration::from_secs(11), "silent connections closed after {silent_closed:?}");
    assert!(slow_closed - t0 < Duration::from_secs(13), "the slow head was cut after {:?}", slow_closed - t0);
    // The server still serves.
    assert_eq!(get_json(addr, "/api/v1/status").await.0, StatusCode::OK);
    cp.shutdown().await;
}

#[tokio::test]
async fn over_the_cap_others_get_json_503_and_the_cli_still_gets_in() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let mut c = config(&dir);
    c.max_connections = 4;
    let cp = start(c).await;
    let addr = cp.addr();
    // Four connections that say nothing hold every slot.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // A fifth without a credential: a JSON 503.
    let (code, v) = request_as(addr, Method::GET, "/api/v1/status", b"", None).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(v["error"].as_str().unwrap().starts_with("too many connections (at most 4)"), "{v}");
    // The CLI (API token) and a proxy (its credential) still get in.
    let (code, v) = request_as(addr, Method::GET, "/api/v1/status", b"", Some(API_TOKEN)).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let (code, v) = register(addr, &registration("orders", "orders-0", "127.0.0.1:4143")).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    drop(held);
    cp.shutdown().await;
}
