//! TCP backends on 127.0.0.1:0 (echo, sink, scripted) and the accept-loop plumbing all servers share.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

// === Tasks ===

/// The tasks of one server: connections, HTTP/2 streams, upgraded connections.
///
/// Aborted together when the server's handle is dropped. HTTP handlers find a clone in the request
/// extensions (`req.extensions().get::<Tasks>()`) to spawn work that must die with the backend.
#[derive(Clone, Debug, Default)]
pub struct Tasks(Arc<Mutex<JoinSet<()>>>);

impl Tasks {
    /// Spawns `fut` on the current runtime, tied to this server's lifetime.
    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let mut set = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        while set.try_join_next().is_some() {}
        set.spawn(fut);
    }

    fn abort_all(&self) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).abort_all();
    }

    fn take(&self) -> JoinSet<()> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<F> hyper::rt::Executor<F> for Tasks
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.spawn(async move {
            fut.await;
        });
    }
}

// === Server ===

/// A listener on loopback with an accept loop; every connection runs as a task in [`Tasks`].
///
/// Dropping it aborts everything (asynchronously: the port closes when the runtime next runs);
/// [`Server::stop`] does the same and waits until the port is closed.
#[derive(Debug)]
pub(crate) struct Server {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    tasks: Tasks,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` (use port 0 for a fresh port) and serves each connection with `serve`.
    pub(crate) fn start<F, Fut>(addr: SocketAddr, serve: F) -> Self
    where
        F: Fn(TcpStream, SocketAddr, Tasks) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = bind(addr);
        let addr = listener.local_addr().expect("listener has a local address");
        let connections = Arc::new(AtomicUsize::new(0));
        let tasks = Tasks::default();
        let accept = tokio::spawn({
            let (connections, tasks) = (connections.clone(), tasks.clone());
            async move {
                loop {
                    let Ok((stream, peer)) = listener.accept().await else {
                        // e.g. EMFILE: give the connections a chance to finish.
                        tokio::task::yield_now().await;
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    connections.fetch_add(1, Ordering::SeqCst);
                    tasks.spawn(serve(stream, peer, tasks.clone()));
                }
            }
        });
        Self { addr, connections, tasks, accept: Some(accept) }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Aborts all tasks and waits until the listener and every connection are closed.
    pub(crate) async fn stop(mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
            let _ = accept.await;
        }
        let mut set = self.tasks.take();
        set.abort_all();
        while set.join_next().await.is_some() {}
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.take() {
            accept.abort();
        }
        self.tasks.abort_all();
    }
}

/// Binds a tokio listener (std sets `SO_REUSEADDR`, so a stopped backend's port can be re-bound).
fn bind(addr: SocketAddr) -> TcpListener {
    let listener = std::net::TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    listener.set_nonblocking(true).expect("set_nonblocking");
    TcpListener::from_std(listener).expect("testkit servers must start inside a tokio runtime")
}

/// `127.0.0.1:0`.
pub(crate) fn loopback_any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

// === TcpEchoBackend ===

/// Echoes bytes until the client's EOF, then shuts down its write side (half-close aware).
///
/// ```no_run
/// # async fn t() {
/// let echo = meshlens_testkit::TcpEchoBackend::start();
/// let stream = tokio::net::TcpStream::connect(echo.addr()).await.unwrap();
/// # }
/// ```
#[derive(Debug)]
pub struct TcpEchoBackend {
    server: Server,
    bytes: Arc<AtomicU64>,
}

impl TcpEchoBackend {
    /// Starts on `127.0.0.1:0`.
    pub fn start() -> Self {
        Self::start_on(loopback_any())
    }

    /// Starts on a given address (e.g. the port of a backend that was stopped).
    pub fn start_on(addr: SocketAddr) -> Self {
        let bytes = Arc::new(AtomicU64::new(0));
        let counter = bytes.clone();
        let server = Server::start(addr, move |mut stream, _, _| {
            let counter = counter.clone();
            async move {
                let (mut rd, mut wr) = stream.split();
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if wr.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                            counter.fetch_add(n as u64, Ordering::SeqCst);
                        }
                    }
                }
                let _ = wr.shutdown().await;
            }
        });
        Self { server, bytes }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    /// Bytes echoed so far, over all connections.
    pub fn bytes_echoed(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    /// Stops and waits until the port is closed.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}

// === TcpSinkBackend ===

/// Reads everything until the client's EOF, then replies [`TcpSinkBackend::reply_for`]`(n)` and closes.
///
/// Tests that a client which half-closed its write side still receives the server's answer.
#[derive(Debug)]
pub struct TcpSinkBackend {
    server: Server,
    bytes: Arc<AtomicU64>,
}

impl TcpSinkBackend {
    /// Starts on `127.0.0.1:0`.
    pub fn start() -> Self {
        let bytes = Arc::new(AtomicU64::new(0));
        let counter = bytes.clone();
        let server = Server::start(loopback_any(), move |mut stream, _, _| {
            let counter = counter.clone();
            async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut n = 0u64;
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(k) => n += k as u64,
                        Err(_) => return,
                    }
                }
                counter.fetch_add(n, Ordering::SeqCst);
                let _ = stream.write_all(Self::reply_for(n).as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        Self { server, bytes }
    }

    /// The summary the sink sends after reading `n` bytes: `"received {n} bytes\n"`.
    pub fn reply_for(n: u64) -> String {
        format!("received {n} bytes\n")
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    /// Bytes read from connections that reached EOF.
    pub fn bytes_received(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }
}

// === RawTcpBackend ===

/// A TCP server whose every connection runs a script: send invalid HTTP, reset, stall, …
///
/// ```no_run
/// # async fn t() {
/// use tokio::io::AsyncWriteExt;
/// let bad = meshlens_testkit::RawTcpBackend::start(|mut s| async move {
///     let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab").await;
/// });
/// # }
/// ```
#[derive(Debug)]
pub struct RawTcpBackend {
    server: Server,
}

impl RawTcpBackend {
    /// Starts on `127.0.0.1:0`; `script` runs once per accepted connection.
    pub fn start<F, Fut>(script: F) -> Self
    where
        F: Fn(TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self { server: Server::start(loopback_any(), move |stream, _, _| script(stream)) }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.server.connections()
    }

    /// Stops and waits until the port is closed.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}
