//! TCP echo and sink backends, including half-close.

use meshlens_testkit::{TcpEchoBackend, TcpSinkBackend, assert_eventually};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn echo_returns_everything_then_closes_after_half_close() {
    let echo = TcpEchoBackend::start();
    let mut s = TcpStream::connect(echo.addr()).await.unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    let (mut rd, mut wr) = s.split();
    let write = async {
        wr.write_all(&data).await.unwrap();
        wr.shutdown().await.unwrap();
    };
    let mut back = Vec::new();
    let (_, read) = tokio::join!(write, rd.read_to_end(&mut back));
    read.unwrap();
    assert_eq!(back, data);
    assert_eventually!(echo.bytes_echoed() == data.len() as u64);
    assert_eq!(echo.connections(), 1);
}

#[tokio::test]
async fn sink_answers_a_half_closed_client() {
    let sink = TcpSinkBackend::start();
    let mut s = TcpStream::connect(sink.addr()).await.unwrap();
    s.write_all(&[7u8; 100_000]).await.unwrap();
    s.shutdown().await.unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    assert_eq!(reply, TcpSinkBackend::reply_for(100_000));
    assert_eq!(sink.bytes_received(), 100_000);
}
