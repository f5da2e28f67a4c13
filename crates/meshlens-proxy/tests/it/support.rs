//! Shared test plumbing: start a real proxy on 127.0.0.1:0 from a discovery snapshot, HTTP clients, metrics.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use meshlens_api::{Endpoint, Service, ServicePort, Snapshot};
use meshlens_proxy::{Config, Proxy};
pub use meshlens_testkit::TempDir;
use meshlens_testkit::{Sample, parse_prometheus};

/// A service `name.ns` on port 80 whose endpoints are `addrs` (labelled deployment=name, pod=name-i).
pub fn service(name: &str, ns: &str, addrs: &[SocketAddr]) -> Service {
    Service {
        name: name.into(),
        namespace: ns.into(),
        ports: vec![ServicePort { port: 80, target_port: None, opaque: false }],
        virtual_ips: vec![],
        circuit_breaker: None,
        workload: None,
        endpoints: addrs
            .iter()
            .enumerate()
            .map(|(i, a)| Endpoint {
                address: *a,
                labels: BTreeMap::from([("deployment".into(), name.into()), ("pod".into(), format!("{name}-{i}"))]),
            })
            .collect(),
    }
}

pub fn snapshot(services: Vec<Service>) -> Snapshot {
    Snapshot { services, ..Snapshot::default() }
}

/// `items.prod` (no endpoints) split over `items-<leaf>.prod` services by weight, each leaf with its endpoint.
#[allow(dead_code)]
pub fn items_split(leaves: &[(&str, u32, SocketAddr)]) -> Snapshot {
    let mut yaml = "apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: items-split, namespace: prod}
spec:
  service: items
  backends:
"
    .to_string();
    for (leaf, weight, _) in leaves {
        yaml.push_str(&format!("    - {{service: items-{leaf}, weight: {weight}}}\n"));
    }
    let mut services = vec![service("items", "prod", &[])];
    services.extend(leaves.iter().map(|(leaf, _, addr)| service(&format!("items-{leaf}"), "prod", &[*addr])));
    Snapshot { services, traffic_splits: vec![serde_saphyr::from_str(&yaml).unwrap()], ..Snapshot::default() }
}

/// Writes `snapshot` to a discovery file in a temp dir (kept alive by the returned guard).
pub fn discovery_file(snapshot: &Snapshot) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("discovery");
    let path = dir.path().join("discovery.json");
    std::fs::write(&path, serde_json::to_vec_pretty(snapshot).unwrap()).unwrap();
    (dir, path)
}

/// A test configuration: every listener on 127.0.0.1:0, namespace `default`.
pub fn config() -> Config {
    Config::for_test()
}

/// [`config`] plus the inbound listener (127.0.0.1:0), which forwards to the local app at `app`.
pub fn config_with_app(app: SocketAddr) -> Config {
    let mut config = config();
    config.inbound = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.app = Some(app);
    config
}

/// Starts a proxy with `config` serving `snapshot`.
pub async fn start(mut config: Config, snapshot: &Snapshot) -> (Proxy, TempDir) {
    let (dir, path) = discovery_file(snapshot);
    config.discovery = Some(path);
    let proxy = meshlens_proxy::start(config, meshlens_proxy::log::Fixed::shared("info"), &meshlens_proxy::TcpBind)
        .await
        .expect("proxy starts");
    (proxy, dir)
}

/// [`start`], with the proxy's `GET /logs` fed by the events logged on this test's thread (the proxy's,
/// on the current-thread test runtime) while the returned guard lives.
#[allow(dead_code)]
pub async fn start_capturing(
    mut config: Config,
    snapshot: &Snapshot,
) -> (Proxy, TempDir, meshlens_proxy::log::CaptureGuard) {
    let (dir, path) = discovery_file(snapshot);
    config.discovery = Some(path);
    let (log, guard) = meshlens_proxy::log::Fixed::capturing("info");
    let proxy = meshlens_proxy::start(config, log, &meshlens_proxy::TcpBind).await.expect("proxy starts");
    (proxy, dir, guard)
}

/// The proxy's `GET /logs?<query>`.
#[allow(dead_code)]
pub async fn logs(proxy: &Proxy, query: &str) -> meshlens_api::logs::LogPage {
    let (rsp, body) = send(proxy.listen().admin, get(&format!("/logs?{query}"), "admin")).await;
    assert_eq!(rsp.status(), 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

/// An HTTP/1.1 connection to `addr`.
pub async fn h1(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    sender
}

/// An HTTP/2 (prior knowledge) connection to `addr`.
pub async fn h2(addr: SocketAddr) -> hyper::client::conn::http2::SendRequest<Full<Bytes>> {
    let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await.unwrap());
    let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(conn);
    sender
}

pub fn get(uri: &str, host: &str) -> Request<Full<Bytes>> {
    Request::get(uri).header("host", host).body(Full::new(Bytes::new())).unwrap()
}

/// Sends one request on a fresh HTTP/1 connection and returns status, headers and the whole body.
pub async fn send(addr: SocketAddr, req: Request<Full<Bytes>>) -> (Response<()>, Bytes) {
    let mut c = h1(addr).await;
    let rsp = c.send_request(req).await.unwrap();
    collect(rsp).await
}

pub async fn collect(rsp: Response<Incoming>) -> (Response<()>, Bytes) {
    let (parts, body) = rsp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (Response::from_parts(parts, ()), body)
}

/// The proxy's `/metrics`, parsed.
#[allow(dead_code)]
pub async fn metrics(proxy: &Proxy) -> Vec<Sample> {
    parse_prometheus(&metrics_text(proxy).await)
}

pub async fn metrics_text(proxy: &Proxy) -> String {
    let (rsp, body) = send(proxy.listen().admin, get("/metrics", "admin")).await;
    assert_eq!(rsp.status(), 200);
    String::from_utf8(body.to_vec()).unwrap()
}
