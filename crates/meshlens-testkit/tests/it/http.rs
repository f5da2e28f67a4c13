//! HttpBackend and its handlers, driven by hyper's own HTTP/1.1 and h2c clients and by `raw_http1`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshlens_testkit::backend::{Checksum, big_stream, delayed, echo, fixed, websocket_echo, with_trailers};
use meshlens_testkit::raw::raw_http1_with;
use meshlens_testkit::{HttpBackend, RawTcpBackend, assert_eventually, raw_http1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn send(addr: SocketAddr, version: Version, req: Request<Full<Bytes>>) -> Response<Incoming> {
    let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
    if version == Version::HTTP_2 {
        let (mut tx, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.unwrap();
        tokio::spawn(conn);
        tx.send_request(req).await.unwrap()
    } else {
        let (mut tx, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        tx.send_request(req).await.unwrap()
    }
}

/// HTTP/1 requests in origin-form with a `Host` header (as apps send them), HTTP/2 ones with a
/// full URI (hyper turns it into `:authority`).
fn post(version: Version, body: &'static str) -> Request<Full<Bytes>> {
    let req = if version == Version::HTTP_2 {
        Request::post("http://web.prod.svc.cluster.local/echo?q=1")
    } else {
        Request::post("/echo?q=1").header("host", "web.prod.svc.cluster.local")
    };
    req.version(version).header("x-req-id", "r-1").body(Full::new(Bytes::from_static(body.as_bytes()))).unwrap()
}

#[tokio::test]
async fn echo_over_http1_and_h2c_on_one_port() {
    let backend = HttpBackend::start(echo("a"));
    for version in [Version::HTTP_11, Version::HTTP_2] {
        let resp = send(backend.addr(), version, post(version, "hello")).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.version(), version);
        assert_eq!(resp.headers()["x-backend"], "a");
        assert_eq!(resp.headers()["x-req-id"], "r-1");
        assert_eq!(resp.into_body().collect().await.unwrap().to_bytes(), "hello");
    }
    assert_eq!(backend.requests(), 2);
    assert_eq!(backend.connections(), 2);
    let seen = backend.seen();
    assert_eq!(seen.iter().map(|s| s.version).collect::<Vec<_>>(), [Version::HTTP_11, Version::HTTP_2]);
    assert!(seen.iter().all(|s| s.method == "POST" && s.path() == "/echo" && s.header("x-req-id") == Some("r-1")));
    assert!(seen.iter().all(|s| s.authority() == Some("web.prod.svc.cluster.local")));
}

#[tokio::test]
async fn big_stream_arrives_whole_and_in_order() {
    let n = 3 * 1024 * 1024 + 7;
    let backend = HttpBackend::start(big_stream(n));
    let req = Request::get(backend.url("/big")).body(Full::default()).unwrap();
    let mut body = send(backend.addr(), Version::HTTP_11, req).await.into_body();
    let mut sum = Checksum::default();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            sum.update(&data);
        }
    }
    assert_eq!(sum.len(), n);
    assert_eq!(sum.value(), Checksum::of_big_stream(n));
}

#[tokio::test]
async fn trailers_reach_an_h2_client() {
    let backend = HttpBackend::start(with_trailers(
        200,
        &[("content-type", "application/grpc")],
        "payload",
        &[("grpc-status", "13"), ("grpc-message", "boom")],
    ));
    let req = Request::get(backend.url("/")).version(Version::HTTP_2).body(Full::default()).unwrap();
    let resp = send(backend.addr(), Version::HTTP_2, req).await;
    assert_eq!(resp.headers()["content-type"], "application/grpc");
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(trailers["grpc-status"], "13");
    assert_eq!(trailers["grpc-message"], "boom");
    assert_eq!(collected.to_bytes(), "payload");
}

#[tokio::test]
async fn delayed_waits_before_answering() {
    let backend = HttpBackend::start(delayed(Duration::from_millis(50), fixed(204, "")));
    let start = Instant::now();
    let resp = raw_http1_with(backend.addr(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n", Duration::ZERO).await;
    assert_eq!(resp.status, Some(204));
    assert!(start.elapsed() >= Duration::from_millis(50));
}

#[tokio::test]
async fn raw_http1_reports_status_body_and_close() {
    let backend = HttpBackend::start(fixed(503, "nope"));
    let resp = raw_http1_with(backend.addr(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n", Duration::from_millis(100)).await;
    assert_eq!((resp.status, resp.body_text().as_str(), resp.closed), (Some(503), "nope", false));
    assert_eq!(resp.header("content-length"), Some("4"));

    let resp = raw_http1(backend.addr(), "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").await;
    assert!(resp.complete && resp.closed, "{resp:?}");

    // A malformed request: hyper answers 400 and closes.
    let resp = raw_http1(backend.addr(), "GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n").await;
    assert_eq!(resp.status, Some(400));
    assert!(resp.closed);
}

#[tokio::test]
async fn raw_tcp_backend_scripts_invalid_responses() {
    let bad = RawTcpBackend::start(|mut s| async move {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        let _ =
            s.write_all(b"HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab").await;
    });
    let resp = raw_http1(bad.addr(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert_eq!(resp.status, Some(200));
    assert!(resp.raw.windows(3).any(|w| w == b"a\rb"));
    assert!(resp.closed);
    assert_eq!(bad.connections(), 1);
}

#[tokio::test]
async fn websocket_upgrade_then_raw_echo() {
    let backend = HttpBackend::start(websocket_echo());
    let mut s = TcpStream::connect(backend.addr()).await.unwrap();
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    s.write_all(b"ping").await.unwrap();
    let mut echoed = [0u8; 4];
    s.read_exact(&mut echoed).await.unwrap();
    assert_eq!(&echoed, b"ping");

    let plain = raw_http1_with(backend.addr(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n", Duration::ZERO).await;
    assert_eq!(plain.status, Some(400));
}

#[tokio::test]
async fn stop_closes_the_port_and_it_can_be_reused() {
    let backend = HttpBackend::start(fixed(200, "one"));
    let addr = backend.addr();
    backend.stop().await;
    assert!(TcpStream::connect(addr).await.is_err(), "port still open after stop");

    let again = HttpBackend::start_on(addr, fixed(200, "two"));
    let resp = raw_http1_with(addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", Duration::ZERO).await;
    assert_eq!(resp.body_text(), "two");
    assert_eventually!(again.requests() == 1);
}
