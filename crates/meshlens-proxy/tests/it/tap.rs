//! Tap end to end: a real proxy, real backends, and tap clients on its tap listener. What the proxy itself
//! did is visible (route timeouts, retries linked to their first attempt, connect errors), response
//! filters and `maxRps` apply in the proxy, and a slow tap client costs events, never request speed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use meshlens_api::Snapshot;
use meshlens_api::tap::{ProxyDirection, StreamId, TapEvent};
use meshlens_proxy::{Config, Proxy};
use meshlens_testkit::backend::{echo, full};
use meshlens_testkit::grpc::{EchoRequest, GrpcBackend, GrpcClient};
use meshlens_testkit::{HttpBackend, assert_eventually};
use tokio::io::AsyncWriteExt;

use crate::support::*;
use meshlens_testkit::TempDir;

pub(crate) const TOKEN: &str = "tap-secret";
const PATIENCE: Duration = Duration::from_secs(30);

pub(crate) fn tap_config() -> Config {
    let mut c = config();
    c.tap_token = Some(TOKEN.into());
    c
}

/// A `GET /tap` request on a fresh connection.
async fn tap_request(addr: SocketAddr, token: Option<&str>, query: &str) -> Response<Incoming> {
    let mut c = h1(addr).await;
    let mut req = Request::get(format!("/tap?{query}")).header("host", "tap");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    c.send_request(req.body(Full::new(Bytes::new())).unwrap()).await.unwrap()
}

/// An open tap stream, read one NDJSON event at a time.
pub(crate) struct TapStream {
    body: Incoming,
    buf: Vec<u8>,
}

impl TapStream {
    pub(crate) async fn open(proxy: &Proxy, query: &str) -> TapStream {
        let rsp = tap_request(proxy.listen().tap, Some(TOKEN), query).await;
        assert_eq!(rsp.status(), 200, "tap stream opens");
        assert_eq!(rsp.headers()["content-type"], "application/x-ndjson");
        TapStream { body: rsp.into_body(), buf: Vec::new() }
    }

    /// The next event, or `None` when the stream ended.
    pub(crate) async fn next(&mut self) -> Option<TapEvent> {
        loop {
            if let Some(nl) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=nl).collect();
                return Some(serde_json::from_slice(&line[..nl]).expect("an event per line"));
            }
            let frame = tokio::time::timeout(PATIENCE, self.body.frame()).await.expect("a tap event in time");
            match frame {
                None => return None,
                Some(f) => {
                    if let Ok(data) = f.expect("tap stream reads").into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }

    async fn take(&mut self, n: usize) -> Vec<TapEvent> {
        let mut events = Vec::with_capacity(n);
        for _ in 0..n {
            events.push(self.next().await.expect("stream still open"));
        }
        events
    }

    async fn until_end(&mut self) -> Vec<TapEvent> {
        let mut events = Vec::new();
        while let Some(e) = self.next().await {
            events.push(e);
        }
        events
    }
}

fn kind(e: &TapEvent) -> &'static str {
    if e.request_init_event.is_some() {
        "req"
    } else if e.response_init_event.is_some() {
        "rsp"
    } else {
        "end"
    }
}

fn id(e: &TapEvent) -> StreamId {
    e.request_init_event
        .as_ref()
        .map(|r| r.id)
        .or(e.response_init_event.as_ref().map(|r| r.id))
        .or(e.response_end_event.as_ref().map(|r| r.id))
        .unwrap()
}

fn path(e: &TapEvent) -> &str {
    &e.request_init_event.as_ref().expect("a req event").path
}

fn status(e: &TapEvent) -> u16 {
    e.response_init_event.as_ref().expect("a rsp event").http_status
}

fn kinds(events: &[TapEvent]) -> Vec<&'static str> {
    events.iter().map(kind).collect()
}

/// A backend answering by path: `/fail…` → 500, anything else → 200.
fn by_path() -> HttpBackend {
    HttpBackend::start(|req: Request<Incoming>| async move {
        let fail = req.uri().path().starts_with("/fail");
        let mut rsp = Response::new(full(if fail { "failed" } else { "ok" }));
        *rsp.status_mut() = if fail { http::StatusCode::INTERNAL_SERVER_ERROR } else { http::StatusCode::OK };
        rsp
    })
}

/// A backend whose `n`th request (1-based) gets `status(n)`.
fn programmable(status: impl Fn(usize) -> u16 + Send + Sync + 'static) -> HttpBackend {
    let count = Arc::new(AtomicUsize::new(0));
    let status = Arc::new(status);
    HttpBackend::start(move |_req: Request<Incoming>| {
        let code = status(count.fetch_add(1, Ordering::SeqCst) + 1);
        async move {
            let mut rsp = Response::new(full("x"));
            *rsp.status_mut() = http::StatusCode::from_u16(code).unwrap();
            rsp
        }
    })
}

/// A proxy (with a tap token) whose snapshot has `items.prod` on `addrs`, with optional profiles.
async fn items_proxy(addrs: &[SocketAddr], profiles: &[&str]) -> (Proxy, TempDir) {
    let snap = Snapshot {
        services: vec![service("items", "prod", addrs)],
        profiles: profiles.iter().map(|p| serde_saphyr::from_str(p).unwrap()).collect(),
        ..Snapshot::default()
    };
    start(tap_config(), &snap).await
}

async fn outbound_responses(proxy: &Proxy) -> f64 {
    meshlens_testkit::prom::sum(&metrics(proxy).await, "response_total", &[("direction", "outbound")]).unwrap_or(0.0)
}

async fn metric(proxy: &Proxy, name: &str) -> f64 {
    meshlens_testkit::prom::sum(&metrics(proxy).await, name, &[]).unwrap_or(0.0)
}

/// Waits until `n` outbound responses ended (their records are finished), then drains the proxy: every
/// tap stream writes what it buffered and ends, so a test can read "everything" without a timeout.
async fn settle_and_drain(proxy: Proxy, n: f64) {
    assert_eventually!(outbound_responses(&proxy).await >= n, "all responses ended");
    tokio::spawn(proxy.shutdown());
}

#[tokio::test]
async fn tap_needs_a_token_and_a_valid_filter() {
    let (plain, _d1) = start(config(), &snapshot(vec![])).await;
    let rsp = tap_request(plain.listen().tap, Some("anything"), "").await;
    let (rsp, body) = collect(rsp).await;
    assert_eq!(rsp.status(), 403);
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("--tap-token") && body.contains("control plane"), "{body}");

    let (proxy, _d2) = start(tap_config(), &snapshot(vec![])).await;
    let tap = proxy.listen().tap;
    let (rsp, body) = collect(tap_request(tap, None, "").await).await;
    assert_eq!(rsp.status(), 401);
    assert!(String::from_utf8_lossy(&body).contains("missing tap token"), "{body:?}");
    let (rsp, body) = collect(tap_request(tap, Some("guess"), "").await).await;
    assert_eq!(rsp.status(), 401);
    assert!(String::from_utf8_lossy(&body).contains("invalid tap token"), "{body:?}");
    for (query, parameter) in
        [("direction=sideways", "direction"), ("status=6xx", "status"), ("maxRps=0", "maxRps"), ("maxRps=x", "maxRps")]
    {
        let (rsp, body) = collect(tap_request(tap, Some(TOKEN), query).await).await;
        assert_eq!(rsp.status(), 400, "{query}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["error"].as_str().unwrap().contains(parameter), "{query}: {v}");
    }
    let (rsp, _) = send(tap, get("/metrics", "tap")).await;
    assert_eq!(rsp.status(), 404);

    // An idle stream whose client goes away is removed at once.
    let stream = TapStream::open(&proxy, "").await;
    assert_eventually!(metric(&proxy, "tap_streams").await == 1.0, "stream counted");
    drop(stream);
    assert_eventually!(metric(&proxy, "tap_streams").await == 0.0, "stream removed when its client leaves");
}

#[tokio::test]
async fn a_route_timeout_shows_as_the_504_the_caller_got() {
    let backend = HttpBackend::start(|_req: Request<Incoming>| async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        Response::new(full("late"))
    });
    let profile = "apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: items.prod.svc.cluster.local, namespace: prod}
spec:
  routes:
    - name: GET /items/{id}
      condition: {method: GET, pathRegex: '/items/[^/]+'}
      timeout: 300ms
";
    let (proxy, _d) = items_proxy(&[backend.addr()], &[profile]).await;
    let mut tap = TapStream::open(&proxy, "direction=outbound").await;
    let (rsp, _) = send(proxy.listen().outbound, get("/items/1", "items.prod")).await;
    assert_eq!(rsp.status(), 504);

    let events = tap.take(3).await;
    assert_eq!(kinds(&events), ["req", "rsp", "end"]);
    let (req, rsp, end) = (&events[0], &events[1], &events[2]);
    assert_eq!(req.proxy_direction, ProxyDirection::Outbound);
    assert_eq!(req.route_meta.get("route").map(String::as_str), Some("GET /items/{id}"));
    assert_eq!((req.attempt, req.original_id), (Some(1), None));
    assert_eq!(req.destination.port, backend.addr().port(), "the endpoint the attempt went to");
    assert_eq!(req.destination.metadata["pod"], "items-0");
    assert_eq!(req.destination.metadata["service"], "items");
    assert_eq!(req.source.metadata["deployment"], "test", "the source is this proxy's workload");
    assert_eq!(status(rsp), 504);
    assert_eq!(rsp.proxy_error.as_deref(), Some("timeout"));
    let since = rsp.response_init_event.as_ref().unwrap().since_request_init;
    assert!(Duration::from(since) >= Duration::from_millis(290), "at the timeout: {since:?}");
    assert_eq!(end.proxy_error.as_deref(), Some("timeout"));
    assert!(end.response_end_event.as_ref().unwrap().reset_error_code.is_none());
    assert!(events.iter().all(|e| id(e) == id(req)));
}

const RETRYABLE: &str = "apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: items.prod.svc.cluster.local, namespace: prod}
spec:
  routes:
    - name: GET /items/{id}
      condition: {method: GET, pathRegex: '/items/[^/]+'}
      isRetryable: true
";

#[tokio::test]
async fn retries_are_attempts_linked_to_the_first() {
    let backend = programmable(|n| if n <= 2 { 503 } else { 200 });
    let (proxy, _d) = items_proxy(&[backend.addr()], &[RETRYABLE]).await;
    let mut tap = TapStream::open(&proxy, "").await;
    let (rsp, _) = send(proxy.listen().outbound, get("/items/7", "items.prod")).await;
    assert_eq!(rsp.status(), 200, "the third attempt succeeded");

    let events = tap.take(9).await;
    assert_eq!(kinds(&events), ["req", "rsp", "end", "req", "rsp", "end", "req", "rsp", "end"]);
    let first = id(&events[0]);
    let attempts: Vec<(Option<u32>, Option<StreamId>, u16)> =
        events.chunks(3).map(|a| (a[0].attempt, a[0].original_id, status(&a[1]))).collect();
    assert_eq!(attempts, [(Some(1), None, 503), (Some(2), Some(first), 503), (Some(3), Some(first), 200)]);
    let ids: Vec<StreamId> = events.chunks(3).map(|a| id(&a[0])).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "each attempt has its own id: {ids:?}");
    assert!(events.iter().all(|e| e.proxy_error.is_none()), "the app's 503s, not the proxy's");
    let resets: Vec<Option<u32>> =
        events.chunks(3).map(|a| a[2].response_end_event.as_ref().unwrap().reset_error_code).collect();
    assert_eq!(resets, [None, None, None], "a response the proxy retries is not a stream reset");
}

#[tokio::test]
async fn a_dead_endpoint_shows_the_connect_error() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (proxy, _d) = items_proxy(&[dead], &[]).await;
    let mut tap = TapStream::open(&proxy, "").await;
    let (rsp, _) = send(proxy.listen().outbound, get("/items/1", "items.prod")).await;
    assert_eq!(rsp.status(), 502);

    let events = tap.take(3).await;
    assert_eq!(kinds(&events), ["req", "rsp", "end"]);
    assert_eq!(events[0].destination.port, dead.port(), "the endpoint it tried");
    assert_eq!(status(&events[1]), 502);
    assert_eq!(events[1].proxy_error.as_deref(), Some("connect_error"));
    assert_eq!(events[2].proxy_error.as_deref(), Some("connect_error"));
}

/// Sends `count` GETs on `conns` keep-alive connections; returns each request's latency.
async fn load(addr: SocketAddr, conns: usize, count: usize) -> Vec<Duration> {
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..conns {
        tasks.spawn(async move {
            let mut client = h1(addr).await;
            let mut took = Vec::new();
            for _ in (c..count).step_by(conns) {
                let started = Instant::now();
                let rsp = client.send_request(get("/items/1", "items.prod")).await.unwrap();
                let (rsp, _) = collect(rsp).await;
                assert_eq!(rsp.status(), 200);
                took.push(started.elapsed());
            }
            took
        });
    }
    let mut all = Vec::new();
    while let Some(t) = tasks.join_next().await {
        all.extend(t.unwrap());
    }
    all
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test]
async fn a_tap_client_that_does_not_read_costs_events_not_request_speed() {
    let backend = HttpBackend::start(echo("items"));
    let (proxy, _d) = items_proxy(&[backend.addr()], &[]).await;
    let outbound = proxy.listen().outbound;
    let before = median(load(outbound, 1, 200).await);

    // A tap client that sends its request and never reads (small receive buffer, so it fills soon).
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(proxy.listen().tap).await.unwrap();
    let head = format!("GET /tap HTTP/1.1\r\nHost: tap\r\nAuthorization: Bearer {TOKEN}\r\n\r\n");
    stalled.write_all(head.as_bytes()).await.unwrap();
    assert_eventually!(metric(&proxy, "tap_streams").await == 1.0, "the stalled stream is subscribed");

    let started = Instant::now();
    let mut sent = 0;
    while metric(&proxy, "tap_dropped_events_total").await == 0.0 {
        assert!(sent < 30_000 && started.elapsed() < Duration::from_secs(120), "no event dropped after {sent}");
        let took = load(outbound, 8, 1000).await;
        assert!(took.iter().all(|t| *t < Duration::from_secs(5)), "no request waits on the tap client");
        sent += 1000;
    }
    let during = median(load(outbound, 1, 200).await);
    eprintln!("stalled tap client: events dropped after {sent} requests; median {before:?} before, {during:?} with it");
    assert!(during < before * 10 + Duration::from_millis(5), "requests keep their pace: {before:?} → {during:?}");

    drop(stalled);
    assert_eventually!(metric(&proxy, "tap_streams").await == 0.0, "the stream is removed when its client leaves");
}

#[tokio::test]
async fn a_status_filter_emits_only_the_matching_requests() {
    let backend = by_path();
    let (proxy, _d) = items_proxy(&[backend.addr()], &[]).await;
    let mut tap = TapStream::open(&proxy, "status=5xx").await;
    let outbound = proxy.listen().outbound;
    for i in 0..6 {
        let (ok, _) = send(outbound, get(&format!("/ok/{i}"), "items.prod")).await;
        let (failed, _) = send(outbound, get(&format!("/fail/{i}"), "items.prod")).await;
        assert_eq!((ok.status().as_u16(), failed.status().as_u16()), (200, 500));
    }
    settle_and_drain(proxy, 12.0).await;
    let events = tap.until_end().await;
    assert_eq!(events.len(), 18, "req+rsp+end of the six failures only: {:?}", kinds(&events));
    for (i, group) in events.chunks(3).enumerate() {
        assert_eq!(kinds(group), ["req", "rsp", "end"]);
        assert_eq!(path(&group[0]), format!("/fail/{i}"));
        assert_eq!(status(&group[1]), 500);
        assert!(group.iter().all(|e| id(e) == id(&group[0])));
    }
}

#[tokio::test]
async fn max_rps_counts_only_what_passed_the_response_filter() {
    let backend = by_path();
    let (proxy, _d) = items_proxy(&[backend.addr()], &[]).await;
    let mut tap = TapStream::open(&proxy, "failed=true&maxRps=1").await;
    let outbound = proxy.listen().outbound;
    let started = Instant::now();
    for i in 0..10 {
        let (rsp, _) = send(outbound, get(&format!("/ok/{i}"), "items.prod")).await;
        assert_eq!(rsp.status(), 200);
    }
    for i in 0..5 {
        let (rsp, _) = send(outbound, get(&format!("/fail/{i}"), "items.prod")).await;
        assert_eq!(rsp.status(), 500);
    }
    let elapsed = started.elapsed();
    settle_and_drain(proxy, 15.0).await;
    let events = tap.until_end().await;
    let emitted: Vec<&str> = events.iter().filter(|e| kind(e) == "req").map(path).collect();
    eprintln!("maxRps=1 over {elapsed:?}: emitted {emitted:?}");
    assert_eq!(emitted.first().copied(), Some("/fail/0"), "the 200s did not use up the rate");
    assert!(emitted.iter().all(|p| p.starts_with("/fail/")));
    let allowed = 1 + elapsed.as_secs() as usize;
    assert!(emitted.len() <= allowed, "at most {allowed} in {elapsed:?}: {emitted:?}");
    assert_eq!(events.len(), emitted.len() * 3);
}

#[tokio::test]
async fn inbound_requests_are_tapped_with_this_proxy_as_destination() {
    let app = HttpBackend::start(echo("app"));
    let mut cfg = config_with_app(app.addr());
    cfg.tap_token = Some(TOKEN.into());
    let (proxy, _d) = start(cfg, &snapshot(vec![])).await;
    let mut tap = TapStream::open(&proxy, "direction=inbound").await;
    let (rsp, body) = send(proxy.listen().inbound.unwrap(), get("/hello", "app.prod")).await;
    assert_eq!(rsp.status(), 200, "{body:?}");

    let events = tap.take(3).await;
    assert_eq!(kinds(&events), ["req", "rsp", "end"]);
    let req = &events[0];
    assert_eq!(req.proxy_direction, ProxyDirection::Inbound);
    assert_eq!(path(req), "/hello");
    assert_eq!(req.request_init_event.as_ref().unwrap().authority, "app.prod");
    assert_eq!(req.source.ip, "127.0.0.1");
    assert_eq!(req.source.metadata["tls"], "loopback");
    assert_eq!(req.destination.port, app.addr().port());
    assert_eq!(req.destination.metadata["deployment"], "test");
    assert_eq!(req.destination.metadata["pod"], "test-0");
    assert_eq!(req.attempt, None, "attempts are an outbound notion");
    assert_eq!(status(&events[1]), 200);
    let end = events[2].response_end_event.as_ref().unwrap();
    assert_eq!(end.response_bytes as usize, body.len());
}

#[tokio::test]
async fn grpc_status_is_captured_and_the_failed_filter_sees_grpc_failures() {
    let backend = GrpcBackend::start();
    let mut cfg = tap_config();
    cfg.namespace = "default".into();
    let (proxy, _d) = start(cfg, &snapshot(vec![service("users", "default", &[backend.addr()])])).await;
    let mut all = TapStream::open(&proxy, "").await;
    let mut failed = TapStream::open(&proxy, "failed=true").await;
    let client = GrpcClient::connect(proxy.listen().outbound, Some("users")).await.unwrap();
    client.unary("fine").await.unwrap();
    let req = EchoRequest { message: "x".into(), fail_code: 14, fail_message: "down".into(), ..EchoRequest::default() };
    assert_eq!(i32::from(client.call_unary(req).await.unwrap_err().code()), 14);

    let events = all.take(6).await;
    assert_eq!(kinds(&events), ["req", "rsp", "end", "req", "rsp", "end"]);
    let grpc = |e: &TapEvent| e.response_end_event.as_ref().unwrap().grpc_status_code;
    assert_eq!((grpc(&events[2]), grpc(&events[5])), (Some(0), Some(14)));
    assert_eq!(status(&events[4]), 200, "gRPC failures travel with HTTP 200");

    settle_and_drain(proxy, 2.0).await;
    let only_failed = failed.until_end().await;
    assert_eq!(kinds(&only_failed), ["req", "rsp", "end"]);
    assert_eq!(grpc(&only_failed[2]), Some(14));
}

#[tokio::test]
async fn headers_are_captured_on_request_with_sensitive_values_redacted() {
    let backend = HttpBackend::start(echo("items"));
    let (proxy, _d) = items_proxy(&[backend.addr()], &[]).await;
    let mut with = TapStream::open(&proxy, "headers=true").await;
    let mut without = TapStream::open(&proxy, "").await;
    let req = Request::get("/items/1")
        .header("host", "items.prod")
        .header("authorization", "Bearer app-secret")
        .header("cookie", "session=abc")
        .header("x-request-id", "42")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (rsp, _) = send(proxy.listen().outbound, req).await;
    assert_eq!(rsp.status(), 200);
    let seen = backend.last().unwrap();
    assert_eq!(seen.header("authorization"), Some("Bearer app-secret"), "redaction is for tap only");

    let events = with.take(3).await;
    let headers = &events[0].request_init_event.as_ref().unwrap().headers;
    let value = |name: &str| headers.iter().find(|h| h.name == name).map(|h| h.value_str.as_str());
    assert_eq!(value("authorization"), Some("[redacted]"));
    assert_eq!(value("cookie"), Some("[redacted]"));
    assert_eq!(value("x-request-id"), Some("42"));
    assert!(!events[1].response_init_event.as_ref().unwrap().headers.is_empty(), "response headers too");
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("app-secret") && !text.contains("session=abc"), "{text}");

    let plain = without.take(3).await;
    assert!(plain[0].request_init_event.as_ref().unwrap().headers.is_empty(), "only when asked");
}

/// A proxy named `instance` of `workload` in `prod`, with a tap token.
fn named(mut cfg: Config, workload: &str, instance: &str) -> Config {
    cfg.workload = Some(workload.into());
    cfg.instance = Some(instance.into());
    cfg.namespace = "prod".into();
    cfg.tap_token = Some(TOKEN.into());
    cfg
}

fn source_meta<'a>(e: &'a TapEvent, key: &str) -> Option<&'a str> {
    e.source.metadata.get(key).map(String::as_str)
}

#[tokio::test]
async fn the_inbound_source_names_the_calling_proxy_as_an_unverified_claim() {
    let app = HttpBackend::start(echo("users"));
    let (server, _d1) = start(named(config_with_app(app.addr()), "users", "users-0"), &snapshot(vec![])).await;
    let inbound = server.listen().inbound.unwrap();
    let users = snapshot(vec![service("users", "prod", &[inbound])]);
    let (client, _d2) = start(named(config(), "traffic", "traffic-0"), &users).await;
    let mut tap = TapStream::open(&server, "direction=inbound").await;

    // The app forwards a header it got from an earlier hop: the calling proxy replaces it.
    let mut forged = get("/one", "users.prod");
    forged.headers_mut().insert("meshlens-client", "someone-0.else.prod".parse().unwrap());
    for req in [forged, get("/two", "users.prod")] {
        let (rsp, _) = send(client.listen().outbound, req).await;
        assert_eq!(rsp.status(), 200);
    }
    let events = tap.take(6).await;
    let reqs: Vec<&TapEvent> = events.iter().filter(|e| kind(e) == "req").collect();
    assert_eq!(reqs.iter().map(|e| path(e)).collect::<Vec<_>>(), ["/one", "/two"]);
    for e in reqs {
        assert_eq!(source_meta(e, "pod"), Some("traffic-0"), "{:?}", e.source);
        assert_eq!(source_meta(e, "deployment"), Some("traffic"));
        assert_eq!(source_meta(e, "namespace"), Some("prod"));
        assert_eq!(source_meta(e, "identity"), Some("unverified"), "a claim, marked as such");
        assert_eq!(source_meta(e, "tls"), Some("loopback"));
        assert_eq!(e.destination.metadata["pod"], "users-0");
    }
    // The header reaches the app too (like Linkerd's l5d-client-id), one value: the calling proxy's.
    for seen in app.seen() {
        let values: Vec<_> = seen.headers.get_all("meshlens-client").iter().collect();
        assert_eq!(values, ["traffic-0.traffic.prod"], "{}", seen.path());
    }
}

#[tokio::test]
async fn a_plain_client_is_an_address_and_a_forged_claim_stays_marked_unverified() {
    let app = HttpBackend::start(echo("users"));
    let (server, _d) = start(named(config_with_app(app.addr()), "users", "users-0"), &snapshot(vec![])).await;
    let inbound = server.listen().inbound.unwrap();
    let mut tap = TapStream::open(&server, "direction=inbound").await;
    let with_claim = |path: &str, claim: &str| {
        let mut req = get(path, "users.prod");
        req.headers_mut().insert("meshlens-client", claim.parse().unwrap());
        req
    };
    let requests = [
        get("/plain", "users.prod"),
        with_claim("/malformed", "not a proxy name"),
        with_claim("/too-many-parts", "a.b.c.d"),
        with_claim("/forged", "traffic-0.traffic.prod"),
    ];
    for req in requests {
        let (rsp, _) = send(inbound, req).await;
        assert_eq!(rsp.status(), 200);
    }
    let events = tap.take(12).await;
    let reqs: Vec<&TapEvent> = events.iter().filter(|e| kind(e) == "req").collect();
    assert_eq!(reqs.len(), 4);
    for e in &reqs[..3] {
        assert_eq!(source_meta(e, "pod"), None, "{}: no source pod: {:?}", path(e), e.source);
        assert_eq!(source_meta(e, "identity"), None);
        assert_eq!(source_meta(e, "tls"), Some("loopback"));
    }
    // Without mTLS the proxy cannot tell a forged claim from a real one: it shows it, as a claim.
    let forged = reqs[3];
    assert_eq!(path(forged), "/forged");
    assert_eq!(source_meta(forged, "pod"), Some("traffic-0"));
    assert_eq!(source_meta(forged, "identity"), Some("unverified"));
}

#[tokio::test]
async fn a_failfast_to_a_workload_without_instances_matches_its_destination_filter() {
    // items selects workload items-api, which has no instance: requests fail fast, made by the proxy.
    let mut items = service("items", "prod", &[]);
    items.workload = Some("items-api".into());
    let mut cfg = tap_config();
    cfg.timeouts.failfast = Duration::from_millis(200);
    let (proxy, _d) = start(cfg, &Snapshot { services: vec![items], ..Snapshot::default() }).await;
    let mut tap = TapStream::open(&proxy, "dstWorkload=items-api&status=5xx").await;
    let (rsp, _) = send(proxy.listen().outbound, get("/items/1", "items.prod")).await;
    assert_eq!(rsp.status(), 504);

    let events = tap.take(3).await;
    assert_eq!(kinds(&events), ["req", "rsp", "end"]);
    assert_eq!(events[1].proxy_error.as_deref(), Some("failfast"));
    let dst = &events[1].destination.metadata;
    assert_eq!(dst.get("deployment").map(String::as_str), Some("items-api"), "{dst:?}");
    assert_eq!(dst.get("service").map(String::as_str), Some("items"), "{dst:?}");
}
