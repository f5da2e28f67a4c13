//! Shared plumbing: temporary mesh directories, starting the control plane, an HTTP/1 client and a
//! background watch-stream reader.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use meshlens_api::control::{Registration, WatchEvent};
use meshlens_api::discovery::Snapshot;
use meshlens_control::auth::ProxyKey;
use meshlens_control::{Config, Running};
use meshlens_testkit::TempDir;
pub use meshlens_testkit::registration;
use serde_json::Value;

pub const MESH: &str = "\
apiVersion: meshlens.io/v1alpha1
kind: Mesh
metadata:
  name: shop
spec:
  namespaces: [prod]
  workloads:
    - name: web
      namespace: prod
      calls: [orders]
    - name: orders
      namespace: prod
      replicas: 2
  services:
    - name: web
      namespace: prod
      workload: web
    - name: orders
      namespace: prod
      workload: orders
";

pub const PROFILE: &str = "\
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: orders.prod.svc.cluster.local
  namespace: prod
spec:
  routes:
  - name: GET /api/orders
    condition:
      method: GET
      pathRegex: /api/orders
    timeout: 300ms
";

/// A temporary mesh directory, removed on drop; [`TempDir::replace`] edits it as editors do.
pub struct MeshDir(TempDir);

impl MeshDir {
    pub fn new(files: &[(&str, &str)]) -> Self {
        let dir = TempDir::new("control-it");
        for (name, text) in files {
            dir.replace(name, text);
        }
        MeshDir(dir)
    }
}

impl std::ops::Deref for MeshDir {
    type Target = TempDir;

    fn deref(&self) -> &TempDir {
        &self.0
    }
}

/// The API token of test control planes.
pub const API_TOKEN: &str = "test-api-token";

/// The key test control planes check proxy credentials with.
pub fn proxy_key() -> ProxyKey {
    ProxyKey::from_hex(&"5a".repeat(32)).unwrap()
}

/// A test configuration: 127.0.0.1:0, no restart grace, real reload polling (200 ms), known secrets.
pub fn config(dir: &MeshDir) -> Config {
    let mut c = Config::new(dir.path(), "127.0.0.1:0".parse().unwrap());
    c.restart_grace = Duration::ZERO;
    c.proxy_credentials = Arc::new(proxy_key());
    c.api_token = API_TOKEN.into();
    c
}

/// The credential a request sends, as the right caller would: a proxy's for `/v1/proxies…` (DELETE:
/// the instance in the path; POST: `orders-0`, [`register`] sends the registration's own), else the API
/// token.
fn credential_for(path: &str) -> String {
    let instance = path.strip_prefix("/v1/proxies/").and_then(|rest| rest.split_once('/'));
    match instance {
        Some((ns, instance)) => {
            let workload = instance.rsplit_once('-').map_or(instance, |(w, _)| w);
            proxy_key().mint(ns, workload, instance)
        }
        None if path == "/v1/proxies" => proxy_key().mint("prod", "orders", "orders-0"),
        None => API_TOKEN.into(),
    }
}

pub async fn start(config: Config) -> Running {
    meshlens_control::start(config).await.expect("control plane starts")
}

/// One HTTP/1 request; the status and the whole body.
pub async fn request(addr: SocketAddr, method: Method, path: &str, body: &[u8]) -> (StatusCode, Bytes) {
    let resp = send(addr, method, path, body).await;
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

pub async fn send(addr: SocketAddr, method: Method, path: &str, body: &[u8]) -> hyper::Response<hyper::body::Incoming> {
    send_as(addr, method, path, body, Some(&credential_for(path))).await
}

/// One HTTP/1 request with `Authorization: Bearer <bearer>` (none: no header).
pub async fn send_as(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: &[u8],
    bearer: Option<&str>,
) -> hyper::Response<hyper::body::Incoming> {
    let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("content-type", "application/json");
    if let Some(bearer) = bearer {
        req = req.header("authorization", format!("Bearer {bearer}"));
    }
    sender.send_request(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap()).await.unwrap()
}

/// [`send_as`], with the status and the whole body (JSON).
pub async fn request_as(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: &[u8],
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let resp = send_as(addr, method, path, body, bearer).await;
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body:?}")))
}

pub async fn get_json(addr: SocketAddr, path: &str) -> (StatusCode, Value) {
    let (status, body) = request(addr, Method::GET, path, b"").await;
    (status, serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body:?}")))
}

pub async fn status(addr: SocketAddr) -> Value {
    let (code, v) = get_json(addr, "/api/v1/status").await;
    assert_eq!(code, StatusCode::OK);
    v
}

/// Registers with the credential of the registration's own instance.
pub async fn register(addr: SocketAddr, reg: &Registration) -> (StatusCode, Value) {
    let credential = proxy_key().mint(&reg.namespace, &reg.workload, &reg.instance);
    request_as(addr, Method::POST, "/v1/proxies", &serde_json::to_vec(reg).unwrap(), Some(&credential)).await
}

pub async fn metrics(addr: SocketAddr) -> String {
    let (status, body) = request(addr, Method::GET, "/metrics", b"").await;
    assert_eq!(status, StatusCode::OK);
    String::from_utf8(body.to_vec()).unwrap()
}

/// A watch stream read in the background: every line, parsed, with the time it arrived.
pub struct Watcher {
    lines: Arc<Mutex<Vec<(Instant, WatchEvent)>>>,
    ended: Arc<Mutex<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    pub async fn start(addr: SocketAddr) -> Self {
        let resp = send(addr, Method::GET, "/v1/watch?namespace=prod&instance=web-0", b"").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(Mutex::new(false));
        let (l, e) = (lines.clone(), ended.clone());
        let task = tokio::spawn(async move {
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                let Ok(data) = frame.into_data() else { continue };
                buf.extend_from_slice(&data);
                while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=end).collect();
                    let ev: WatchEvent = serde_json::from_slice(&line)
                        .unwrap_or_else(|e| panic!("bad watch line ({e}): {}", String::from_utf8_lossy(&line)));
                    l.lock().unwrap().push((Instant::now(), ev));
                }
            }
            *e.lock().unwrap() = true;
        });
        Watcher { lines, ended, task }
    }

    pub fn events(&self) -> Vec<(Instant, WatchEvent)> {
        self.lines.lock().unwrap().clone()
    }

    /// Snapshot lines only: (arrival, complete, snapshot).
    pub fn snapshots(&self) -> Vec<(Instant, bool, Snapshot)> {
        self.events()
            .into_iter()
            .filter_map(|(t, ev)| match ev {
                WatchEvent::Snapshot { complete, snapshot } => Some((t, complete, snapshot)),
                WatchEvent::Heartbeat { .. } => None,
            })
            .collect()
    }

    pub fn latest(&self) -> Option<Snapshot> {
        self.snapshots().pop().map(|(_, _, s)| s)
    }

    pub fn heartbeats(&self) -> Vec<u64> {
        self.events()
            .into_iter()
            .filter_map(|(_, ev)| match ev {
                WatchEvent::Heartbeat { version } => Some(version),
                WatchEvent::Snapshot { .. } => None,
            })
            .collect()
    }

    pub fn ended(&self) -> bool {
        *self.ended.lock().unwrap()
    }

    /// Addresses of the endpoints of `service` in the latest snapshot.
    pub fn endpoints(&self, service: &str) -> Vec<String> {
        self.latest()
            .and_then(|s| s.services.into_iter().find(|x| x.name == service))
            .map(|s| s.endpoints.into_iter().map(|e| e.address.to_string()).collect())
            .unwrap_or_default()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}
