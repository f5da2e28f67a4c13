//! The endpoint client: connections from the proxy to one endpoint address, pooled per protocol
//! (HTTP/1 keep-alive connections, one multiplexed HTTP/2 connection) and counted in transport metrics.
//!
//! A connection whose response was malformed or cut short is never reused: it is only returned to the
//! pool when its response body ended cleanly. A request the server provably did not process is sent
//! again on a fresh connection ([`EndpointClient::send`]): see [`Resend`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::{Method, Request, Response, Version};
use hyper::body::Incoming;
use hyper::client::conn::{TrySendError, http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use meshlens_api::ProxyErrorReason;
use tokio::net::TcpStream;
use tokio::sync::oneshot::{self, error::TryRecvError};

use crate::http::request_body::{Replay, RequestBody};
use crate::http::response_head::HeadBytes;
use crate::io::Counted;
use crate::metrics::{Counter, CounterFamily, LabelSet, TcpTargetMetrics};

/// Why a connection to an endpoint could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect to {0} failed: {1}")]
    Failed(SocketAddr, std::io::Error),
    #[error("connect to {0} timed out after {1:?}")]
    Timeout(SocketAddr, Duration),
    #[error("handshake with {0} failed: {1}")]
    Handshake(SocketAddr, hyper::Error),
}

impl ConnectError {
    pub fn reason(&self) -> ProxyErrorReason {
        match self {
            ConnectError::Timeout(..) => ProxyErrorReason::ConnectTimeout,
            _ => ProxyErrorReason::ConnectError,
        }
    }
}

/// Why sending a request to an endpoint gave no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The fresh connection for a transparent resend could not be made.
    #[error("{0}")]
    Connect(#[from] ConnectError),
    #[error("{0}")]
    Http(#[from] hyper::Error),
}

impl SendError {
    /// The endpoint refused a fresh connection (it is down).
    pub fn is_connect(&self) -> bool {
        matches!(self, SendError::Connect(_))
    }

    pub fn reason(&self) -> ProxyErrorReason {
        match self {
            SendError::Connect(e) => e.reason(),
            SendError::Http(e) if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() => {
                ProxyErrorReason::InvalidResponse
            }
            SendError::Http(_) => ProxyErrorReason::ConnectError,
        }
    }
}

/// Why a request was sent again, transparently (`endpoint_transparent_retries_total{reason}`). None of
/// these is an endpoint failure: the server did not process the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resend {
    /// HTTP/2: the connection was going away (GOAWAY) and the stream was above its last-stream-id, or
    /// the request never left the proxy because the connection closed (RFC 9113 §6.8).
    GoAway,
    /// HTTP/2: the server reset the stream with REFUSED_STREAM (RFC 9113 §8.7).
    RefusedStream,
    /// HTTP/1: the pooled connection was found closed before the request was written.
    ClosedBeforeWrite,
    /// HTTP/1: the pooled connection closed after the request was written, before any response byte
    /// (only for idempotent methods, RFC 9110 §9.2.2).
    ClosedBeforeResponse,
}

impl Resend {
    const ALL: [Resend; 4] =
        [Resend::GoAway, Resend::RefusedStream, Resend::ClosedBeforeWrite, Resend::ClosedBeforeResponse];

    pub fn as_str(self) -> &'static str {
        match self {
            Resend::GoAway => "goaway",
            Resend::RefusedStream => "refused_stream",
            Resend::ClosedBeforeWrite => "closed_before_write",
            Resend::ClosedBeforeResponse => "closed_before_response",
        }
    }
}

/// A request is sent again at most this many times, each time on a connection opened after the one that
/// did not process it (an HTTP/1 request that got no response byte: once). Under a burst, hundreds of
/// requests queued for one HTTP/2 connection come back when it goes away, and a server closing every N
/// requests serves only some of them on the next: the bound is high so that every one gets its turn.
const MAX_RESENDS: usize = 64;

/// A connection ready to carry one request (from [`EndpointClient::conn`]).
pub enum Conn {
    /// `pooled`: taken from the idle pool (it may have been closed by the server meanwhile).
    H1 { sender: http1::SendRequest<RequestBody>, pooled: bool },
    /// `stream` counts the request on its connection until dropped.
    H2 { sender: http2::SendRequest<RequestBody>, stream: H2Stream },
}

/// The connection of a response being streamed: an HTTP/1 one goes back to the pool once the response
/// ended cleanly; an HTTP/2 stream stops counting on its connection when dropped.
pub enum Reusable {
    H1(http1::SendRequest<RequestBody>),
    H2(H2Stream),
}

/// Requests sent on one HTTP/2 connection at most (as hyper's initial stream limit), or fewer when the
/// server allows fewer concurrent streams (its SETTINGS_MAX_CONCURRENT_STREAMS): more open another
/// connection to the endpoint rather than queue behind it, where a server closing its connections every N
/// requests would turn them away (RFC 9113 §6.8) and a resent request could be turned away again and again.
const H2_MAX_STREAMS: usize = 100;

/// HTTP/2 connects to one endpoint under way at once at most: a burst needing hundreds of connections (a
/// server allowing few streams on each) opens them a few at a time, not as a SYN flood.
const H2_CONNECTS_AT_ONCE: usize = 4;

/// One of an endpoint's HTTP/2 connections.
#[derive(Clone)]
struct H2Conn {
    id: u64,
    sender: http2::SendRequest<RequestBody>,
    streams: Arc<AtomicUsize>,
    /// The streams the server allows at once, as last read by the connection's task.
    server_max: Arc<AtomicUsize>,
}

/// An endpoint's HTTP/2 connections, the requests waiting for a slot on one, and the connects under way.
///
/// A request finding no free slot (or finding others already waiting) joins the queue; slots are handed to
/// the queue first come, first served, as connections open and as requests end. Connects run side by side,
/// as many as the queue needs (each brings the slots the server allowed on the last connection), so a burst
/// waits one connect, not one per connection, and a request turned away by a GOAWAY is not overtaken again
/// and again by newer ones.
#[derive(Default)]
struct H2Pool {
    conns: Vec<H2Conn>,
    waiting: VecDeque<Waiting>,
    opening: usize,
}

/// A request waiting for a slot on a connection opened after connection `after`.
struct Waiting {
    after: u64,
    slot: oneshot::Sender<Handed>,
}

/// What a waiting request is handed: a slot, or the connects the queue still needs (the request that was
/// opening them got its own slot and went on with it).
enum Handed {
    Slot(Conn),
    Connect,
}

type SharedPool = Arc<Mutex<H2Pool>>;

fn lock(pool: &Mutex<H2Pool>) -> std::sync::MutexGuard<'_, H2Pool> {
    pool.lock().unwrap_or_else(|e| e.into_inner())
}

impl H2Pool {
    /// A request slot on an open connection below its limit, opened after connection `after` (ids grow
    /// with each connection opened; 0: any).
    fn slot(&self, after: u64, pool: &SharedPool) -> Option<Conn> {
        let c = self.conns.iter().find(|c| c.id > after && c.streams.load(Ordering::Relaxed) < c.limit())?;
        Some(Conn::H2 { sender: c.sender.clone(), stream: c.stream(pool) })
    }

    /// Hands free slots to the waiting requests in their order. Returns the slots of requests that went
    /// away meanwhile, to drop once the pool is unlocked (dropping one hands it on).
    fn hand_out(&mut self, pool: &SharedPool) -> Vec<Conn> {
        self.conns.retain(|c| !c.sender.is_closed());
        let mut unused = Vec::new();
        let mut i = 0;
        while i < self.waiting.len() {
            if self.waiting[i].slot.is_closed() {
                self.waiting.remove(i);
                continue;
            }
            let Some(slot) = self.slot(self.waiting[i].after, pool) else {
                if self.waiting[i].after == 0 {
                    break; // no free slot at all
                }
                i += 1;
                continue;
            };
            if let Some(w) = self.waiting.remove(i)
                && let Err(Handed::Slot(slot)) = w.slot.send(Handed::Slot(slot))
            {
                unused.push(slot);
            }
        }
        unused
    }

    /// Passes one counted connect on to the request first in line (it opens the connection, then waits
    /// with its place kept); uncounts it when no request waits.
    fn pass_connect(&mut self) {
        while let Some(w) = self.waiting.pop_front() {
            if w.slot.send(Handed::Connect).is_ok() {
                return;
            }
        }
        self.opening -= 1;
    }
}

/// A waiting request's end of its place in line: dropped (the request went away) holding connects it
/// was handed, it passes them on.
struct Place<'a> {
    handed: oneshot::Receiver<Handed>,
    pool: &'a SharedPool,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        if let Ok(Handed::Connect) = self.handed.try_recv() {
            lock(self.pool).pass_connect();
        }
    }
}

/// A connect under way: when it ends without a connection (failed, or its request went away), the waiting
/// requests look again (one of them connects).
struct Opening<'a> {
    pool: &'a SharedPool,
    /// Set once the connection is in the pool (and the connect no longer counted).
    opened: bool,
}

impl Drop for Opening<'_> {
    fn drop(&mut self) {
        if !self.opened {
            let mut pool = lock(self.pool);
            pool.opening -= 1;
            pool.waiting.clear();
        }
    }
}

/// A request counted on its HTTP/2 connection; when it ends, its slot goes to a waiting request.
pub struct H2Stream {
    id: u64,
    streams: Arc<AtomicUsize>,
    pool: SharedPool,
}

impl Drop for H2Stream {
    fn drop(&mut self) {
        self.streams.fetch_sub(1, Ordering::Relaxed);
        let unused = {
            let mut pool = lock(&self.pool);
            if pool.waiting.is_empty() { Vec::new() } else { pool.hand_out(&self.pool) }
        };
        drop(unused);
    }
}

impl H2Conn {
    /// Requests this connection takes at once.
    fn limit(&self) -> usize {
        self.server_max.load(Ordering::Relaxed).clamp(1, H2_MAX_STREAMS)
    }

    fn stream(&self, pool: &SharedPool) -> H2Stream {
        self.streams.fetch_add(1, Ordering::Relaxed);
        H2Stream { id: self.id, streams: self.streams.clone(), pool: pool.clone() }
    }
}

/// Settings shared by every endpoint client of a proxy.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_idle_per_endpoint: usize,
    /// `endpoint_transparent_retries_total`, by endpoint and [`Resend`] reason.
    pub resends: CounterFamily,
}

pub struct EndpointClient {
    addr: SocketAddr,
    settings: Arc<ClientSettings>,
    tcp_metrics: Arc<TcpTargetMetrics>,
    h1_idle: Mutex<Vec<http1::SendRequest<RequestBody>>>,
    h2: SharedPool,
    h2_ids: AtomicU64,
    /// The concurrent streams the endpoint's server allowed on its latest HTTP/2 connection: a new one
    /// sends no more before it has read its own SETTINGS (a burst over the limit would be refused).
    h2_server_max: Arc<AtomicUsize>,
    /// The endpoint's labels for `endpoint_transparent_retries_total`, and its counters, made on first use.
    resend_labels: LabelSet,
    resend_counters: [OnceLock<Arc<Counter>>; 4],
    /// Why the last HTTP/1 response refused as invalid was invalid (the header and why), until taken.
    invalid: Arc<Mutex<Option<String>>>,
}

impl EndpointClient {
    pub fn new(
        addr: SocketAddr,
        settings: Arc<ClientSettings>,
        tcp_metrics: Arc<TcpTargetMetrics>,
        resend_labels: LabelSet,
    ) -> Self {
        EndpointClient {
            addr,
            settings,
            tcp_metrics,
            h1_idle: Mutex::new(Vec::new()),
            h2: SharedPool::default(),
            h2_ids: AtomicU64::new(0),
            h2_server_max: Arc::new(AtomicUsize::new(H2_MAX_STREAMS)),
            resend_labels,
            resend_counters: Default::default(),
            invalid: Arc::default(),
        }
    }

    /// A fresh TCP connection to the endpoint, counted in transport metrics (`peer="dst"`).
    pub async fn connect(&self) -> Result<Counted<TcpStream>, ConnectError> {
        let timeout = self.settings.connect_timeout;
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(self.addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ConnectError::Failed(self.addr, e)),
            Err(_) => return Err(ConnectError::Timeout(self.addr, timeout)),
        };
        let _ = stream.set_nodelay(true);
        Ok(Counted::new(stream, self.tcp_metrics.open()))
    }

    /// A connection for a request of `version`: HTTP/2 shared, HTTP/1 pooled or new.
    pub async fn conn(&self, version: Version) -> Result<Conn, ConnectError> {
        if version == Version::HTTP_2 {
            return self.h2(0).await;
        }
        if let Some(sender) = self.idle_h1() {
            return Ok(Conn::H1 { sender, pooled: true });
        }
        Ok(Conn::H1 { sender: self.new_h1().await?, pooled: false })
    }

    fn idle_h1(&self) -> Option<http1::SendRequest<RequestBody>> {
        loop {
            let idle = self.h1_idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match idle {
                Some(sender) if sender.is_ready() => return Some(sender),
                Some(_) => continue,
                None => return None,
            }
        }
    }

    /// A new HTTP/1 connection (its response heads kept, to explain one hyper refuses).
    async fn new_h1(&self) -> Result<http1::SendRequest<RequestBody>, ConnectError> {
        let head = Arc::new(HeadBytes::default());
        let io = self.connect().await?.recording(head.clone());
        let (sender, conn) = http1::Builder::new()
            .max_buf_size(self.settings.max_header_bytes.max(8192))
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| ConnectError::Handshake(self.addr, e))?;
        let addr = self.addr;
        let invalid = self.invalid.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(%addr, error = %e, "endpoint connection closed with an error");
            }
            // hyper closes a connection whose response it refused: say which header was at fault.
            if let Some(why) = head.diagnose() {
                *invalid.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
            }
        });
        Ok(sender)
    }

    /// What was wrong with the response this endpoint just sent and hyper refused (`header 'x':
    /// why`), else hyper's own words.
    pub fn invalid_response(&self, e: &hyper::Error) -> String {
        let found = self.invalid.lock().unwrap_or_else(|e| e.into_inner()).take();
        found.unwrap_or_else(|| e.to_string())
    }

    /// Opens an HTTP/1 connection and leaves it idle in the pool: the endpoint is reachable, and its next
    /// request finds a warm connection.
    pub async fn warm(&self) -> Result<(), ConnectError> {
        let sender = self.new_h1().await?;
        self.put_back(Reusable::H1(sender));
        Ok(())
    }

    /// Returns an HTTP/1 connection whose response ended cleanly to the pool.
    pub fn put_back(&self, conn: Reusable) {
        let sender = match conn {
            Reusable::H1(sender) => sender,
            Reusable::H2(stream) => return drop(stream),
        };
        if sender.is_closed() {
            return;
        }
        let mut idle = self.h1_idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.settings.max_idle_per_endpoint {
            idle.push(sender);
        }
    }

    /// A request slot on one of the endpoint's HTTP/2 connections opened after connection `after` (0: any),
    /// waiting in the pool's queue when none is free (see [`H2Pool`]). A request that finds too few
    /// connects under way for the queue opens one, and goes on opening them while it waits; once its own
    /// slot came, it passes the connects still needed on to the next request in line rather than hold its
    /// slot idle (under a deep queue and a server closing every N requests, that could be many seconds).
    async fn h2(&self, after: u64) -> Result<Conn, ConnectError> {
        let mut handed_connect = false;
        loop {
            let (mut slot, mut connect, unused) = {
                let mut pool = lock(&self.h2);
                pool.conns.retain(|c| !c.sender.is_closed());
                // A request sent again (`after` > 0), or one handed the connects, was in line before every
                // request waiting now: it takes a free slot, or waits at the head of the queue, so a server
                // turning requests away every N does not send the same ones to the back of the line again
                // and again.
                let senior = after > 0 || handed_connect;
                if (senior || pool.waiting.is_empty())
                    && let Some(c) = pool.slot(after, &self.h2)
                {
                    if handed_connect {
                        pool.pass_connect();
                    }
                    return Ok(c);
                }
                let (tx, rx) = oneshot::channel();
                let waiting = Waiting { after, slot: tx };
                if senior {
                    pool.waiting.push_front(waiting)
                } else {
                    pool.waiting.push_back(waiting)
                }
                let unused = pool.hand_out(&self.h2);
                // Handed the connects: one is already counted for it.
                let connect = std::mem::take(&mut handed_connect) || self.need_connect(&mut pool);
                (Place { handed: rx, pool: &self.h2 }, connect, unused)
            };
            drop(unused);
            while connect {
                let mut opening = Opening { pool: &self.h2, opened: false };
                let conn = self.open_h2().await?;
                let mut pool = lock(&self.h2);
                pool.opening -= 1;
                opening.opened = true;
                pool.conns.push(conn);
                let unused = pool.hand_out(&self.h2);
                connect = self.need_connect(&mut pool);
                if connect {
                    match slot.handed.try_recv() {
                        Err(TryRecvError::Empty) => {}
                        Ok(Handed::Slot(c)) => {
                            pool.pass_connect();
                            drop(pool);
                            drop(unused);
                            return Ok(c);
                        }
                        // Out of the queue, handed connects while opening one: two are counted for
                        // this request, one stays; it joins again at the head and opens it.
                        Ok(Handed::Connect) => {
                            pool.opening -= 1;
                            handed_connect = true;
                        }
                        // Out of the queue, cleared by a connect that failed: the same, with the one
                        // counted.
                        Err(TryRecvError::Closed) => handed_connect = true,
                    }
                }
                drop(pool);
                drop(unused);
                if handed_connect {
                    break;
                }
            }
            if handed_connect {
                continue;
            }
            match (&mut slot.handed).await {
                Ok(Handed::Slot(c)) => return Ok(c),
                // Out of the queue now: open, then take a slot (or wait again at the head).
                Ok(Handed::Connect) => handed_connect = true,
                // A connect failed: look again (and connect, if it is this request's turn).
                Err(_) => {}
            }
        }
    }

    /// Whether the connects under way bring too few slots for the waiting requests (and fewer than
    /// [`H2_CONNECTS_AT_ONCE`] run); if so, counts one more.
    fn need_connect(&self, pool: &mut H2Pool) -> bool {
        let per_conn = self.h2_server_max.load(Ordering::Relaxed).clamp(1, H2_MAX_STREAMS);
        let need = pool.opening * per_conn < pool.waiting.len() && pool.opening < H2_CONNECTS_AT_ONCE;
        pool.opening += usize::from(need);
        need
    }

    /// A new HTTP/2 connection to the endpoint.
    async fn open_h2(&self) -> Result<H2Conn, ConnectError> {
        let io = self.connect().await?;
        let assumed = self.h2_server_max.load(Ordering::Relaxed).clamp(1, H2_MAX_STREAMS);
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .initial_max_send_streams(assumed)
            .max_header_list_size(self.settings.max_header_bytes as u32)
            .keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(3))
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| ConnectError::Handshake(self.addr, e))?;
        let addr = self.addr;
        let server_max = Arc::new(AtomicUsize::new(assumed));
        let (seen, latest) = (server_max.clone(), self.h2_server_max.clone());
        tokio::spawn(async move {
            // The task runs each time a request is dispatched: it then reads the server's current limit.
            tokio::pin!(conn);
            let ended = std::future::poll_fn(|cx| {
                let polled = conn.as_mut().poll(cx);
                let max = conn.current_max_send_streams();
                seen.store(max, Ordering::Relaxed);
                latest.store(max, Ordering::Relaxed);
                polled
            });
            if let Err(e) = ended.await {
                tracing::debug!(%addr, error = %e, "endpoint h2 connection closed with an error");
            }
        });
        let id = self.h2_ids.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(H2Conn { id, sender, streams: Arc::default(), server_max })
    }

    /// Stops handing out HTTP/2 connection `id` (it is going away); its requests finish on it.
    fn retire_h2(&self, id: u64) {
        lock(&self.h2).conns.retain(|c| c.id != id);
    }

    /// Idle pooled HTTP/1 connections and whether an HTTP/2 connection is open (for `/endpoints`).
    pub fn pool_state(&self) -> (usize, bool) {
        let idle = self.h1_idle.lock().unwrap_or_else(|e| e.into_inner()).len();
        let h2 = lock(&self.h2).conns.iter().any(|c| !c.sender.is_closed());
        (idle, h2)
    }
}

impl EndpointClient {
    /// Sends `req` on `conn`. A request the server did not process ([`Resend`]) is sent again on a fresh
    /// connection to the same endpoint (for REFUSED_STREAM, the current shared one): any method when it
    /// never left the proxy; when it was written, only if its body can be replayed (empty or buffered)
    /// and, for HTTP/1, its method is idempotent (then once). `reuse`: an HTTP/1 connection may go back to
    /// the pool after the response (not for upgrades).
    pub async fn send(
        &self,
        conn: Conn,
        mut req: Request<RequestBody>,
        reuse: bool,
    ) -> Result<(Response<Incoming>, Option<Reusable>), SendError> {
        let version = req.version();
        let mut conn = conn;
        let mut resent_unanswered = false;
        let mut resends = 0;
        // HTTP/2: a request sent again goes to a connection opened after this one (the one that turned it
        // away, or for REFUSED_STREAM that one or later), never to an older one, which goes away sooner.
        let mut after = 0;
        loop {
            // A copy to send again if the server refuses the request after it was written; only made when
            // that can be known (HTTP/2, or a pooled HTTP/1 connection) and the body is replayable.
            let copy = match &conn {
                Conn::H2 { .. } => replayable(&req),
                Conn::H1 { pooled: true, .. } if reuse && !resent_unanswered && idempotent(req.method()) => {
                    replayable(&req)
                }
                Conn::H1 { .. } => None,
            };
            let (mut failed, why) = match conn {
                Conn::H1 { mut sender, pooled } => match sender.try_send_request(req).await {
                    Ok(rsp) => return Ok((rsp, reuse.then_some(Reusable::H1(sender)))),
                    Err(e) => {
                        let why = if e.message().is_some() {
                            Some(Resend::ClosedBeforeWrite)
                        } else if pooled && closed_without_response(e.error()) {
                            Some(Resend::ClosedBeforeResponse)
                        } else {
                            None
                        };
                        (e, why)
                    }
                },
                Conn::H2 { mut sender, stream } => match sender.try_send_request(req).await {
                    Ok(rsp) => return Ok((rsp, Some(Reusable::H2(stream)))),
                    Err(e) => {
                        let why = h2_not_processed(&e);
                        after = stream.id - 1;
                        if why == Some(Resend::GoAway) {
                            self.retire_h2(stream.id);
                            after = stream.id;
                        }
                        (e, why)
                    }
                },
            };
            let Some(why) = why.filter(|_| resends < MAX_RESENDS) else {
                return Err(failed.into_error().into());
            };
            req = match (failed.take_message(), copy) {
                (Some(unsent), _) => unsent,
                (None, Some(copy)) => copy,
                (None, None) => return Err(failed.into_error().into()),
            };
            resent_unanswered |= why == Resend::ClosedBeforeResponse;
            resends += 1;
            tracing::debug!(endpoint = %self.addr, reason = why.as_str(), "sending again on a fresh connection");
            self.count_resend(why);
            conn = match version {
                Version::HTTP_2 => self.h2(after).await?,
                _ => Conn::H1 { sender: self.new_h1().await?, pooled: false },
            };
        }
    }

    fn count_resend(&self, why: Resend) {
        let i = Resend::ALL.iter().position(|r| *r == why).unwrap_or(0);
        self.resend_counters[i]
            .get_or_init(|| {
                self.settings.resends.get_or_create(&self.resend_labels.clone().with("reason", why.as_str()))
            })
            .inc();
    }
}

/// RFC 9110 §9.2.2.
fn idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE)
}

/// A copy of `req` to send again, when its body can be replayed: empty, or buffered (not CONNECT).
fn replayable(req: &Request<RequestBody>) -> Option<Request<RequestBody>> {
    use http_body::Body;
    if req.method() == Method::CONNECT {
        return None;
    }
    let body = match req.body() {
        RequestBody::Replay(r) => r.body(),
        b if b.is_end_stream() => Replay::default().body(),
        _ => return None,
    };
    let mut copy = Request::new(body);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    Some(copy)
}

/// HTTP/1: the connection ended (EOF or reset) before any byte of the response arrived.
fn closed_without_response(e: &hyper::Error) -> bool {
    if e.is_incomplete_message() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(io.kind(), ConnectionReset | BrokenPipe | ConnectionAborted | UnexpectedEof);
        }
        source = s.source();
    }
    false
}

/// hyper's description of a request its connection task dropped before sending it.
const DISPATCH_GONE: &str = "dispatch task is gone";

/// HTTP/2: did the server provably not process the request? It never left the proxy, or the stream was
/// above a GOAWAY's last-stream-id, or the server refused it.
fn h2_not_processed(e: &TrySendError<Request<RequestBody>>) -> Option<Resend> {
    // Never left the proxy: returned whole, or still waiting for a stream slot (hyper reports a dropped
    // dispatch task then) when the connection went away.
    if e.message().is_some() || (e.error().is_user() && e.error().to_string() == DISPATCH_GONE) {
        return Some(Resend::GoAway);
    }
    let mut source = std::error::Error::source(e.error());
    while let Some(s) = source {
        if let Some(h2) = s.downcast_ref::<h2::Error>() {
            // A graceful GOAWAY (NO_ERROR) fails only the streams above its last-stream-id; one with an
            // error code fails the connection's processed streams too, so those are not provably unseen.
            return if h2.is_go_away() && h2.is_remote() && h2.reason() == Some(h2::Reason::NO_ERROR) {
                Some(Resend::GoAway)
            } else if h2.is_reset() && h2.is_remote() && h2.reason() == Some(h2::Reason::REFUSED_STREAM) {
                Some(Resend::RefusedStream)
            } else {
                None
            };
        }
        source = s.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idempotent_methods_and_replayable_bodies_are_sent_again_after_a_write() {
        assert!(idempotent(&Method::GET) && idempotent(&Method::PUT) && idempotent(&Method::DELETE));
        assert!(!idempotent(&Method::POST) && !idempotent(&Method::PATCH) && !idempotent(&Method::CONNECT));

        let mut req = Request::new(Replay::default().body());
        *req.method_mut() = Method::POST;
        req.headers_mut().insert("x-id", http::HeaderValue::from_static("7"));
        let copy = replayable(&req).expect("a buffered body can be sent again");
        assert_eq!((copy.method(), &copy.headers()["x-id"]), (&Method::POST, &http::HeaderValue::from_static("7")));

        *req.method_mut() = Method::CONNECT;
        assert!(replayable(&req).is_none(), "a tunnel is never sent twice");
    }
}
