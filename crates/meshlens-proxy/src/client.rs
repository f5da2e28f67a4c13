//! The endpoint client: connections from the proxy to one endpoint address, pooled per protocol
//! (HTTP/1 keep-alive connections, one multiplexed HTTP/2 connection) and counted in transport metrics.
//!
//! A connection whose response was malformed or cut short is never reused: it is only returned to the
//! pool when its response body ended cleanly.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use crate::http::request_body::RequestBody;
use crate::http::response_head::HeadBytes;
use crate::io::Counted;
use crate::metrics::TcpTargetMetrics;

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

/// Settings shared by every endpoint client of a proxy.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    pub connect_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_idle_per_endpoint: usize,
}

pub struct EndpointClient {
    addr: SocketAddr,
    settings: Arc<ClientSettings>,
    tcp_metrics: Arc<TcpTargetMetrics>,
    h1_idle: Mutex<Vec<http1::SendRequest<RequestBody>>>,
    h2: Mutex<Option<http2::SendRequest<RequestBody>>>,
    /// One HTTP/2 connect at a time: concurrent requests wait for it and share the connection.
    h2_connecting: tokio::sync::Mutex<()>,
    /// Why the last HTTP/1 response refused as invalid was invalid (the header and why), until taken.
    invalid: Arc<Mutex<Option<String>>>,
}

impl EndpointClient {
    pub fn new(addr: SocketAddr, settings: Arc<ClientSettings>, tcp_metrics: Arc<TcpTargetMetrics>) -> Self {
        EndpointClient {
            addr,
            settings,
            tcp_metrics,
            h1_idle: Mutex::new(Vec::new()),
            h2: Mutex::new(None),
            h2_connecting: tokio::sync::Mutex::new(()),
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

    /// An HTTP/1 connection ready to send: an idle pooled one, or a new one.
    pub async fn h1(&self) -> Result<http1::SendRequest<RequestBody>, ConnectError> {
        loop {
            let idle = self.h1_idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
            match idle {
                Some(sender) if sender.is_ready() => return Ok(sender),
                Some(_) => continue,
                None => break,
            }
        }
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

    /// Returns an HTTP/1 connection whose response ended cleanly to the pool.
    pub fn put_back_h1(&self, sender: http1::SendRequest<RequestBody>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.h1_idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.settings.max_idle_per_endpoint {
            idle.push(sender);
        }
    }

    /// The endpoint's shared HTTP/2 connection, (re)connecting when there is none or it closed.
    pub async fn h2(&self) -> Result<http2::SendRequest<RequestBody>, ConnectError> {
        if let Some(s) = self.shared_h2() {
            return Ok(s);
        }
        let _connecting = self.h2_connecting.lock().await;
        if let Some(s) = self.shared_h2() {
            return Ok(s);
        }
        let io = self.connect().await?;
        let (sender, conn) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_header_list_size(self.settings.max_header_bytes as u32)
            .keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(3))
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| ConnectError::Handshake(self.addr, e))?;
        let addr = self.addr;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%addr, error = %e, "endpoint h2 connection closed with an error");
            }
        });
        *self.h2.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender.clone());
        Ok(sender)
    }

    fn shared_h2(&self) -> Option<http2::SendRequest<RequestBody>> {
        self.h2.lock().unwrap_or_else(|e| e.into_inner()).as_ref().filter(|s| !s.is_closed()).cloned()
    }

    /// Idle pooled HTTP/1 connections and whether an HTTP/2 connection is open (for `/endpoints`).
    pub fn pool_state(&self) -> (usize, bool) {
        let idle = self.h1_idle.lock().unwrap_or_else(|e| e.into_inner()).len();
        let h2 = self.h2.lock().unwrap_or_else(|e| e.into_inner()).as_ref().is_some_and(|s| !s.is_closed());
        (idle, h2)
    }
}
