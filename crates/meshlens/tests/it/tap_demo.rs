//! `meshlens tap` on the running demo: live request lines, filters that narrow them, and the incident
//! scenarios' failures (proxy-made 504s of timeout-504, the periodic 503s of stale-split).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use meshlens_testkit::ChildGuard;
use meshlens_testkit::eventually::Poller;
use serde_json::Value;

use crate::support::Running;

/// `meshlens tap ARGS` on the demo, running until dropped.
fn start_tap(demo: &Running, args: &[&str]) -> ChildGuard {
    ChildGuard::spawn(&mut demo.command(&[&["tap"], args].concat())).unwrap()
}

/// Polls the tap's output until `done` holds for its complete lines; panics after `patience`.
fn lines_until(
    tap: &ChildGuard,
    patience: Duration,
    what: &str,
    mut done: impl FnMut(&[String]) -> bool,
) -> Vec<String> {
    let mut poller = Poller::with_patience(patience);
    loop {
        let text = tap.stdout_text();
        let complete = text.rsplit_once('\n').map_or("", |(lines, _)| lines);
        let lines: Vec<String> = complete.lines().map(str::to_string).collect();
        if done(&lines) {
            return lines;
        }
        assert!(
            poller.wait_blocking(),
            "not within {patience:?}: {what}\n{text}\n--- stderr ---\n{}",
            tap.stderr_text()
        );
    }
}

fn events(lines: &[String]) -> Vec<Value> {
    lines.iter().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

/// `latency=5000267µs` → 5.000267 s.
fn latency(line: &str) -> Duration {
    let us = line.split(" latency=").nth(1).and_then(|r| r.split('µ').next()).and_then(|v| v.parse().ok());
    Duration::from_micros(us.unwrap_or_else(|| panic!("no latency in {line}")))
}

#[test]
fn tap_on_the_demo_prints_requests_and_filters_narrow_them() {
    let demo = Running::demo("tap-demo", &["--rps", "20"]);
    let started = Instant::now();
    let tap = start_tap(&demo, &["deploy/frontend", "-n", "prod"]);
    let lines = lines_until(&tap, Duration::from_secs(30), "request lines of deploy/frontend", |lines| {
        lines.iter().filter(|l| l.starts_with("req id=")).count() >= 3
            && lines.iter().any(|l| l.starts_with("rsp id="))
            && lines.iter().any(|l| l.starts_with("end id="))
    });
    eprintln!("first request lines after {:?}", started.elapsed());
    assert!(lines.iter().any(|l| l.contains("proxy=in ") && l.contains(":path=")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("proxy=out")), "frontend's calls show too: {lines:?}");
    drop(tap);

    // --to: only frontend's requests to api-gateway.
    let tap = start_tap(&demo, &["deploy/frontend", "-n", "prod", "--to", "deploy/api-gateway", "-o", "json"]);
    let lines = lines_until(&tap, Duration::from_secs(30), "requests to api-gateway", |l| l.len() >= 6);
    for ev in events(&lines) {
        assert_eq!(ev["proxyDirection"], "OUTBOUND", "{ev}");
        assert_eq!(ev["destination"]["metadata"]["deployment"], "api-gateway", "{ev}");
    }
    drop(tap);

    // Inbound requests name their caller: frontend is called only by traffic, through traffic's proxy.
    let tap = start_tap(&demo, &["deploy/frontend", "-n", "prod", "-o", "json"]);
    let inbound = |l: &[String]| events(l).into_iter().filter(|e| e["proxyDirection"] == "INBOUND").count();
    let lines = lines_until(&tap, Duration::from_secs(30), "inbound requests of frontend", |l| inbound(l) >= 3);
    for ev in events(&lines).iter().filter(|e| e["proxyDirection"] == "INBOUND") {
        let source = &ev["source"]["metadata"];
        assert_eq!((&source["pod"], &source["deployment"]), (&"traffic-0".into(), &"traffic".into()), "{ev}");
        assert_eq!(source["identity"], "unverified", "the caller's name is its own claim: {ev}");
    }
    drop(tap);

    // `top` shows the calling instance instead of its loopback address.
    let top =
        ChildGuard::spawn(&mut demo.command(&["top", "deploy/frontend", "-n", "prod", "--interval", "500ms"])).unwrap();
    let rows = lines_until(&top, Duration::from_secs(30), "a top row from traffic-0 to frontend", |l| {
        l.iter().any(|r| r.starts_with("traffic-0 ") && r.contains("frontend-"))
    });
    let sources: BTreeSet<&str> = rows.iter().filter_map(|r| r.split_whitespace().next()).collect();
    assert!(!sources.contains("127.0.0.1"), "no caller is shown as a loopback address: {rows:?}");
    drop(top);

    // --path: a prefix.
    let tap = start_tap(&demo, &["deploy/frontend", "-n", "prod", "--path", "/products"]);
    let lines = lines_until(&tap, Duration::from_secs(30), "requests under /products", |l| {
        l.iter().filter(|l| l.starts_with("req id=")).count() >= 3
    });
    for l in lines.iter().filter(|l| l.starts_with("req id=")) {
        assert!(l.contains(":path=/products"), "the path filter is a prefix of every request: {l}");
    }
}

#[test]
fn timeout_504_shows_the_proxy_made_timeouts_at_five_seconds() {
    let demo = Running::demo("tap-timeout-504", &["--rps", "20", "--scenario", "timeout-504"]);
    let tap = start_tap(&demo, &["deploy/api-gateway", "-n", "prod", "--to", "deploy/user-service", "--status", "504"]);
    let lines = lines_until(&tap, Duration::from_secs(90), "a proxy-made 504 of user-service", |l| {
        l.iter().any(|l| l.starts_with("rsp id=") && l.contains(":status=504"))
    });
    let rsp: Vec<&String> = lines.iter().filter(|l| l.starts_with("rsp id=")).collect();
    for l in &rsp {
        assert!(l.contains(":status=504"), "--status 504 lets only 504s through: {l}");
        assert!(l.contains("proxy=out"), "{l}");
    }
    let timeout = rsp.iter().find(|l| l.contains("proxy_error=timeout")).unwrap_or_else(|| panic!("{rsp:?}"));
    let took = latency(timeout);
    assert!(took >= Duration::from_millis(4_500) && took <= Duration::from_millis(6_500), "{timeout}");
}

#[test]
fn stale_split_shows_the_periodic_503s_of_ml_inference_b() {
    let demo = Running::demo("tap-stale-split", &["--rps", "50", "--scenario", "stale-split"]);
    let tap = start_tap(&demo, &["deploy/ml-inference-b", "-n", "prod", "--status", "5xx", "-o", "json"]);
    let lines = lines_until(&tap, Duration::from_secs(120), "two 503s of ml-inference-b", |l| {
        events(l).iter().filter(|e| e["responseInitEvent"]["httpStatus"] == 503).count() >= 2
    });
    for ev in events(&lines) {
        if let Some(status) = ev["responseInitEvent"]["httpStatus"].as_u64() {
            assert_eq!(status, 503, "--status 5xx lets only failures through: {ev}");
        }
        if let Some(path) = ev["requestInitEvent"]["path"].as_str() {
            assert_eq!(path, "/predict", "{ev}");
        }
    }
}
