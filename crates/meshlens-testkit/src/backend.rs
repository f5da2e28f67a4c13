//! HTTP backends (HTTP/1.1 and h2c on one port) with a request ledger, and ready-made handlers.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::header::{CONNECTION, CONTENT_TYPE, HeaderName, HeaderValue, UPGRADE};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use http_body::Frame;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;

use crate::BoxError;
use crate::tcp::{Server, Tasks, loopback_any};

/// The response body type of handlers.
pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// The future returned by the ready-made handlers.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Response<BoxBody>> + Send + 'static>>;

/// The request header size the backends accept (well above the mesh's 64 KiB limit, so the proxy
/// is the one that refuses).
const MAX_HEADER_BYTES: u32 = 1 << 20;

/// A body holding `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> BoxBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// An empty body.
pub fn empty() -> BoxBody {
    Empty::new().map_err(|never| match never {}).boxed()
}

// === SeenRequest ===

/// What a backend recorded about one request, before its handler ran.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub method: Method,
    /// As received: origin-form for HTTP/1 (`/path?q`), with the `:authority` for HTTP/2.
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    /// The client's address (the proxy's, when traffic goes through one).
    pub peer: SocketAddr,
}

impl SeenRequest {
    pub(crate) fn new<B>(req: &Request<B>, peer: SocketAddr) -> Self {
        Self {
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            headers: req.headers().clone(),
            peer,
        }
    }

    /// The request path (without the query).
    pub fn path(&self) -> &str {
        self.uri.path()
    }

    /// The first value of header `name`, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `:authority` (HTTP/2) or else the `Host` header.
    pub fn authority(&self) -> Option<&str> {
        self.uri.authority().map(|a| a.as_str()).or_else(|| self.header("host"))
    }
}

/// How many requests a ledger keeps (the most recent); the count covers all of them.
pub const LEDGER_CAPACITY: usize = 10_000;

/// Shared request ledger of a backend.
#[derive(Debug, Default)]
pub(crate) struct Ledger {
    requests: AtomicUsize,
    seen: Mutex<VecDeque<SeenRequest>>,
}

impl Ledger {
    pub(crate) fn record(&self, seen: SeenRequest) {
        let mut ledger = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if ledger.len() == LEDGER_CAPACITY {
            ledger.pop_front();
        }
        ledger.push_back(seen);
        drop(ledger);
        self.requests.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    pub(crate) fn seen(&self) -> Vec<SeenRequest> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }
}

/// Serves one connection with hyper's HTTP/1.1 + HTTP/2 (prior knowledge) auto-detection.
pub(crate) async fn serve_http<S, B>(stream: tokio::net::TcpStream, tasks: Tasks, service: S)
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    serve_faulty(stream, tasks, service, None).await
}

/// [`serve_http`], closing the connection when `faults` says so (see [`ConnFaults`]).
async fn serve_faulty<S, B>(stream: tokio::net::TcpStream, tasks: Tasks, service: S, faults: Option<ConnFaultState>)
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let mut builder = auto::Builder::new(tasks);
    builder.http1().max_buf_size(MAX_HEADER_BYTES as usize + 8192);
    builder.http2().max_header_list_size(MAX_HEADER_BYTES);
    if let Some(n) = faults.as_ref().and_then(|f| f.faults.max_concurrent_streams) {
        builder.http2().max_concurrent_streams(n);
    }
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
    let Some(faults) = faults else {
        let _ = conn.await;
        return;
    };
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = faults.close.notified() => conn.as_mut().graceful_shutdown(),
    }
    let _ = conn.await;
}

// === Connection faults ===

/// Connection-level faults of a backend ([`HttpBackend::start_faulty`]), as real servers show them.
#[derive(Clone, Copy, Debug, Default)]
pub struct ConnFaults {
    /// Close each connection after this many responses were sent on it: HTTP/2 with GOAWAY (like
    /// nginx's `keepalive_requests`), HTTP/1 by closing the socket once the last response is out, without
    /// `Connection: close` (like an idle keep-alive timeout: a client may be writing its next request).
    pub close_every: Option<usize>,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`: streams a client opens over it (before it has read the
    /// settings of a new connection) are refused with REFUSED_STREAM.
    pub max_concurrent_streams: Option<u32>,
}

/// The faults of one connection: responses sent so far, and the signal to close it.
#[derive(Clone)]
struct ConnFaultState {
    faults: ConnFaults,
    sent: Arc<AtomicUsize>,
    close: Arc<tokio::sync::Notify>,
}

impl ConnFaultState {
    fn new(faults: ConnFaults) -> Self {
        Self { faults, sent: Arc::default(), close: Arc::default() }
    }

    /// Counts the response once its body was sent (dropped by the server), closing after the N-th.
    fn count(&self, rsp: Response<BoxBody>) -> Response<BoxBody> {
        let Some(every) = self.faults.close_every else { return rsp };
        let (sent, close) = (self.sent.clone(), self.close.clone());
        let on_sent = move || {
            if sent.fetch_add(1, Ordering::SeqCst) + 1 == every {
                close.notify_one();
            }
        };
        rsp.map(|body| BodyExt::boxed(OnDrop { body, on_drop: Some(Box::new(on_sent)) }))
    }
}

/// A body that runs a function when dropped (after it was sent, or abandoned).
struct OnDrop {
    body: BoxBody,
    on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        if let Some(f) = self.on_drop.take() {
            f();
        }
    }
}

impl http_body::Body for OnDrop {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

// === HttpBackend ===

/// An HTTP server on loopback: HTTP/1.1 and h2c (prior knowledge) on the same port.
///
/// Every request is counted and recorded (method, URI, version, headers, peer) before the handler
/// runs. Dropping the handle aborts the server and all its connections.
///
/// ```no_run
/// # async fn t() {
/// use meshlens_testkit::{HttpBackend, backend::{echo, full}};
/// let a = HttpBackend::start(echo("a"));
/// let b = HttpBackend::start(|req: http::Request<hyper::body::Incoming>| async move {
///     http::Response::new(full(format!("you asked for {}", req.uri().path())))
/// });
/// assert_eq!(a.requests(), 0);
/// # }
/// ```
#[derive(Debug)]
pub struct HttpBackend {
    server: Server,
    ledger: Arc<Ledger>,
}

impl HttpBackend {
    /// Starts on `127.0.0.1:0`. Must be called inside a tokio runtime.
    pub fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<BoxBody>> + Send + 'static,
    {
        Self::start_on(loopback_any(), handler)
    }

    /// Starts on a given address, e.g. the port of a backend that was [`stop`](Self::stop)ped.
    pub fn start_on<F, Fut>(addr: SocketAddr, handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<BoxBody>> + Send + 'static,
    {
        Self::start_with(addr, None, handler)
    }

    /// Starts on `127.0.0.1:0` with connection-level faults (see [`ConnFaults`]).
    pub fn start_faulty<F, Fut>(faults: ConnFaults, handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<BoxBody>> + Send + 'static,
    {
        Self::start_with(loopback_any(), Some(faults), handler)
    }

    fn start_with<F, Fut>(addr: SocketAddr, faults: Option<ConnFaults>, handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<BoxBody>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let ledger = Arc::new(Ledger::default());
        let server = Server::start(addr, {
            let ledger = ledger.clone();
            move |stream, peer, tasks| {
                let (handler, ledger) = (handler.clone(), ledger.clone());
                let conn = faults.map(ConnFaultState::new);
                let service = hyper::service::service_fn({
                    let (tasks, conn) = (tasks.clone(), conn.clone());
                    move |mut req: Request<Incoming>| {
                        ledger.record(SeenRequest::new(&req, peer));
                        req.extensions_mut().insert(tasks.clone());
                        let fut = handler(req);
                        let conn = conn.clone();
                        async move {
                            let rsp = fut.await;
                            Ok::<_, Infallible>(match conn {
                                Some(c) => c.count(rsp),
                                None => rsp,
                            })
                        }
                    }
                });
                serve_faulty(stream, tasks, service, conn)
            }
        });
        Self { server, ledger }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// Requests seen so far.
    pub fn requests(&self) -> usize {
        self.ledger.requests()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    /// The requests seen so far (the last [`LEDGER_CAPACITY`]), oldest first.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.ledger.seen()
    }

    /// The most recent request.
    pub fn last(&self) -> Option<SeenRequest> {
        self.ledger.seen().pop()
    }

    /// Stops and waits until the port and all connections are closed.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

// === Ready-made handlers ===

/// Responds 200, streaming the request body back; copies `x-req-id` and `content-type`, and adds
/// `x-backend: <name>`.
pub fn echo(name: &str) -> impl Fn(Request<Incoming>) -> HandlerFuture + Clone + Send + Sync + 'static {
    let name = HeaderValue::from_str(name).expect("backend name must be a valid header value");
    move |req: Request<Incoming>| {
        let name = name.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let mut resp = Response::new(body.map_err(BoxError::from).boxed());
            let headers = resp.headers_mut();
            for copied in [HeaderName::from_static("x-req-id"), CONTENT_TYPE] {
                if let Some(v) = parts.headers.get(&copied) {
                    headers.insert(copied, v.clone());
                }
            }
            headers.insert("x-backend", name);
            resp
        })
    }
}

/// Always responds `status` with `body`.
pub fn fixed(
    status: u16,
    body: impl Into<Bytes>,
) -> impl Fn(Request<Incoming>) -> HandlerFuture + Clone + Send + Sync + 'static {
    let status = StatusCode::from_u16(status).expect("valid status code");
    let body: Bytes = body.into();
    move |_req: Request<Incoming>| {
        let body = body.clone();
        Box::pin(async move {
            let mut resp = Response::new(full(body));
            *resp.status_mut() = status;
            resp
        })
    }
}

/// Waits `delay`, then runs `inner` (for timeout tests; the wait is the behaviour under test).
pub fn delayed<H, Fut>(
    delay: Duration,
    inner: H,
) -> impl Fn(Request<Incoming>) -> HandlerFuture + Clone + Send + Sync + 'static
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<BoxBody>> + Send + 'static,
{
    move |req: Request<Incoming>| {
        let inner = inner.clone();
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            inner(req).await
        })
    }
}

/// Responds `status` with `headers`, a body of `body`, then `trailers` (e.g. `grpc-status`).
pub fn with_trailers(
    status: u16,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
    trailers: &[(&str, &str)],
) -> impl Fn(Request<Incoming>) -> HandlerFuture + Clone + Send + Sync + 'static {
    let status = StatusCode::from_u16(status).expect("valid status code");
    let headers = header_map(headers);
    let trailers = header_map(trailers);
    let body: Bytes = body.into();
    move |_req: Request<Incoming>| {
        let (headers, body, trailers) = (headers.clone(), body.clone(), trailers.clone());
        Box::pin(async move {
            let mut frames = Vec::with_capacity(2);
            if !body.is_empty() {
                frames.push(Ok::<_, BoxError>(Frame::data(body)));
            }
            frames.push(Ok(Frame::trailers(trailers)));
            let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream::iter(frames))));
            *resp.status_mut() = status;
            *resp.headers_mut() = headers;
            resp
        })
    }
}

fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
        let name = HeaderName::from_bytes(k.as_bytes()).expect("valid header name");
        map.append(name, HeaderValue::from_str(v).expect("valid header value"));
    }
    map
}

/// Chunk size of [`big_stream`].
pub const BIG_STREAM_CHUNK: usize = 16 * 1024;

/// Byte `i` of a [`big_stream`] body: `i mod 251` (a prime, so shifted or dropped chunks show).
pub fn big_stream_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// Streams `n_bytes` of deterministic content ([`big_stream_byte`]) in 16 KiB chunks, never
/// holding the whole body. No `content-length`: HTTP/1 responses are chunked.
pub fn big_stream(n_bytes: u64) -> impl Fn(Request<Incoming>) -> HandlerFuture + Clone + Send + Sync + 'static {
    move |_req: Request<Incoming>| {
        Box::pin(async move {
            let chunks = stream::unfold(0u64, move |offset| async move {
                if offset >= n_bytes {
                    return None;
                }
                let len = (n_bytes - offset).min(BIG_STREAM_CHUNK as u64);
                let chunk: Bytes = (offset..offset + len).map(big_stream_byte).collect();
                Some((Ok::<_, BoxError>(Frame::data(chunk)), offset + len))
            });
            Response::new(BodyExt::boxed(StreamBody::new(chunks)))
        })
    }
}

/// A streaming checksum (FNV-1a, 64 bit) for comparing bodies without keeping them.
///
/// ```
/// use meshlens_testkit::backend::{Checksum, big_stream_byte};
/// let mut sum = Checksum::default();
/// sum.update(&[big_stream_byte(0), big_stream_byte(1)]);
/// assert_eq!(sum.value(), Checksum::of_big_stream(2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checksum {
    hash: u64,
    len: u64,
}

impl Default for Checksum {
    fn default() -> Self {
        Self { hash: 0xcbf2_9ce4_8422_2325, len: 0 }
    }
}

impl Checksum {
    /// Adds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.hash = (self.hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.len += bytes.len() as u64;
    }

    /// The hash so far.
    pub fn value(&self) -> u64 {
        self.hash
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The checksum of a whole [`big_stream`]`(n_bytes)` body.
    pub fn of_big_stream(n_bytes: u64) -> u64 {
        let mut sum = Self::default();
        let mut chunk = Vec::with_capacity(BIG_STREAM_CHUNK);
        let mut offset = 0;
        while offset < n_bytes {
            let len = (n_bytes - offset).min(BIG_STREAM_CHUNK as u64);
            chunk.clear();
            chunk.extend((offset..offset + len).map(big_stream_byte));
            sum.update(&chunk);
            offset += len;
        }
        sum.value()
    }
}

/// Accepts an HTTP/1.1 `Upgrade: websocket` request with 101 Switching Protocols, then echoes raw
/// bytes on the upgraded connection (no WebSocket framing). Other requests get 400.
pub fn websocket_echo() -> impl Fn(Request<Incoming>) -> HandlerFuture + Clone + Send + Sync + 'static {
    move |mut req: Request<Incoming>| {
        Box::pin(async move {
            let wants_ws = req
                .headers()
                .get(UPGRADE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
            if !wants_ws {
                let mut resp = Response::new(full("expected Upgrade: websocket\n"));
                *resp.status_mut() = StatusCode::BAD_REQUEST;
                return resp;
            }
            let on_upgrade = hyper::upgrade::on(&mut req);
            let echo = async move {
                let Ok(upgraded) = on_upgrade.await else {
                    return;
                };
                let (mut rd, mut wr) = tokio::io::split(TokioIo::new(upgraded));
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut wr).await;
            };
            match req.extensions().get::<Tasks>() {
                Some(tasks) => tasks.spawn(echo),
                None => drop(tokio::spawn(echo)),
            }
            let mut resp = Response::new(empty());
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            resp.headers_mut().insert(CONNECTION, HeaderValue::from_static("upgrade"));
            resp.headers_mut().insert(UPGRADE, HeaderValue::from_static("websocket"));
            resp
        })
    }
}
