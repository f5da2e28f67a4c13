//! Every request accounted for (issue 11, DESIGN.md §5): a caller that gives up is counted `cancelled` at
//! both proxies of the edge, with its elapsed time; every response the proxy makes is counted once under
//! `error=<reason>`, tapped once and logged once; a client's malformed body is the client's failure.

use std::net::SocketAddr;

use std::time::{Duration, Instant};

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use meshlens_api::Snapshot;
use meshlens_api::tap::TapEvent;
use meshlens_proxy::Proxy;
use meshlens_testkit::backend::{delayed, echo, full};
use meshlens_testkit::prom::{Sample, sum};
use meshlens_testkit::raw::raw_http1_with;
use meshlens_testkit::{HttpBackend, RawTcpBackend, assert_eventually, raw_http1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;
use crate::tap::{TapStream, tap_config};

/// `response_total` samples carrying `error=<error>`, summed.
fn errors(samples: &[Sample], direction: &str, error: &str) -> f64 {
    sum(samples, "response_total", &[("direction", direction), ("error", error)]).unwrap_or(0.0)
}

/// Requests and responses of `direction`, summed over every series.
fn law(samples: &[Sample], direction: &str) -> (f64, f64) {
    let requests = sum(samples, "request_total", &[("direction", direction)]).unwrap_or(0.0);
    let responses = sum(samples, "response_total", &[("direction", direction)]).unwrap_or(0.0);
    (requests, responses)
}

#[tokio::test]
async fn a_caller_that_gives_up_is_cancelled_at_both_proxies_with_its_elapsed_time() {
    let backend = HttpBackend::start(delayed(Duration::from_secs(2), echo("slow")));
    let (callee, _d1) = start(config_with_app(backend.addr()), &Snapshot::default()).await;
    let inbound = callee.listen().inbound.unwrap();
    let (caller, _d2) = start(tap_config(), &snapshot(vec![service("users", "default", &[inbound])])).await;
    let mut tap = TapStream::open(&caller, "").await;

    // The app gives up after 500 ms and closes its connection. Each proxy's elapsed time runs from when it
    // received the request to when it saw the caller go: about the caller's patience (at least half of it
    // on a loaded machine), and far below the backend's 2 s.
    let patience = Duration::from_millis(500);
    give_up(caller.listen().outbound, "users", patience).await;
    let end = loop {
        let e = tap.next().await.expect("tap stream open");
        if let Some(end) = e.response_end_event {
            break end;
        }
    };
    let elapsed = Duration::from(end.since_request_init);
    assert!(elapsed >= patience / 2 && elapsed < Duration::from_secs(2), "tap's end: {elapsed:?}");
    assert!(end.reset_error_code.is_some(), "tap shows the request cut short");

    for (proxy, direction) in [(&caller, "outbound"), (&callee, "inbound")] {
        assert_eventually!(
            errors(&metrics(proxy).await, direction, "cancelled") == 1.0,
            "{direction}: the request is counted cancelled once"
        );
        let samples = metrics(proxy).await;
        let cancelled = [("direction", direction), ("status_code", ""), ("classification", "failure")];
        assert_eq!(sum(&samples, "response_total", &cancelled), Some(1.0), "{direction}: status_code \"\", a failure");
        let count = sum(&samples, "response_latency_ms_count", &[("direction", direction), ("status_code", "")]);
        let ms = sum(&samples, "response_latency_ms_sum", &[("direction", direction), ("status_code", "")]);
        assert_eq!(count, Some(1.0), "{direction}: its elapsed time is in the latency histogram");
        let ms = ms.unwrap_or(0.0);
        assert!(ms >= patience.as_millis() as f64 / 2.0, "{direction}: elapsed {ms} ms ≈ the caller's patience");
        assert!(ms < 2000.0, "{direction}: elapsed {ms} ms ends when the caller left, not with the backend");
        let (requests, responses) = law(&samples, direction);
        assert_eq!(requests, responses, "{direction}: requests = responses + cancellations");
    }
}

/// Sends `GET /slow` for `host` and closes the connection after `patience` without a response.
async fn give_up(addr: SocketAddr, host: &str, patience: Duration) {
    let mut conn = TcpStream::connect(addr).await.unwrap();
    conn.write_all(format!("GET /slow HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(patience, conn.read(&mut buf)).await;
    assert!(read.is_err(), "no response within the caller's patience");
}

#[tokio::test]
async fn a_caller_that_gives_up_is_cancelled_on_its_route_and_while_waiting_for_an_endpoint() {
    let backend = HttpBackend::start(delayed(Duration::from_secs(2), echo("slow")));
    let profile = "apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: items.default.svc.cluster.local, namespace: default}
spec:
  routes:
    - name: GET /slow
      condition: {method: GET, pathRegex: /slow}
";
    let snap = Snapshot {
        services: vec![service("items", "default", &[backend.addr()]), service("nobody", "default", &[])],
        profiles: vec![serde_saphyr::from_str(profile).unwrap()],
        ..Snapshot::default()
    };
    let (proxy, _d) = start(config(), &snap).await;
    give_up(proxy.listen().outbound, "items", Duration::from_millis(500)).await;
    give_up(proxy.listen().outbound, "nobody", Duration::from_millis(500)).await;

    let route = [("rt_route", "GET /slow"), ("error", "cancelled"), ("status_code", "")];
    assert_eventually!(
        sum(&metrics(&proxy).await, "route_response_total", &route) == Some(1.0),
        "the route's effective series counts the cancellation"
    );
    let samples = metrics(&proxy).await;
    assert_eq!(sum(&samples, "route_actual_response_total", &route), Some(1.0), "so does the attempt's");
    let latency = sum(&samples, "route_response_latency_ms_sum", &[("rt_route", "GET /slow"), ("status_code", "")]);
    assert!(latency.is_some_and(|ms| (250.0..2000.0).contains(&ms)), "with its elapsed time: {latency:?}");
    let waiting = [("authority", "nobody.default.svc.cluster.local:80"), ("error", "cancelled")];
    assert_eventually!(
        sum(&metrics(&proxy).await, "response_total", &waiting) == Some(1.0),
        "a request that waited for an endpoint is counted on its service"
    );
    let samples = metrics(&proxy).await;
    for family in ["", "route_", "route_actual_"] {
        let requests = sum(&samples, &format!("{family}request_total"), &[]).unwrap_or(0.0);
        let responses = sum(&samples, &format!("{family}response_total"), &[]).unwrap_or(0.0);
        assert_eq!(requests, responses, "{family}request_total = responses + cancellations");
    }
}

/// WARN events of `proxy` (its `GET /logs`) naming `reason` and mentioning `name` (unique to one case).
async fn logged(proxy: &Proxy, reason: &str, name: &str) -> usize {
    let page = logs(proxy, "since=0&level=warn").await;
    page.events
        .iter()
        .filter(|e| e.level == "WARN" && e.fields.get("reason").map(String::as_str) == Some(reason))
        .filter(|e| format!("{} {:?}", e.message, e.fields).contains(name))
        .count()
}

/// One way to make the proxy answer with a reason: what to send, and where.
struct Case {
    reason: &'static str,
    status: u16,
    /// Unique to this case: the authority asked for (named in the log line).
    name: String,
    request: String,
    snapshot: Snapshot,
}

/// A raw upstream that answers every request with garbage.
fn garbage_upstream() -> RawTcpBackend {
    RawTcpBackend::start(|mut s: TcpStream| async move {
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"HTTP/1.1 2oo OK\r\n\r\n").await;
    })
}

#[tokio::test]
async fn every_local_proxy_error_is_counted_tapped_and_logged_once() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let garbage = garbage_upstream();
    let get = |host: &str| format!("GET /x HTTP/1.1\r\nHost: {host}\r\n\r\n");
    let svc = |name: &str, addrs: &[SocketAddr]| snapshot(vec![service(name, "default", addrs)]);
    let cases = [
        Case {
            reason: "connect_error",
            status: 502,
            name: "acct-dead".into(),
            request: get("acct-dead"),
            snapshot: svc("acct-dead", &[dead]),
        },
        Case {
            reason: "invalid_response",
            status: 502,
            name: "acct-garbage".into(),
            request: get("acct-garbage"),
            snapshot: svc("acct-garbage", &[garbage.addr()]),
        },
        Case {
            reason: "no_route",
            status: 404,
            name: "acct-nosuch".into(),
            request: get("acct-nosuch"),
            snapshot: Snapshot::default(),
        },
        Case {
            reason: "bad_request",
            status: 400,
            name: "acct-connect".into(),
            request: "CONNECT /x HTTP/1.1\r\nHost: acct-connect\r\n\r\n".into(),
            snapshot: Snapshot::default(),
        },
        Case {
            reason: "bad_request",
            status: 400,
            name: "acct-smuggle".into(),
            request:
                "POST /x HTTP/1.1\r\nHost: acct-smuggle\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                    .into(),
            snapshot: Snapshot::default(),
        },
        Case {
            reason: "headers_too_large",
            status: 431,
            name: "acct-big".into(),
            request: format!("GET /x HTTP/1.1\r\nHost: acct-big\r\nX-Big: {}\r\n\r\n", "a".repeat(70 * 1024)),
            snapshot: Snapshot::default(),
        },
    ];
    for case in cases {
        let (proxy, _d, _log) = start_capturing(tap_config(), &case.snapshot).await;
        let mut tap = TapStream::open(&proxy, "").await;
        // Whether the proxy closes the connection is not the point here: do not wait for it.
        let rsp = raw_http1_with(proxy.listen().outbound, &case.request, Duration::from_millis(50)).await;
        let what = format!("{} ({})", case.reason, case.name);
        assert_eq!(rsp.status, Some(case.status), "{what}");
        assert_eq!(rsp.header("l5d-proxy-error"), Some(case.reason), "{what}");

        assert_eventually!(errors(&metrics(&proxy).await, "outbound", case.reason) == 1.0, "{what}: counted");
        let samples = metrics(&proxy).await;
        let (requests, responses) = law(&samples, "outbound");
        assert_eq!((requests, responses), (1.0, 1.0), "{what}: one request, one response");
        assert_no_more_than_one(&mut tap, case.reason, &what).await;
        assert_eventually!(logged(&proxy, case.reason, &case.name).await >= 1, "{what}: logged");
        assert_eq!(logged(&proxy, case.reason, &case.name).await, 1, "{what}: logged once");
    }

    // HTTP/2 refuses oversize headers on the stream: the same path.
    let (proxy, _d, _log) = start_capturing(tap_config(), &Snapshot::default()).await;
    let mut tap = TapStream::open(&proxy, "").await;
    let mut c = h2(proxy.listen().outbound).await;
    let req = Request::get("http://acct-h2big/x")
        .header("x-big", "a".repeat(70 * 1024))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let rsp = c.send_request(req).await.expect("a 431 response on the stream");
    assert_eq!(rsp.status(), 431);
    assert_eventually!(errors(&metrics(&proxy).await, "outbound", "headers_too_large") == 1.0, "HTTP/2 431 counted");
    let samples = metrics(&proxy).await;
    let asked = [("authority", "acct-h2big.default.svc.cluster.local:80"), ("error", "headers_too_large")];
    assert_eq!(sum(&samples, "response_total", &asked), Some(1.0), "under the authority asked for");
    assert_no_more_than_one(&mut tap, "headers_too_large", "HTTP/2 431").await;
    assert_eventually!(logged(&proxy, "headers_too_large", "acct-h2big").await == 1, "HTTP/2 431 logged once");

    // Refused before an endpoint was chosen: under the authority asked for, without a target.
    let (proxy, _d) = start(config(), &Snapshot::default()).await;
    raw_http1_with(proxy.listen().outbound, get("acct-missing"), Duration::from_millis(50)).await;
    let samples = metrics(&proxy).await;
    let asked = [
        ("authority", "acct-missing.default.svc.cluster.local:80"),
        ("target_addr", ""),
        ("error", "no_route"),
        ("status_code", "404"),
    ];
    assert_eq!(sum(&samples, "response_total", &asked), Some(1.0), "counted under the name asked for");
    assert!(samples.iter().filter(|s| s.label("error") == Some("no_route")).all(|s| s.label("dst_service").is_none()));
}

/// The end event of the one proxy-made response, and nothing else with that reason.
async fn assert_no_more_than_one(tap: &mut TapStream, reason: &str, what: &str) {
    let mut ends = Vec::<TapEvent>::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while ends.is_empty() && Instant::now() < deadline {
        let Some(e) = tap.next().await else { break };
        if e.response_end_event.is_some() {
            ends.push(e);
        }
    }
    assert_eq!(ends.len(), 1, "{what}: tapped");
    assert_eq!(ends[0].proxy_error.as_deref(), Some(reason), "{what}: tap names the reason");
}

/// A proxy to service `uploads`, whose one endpoint reads the whole body before it answers (`read`, or
/// `broken` when the body broke off) and whose breaker opens after one failure.
async fn uploads() -> (HttpBackend, Proxy, meshlens_testkit::TempDir) {
    let backend = HttpBackend::start(|req: Request<Incoming>| async move {
        let ok = req.into_body().collect().await.is_ok();
        Response::new(full(if ok { "read" } else { "broken" }))
    });
    let mut svc = service("uploads", "default", &[backend.addr()]);
    svc.circuit_breaker =
        Some(meshlens_api::discovery::CircuitBreaker { consecutive_failures: 1, ..Default::default() });
    let (proxy, dir) = start(config(), &snapshot(vec![svc])).await;
    (backend, proxy, dir)
}

#[tokio::test]
async fn a_malformed_chunked_body_is_the_clients_failure_and_leaves_the_breaker_closed() {
    let (_backend, proxy, _d) = uploads().await;
    let out = proxy.listen().outbound;
    let malformed = "POST /up HTTP/1.1\r\nHost: uploads\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n";
    for i in 0..3 {
        let rsp = raw_http1(out, malformed).await;
        assert_eq!(rsp.status, Some(400), "malformed body {i}");
        assert_eq!(rsp.header("l5d-proxy-error"), Some("bad_request"), "malformed body {i}");
    }
    let (rsp, body) = send(out, get("/fine", "uploads")).await;
    assert_eq!((rsp.status(), &body[..]), (http::StatusCode::OK, &b"read"[..]), "the endpoint still takes traffic");
    let samples = metrics(&proxy).await;
    let opened = sum(&samples, "endpoint_breaker_transitions_total", &[("state", "open")]).unwrap_or(0.0);
    assert_eq!(opened, 0.0, "the client's mistakes never open the endpoint's breaker");
    let failures = sum(&samples, "response_total", &[("direction", "outbound"), ("classification", "failure")]);
    assert_eq!(failures, None, "not the endpoint's failures");
    assert_eq!(errors(&samples, "outbound", "bad_request"), 3.0, "counted as the client's bad requests");
}

/// A request body that sends one chunk, then fails: an upload the client aborts.
struct AbortedUpload(bool);

impl http_body::Body for AbortedUpload {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, std::io::Error>>> {
        let first = !std::mem::replace(&mut self.0, true);
        std::task::Poll::Ready(Some(match first {
            true => Ok(http_body::Frame::data(bytes::Bytes::from_static(b"part of an upload"))),
            false => Err(std::io::Error::other("the client gave up")),
        }))
    }
}

#[tokio::test]
async fn an_aborted_http2_upload_is_the_clients_and_leaves_the_breaker_closed() {
    let (_backend, proxy, _d) = uploads().await;
    let io = hyper_util::rt::TokioIo::new(TcpStream::connect(proxy.listen().outbound).await.unwrap());
    let (mut h2, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io).await.unwrap();
    tokio::spawn(conn);
    for i in 0..3 {
        let req = Request::post("http://uploads/up").body(AbortedUpload(false)).unwrap();
        let outcome = h2.send_request(req).await;
        assert!(outcome.is_err() || outcome.as_ref().is_ok_and(|r| r.status() == 400), "upload {i}: {outcome:?}");
    }
    assert_eventually!(
        {
            let samples = metrics(&proxy).await;
            let (requests, responses) = law(&samples, "outbound");
            requests == 3.0 && responses == 3.0
        },
        "each aborted upload is settled"
    );
    let (rsp, body) = send(proxy.listen().outbound, get("/fine", "uploads")).await;
    assert_eq!((rsp.status(), &body[..]), (http::StatusCode::OK, &b"read"[..]), "the endpoint still takes traffic");
    let samples = metrics(&proxy).await;
    let opened = sum(&samples, "endpoint_breaker_transitions_total", &[("state", "open")]).unwrap_or(0.0);
    assert_eq!(opened, 0.0, "an aborted upload never opens the endpoint's breaker");
    let clients = errors(&samples, "outbound", "cancelled") + errors(&samples, "outbound", "bad_request");
    assert_eq!(clients, 3.0, "counted as the client's: cancelled or bad_request");
}
