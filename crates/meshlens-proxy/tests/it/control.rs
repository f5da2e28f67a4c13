//! The proxy against a fake control plane: registration, discovery updates, the control plane going away,
//! incomplete snapshots after a control-plane restart, and deregistration on shutdown.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use meshlens_api::Snapshot;
use meshlens_api::control::{Registration, WatchEvent};
use meshlens_proxy::Proxy;
use meshlens_testkit::backend::echo;
use meshlens_testkit::{HttpBackend, assert_eventually};
use tokio::sync::mpsc;

use crate::support::*;

type WatchBody = StreamBody<futures_util::stream::BoxStream<'static, Result<Frame<Bytes>, std::convert::Infallible>>>;

/// A scripted control plane: records registrations and streams the watch lines the test sends.
struct FakeControl {
    addr: SocketAddr,
    registrations: Arc<Mutex<Vec<Registration>>>,
    deletions: Arc<Mutex<Vec<String>>>,
    watchers: Arc<Mutex<Vec<mpsc::UnboundedSender<Bytes>>>>,
    /// The tap token every lease carries from now on.
    tap_token: Arc<Mutex<String>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeControl {
    async fn start_on(addr: SocketAddr) -> FakeControl {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let registrations = Arc::new(Mutex::new(Vec::new()));
        let deletions = Arc::new(Mutex::new(Vec::new()));
        let watchers = Arc::new(Mutex::new(Vec::new()));
        let tap_token = Arc::new(Mutex::new("first-token".to_string()));
        let (r, d, w, t) = (registrations.clone(), deletions.clone(), watchers.clone(), tap_token.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (r, d, w, t) = (r.clone(), d.clone(), w.clone(), t.clone());
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (r, d, w, t) = (r.clone(), d.clone(), w.clone(), t.clone());
                        async move { Ok::<_, std::convert::Infallible>(handle(req, r, d, w, t).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        FakeControl { addr, registrations, deletions, watchers, tap_token, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn send(&self, event: &WatchEvent) {
        let mut line = serde_json::to_vec(event).unwrap();
        line.push(b'\n');
        let line = Bytes::from(line);
        self.watchers.lock().unwrap().retain(|w| w.send(line.clone()).is_ok());
    }

    fn watchers(&self) -> usize {
        self.watchers.lock().unwrap().iter().filter(|w| !w.is_closed()).count()
    }

    fn registrations(&self) -> usize {
        self.registrations.lock().unwrap().len()
    }

    /// Stops serving: the listener closes and every watch stream ends.
    fn kill(self) -> SocketAddr {
        self.task.abort();
        self.watchers.lock().unwrap().clear();
        self.addr
    }
}

async fn handle(
    req: Request<Incoming>,
    registrations: Arc<Mutex<Vec<Registration>>>,
    deletions: Arc<Mutex<Vec<String>>>,
    watchers: Arc<Mutex<Vec<mpsc::UnboundedSender<Bytes>>>>,
    tap_token: Arc<Mutex<String>>,
) -> Response<http_body_util::Either<http_body_util::Full<Bytes>, WatchBody>> {
    use futures_util::StreamExt;
    use http_body_util::Either;
    let full = |s: &str| Either::Left(http_body_util::Full::new(Bytes::from(s.to_string())));
    // Like the real control plane: nothing without the instance's credential.
    if req.headers().get("authorization").is_none_or(|v| v.as_bytes() != format!("Bearer {CREDENTIAL}").as_bytes()) {
        let mut rsp = Response::new(full(r#"{"error":"missing credential"}"#));
        *rsp.status_mut() = http::StatusCode::UNAUTHORIZED;
        return rsp;
    }
    match (req.method().clone(), req.uri().path().to_string()) {
        (Method::POST, p) if p == "/v1/proxies" => {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            registrations.lock().unwrap().push(serde_json::from_slice(&body).unwrap());
            let token = tap_token.lock().unwrap().clone();
            Response::new(full(&format!(r#"{{"ttlMs":10000,"renewMs":200,"tapToken":"{token}"}}"#)))
        }
        (Method::DELETE, p) => {
            deletions.lock().unwrap().push(p);
            Response::new(full("{}"))
        }
        (Method::GET, p) if p == "/v1/watch" => {
            let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
            watchers.lock().unwrap().push(tx);
            let stream =
                futures_util::stream::unfold(
                    rx,
                    |mut rx| async move { rx.recv().await.map(|b| (Ok(Frame::data(b)), rx)) },
                )
                .boxed();
            Response::new(Either::Right(StreamBody::new(stream)))
        }
        _ => {
            let mut rsp = Response::new(full("not found"));
            *rsp.status_mut() = http::StatusCode::NOT_FOUND;
            rsp
        }
    }
}

fn snapshot_event(version: u64, complete: bool, endpoints: &[SocketAddr]) -> WatchEvent {
    let snapshot = Snapshot { version, services: vec![service("users", "prod", endpoints)], ..Snapshot::default() };
    WatchEvent::Snapshot { complete, snapshot }
}

/// The credential the proxies of these tests hold (the fake accepts only it).
const CREDENTIAL: &str = "mlp1:prod:web:web-0:0123";

async fn client_proxy(control: &FakeControl) -> Proxy {
    let mut cfg = config();
    cfg.control = Some(control.url());
    cfg.control_credential = Some(CREDENTIAL.into());
    cfg.workload = Some("web".into());
    cfg.namespace = "prod".into();
    cfg.instance = Some("web-0".into());
    meshlens_proxy::start(cfg, meshlens_proxy::log::Fixed::shared("info"), &meshlens_proxy::TcpBind).await.unwrap()
}

async fn ready(proxy: &Proxy) -> u16 {
    send(proxy.listen().admin, get("/ready", "admin")).await.0.status().as_u16()
}

#[tokio::test]
async fn registers_follows_snapshots_and_survives_the_control_plane_going_away() {
    let a = HttpBackend::start(echo("a"));
    let b = HttpBackend::start(echo("b"));
    let control = FakeControl::start_on("127.0.0.1:0".parse().unwrap()).await;
    let proxy = client_proxy(&control).await;
    let out = proxy.listen().outbound;

    assert_eventually!(control.watchers() == 1, "the proxy watches discovery");
    let reg = control.registrations.lock().unwrap()[0].clone();
    assert_eq!((reg.workload.as_str(), reg.namespace.as_str(), reg.instance.as_str()), ("web", "prod", "web-0"));
    assert_eq!(reg.admin, proxy.listen().admin);
    assert_eq!(ready(&proxy).await, 503, "not ready before the first snapshot");

    control.send(&snapshot_event(1, true, &[a.addr()]));
    assert_eventually!(ready(&proxy).await == 200, "ready after the first snapshot");
    let (rsp, _) = send(out, get("/", "users")).await;
    assert_eq!(rsp.headers()["x-backend"], "a");

    // A new endpoint set moves traffic, on the same client connection too.
    control.send(&snapshot_event(2, true, &[b.addr()]));
    assert_eventually!(send(out, get("/", "users")).await.0.headers()["x-backend"] == "b", "traffic moves to b");
    assert_eventually!(control.registrations() >= 3, "the lease is renewed");

    // The control plane goes away: the proxy keeps serving what it knows.
    let addr = control.kill();
    for _ in 0..20 {
        let (rsp, _) = send(out, get("/", "users")).await;
        assert_eq!(rsp.status(), 200, "served from the last snapshot while the control plane is down");
    }
    // It comes back (restarted, knows nobody yet): the proxy re-registers, then re-watches; an incomplete
    // snapshot without endpoints does not take b away.
    let control = FakeControl::start_on(addr).await;
    assert_eventually!(control.watchers() == 1, "the proxy watches again after the restart");
    assert!(control.registrations() >= 1, "re-registered before re-watching");
    control.send(&snapshot_event(1, false, &[]));
    for _ in 0..10 {
        let (rsp, _) = send(out, get("/", "users")).await;
        assert_eq!(rsp.headers()["x-backend"], "b", "an incomplete snapshot does not remove endpoints");
    }
    control.send(&snapshot_event(2, true, &[a.addr()]));
    assert_eventually!(send(out, get("/", "users")).await.0.headers()["x-backend"] == "a", "complete again");

    let deletions = control.deletions.clone();
    assert!(proxy.shutdown().await);
    assert_eq!(deletions.lock().unwrap().as_slice(), ["/v1/proxies/prod/web-0"], "deregistered on shutdown");
}

#[tokio::test]
async fn requests_queued_for_a_service_without_endpoints_are_served_when_one_appears() {
    let a = HttpBackend::start(echo("a"));
    let control = FakeControl::start_on("127.0.0.1:0".parse().unwrap()).await;
    let proxy = client_proxy(&control).await;
    assert_eventually!(control.watchers() == 1, "watching");
    control.send(&snapshot_event(1, true, &[]));
    assert_eventually!(ready(&proxy).await == 200, "ready");

    let out = proxy.listen().outbound;
    let pending = tokio::spawn(async move { send(out, get("/", "users")).await });
    // The request waits in the balancer's queue (failfast is 3 s); the endpoint appears meanwhile.
    control.send(&snapshot_event(2, true, &[a.addr()]));
    let (rsp, _) = pending.await.unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(rsp.headers()["x-backend"], "a");
}

#[tokio::test]
async fn profile_changes_apply_to_new_requests_without_dropping_in_flight_ones() {
    // The app answers /slow after 600 ms.
    let app = HttpBackend::start(meshlens_testkit::backend::delayed(std::time::Duration::from_millis(600), echo("a")));
    let control = FakeControl::start_on("127.0.0.1:0".parse().unwrap()).await;
    let proxy = client_proxy(&control).await;
    assert_eventually!(control.watchers() == 1, "watching");
    control.send(&snapshot_event(1, true, &[app.addr()]));
    assert_eventually!(ready(&proxy).await == 200, "ready");
    let out = proxy.listen().outbound;

    // A request in flight under the old policy (no timeout)…
    let in_flight = tokio::spawn(async move { send(out, get("/slow", "users")).await });
    assert_eventually!(app.requests() == 1, "in flight");
    // …while a profile with a 100 ms route timeout arrives.
    let profile: meshlens_api::profile::ServiceProfile = serde_saphyr::from_str(
        "apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: users.prod.svc.cluster.local, namespace: prod}
spec:
  routes:
    - name: slow
      condition: {pathRegex: /slow}
      timeout: 100ms
",
    )
    .unwrap();
    let mut event = snapshot_event(2, true, &[app.addr()]);
    if let WatchEvent::Snapshot { snapshot, .. } = &mut event {
        snapshot.profiles = vec![profile];
    }
    control.send(&event);
    assert_eventually!(send(out, get("/slow", "users")).await.0.status() == 504, "new requests get the route timeout");
    let (rsp, _) = in_flight.await.unwrap();
    assert_eq!(rsp.status(), 200, "the request in flight during the change completed");

    // The profile goes away again: new requests wait for the app.
    control.send(&snapshot_event(3, true, &[app.addr()]));
    assert_eventually!(send(out, get("/slow", "users")).await.0.status() == 200, "timeout removed");
}

async fn tap_status(proxy: &Proxy, token: &str) -> u16 {
    let mut c = h1(proxy.listen().tap).await;
    let req = Request::get("/tap")
        .header("host", "tap")
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap();
    c.send_request(req).await.unwrap().status().as_u16()
}

#[tokio::test]
async fn the_tap_listener_accepts_the_token_of_the_latest_lease() {
    let control = FakeControl::start_on("127.0.0.1:0".parse().unwrap()).await;
    let proxy = client_proxy(&control).await;
    assert_eventually!(tap_status(&proxy, "first-token").await == 200, "the lease's token opens tap");
    assert_eq!(tap_status(&proxy, "other").await, 401);

    *control.tap_token.lock().unwrap() = "second-token".into();
    let seen = control.registrations();
    assert_eventually!(control.registrations() >= seen + 2, "the lease was renewed with the new token");
    assert_eq!(tap_status(&proxy, "second-token").await, 200, "a renewal brings the new token");
    assert_eq!(tap_status(&proxy, "first-token").await, 401, "and retires the old one");
}

#[tokio::test]
async fn a_split_leaf_balancer_goes_when_its_split_does() {
    let control = FakeControl::start_on("127.0.0.1:0".parse().unwrap()).await;
    let proxy = client_proxy(&control).await;
    assert_eventually!(control.watchers() == 1, "the proxy watches discovery");
    let (apex, leaf) = (HttpBackend::start(echo("apex")), HttpBackend::start(echo("leaf")));
    let with_split = |version: u64, split: bool| {
        let mut snapshot = items_split(&[("a", 100, leaf.addr())]);
        snapshot.services[0] = service("items", "prod", &[apex.addr()]);
        snapshot.version = version;
        if !split {
            snapshot.traffic_splits.clear();
        }
        WatchEvent::Snapshot { complete: true, snapshot }
    };
    let leaves = || async {
        let (_, body) = send(proxy.listen().admin, get("/endpoints", "admin")).await;
        let view: meshlens_api::balancer::ProxyBalancers = serde_json::from_slice(&body).unwrap();
        view.destinations.into_iter().filter_map(|d| d.leaf).collect::<Vec<_>>()
    };
    control.send(&with_split(1, true));
    assert_eventually!(ready(&proxy).await == 200, "ready");
    let (rsp, _) = send(proxy.listen().outbound, get("/", "items")).await;
    assert_eq!(rsp.status(), 200);
    assert_eq!(leaves().await, ["items-a.prod.svc.cluster.local:80"], "the leaf's balancer, under the apex");

    control.send(&with_split(2, false));
    assert_eventually!(leaves().await.is_empty(), "the leaf's balancer goes with the split");
    let (rsp, _) = send(proxy.listen().outbound, get("/", "items")).await;
    assert_eq!(rsp.status(), 200);
    assert_eq!(apex.requests(), 1, "without the split, the apex serves");
}
