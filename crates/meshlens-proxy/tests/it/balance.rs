//! Load balancing as a user sees it: requests spread over endpoints, slow endpoints avoided, dead
//! endpoints skipped, and failfast (504, then 503) when no endpoint is reachable.

use std::time::Duration;

use meshlens_testkit::backend::{delayed, echo};
use meshlens_testkit::{HttpBackend, assert_eventually};

use crate::support::*;

#[tokio::test]
async fn spreads_over_three_endpoints_and_steers_away_from_a_slow_one() {
    let fast_a = HttpBackend::start(echo("a"));
    let fast_b = HttpBackend::start(echo("b"));
    let slow = HttpBackend::start(delayed(Duration::from_millis(50), echo("slow")));
    // Unmeasured endpoints look fast, so each one is tried and measured before P2C settles.
    let mut cfg = config();
    cfg.balancer.default_rtt = Duration::from_micros(1);
    let (proxy, _d) =
        start(cfg, &snapshot(vec![service("users", "default", &[fast_a.addr(), fast_b.addr(), slow.addr()])])).await;
    let mut c = h1(proxy.listen().outbound).await;
    let total = 200;
    for _ in 0..total {
        let rsp = c.send_request(get("/", "users")).await.unwrap();
        assert_eq!(rsp.status(), 200);
        let _ = collect(rsp).await;
    }
    let (a, b, s) = (fast_a.requests(), fast_b.requests(), slow.requests());
    assert_eq!(a + b + s, total);
    assert!(a > total / 5 && b > total / 5, "both fast endpoints share the load: a={a} b={b} slow={s}");
    assert!(s < total / 10, "the endpoint 50 ms slower gets few requests: a={a} b={b} slow={s}");
    assert!(s >= 1, "the slow endpoint was tried (and measured): a={a} b={b} slow={s}");
}

#[tokio::test]
async fn a_dead_endpoint_is_skipped_without_failing_requests() {
    let live = HttpBackend::start(echo("live"));
    let dead = HttpBackend::start(echo("dead"));
    let dead_addr = dead.addr();
    dead.stop().await;
    let (proxy, _d) = start(config(), &snapshot(vec![service("users", "default", &[live.addr(), dead_addr])])).await;
    for _ in 0..20 {
        let (rsp, _) = send(proxy.listen().outbound, get("/", "users")).await;
        assert_eq!(rsp.status(), 200, "a connection refused before any byte was sent is tried elsewhere");
    }
    assert_eq!(live.requests(), 20);
}

#[tokio::test]
async fn failfast_when_every_endpoint_is_down_then_recovers() {
    let gone = HttpBackend::start(echo("users"));
    let addr = gone.addr();
    gone.stop().await;
    let mut cfg = config();
    cfg.timeouts.failfast = Duration::from_millis(500);
    let (proxy, _d) = start(cfg, &snapshot(vec![service("users", "default", &[addr])])).await;
    let out = proxy.listen().outbound;

    let (rsp, _) = send(out, get("/", "users")).await;
    assert_eq!(rsp.status(), 502, "the first request meets the refused connection");
    assert_eq!(rsp.headers()["l5d-proxy-error"], "connect_error");

    let (rsp, _) = send(out, get("/", "users")).await;
    assert_eq!(rsp.status(), 504, "queued while no endpoint is ready, then failfast");
    assert_eq!(rsp.headers()["l5d-proxy-error"], "failfast");

    let (rsp, _) = send(out, get("/", "users")).await;
    assert_eq!(rsp.status(), 503, "in failfast, new requests are shed at once");
    assert_eq!(rsp.headers()["l5d-proxy-error"], "load_shed");

    // The endpoint comes back on the same address: the proxy notices and serves again.
    let back = HttpBackend::start_on(addr, echo("users"));
    assert_eventually!(send(out, get("/", "users")).await.0.status() == 200, "service recovers after failfast");
    assert!(back.requests() >= 1);

    let text = metrics_text(&proxy).await;
    assert!(
        text.lines().any(|l| l.starts_with("response_total{")
            && l.contains("target_addr=\"\"")
            && l.contains("error=\"failfast\"")),
        "failfast responses are counted on the service series:\n{text}"
    );
}
