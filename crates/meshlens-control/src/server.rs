//! The API's HTTP/1 server: a header-read timeout that also closes idle and silent connections, and a
//! connection cap whose refusal is a JSON 503, except for a connection whose first request carries a
//! valid credential (so the CLI and proxies keep working while others hold every slot).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use crate::auth::Auth;

/// How the server treats connections.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// A request head must arrive within this; a connection idle this long between requests is closed.
    pub header_read_timeout: Duration,
    /// Connections served at once; beyond it only connections that authenticate in their first request.
    pub max_connections: usize,
}

/// The largest first request head read to find its credential when over the cap.
const MAX_PEEK: usize = 16 * 1024;
/// How long an over-cap connection may take to show its credential.
const PEEK_TIMEOUT: Duration = Duration::from_secs(2);

/// Serves `app` on `listener` until `shutdown` turns true; then open requests finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    auth: Arc<Auth>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    // Authenticated connections beyond the cap: as many again.
    let reserve = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns = JoinSet::new();
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut shutdown) => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let _ = tcp.set_nodelay(true);
        let (app, auth, slots, reserve, stop) =
            (app.clone(), auth.clone(), slots.clone(), reserve.clone(), shutdown.clone());
        conns.spawn(async move {
            let Some(permit) = admit(&tcp, &auth, slots, reserve, limits.max_connections).await else {
                tracing::warn!(%peer, cap = limits.max_connections, "connection refused: too many connections");
                refuse(tcp, limits.max_connections).await;
                return;
            };
            serve_conn(tcp, app, limits, stop).await;
            drop(permit);
        });
    }
    while conns.join_next().await.is_some() {}
}

async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// A slot for the connection: a free one, else (over the cap) a reserve one if its first request
/// authenticates.
async fn admit(
    tcp: &TcpStream,
    auth: &Auth,
    slots: Arc<Semaphore>,
    reserve: Arc<Semaphore>,
    cap: usize,
) -> Option<OwnedSemaphorePermit> {
    if let Ok(permit) = slots.try_acquire_owned() {
        return Some(permit);
    }
    let head = tokio::time::timeout(PEEK_TIMEOUT, peek_head(tcp)).await.ok()?;
    let mut headers = axum::http::HeaderMap::new();
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("authorization")
            && let Ok(value) = value.trim().parse()
        {
            headers.insert(axum::http::header::AUTHORIZATION, value);
        }
    }
    let authenticated = auth.api(&headers).is_ok() || auth.proxy(&headers).is_ok();
    tracing::debug!(cap, authenticated, "over the connection cap");
    authenticated.then(|| reserve.try_acquire_owned().ok()).flatten()
}

/// The first request head of the connection, without consuming it (hyper reads it again).
async fn peek_head(tcp: &TcpStream) -> String {
    let mut buf = vec![0u8; MAX_PEEK];
    let mut last = 0;
    loop {
        let n = tcp.peek(&mut buf).await.unwrap_or(0);
        let head = &buf[..n];
        if n == 0 || n == last && n == MAX_PEEK || head.windows(4).any(|w| w == b"\r\n\r\n") {
            return String::from_utf8_lossy(head).into_owned();
        }
        if n == last {
            // Nothing new yet: peek returns at once while data is buffered.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        last = n;
    }
}

/// The JSON 503 of a connection over the cap.
async fn refuse(mut tcp: TcpStream, cap: usize) {
    let body = serde_json::json!({
        "error": format!("too many connections (at most {cap}): try again later, with the API token or a proxy credential")
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(response.as_bytes())).await;
    let _ = tcp.shutdown().await;
}

async fn serve_conn(tcp: TcpStream, app: Router, limits: Limits, mut stop: watch::Receiver<bool>) {
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let mut app = app.clone();
        async move { Ok::<_, Infallible>(tower_service::Service::call(&mut app, req).await.unwrap_or_else(|e| match e {})) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(TokioIo::new(tcp), svc);
    tokio::pin!(conn);
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopping => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result
        && !e.is_timeout()
    {
        tracing::debug!(error = %e, "API connection ended with an error");
    }
}
