//! The data plane under faults (issue 13): a failing instance loses traffic, a stalled one wins it back
//! once it answers again, killing an instance costs almost nothing, and requests a server never processed
//! (HTTP/2 GOAWAY, refused streams, HTTP/1 connections closed under a request) never fail.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use meshlens_testkit::backend::{delayed, echo};
use meshlens_testkit::faults::{Stall, failing_fast, failing_in_trailers};
use meshlens_testkit::{ConnFaults, HttpBackend, eventually};

use crate::support::*;

/// One request's outcome: when it was sent, its status (0: no response), how long it took.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    sent: Instant,
    status: u16,
    took: Duration,
}

/// Open-loop load: `rate` requests per second to `users` through `out`, each on its own HTTP/1
/// connection, until `stop` is set; every outcome is recorded (requests still running are awaited).
struct Load {
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    driver: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(out: SocketAddr, rate: u32) -> Load {
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let driver = tokio::spawn({
            let (outcomes, stop) = (outcomes.clone(), stop.clone());
            async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
                let mut running = tokio::task::JoinSet::new();
                // Bounded: at most 10 minutes of load whatever happens.
                for _ in 0..rate * 600 {
                    tick.tick().await;
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let outcomes = outcomes.clone();
                    running.spawn(async move {
                        let sent = Instant::now();
                        let status = one_request(out).await;
                        outcomes.lock().unwrap().push(Outcome { sent, status, took: sent.elapsed() });
                    });
                    while running.try_join_next().is_some() {}
                }
                while running.join_next().await.is_some() {}
            }
        });
        Load { outcomes, stop, driver }
    }

    async fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.driver.await.unwrap();
        Arc::try_unwrap(self.outcomes).unwrap().into_inner().unwrap()
    }
}

async fn one_request(out: SocketAddr) -> u16 {
    let Ok(stream) = tokio::net::TcpStream::connect(out).await else { return 0 };
    let Ok((mut c, conn)) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await else {
        return 0;
    };
    tokio::spawn(conn);
    match c.send_request(get("/", "users")).await {
        Ok(rsp) => {
            let status = rsp.status().as_u16();
            let _ = rsp.into_body().collect().await;
            status
        }
        Err(_) => 0,
    }
}

/// The proxy's `endpoint_transparent_retries_total` for `reason`, summed over endpoints.
async fn transparent_retries(proxy: &meshlens_proxy::Proxy, reason: &str) -> f64 {
    metrics(proxy)
        .await
        .iter()
        .filter(|s| {
            s.name == "endpoint_transparent_retries_total" && s.labels.get("reason").map(String::as_str) == Some(reason)
        })
        .map(|s| s.value)
        .sum::<f64>()
        + 0.0 // an empty sum is -0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_failing_fast_gets_less_than_its_share() {
    let latency = Duration::from_millis(3);
    let a = HttpBackend::start(delayed(latency, echo("a")));
    let b = HttpBackend::start(delayed(latency, echo("b")));
    let bad = HttpBackend::start(failing_fast(0.3, 13, delayed(latency, echo("bad"))));
    let (proxy, _d) =
        start(config(), &snapshot(vec![service("users", "default", &[a.addr(), b.addr(), bad.addr()])])).await;
    let out = proxy.listen().outbound;

    // Four clients, each sending its requests one after the other.
    let (workers, per_worker) = (4, 400);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        tasks.spawn(async move {
            let mut c = h1(out).await;
            let mut ok = 0;
            for _ in 0..per_worker {
                let rsp = c.send_request(get("/", "users")).await.unwrap();
                ok += usize::from(rsp.status() == 200);
                let _ = collect(rsp).await;
            }
            ok
        });
    }
    let mut ok = 0;
    while let Some(n) = tasks.join_next().await {
        ok += n.unwrap();
    }
    let total = workers * per_worker;
    let (na, nb, nbad) = (a.requests(), b.requests(), bad.requests());
    assert_eq!(na + nb + nbad, total);
    let bad_share = nbad as f64 / total as f64;
    let success = ok as f64 / total as f64;
    eprintln!(
        "failing instance: {:.1}% of {total} requests; service success {:.1}%",
        bad_share * 100.0,
        success * 100.0
    );
    assert!(bad_share <= 0.25, "the failing instance gets less than a third: a={na} b={nb} failing={nbad}");
    assert!(success >= 0.92, "the service answers ≥ 92% (was ~87%): {ok} of {total}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_failing_only_in_grpc_trailers_gets_less_than_its_share() {
    // Every head is `200`; the failing instance says `grpc-status: 14` in the trailers of 30% of its answers.
    let latency = Duration::from_millis(3);
    let a = HttpBackend::start(failing_in_trailers(0.0, 1, latency));
    let b = HttpBackend::start(failing_in_trailers(0.0, 2, latency));
    let bad = HttpBackend::start(failing_in_trailers(0.3, 13, latency));
    let (proxy, _d) =
        start(config(), &snapshot(vec![service("users", "default", &[a.addr(), b.addr(), bad.addr()])])).await;
    let out = proxy.listen().outbound;

    // Four clients, each sending its calls one after the other.
    let (workers, per_worker) = (4, 400);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let mut c = h2(out).await;
        tasks.spawn(async move {
            let mut ok = 0;
            for _ in 0..per_worker {
                let req = Request::post("http://users/test.Echo/Unary")
                    .header("content-type", "application/grpc")
                    .body(Full::new(Bytes::new()))
                    .unwrap();
                let rsp = c.send_request(req).await.unwrap();
                let body = rsp.into_body().collect().await.unwrap();
                let status = body.trailers().and_then(|t| t.get("grpc-status")).cloned();
                ok += usize::from(status.is_some_and(|s| s == "0"));
            }
            ok
        });
    }
    let mut ok = 0;
    while let Some(n) = tasks.join_next().await {
        ok += n.unwrap();
    }
    let total = workers * per_worker;
    let (na, nb, nbad) = (a.requests(), b.requests(), bad.requests());
    assert_eq!(na + nb + nbad, total);
    let bad_share = nbad as f64 / total as f64;
    eprintln!(
        "failing in trailers: {:.1}% of {total} calls; {:.1}% succeeded",
        bad_share * 100.0,
        ok as f64 * 100.0 / total as f64
    );
    assert!(bad_share <= 0.25, "the failing instance gets less than a third: a={na} b={nb} failing={nbad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_instance_wins_back_traffic_soon_after_it_resumes() {
    let latency = Duration::from_millis(3);
    let stall = Stall::default();
    let stalled = HttpBackend::start(stall.wrap(delayed(latency, echo("stalled"))));
    let steady = HttpBackend::start(delayed(latency, echo("steady")));
    let (proxy, _d) =
        start(config(), &snapshot(vec![service("users", "default", &[stalled.addr(), steady.addr()])])).await;
    let out = proxy.listen().outbound;

    let load = Load::start(out, 50);
    eventually(async || stalled.requests() >= 20 && steady.requests() >= 20, "both instances serve").await;
    stall.stall();
    let stalled_at = Instant::now();
    // 20 s without an answer, like SIGSTOP.
    let stop_for = Duration::from_secs(20);
    let mut poller = meshlens_testkit::eventually::Poller::with_patience(stop_for + Duration::from_secs(5));
    while stalled_at.elapsed() < stop_for && poller.wait().await {}
    stall.resume();
    let resumed_at = Instant::now();

    // Within 15 s, some one-second window gives the resumed instance ≥ 20% of the requests.
    let mut best = 0.0f64;
    let (mut last_s, mut last_t) = (stalled.requests(), steady.requests());
    let mut window_start = Instant::now();
    let mut poller = meshlens_testkit::eventually::Poller::with_patience(Duration::from_secs(20));
    while resumed_at.elapsed() < Duration::from_secs(15) && poller.wait().await {
        if window_start.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let (s, t) = (stalled.requests(), steady.requests());
        let (ds, dt) = (s - last_s, t - last_t);
        if ds + dt > 0 {
            best = best.max(ds as f64 / (ds + dt) as f64);
        }
        (last_s, last_t, window_start) = (s, t, Instant::now());
        if best >= 0.2 {
            break;
        }
    }
    let regained = resumed_at.elapsed();
    let outcomes = load.finish().await;
    eprintln!("resumed instance: best one-second share {:.0}% after {regained:?}", best * 100.0);
    assert!(best >= 0.2, "the resumed instance gets ≥ 20% of a second's requests within 15 s (best {best:.2})");

    let during: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.sent > stalled_at + Duration::from_secs(1) && o.sent < stalled_at + stop_for)
        .collect();
    let hung = during.iter().filter(|o| o.took > Duration::from_secs(1)).count();
    assert!(!during.is_empty());
    assert!(
        hung * 20 <= during.len(),
        "while an instance is stalled, new requests avoid it: {hung} of {} hung",
        during.len()
    );
    assert!(outcomes.iter().all(|o| o.status == 200), "nothing fails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_favoured_instance_under_load_fails_almost_nothing() {
    let favoured = HttpBackend::start(delayed(Duration::from_millis(1), echo("favoured")));
    let other = HttpBackend::start(delayed(Duration::from_millis(8), echo("other")));
    let (proxy, _d) =
        start(config(), &snapshot(vec![service("users", "default", &[favoured.addr(), other.addr()])])).await;
    let out = proxy.listen().outbound;

    let load = Load::start(out, 100);
    eventually(async || favoured.requests() >= 150, "the favoured instance serves").await;
    assert!(favoured.requests() > other.requests(), "{} vs {}", favoured.requests(), other.requests());
    favoured.stop().await;
    let killed_at = Instant::now();
    let mut poller = meshlens_testkit::eventually::Poller::with_patience(Duration::from_secs(10));
    while killed_at.elapsed() < Duration::from_secs(5) && poller.wait().await {}
    let outcomes = load.finish().await;

    let after: Vec<&Outcome> = outcomes.iter().filter(|o| o.sent >= killed_at).collect();
    let failed = after.iter().filter(|o| o.status != 200).count();
    eprintln!("after the kill: {failed} of {} requests failed", after.len());
    assert!(after.len() >= 200, "the load kept running: {}", after.len());
    assert!(failed * 100 <= after.len(), "≤ 1% fail in the 5 s after the kill: {failed} of {}", after.len());
}

/// `conns` HTTP/2 connections to `out`, each with `streams` concurrent streams, `total` requests in all;
/// returns how many got a 200.
async fn h2_load(out: SocketAddr, conns: usize, streams: usize, total: usize) -> usize {
    let per_stream = total / (conns * streams);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..conns {
        let c = h2(out).await;
        for _ in 0..streams {
            let mut c = c.clone();
            tasks.spawn(async move {
                let mut ok = 0;
                for _ in 0..per_stream {
                    let req = Request::get("http://users/").body(Full::new(Bytes::new())).unwrap();
                    // Bounded: a request that never completes is a failure, not a hung test.
                    let answer = tokio::time::timeout(Duration::from_secs(30), async {
                        let rsp = c.send_request(req).await.map_err(|e| format!("{e:?}"))?;
                        let (status, error) = (rsp.status(), rsp.headers().get("l5d-proxy-error").cloned());
                        let complete = rsp.into_body().collect().await.is_ok();
                        Ok::<_, String>((status, error, complete))
                    });
                    match answer.await {
                        Ok(Ok((status, _, true))) if status == 200 => ok += 1,
                        Ok(Ok((status, error, _))) => eprintln!("failed: {status} {error:?}"),
                        Ok(Err(e)) => eprintln!("failed: {e}"),
                        Err(_) => eprintln!("failed: no answer within 30 s"),
                    }
                }
                ok
            });
        }
    }
    let mut ok = 0;
    while let Some(n) = tasks.join_next().await {
        ok += n.unwrap();
    }
    ok
}

/// Connections × concurrent streams, and requests in all, against a server sending GOAWAY every 100 (issue
/// 13's figure).
const GOAWAY_LOAD: (usize, usize, usize) = (50, 100, 100_000);
/// The same against a server also refusing streams over 10.
const REFUSING_LOAD: (usize, usize, usize) = (50, 100, 100_000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_sending_goaway_every_100_requests_fails_nothing() {
    let backend = HttpBackend::start_faulty(ConnFaults { close_every: Some(100), ..ConnFaults::default() }, echo("b"));
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &[backend.addr()])])).await;
    let (conns, streams, total) = GOAWAY_LOAD;
    let ok = h2_load(proxy.listen().outbound, conns, streams, total).await;
    let resent = transparent_retries(&proxy, "goaway").await;
    eprintln!(
        "GOAWAY every 100: {ok} of {total} ok ({conns} × {streams} streams) over {} connections, {resent} sent again",
        backend.connections()
    );
    assert_eq!(ok, total, "no request fails");
    assert!(backend.connections() >= total / 100 / 2, "the server did close its connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_refusing_streams_over_its_limit_fails_nothing() {
    // A limit of 10 streams, and a new connection every 100 requests: the first connection meets a burst
    // sent before the proxy read the limit, and refuses the excess; requests queued behind the limit of a
    // connection about to close would be turned away with it.
    let faults = ConnFaults { close_every: Some(100), max_concurrent_streams: Some(10) };
    let backend = HttpBackend::start_faulty(faults, echo("b"));
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &[backend.addr()])])).await;
    let (conns, streams, total) = REFUSING_LOAD;
    let ok = h2_load(proxy.listen().outbound, conns, streams, total).await;
    let refused = transparent_retries(&proxy, "refused_stream").await;
    let goaway = transparent_retries(&proxy, "goaway").await;
    eprintln!(
        "refusing over 10 streams: {ok} of {total} ok ({conns} × {streams} streams); sent again: {refused} \
         refused, {goaway} goaway"
    );
    assert_eq!(ok, total, "no request fails");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http1_server_closing_connections_every_10_requests_fails_nothing() {
    let backend = HttpBackend::start_faulty(ConnFaults { close_every: Some(10), ..ConnFaults::default() }, echo("b"));
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &[backend.addr()])])).await;
    let out = proxy.listen().outbound;
    let (workers, per_worker) = (8, 250);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        tasks.spawn(async move {
            let mut c = h1(out).await;
            let mut ok = 0;
            for _ in 0..per_worker {
                let rsp = c.send_request(get("/", "users")).await.unwrap();
                ok += usize::from(rsp.status() == 200);
                let _ = collect(rsp).await;
            }
            ok
        });
    }
    let mut ok = 0;
    while let Some(n) = tasks.join_next().await {
        ok += n.unwrap();
    }
    let total = workers * per_worker;
    let before_write = transparent_retries(&proxy, "closed_before_write").await;
    let before_response = transparent_retries(&proxy, "closed_before_response").await;
    eprintln!(
        "HTTP/1 closing every 10: {ok} of {total} ok over {} connections; sent again: {before_write} before write, \
         {before_response} before response",
        backend.connections()
    );
    assert_eq!(ok, total, "no request fails");
    assert!(backend.connections() >= total / 10, "the server did close its connections");
}

#[tokio::test]
async fn an_instance_streaming_a_long_response_is_not_taken_for_stalled() {
    // `/watch` answers at once, then streams a body that never ends; everything else is a 2 ms echo.
    let handler = |req: http::Request<hyper::body::Incoming>| async move {
        if req.uri().path() == "/watch" {
            let never = futures_util::stream::pending::<Result<http_body::Frame<Bytes>, meshlens_testkit::BoxError>>();
            return http::Response::new(BodyExt::boxed(http_body_util::StreamBody::new(never)));
        }
        delayed(Duration::from_millis(2), echo("b"))(req).await
    };
    let a = HttpBackend::start(handler);
    let b = HttpBackend::start(handler);
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &[a.addr(), b.addr()])])).await;
    let out = proxy.listen().outbound;

    let mut watcher = h1(out).await;
    let watch = watcher.send_request(get("/watch", "users")).await.unwrap();
    assert_eq!(watch.status(), 200);
    let holder = if a.requests() == 1 { &a } else { &b };
    let mut c = h1(out).await;
    let total = 400;
    for _ in 0..total {
        let rsp = c.send_request(get("/", "users")).await.unwrap();
        assert_eq!(rsp.status(), 200);
        let _ = collect(rsp).await;
    }
    let got = holder.requests() - 1;
    eprintln!("the instance holding a long stream got {got} of {total}");
    assert!(got * 100 >= total * 3, "it is still probed and chosen: {got} of {total}");
    drop(watch);
}
