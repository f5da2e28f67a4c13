//! Opaque TCP: bytes that are not HTTP reach the app untouched and stream both ways, a client that
//! half-closes still gets the app's answer, and an opaque service port behind an `--upstream` listener is
//! forwarded as TCP and shows in the `tcp_*` metrics with exactly the bytes that crossed.

use std::net::SocketAddr;

use meshlens_api::{Service, ServicePort};
use meshlens_testkit::{TcpEchoBackend, TcpSinkBackend, assert_eventually, find, patience};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::support::*;

/// `n` bytes that no detector takes for HTTP: a TLS-ish record header, then a byte pattern.
fn opaque_payload(n: usize) -> Vec<u8> {
    let mut bytes = b"\x16\x03\x01".to_vec();
    bytes.extend((0..n.saturating_sub(3)).map(|i| (i % 251) as u8));
    bytes
}

/// Sends `payload`, half-closes, and reads everything until the proxy's EOF (writing and reading at once,
/// so an echo never stalls on full buffers).
async fn exchange(addr: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
    let write = async {
        wr.write_all(payload).await.unwrap();
        wr.shutdown().await.unwrap();
    };
    let read = async {
        let mut got = Vec::new();
        rd.read_to_end(&mut got).await.unwrap();
        got
    };
    let ((), got) = timeout(patience(), async { tokio::join!(write, read) }).await.expect("the proxy closes in time");
    got
}

#[tokio::test]
async fn inbound_non_http_bytes_reach_the_app() {
    let app = TcpEchoBackend::start();
    let (proxy, _d) = start(config_with_app(app.addr()), &snapshot(vec![])).await;
    let inbound = proxy.listen().inbound.unwrap();

    // Interactive first: the echo comes back while the connection is still open.
    let mut s = TcpStream::connect(inbound).await.unwrap();
    s.write_all(b"\x16\x03\x01garbage").await.unwrap();
    let mut echoed = [0u8; 10];
    timeout(patience(), s.read_exact(&mut echoed)).await.expect("echo in time").unwrap();
    assert_eq!(&echoed, b"\x16\x03\x01garbage");
    drop(s);

    // Then a larger stream, both ways at once, ending in a clean close.
    let payload = opaque_payload(1024 * 1024);
    assert!(exchange(inbound, &payload).await == payload, "the 1 MiB echo differs from what was sent");
    assert_eq!(app.connections(), 2);
}

#[tokio::test]
async fn half_closed_client_still_gets_the_answer() {
    let app = TcpSinkBackend::start();
    let (proxy, _d) = start(config_with_app(app.addr()), &snapshot(vec![])).await;
    let n = 100_000;
    let got = exchange(proxy.listen().inbound.unwrap(), &opaque_payload(n)).await;
    assert_eq!(String::from_utf8_lossy(&got), TcpSinkBackend::reply_for(n as u64), "the answer, then EOF");
    assert_eq!(app.bytes_received(), n as u64);
}

#[tokio::test]
async fn opaque_port_through_an_upstream_listener_is_echoed_and_counted() {
    let redis = TcpEchoBackend::start();
    let service = Service {
        ports: vec![ServicePort { port: 6379, target_port: None, opaque: true }],
        ..service("redis", "default", &[redis.addr()])
    };
    let mut config = config();
    config.upstreams = vec!["redis:6379=127.0.0.1:0".parse().unwrap()];
    let (proxy, _d) = start(config, &snapshot(vec![service])).await;
    let listener = proxy.listen().upstreams["redis:6379"];

    // RESP looks like text; an opaque port skips detection, so it is forwarded as is.
    let payload = b"*1\r\n$4\r\nPING\r\n".repeat(1000);
    assert!(exchange(listener, &payload).await == payload, "the echo differs from what was sent");

    let n = payload.len() as f64;
    let (redis_addr, listener_addr) = (redis.addr().to_string(), listener.to_string());
    let dst = [("direction", "outbound"), ("peer", "dst"), ("target_addr", redis_addr.as_str())];
    let src = [("direction", "outbound"), ("peer", "src"), ("target_addr", listener_addr.as_str())];
    let expected = [Some(n), Some(n), Some(1.0), Some(n), Some(n), Some(1.0)];
    let mut seen: Vec<Option<f64>>;
    assert_eventually!(
        {
            let samples = metrics(&proxy).await;
            let closed = |labels: &[(&str, &str)]| {
                let mut labels = labels.to_vec();
                labels.push(("errno", ""));
                find(&samples, "tcp_close_total", &labels)
            };
            seen = vec![
                find(&samples, "tcp_read_bytes_total", &dst),
                find(&samples, "tcp_write_bytes_total", &dst),
                closed(&dst),
                find(&samples, "tcp_read_bytes_total", &src),
                find(&samples, "tcp_write_bytes_total", &src),
                closed(&src),
            ];
            seen == expected
        },
        "tcp_{{read,write}}_bytes_total, tcp_close_total for dst, then src: {seen:?}, expected {expected:?}"
    );
}
