//! The control-plane client: registers this proxy under a lease, renews it, and watches discovery
//! (DESIGN.md §4). The proxy never waits on it to serve: snapshots replace the discovery state when they
//! arrive, and while the control plane is away the last one keeps serving.
//!
//! Reconnects with backoff; a stream silent for longer than three heartbeats is treated as dead; the proxy
//! re-registers before it re-watches. A snapshot marked incomplete (a restarted control plane still
//! waiting for peers to re-register) only adds endpoints, never removes them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use meshlens_api::Snapshot;
use meshlens_api::control::{Lease, Registration, WatchEvent};

use crate::discovery::Discovery;
use crate::shutdown::Drain;

/// A stream that has been silent this long is dead (three missed 5 s heartbeats).
const DEAD_STREAM: Duration = Duration::from_secs(15);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const MAX_LINE: usize = 64 * 1024 * 1024;

/// Where the control plane is and what to tell it about this proxy.
pub struct ControlClient {
    url: String,
    registration: Registration,
    /// `Authorization: Bearer` of every call: the credential the control plane knows this instance by.
    credential: Option<String>,
    discovery: Arc<Discovery>,
    /// Set once the first snapshot arrived (the proxy is ready from then on).
    pub synced: Arc<AtomicBool>,
    /// Where each lease's tap token goes (the tap listener accepts it).
    observers: Arc<crate::tap::Observers>,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("control plane {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("control plane: {0}")]
    Http(#[from] hyper::Error),
    #[error("control plane answered {0}: {1}")]
    Status(StatusCode, String),
    #[error("control plane sent an invalid line: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("control plane stream was silent for {0:?}")]
    Silent(Duration),
    #[error("control plane closed the stream")]
    Closed,
    #[error("invalid control plane URL '{0}': expected http://HOST:PORT")]
    Url(String),
}

impl ControlClient {
    pub fn new(
        url: &str,
        registration: Registration,
        credential: Option<String>,
        discovery: Arc<Discovery>,
        observers: Arc<crate::tap::Observers>,
    ) -> Result<Self, String> {
        let url = url.trim_end_matches('/').to_string();
        authority_of(&url).map_err(|e| e.to_string())?;
        let synced = Arc::new(AtomicBool::new(false));
        Ok(ControlClient { url, registration, credential, discovery, synced, observers })
    }

    /// Registers, renews and watches until the proxy drains; then deregisters.
    pub async fn run(self: Arc<Self>, drain: Drain) {
        let renew = tokio::spawn(self.clone().renew_loop());
        tokio::select! {
            _ = self.watch_loop() => {}
            _ = drain.signaled() => {}
        }
        renew.abort();
        let path = format!("/v1/proxies/{}/{}", self.registration.namespace, self.registration.instance);
        match tokio::time::timeout(Duration::from_secs(1), self.call(Method::DELETE, &path, None)).await {
            Ok(Ok(_)) => tracing::info!("deregistered from the control plane"),
            Ok(Err(e)) => tracing::info!(error = %e, "could not deregister from the control plane"),
            Err(_) => tracing::info!("deregistering from the control plane timed out"),
        }
    }

    async fn register(&self) -> Result<Lease, Error> {
        let body = serde_json::to_vec(&self.registration).map_err(Error::Decode)?;
        let bytes = self.call(Method::POST, "/v1/proxies", Some(Bytes::from(body))).await?;
        let lease: Lease = serde_json::from_slice(&bytes)?;
        self.observers.tokens.set_lease_token(lease.tap_token.clone());
        Ok(lease)
    }

    async fn renew_loop(self: Arc<Self>) {
        let mut every = Duration::from_secs(3);
        loop {
            tokio::time::sleep(every).await;
            match self.register().await {
                Ok(lease) => every = Duration::from_millis(lease.renew_ms.clamp(100, 60_000)),
                Err(e) => tracing::debug!(error = %e, "lease renewal failed; retrying"),
            }
        }
    }

    async fn watch_loop(&self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            // Re-register before re-watching, so the control plane knows us when it streams endpoints.
            match self.register().await {
                Ok(_) => {
                    if let Err(e) = self.watch().await {
                        tracing::warn!(control = %self.url, reason = "discovery_stream_ended", error = %e, "discovery stream ended; keeping the last state and reconnecting");
                    }
                }
                Err(e) => {
                    tracing::warn!(control = %self.url, reason = "register_failed", error = %e, "cannot register with the control plane; retrying")
                }
            }
            tokio::time::sleep(backoff + Duration::from_millis(fastrand::u64(0..=backoff.as_millis() as u64 / 2)))
                .await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if self.synced.load(Ordering::Relaxed) {
                backoff = backoff.min(Duration::from_secs(1));
            }
        }
    }

    /// One watch stream: applies every snapshot until the stream ends, fails or falls silent.
    async fn watch(&self) -> Result<(), Error> {
        let path =
            format!("/v1/watch?namespace={}&instance={}", self.registration.namespace, self.registration.instance);
        let mut body = self.open(Method::GET, &path, None).await?;
        tracing::info!(control = %self.url, "watching discovery");
        let mut buf = BytesMut::new();
        loop {
            let frame = match tokio::time::timeout(DEAD_STREAM, body.frame()).await {
                Err(_) => return Err(Error::Silent(DEAD_STREAM)),
                Ok(None) => return Err(Error::Closed),
                Ok(Some(f)) => f?,
            };
            let Ok(data) = frame.into_data() else { continue };
            buf.extend_from_slice(&data);
            while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                let line = buf.split_to(nl + 1);
                let line = &line[..nl];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice::<WatchEvent>(line)? {
                    WatchEvent::Snapshot { complete, snapshot } => self.apply(snapshot, complete),
                    WatchEvent::Heartbeat { .. } => {}
                }
            }
            if buf.len() > MAX_LINE {
                buf.advance(buf.len());
                return Err(Error::Closed);
            }
        }
    }

    fn apply(&self, mut snapshot: Snapshot, complete: bool) {
        if let Err(errors) = snapshot.validate() {
            tracing::error!(control = %self.url, reason = "invalid_snapshot", ?errors, version = snapshot.version, "ignoring an invalid snapshot from the control plane");
            return;
        }
        if !complete {
            keep_known_endpoints(&mut snapshot, &self.discovery.load().snapshot);
        }
        let version = snapshot.version;
        let services = snapshot.services.len();
        self.discovery.replace(snapshot);
        if !self.synced.swap(true, Ordering::Relaxed) {
            tracing::info!(version, services, "first discovery snapshot received: ready");
        } else {
            tracing::debug!(version, services, "discovery updated");
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Bytes>) -> Result<Bytes, Error> {
        let rsp = self.open(method, path, body).await?;
        Ok(tokio::time::timeout(Duration::from_secs(10), rsp.collect())
            .await
            .map_err(|_| Error::Silent(Duration::from_secs(10)))??
            .to_bytes())
    }

    /// Sends one request on a new connection and returns the body of a 2xx response.
    async fn open(&self, method: Method, path: &str, body: Option<Bytes>) -> Result<Incoming, Error> {
        let authority = authority_of(&self.url)?;
        let addr = resolve(authority).await?;
        let stream = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Connect(authority.into(), std::io::ErrorKind::TimedOut.into()))?
            .map_err(|e| Error::Connect(authority.into(), e))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let has_body = body.is_some();
        let mut req = Request::builder().method(method).uri(path).header(http::header::HOST, authority);
        if has_body {
            req = req.header(http::header::CONTENT_TYPE, "application/json");
        }
        if let Some(credential) = &self.credential {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {credential}"));
        }
        let req = req.body(Full::new(body.unwrap_or_default())).map_err(|_| Error::Url(self.url.clone()))?;
        let rsp = sender.send_request(req).await?;
        if !rsp.status().is_success() {
            let status = rsp.status();
            let text = rsp.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            return Err(Error::Status(status, String::from_utf8_lossy(&text).trim().to_string()));
        }
        Ok(rsp.into_body())
    }
}

fn authority_of(url: &str) -> Result<&str, Error> {
    let rest = url.strip_prefix("http://").ok_or_else(|| Error::Url(url.to_string()))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || !authority.contains(':') {
        return Err(Error::Url(url.to_string()));
    }
    Ok(authority)
}

async fn resolve(authority: &str) -> Result<SocketAddr, Error> {
    if let Ok(a) = authority.parse() {
        return Ok(a);
    }
    tokio::net::lookup_host(authority)
        .await
        .map_err(|e| Error::Connect(authority.into(), e))?
        .next()
        .ok_or_else(|| Error::Connect(authority.into(), std::io::ErrorKind::NotFound.into()))
}

/// While the control plane is incomplete (restarted, peers not re-registered yet), an endpoint we know
/// stays, unless the configuration itself moved the service to another workload.
fn keep_known_endpoints(new: &mut Snapshot, old: &Snapshot) {
    for svc in &mut new.services {
        let Some(prev) = old.services.iter().find(|s| s.name == svc.name && s.namespace == svc.namespace) else {
            continue;
        };
        for ep in &prev.endpoints {
            let same_workload =
                svc.workload.as_ref().is_none_or(|w| ep.labels.get("deployment").is_some_and(|d| d == w));
            if same_workload && !svc.endpoints.iter().any(|e| e.address == ep.address) {
                svc.endpoints.push(ep.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlens_api::{Endpoint, Service, ServicePort};

    fn svc(addrs: &[&str]) -> Service {
        Service {
            name: "users".into(),
            namespace: "prod".into(),
            ports: vec![ServicePort { port: 80, target_port: None, opaque: false }],
            virtual_ips: vec![],
            circuit_breaker: None,
            workload: None,
            endpoints: addrs
                .iter()
                .map(|a| Endpoint { address: a.parse().unwrap(), labels: Default::default() })
                .collect(),
        }
    }

    #[test]
    fn incomplete_snapshots_never_remove_known_endpoints() {
        let old = Snapshot { services: vec![svc(&["127.0.0.1:1", "127.0.0.1:2"])], ..Snapshot::default() };
        let mut new = Snapshot { services: vec![svc(&["127.0.0.1:3"])], ..Snapshot::default() };
        keep_known_endpoints(&mut new, &old);
        let addrs: Vec<String> = new.services[0].endpoints.iter().map(|e| e.address.to_string()).collect();
        assert_eq!(addrs, ["127.0.0.1:3", "127.0.0.1:1", "127.0.0.1:2"]);
    }

    #[test]
    fn incomplete_snapshots_drop_endpoints_of_a_workload_the_service_no_longer_selects() {
        let labelled = |addr: &str, workload: &str| meshlens_api::Endpoint {
            address: addr.parse().unwrap(),
            labels: [("deployment".to_string(), workload.to_string())].into(),
        };
        let mut old_svc = svc(&[]);
        old_svc.endpoints = vec![labelled("127.0.0.1:1", "web"), labelled("127.0.0.1:2", "web")];
        let old = Snapshot { services: vec![old_svc], ..Snapshot::default() };
        let mut new_svc = svc(&[]);
        new_svc.workload = Some("api".into());
        new_svc.endpoints = vec![labelled("127.0.0.1:3", "api")];
        let mut new = Snapshot { services: vec![new_svc], ..Snapshot::default() };
        keep_known_endpoints(&mut new, &old);
        assert_eq!(new.services[0].endpoints.len(), 1, "web's endpoints are not kept for a service now on api");
    }

    #[test]
    fn urls() {
        assert_eq!(authority_of("http://127.0.0.1:8086").unwrap(), "127.0.0.1:8086");
        assert_eq!(authority_of("http://localhost:8086/").unwrap(), "localhost:8086");
        assert!(authority_of("https://x:1").is_err());
        assert!(authority_of("http://x").is_err());
    }
}
