//! Traffic policy end to end, through two proxies (client outbound → server inbound → app), as the
//! incident stories need it: retries that hide failures within a budget, a budget that binds, no retry
//! storms, route timeouts made by the proxy, traffic splits, circuit breaking, large bodies sent once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use meshlens_api::Snapshot;
use meshlens_api::profile::ServiceProfile;
use meshlens_proxy::Proxy;
use meshlens_testkit::backend::{echo, full};
use meshlens_testkit::{HttpBackend, assert_eventually};

use crate::support::*;
use meshlens_testkit::TempDir;

/// A backend whose `n`th request (1-based) gets `status(n)`; counts requests.
fn programmable(status: impl Fn(usize) -> u16 + Send + Sync + 'static) -> (HttpBackend, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let status = Arc::new(status);
    let backend = HttpBackend::start(move |_req: Request<Incoming>| {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        let code = status(n);
        async move {
            let mut rsp = Response::new(full(if code < 500 { "ok" } else { "failed" }));
            *rsp.status_mut() = http::StatusCode::from_u16(code).unwrap();
            rsp
        }
    });
    (backend, count)
}

fn profile(yaml: &str) -> ServiceProfile {
    serde_saphyr::from_str(yaml).unwrap()
}

/// Server-side proxy in front of `app`, and a client-side proxy whose snapshot routes `items.prod` to it.
struct Mesh {
    client: Proxy,
    _server: Proxy,
    _dirs: (TempDir, TempDir),
}

async fn mesh(app: SocketAddr, profiles: Vec<ServiceProfile>) -> Mesh {
    let mut server_cfg = config();
    server_cfg.inbound = Some("127.0.0.1:0".parse().unwrap());
    server_cfg.app = Some(app);
    let (server, d1) = start(server_cfg, &snapshot(vec![])).await;
    let snap = Snapshot {
        services: vec![service("items", "prod", &[server.listen().inbound.unwrap()])],
        profiles,
        ..Snapshot::default()
    };
    let (client, d2) = start(config(), &snap).await;
    Mesh { client, _server: server, _dirs: (d1, d2) }
}

const RETRYABLE: &str = "apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: items.prod.svc.cluster.local, namespace: prod}
spec:
  routes:
    - name: GET /items/{id}
      condition: {method: GET, pathRegex: '/items/[^/]+'}
      isRetryable: true
    - name: POST /items
      condition: {method: POST, pathRegex: /items}
      isRetryable: true
";

/// Sends `count` GETs at `rate` per second on one HTTP/2 connection, open loop (each request starts on
/// schedule whatever the others do); returns the statuses.
async fn open_loop(addr: SocketAddr, rate: u32, count: usize) -> Vec<u16> {
    let c = h2(addr).await;
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        ticker.tick().await;
        let mut c = c.clone();
        tasks.spawn(async move {
            let req = Request::get(format!("http://items.prod/items/{i}")).body(Full::new(Bytes::new())).unwrap();
            match tokio::time::timeout(Duration::from_secs(30), c.send_request(req)).await {
                Ok(Ok(rsp)) => {
                    let status = rsp.status().as_u16();
                    let _ = collect(rsp).await;
                    status
                }
                _ => 0,
            }
        });
    }
    let mut statuses = Vec::with_capacity(count);
    while let Some(s) = tasks.join_next().await {
        statuses.push(s.unwrap());
    }
    statuses
}

fn success_rate(statuses: &[u16]) -> f64 {
    statuses.iter().filter(|s| (200..300).contains(*s)).count() as f64 / statuses.len() as f64
}

async fn metric(proxy: &Proxy, name: &str, labels: &[(&str, &str)]) -> f64 {
    meshlens_testkit::prom::sum(&metrics(proxy).await, name, labels).unwrap_or(0.0)
}

#[tokio::test]
async fn retries_hide_a_20_percent_failure_within_the_budget() {
    // Every 5th request the backend sees fails: a retry (a later request) almost always succeeds.
    let (backend, served) = programmable(|n| if n % 5 == 0 { 503 } else { 200 });
    let mesh = mesh(backend.addr(), vec![profile(RETRYABLE)]).await;
    let n = 2000;
    let statuses = open_loop(mesh.client.listen().outbound, 50, n).await;

    let effective = success_rate(&statuses);
    let actual = served.load(Ordering::SeqCst) as f64 / n as f64;
    eprintln!("50 req/s, 20% failing: effective success {effective:.4}, actual/effective {actual:.3}");
    assert!(effective >= 0.99, "effective success {effective}");
    assert!((actual - 1.25).abs() <= 0.05, "actual/effective requests {actual}");

    let route = [("rt_route", "GET /items/{id}")];
    let proxy = &mesh.client;
    assert_eventually!(metric(proxy, "route_response_total", &route).await == n as f64, "effective responses");
    assert_eq!(metric(proxy, "route_request_total", &route).await, n as f64);
    let attempts = metric(proxy, "route_actual_request_total", &route).await;
    assert_eq!(attempts, served.load(Ordering::SeqCst) as f64, "per-attempt metric = what the backend saw");
    let fate = |f: &'static str| async move { metric(proxy, "route_retry_fate_total", &[route[0], ("fate", f)]).await };
    let (first, after) = (fate("succeeded_first").await, fate("succeeded_after_retry").await);
    assert_eq!(first + after + fate("failed_no_budget").await + fate("failed_retries_exhausted").await, n as f64);
    // Each retried request took at least one retry; concurrent requests share the backend's counter, so a
    // retry now and then lands on another failing turn and needs a second one — rarely.
    let retries = attempts - n as f64;
    assert!(after <= retries && retries - after <= 0.01 * n as f64, "retries {retries}, succeeded after retry {after}");
}

#[tokio::test]
async fn at_1000_rps_the_budget_binds() {
    let failing = Arc::new(std::sync::Mutex::new(fastrand::Rng::with_seed(7)));
    let (backend, served) = programmable(move |_| if failing.lock().unwrap().f64() < 0.2 { 503 } else { 200 });
    let mesh = mesh(backend.addr(), vec![profile(RETRYABLE)]).await;
    let n = 15_000;
    let statuses = open_loop(mesh.client.listen().outbound, 1000, n).await;
    let effective = success_rate(&statuses);
    eprintln!(
        "1000 req/s, 20% failing: effective success {effective:.4}, actual/effective {:.3}",
        served.load(Ordering::SeqCst) as f64 / n as f64
    );
    assert!((0.94..=0.975).contains(&effective), "effective success {effective} (budget 20% + 10/s)");
    let route = ("rt_route", "GET /items/{id}");
    let proxy = &mesh.client;
    assert!(metric(proxy, "route_retryable_total", &[route, ("skipped", "no_budget")]).await > 0.0);
    assert!(metric(proxy, "route_retry_fate_total", &[route, ("fate", "failed_no_budget")]).await > 0.0);
    let actual = served.load(Ordering::SeqCst) as f64 / n as f64;
    assert!(actual < 1.22, "retries stay within about 20% of requests: {actual}");
}

#[tokio::test]
async fn a_failing_backend_cannot_cause_a_retry_storm() {
    let (backend, served) = programmable(|_| 503);
    let mesh = mesh(backend.addr(), vec![profile(RETRYABLE)]).await;
    let started = Instant::now();
    let statuses = open_loop(mesh.client.listen().outbound, 50, 1500).await;
    let elapsed = started.elapsed().as_secs_f64();
    assert!(statuses.iter().all(|s| *s == 503), "callers get the failure");
    let bound = 50.0 * elapsed + 10.0 * elapsed + 100.0;
    let got = served.load(Ordering::SeqCst) as f64;
    eprintln!("100% failing, 50 req/s: backend saw {got} requests in {elapsed:.1} s (bound {bound:.0})");
    assert!(got <= bound, "backend saw {got} requests in {elapsed:.1} s (bound {bound:.0})");
}

#[tokio::test]
async fn a_route_timeout_answers_504_and_cancels_the_request() {
    let cancelled = Arc::new(AtomicUsize::new(0));
    let c = cancelled.clone();
    let backend = HttpBackend::start(move |_req: Request<Incoming>| {
        let guard = CancelGuard(c.clone(), false);
        async move {
            let mut guard = guard;
            tokio::time::sleep(Duration::from_secs(3)).await;
            guard.1 = true;
            Response::new(full("late"))
        }
    });
    let slow = "apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: items.prod.svc.cluster.local, namespace: prod}
spec:
  routes:
    - name: GET /items/{id}
      condition: {method: GET, pathRegex: '/items/[^/]+'}
      timeout: 1s
";
    let mesh = mesh(backend.addr(), vec![profile(slow)]).await;
    let started = Instant::now();
    let (rsp, _) = send(mesh.client.listen().outbound, get("/items/1", "items.prod")).await;
    let took = started.elapsed();
    assert_eq!(rsp.status(), 504);
    assert_eq!(rsp.headers()["l5d-proxy-error"], "timeout");
    eprintln!("route timeout 1 s over a 3 s backend: 504 after {took:?}");
    assert!(took >= Duration::from_millis(900) && took <= Duration::from_secs(2), "504 after {took:?}");
    assert_eventually!(cancelled.load(Ordering::SeqCst) == 1, "the backend sees the request cancelled");
    let text = metrics_text(&mesh.client).await;
    assert!(
        text.lines().any(|l| l.starts_with("response_total{")
            && l.contains("status_code=\"504\"")
            && l.contains("error=\"timeout\"")
            && l.contains("target_addr=\"127.0.0.1")),
        "the cut attempt is counted on its endpoint:\n{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with("route_response_total{") && l.contains("error=\"timeout\"")),
        "and on the route"
    );
}

struct CancelGuard(Arc<AtomicUsize>, bool);

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn a_split_shares_traffic_by_weight_and_weight_zero_gets_nothing() {
    let a = HttpBackend::start(echo("a"));
    let b = HttpBackend::start(echo("b"));
    let z = HttpBackend::start(echo("z"));
    let snap = items_split(&[("a", 900, a.addr()), ("b", 100, b.addr()), ("z", 0, z.addr())]);
    let (proxy, _d) = start(config(), &snap).await;
    let mut c = h1(proxy.listen().outbound).await;
    let n = 2000;
    for _ in 0..n {
        let (rsp, _) = collect(c.send_request(get("/", "items.prod")).await.unwrap()).await;
        assert_eq!(rsp.status(), 200);
    }
    let share_a = a.requests() as f64 / n as f64;
    eprintln!("split 900/100/0 over {n} requests: a {}, b {}, z {}", a.requests(), b.requests(), z.requests());
    assert!((share_a - 0.9).abs() <= 0.03, "a got {share_a}");
    assert_eq!(a.requests() + b.requests(), n);
    assert_eq!(z.requests(), 0, "weight 0 gets nothing");
}

#[tokio::test]
async fn a_tripped_breaker_keeps_traffic_off_a_failing_endpoint() {
    let good1 = HttpBackend::start(echo("g1"));
    let good2 = HttpBackend::start(echo("g2"));
    let (bad, bad_count) = programmable(|_| 500);
    let mut svc = service("items", "prod", &[good1.addr(), good2.addr(), bad.addr()]);
    svc.circuit_breaker = Some(Default::default());
    // Latency estimates forget fast here, so load spreads evenly and only the breaker keeps traffic away.
    let mut cfg = config();
    cfg.balancer.decay = Duration::from_millis(20);
    let (proxy, _d) = start(cfg, &snapshot(vec![svc])).await;
    let mut c = h1(proxy.listen().outbound).await;
    // Until it trips (7 consecutive failures), the bad endpoint gets its share.
    assert_eventually!(
        {
            let _ = collect(c.send_request(get("/", "items.prod")).await.unwrap()).await;
            bad_count.load(Ordering::SeqCst) >= 7
        },
        "the failing endpoint is tried"
    );
    let before = bad_count.load(Ordering::SeqCst);
    let n = 400;
    for _ in 0..n {
        let _ = collect(c.send_request(get("/", "items.prod")).await.unwrap()).await;
    }
    let after = bad_count.load(Ordering::SeqCst) - before;
    eprintln!("breaker: {after} of {n} requests reached the tripped endpoint");
    assert!((after as f64) < 0.05 * n as f64, "{after} of {n} requests reached the tripped endpoint");
    let text = metrics_text(&proxy).await;
    assert!(text.contains("endpoint_breaker_transitions_total{") && text.contains("state=\"open\"} "), "{text}");
    let (_, body) = send(proxy.listen().admin, get("/endpoints", "a")).await;
    assert!(
        String::from_utf8_lossy(&body).contains("\"breaker\": \"open\"")
            || String::from_utf8_lossy(&body).contains("\"breaker\": \"probation\"")
    );
}

#[tokio::test]
async fn a_large_body_on_a_failing_retryable_route_is_sent_once() {
    let (backend, served) = programmable(|_| 503);
    let mesh = mesh(backend.addr(), vec![profile(RETRYABLE)]).await;
    let body = Bytes::from(vec![b'x'; 100 * 1024]);
    let req = Request::post("/items").header("host", "items.prod").body(Full::new(body)).unwrap();
    let (rsp, _) = send(mesh.client.listen().outbound, req).await;
    assert_eq!(rsp.status(), 503);
    assert_eq!(served.load(Ordering::SeqCst), 1, "a 100 KiB body is never buffered for a retry");
    let fates = metric(
        &mesh.client,
        "route_retry_fate_total",
        &[("rt_route", "POST /items"), ("fate", "failed_body_too_large")],
    )
    .await;
    assert_eq!(fates, 1.0);
}
