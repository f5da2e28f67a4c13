//! What goes in comes out: HTTP/1.1 keep-alive, chunked and large streamed bodies both ways, trailers,
//! WebSocket upgrades, CONNECT, and routing by absolute form, Host and upstream listeners.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use meshlens_testkit::backend::{Checksum, big_stream, echo, websocket_echo, with_trailers};
use meshlens_testkit::{HttpBackend, TcpEchoBackend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

#[tokio::test]
async fn http1_keep_alive_by_host_and_absolute_form() {
    let backend = HttpBackend::start(echo("users"));
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &[backend.addr()])])).await;
    let out = proxy.listen().outbound;

    let mut c = h1(out).await;
    for (uri, host) in
        [("/a", "users"), ("/b", "users.default.svc.cluster.local"), ("http://users.default:80/c", "users.default:80")]
    {
        let rsp = c.send_request(get(uri, host)).await.unwrap();
        assert_eq!(rsp.status(), 200, "{uri}: {:?}", rsp.headers());
        assert_eq!(rsp.headers()["x-backend"], "users");
        let _ = rsp.into_body().collect().await.unwrap();
    }
    let seen = backend.seen();
    assert_eq!(seen.iter().map(|s| s.path().to_string()).collect::<Vec<_>>(), ["/a", "/b", "/c"]);
    assert_eq!(seen[2].uri.to_string(), "/c", "absolute form becomes origin form for the backend");
    assert_eq!(backend.connections(), 1, "the proxy reuses its backend connection");
}

#[tokio::test]
async fn chunked_and_large_bodies_stream_both_ways() {
    let backend = HttpBackend::start(echo("users"));
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &[backend.addr()])])).await;

    // 8 MiB up (chunked, in pieces) and the same back.
    let (tx, body) = futures_channel_body();
    let req = Request::post("/upload").header("host", "users").body(body).unwrap();
    let io = hyper_util::rt::TokioIo::new(tokio::net::TcpStream::connect(proxy.listen().outbound).await.unwrap());
    let (mut c, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let send = tokio::spawn(async move {
        let mut sum = Checksum::default();
        for i in 0..512u64 {
            let chunk: Vec<u8> = (0..16 * 1024u64).map(|j| ((i * 16 * 1024 + j) % 251) as u8).collect();
            sum.update(&chunk);
            tx.send(Bytes::from(chunk)).await.unwrap();
        }
        sum.value()
    });
    let rsp = c.send_request(req).await.unwrap();
    assert_eq!(rsp.status(), 200);
    let mut body = rsp.into_body();
    let mut got = Checksum::default();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            got.update(&data);
        }
    }
    assert_eq!(got.len(), 8 * 1024 * 1024);
    assert_eq!(got.value(), send.await.unwrap());
}

#[tokio::test]
async fn large_download_streams() {
    let n = 32 * 1024 * 1024;
    let backend = HttpBackend::start(big_stream(n));
    let (proxy, _d) = start(config(), &snapshot(vec![service("files", "default", &[backend.addr()])])).await;
    let mut c = h1(proxy.listen().outbound).await;
    let rsp = c.send_request(get("/big", "files")).await.unwrap();
    let mut body = rsp.into_body();
    let mut got = Checksum::default();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            got.update(&data);
        }
    }
    assert_eq!(got.len(), n);
    assert_eq!(got.value(), Checksum::of_big_stream(n));
}

#[tokio::test]
async fn trailers_are_forwarded_over_http2() {
    let backend =
        HttpBackend::start(with_trailers(200, &[("content-type", "text/plain")], "payload", &[("x-checksum", "abc")]));
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &[backend.addr()])])).await;
    let mut c = h2(proxy.listen().outbound).await;
    let req = Request::get("http://users/t").header("te", "trailers").body(Full::new(Bytes::new())).unwrap();
    let rsp = c.send_request(req).await.unwrap();
    assert_eq!(rsp.status(), 200);
    let collected = rsp.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc");
    assert_eq!(collected.to_bytes(), "payload");
}

#[tokio::test]
async fn websocket_upgrade_is_tunneled() {
    let backend = HttpBackend::start(websocket_echo());
    let (proxy, _d) = start(config(), &snapshot(vec![service("ws", "default", &[backend.addr()])])).await;
    let mut c = h1(proxy.listen().outbound).await;
    let req = Request::get("/chat")
        .header("host", "ws")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let rsp = c.send_request(req).await.unwrap();
    assert_eq!(rsp.status(), 101);
    assert_eq!(rsp.headers()["upgrade"], "websocket");
    let mut io = hyper_util::rt::TokioIo::new(hyper::upgrade::on(rsp).await.unwrap());
    io.write_all(b"ping over the tunnel").await.unwrap();
    let mut buf = [0u8; 20];
    io.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping over the tunnel");
}

#[tokio::test]
async fn connect_tunnels_to_the_destination() {
    let echo = TcpEchoBackend::start();
    let (proxy, _d) = start(config(), &snapshot(vec![service("echo", "default", &[echo.addr()])])).await;
    let mut s = tokio::net::TcpStream::connect(proxy.listen().outbound).await.unwrap();
    let target = "echo:80";
    s.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    s.write_all(b"raw bytes").await.unwrap();
    let mut buf = [0u8; 9];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"raw bytes");
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped() {
    let backend = HttpBackend::start(echo("users"));
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &[backend.addr()])])).await;
    let req = Request::get("/")
        .header("host", "users")
        .header("connection", "x-secret, keep-alive")
        .header("x-secret", "1")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("te", "gzip")
        .header("x-kept", "yes")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (rsp, _) = send(proxy.listen().outbound, req).await;
    assert_eq!(rsp.status(), 200);
    let seen = backend.last().unwrap();
    for h in ["x-secret", "keep-alive", "proxy-connection", "te"] {
        assert!(seen.header(h).is_none(), "{h} reached the backend");
    }
    assert_eq!(seen.header("x-kept"), Some("yes"));
}

#[tokio::test]
async fn unmeshed_destinations_pass_through() {
    let backend = HttpBackend::start(echo("outside"));
    let (proxy, _d) = start(config(), &snapshot(vec![])).await;
    let target = backend.addr();
    let (rsp, _) = send(proxy.listen().outbound, get(&format!("http://{target}/x"), &target.to_string())).await;
    assert_eq!(rsp.status(), 200);
    assert_eq!(rsp.headers()["x-backend"], "outside");
    let (rsp, _) = send(proxy.listen().outbound, get("/x", &format!("localhost:{}", target.port()))).await;
    assert_eq!(rsp.status(), 200, "a resolvable host name passes through");
}

type ChannelBody = http_body_util::StreamBody<
    futures_util::stream::BoxStream<'static, Result<hyper::body::Frame<Bytes>, std::convert::Infallible>>,
>;

/// A request body fed from a channel (streamed, chunked on the wire).
fn futures_channel_body() -> (tokio::sync::mpsc::Sender<Bytes>, ChannelBody) {
    use futures_util::StreamExt;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok(hyper::body::Frame::data(b)), rx))
    })
    .boxed();
    (tx, http_body_util::StreamBody::new(stream))
}

#[tokio::test]
async fn the_client_header_names_this_proxy_to_meshed_destinations_only() {
    let meshed = HttpBackend::start(echo("users"));
    let outside = HttpBackend::start(echo("outside"));
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &[meshed.addr()])])).await;
    let forged = |uri: &str, host: &str| {
        let mut req = get(uri, host);
        req.headers_mut().insert("meshlens-client", "forged-0.evil.prod".parse().unwrap());
        req
    };
    let (rsp, _) = send(proxy.listen().outbound, forged("/", "users")).await;
    assert_eq!(rsp.status(), 200);
    let (rsp, _) = send(proxy.listen().outbound, forged(&format!("http://{}/", outside.addr()), "outside")).await;
    assert_eq!(rsp.status(), 200);
    let to_meshed = meshed.last().unwrap();
    assert_eq!(to_meshed.header("meshlens-client"), Some("test-0.test.default"), "this proxy, not the app's value");
    assert_eq!(outside.last().unwrap().header("meshlens-client"), None, "unmeshed destinations get nothing");
}
