//! Linkerd's `stat` habits on a real `meshlens up` mesh: `stat au` (per authority, served and called),
//! the `(unmeshed)` row of callers without a proxy with `--to`, and tap's `--scheme`.

use std::time::Duration;

use meshlens_testkit::ChildGuard;
use meshlens_testkit::blocking::http_get;
use meshlens_testkit::eventually::Poller;
use serde_json::Value;

use crate::support::Running;
use crate::support::{addr, meshlens, table};

const CALLEE: &str = "routes:\n  - {path: /work, latency: 2ms}\n";
const CALLEE_AUTHORITY: &str = "callee.prod.svc.cluster.local:80";
/// Requests the test itself (no proxy) sends to callee's inbound.
const UNMESHED_REQUESTS: usize = 60;

fn rows(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn named<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    rows(v).iter().find(|r| r["name"] == name && r.get("unmeshed").is_none())
}

fn unmeshed(v: &Value) -> Option<&Value> {
    rows(v).iter().find(|r| r["unmeshed"] == true)
}

/// Requests a row counts: its rate over the seconds the window covers.
fn requests(row: &Value) -> f64 {
    row["rps"].as_f64().unwrap_or(0.0) * row["covered_s"].as_f64().unwrap_or(0.0)
}

#[test]
fn stat_shows_authorities_and_callers_without_a_proxy() {
    let _one = crate::mesh_e2e::one_mesh_at_a_time();
    // traffic → caller → callee at 10 req/s (the caller's 2 s patience is never reached: 2 ms answers).
    let files = crate::evidence::impatient_mesh(CALLEE, "{service: callee, path: /work}");
    let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let mesh = Running::up("stat-habits", &files);
    let instances = table(&mesh.up_stdout());
    let callee = addr(&instances.get("prod/callee-0").unwrap_or_else(|| panic!("{instances:?}"))[1]);

    // Meshed traffic first: caller → callee.
    let to_callee = ["stat", "deploy", "-n", "prod", "--to", "deploy/callee", "-t", "1m"];
    mesh.poll(&to_callee, Duration::from_secs(120), |v| named(v, "caller").is_some_and(|r| requests(r) >= 20.0));

    // A caller without a proxy: this test, straight to callee's inbound proxy.
    for _ in 0..UNMESHED_REQUESTS {
        let reply = http_get(callee, "callee", "/work", Duration::from_secs(10)).expect("callee's inbound answers");
        assert_eq!(reply.status, 200, "{}", reply.head);
    }
    let v = mesh.poll(&to_callee, Duration::from_secs(60), |v| unmeshed(v).is_some_and(|r| requests(r) >= 50.0));
    let row = unmeshed(&v).unwrap();
    let n = requests(row);
    let want = UNMESHED_REQUESTS as f64;
    assert!((want - 10.0..=want + 10.0).contains(&n), "≈{want} unmeshed requests, within scrape skew: {row}");
    assert_eq!((row["name"].as_str(), row["success"].as_f64()), (Some(""), Some(1.0)), "{row}");
    assert!(row["latency_ms_p50"].is_null(), "latencies of a difference are unknown: {row}");
    // The callers add up to what callee served: two queries a moment apart, at 10 req/s of meshed
    // traffic, so within a scrape or two of requests.
    let callers: f64 = rows(&v).iter().map(requests).sum();
    let served = mesh.poll(&["stat", "deploy/callee", "-n", "prod", "-t", "1m"], Duration::from_secs(10), |_| true);
    let served = named(&served, "callee").map(requests).unwrap();
    assert!((callers - served).abs() <= 0.05 * served + 25.0, "callers {callers} vs callee served {served}: {v}");
    eprintln!("[stat_habits] unmeshed callers: {n:.0} requests; callers {callers:.0} vs callee served {served:.0}");
    let (code, text, err) = mesh.cli(&to_callee);
    assert_eq!(code, 0, "{err}");
    assert!(text.lines().any(|l| l.starts_with("(unmeshed) ")), "{text}");

    // Authorities: what the workloads served (every caller), and what caller's app called (with TCP).
    let au = mesh.poll(&["stat", "au", "-n", "prod", "-t", "1m"], Duration::from_secs(30), |v| {
        named(v, CALLEE_AUTHORITY).is_some_and(|r| requests(r) >= n)
    });
    let served_au = named(&au, CALLEE_AUTHORITY).unwrap();
    assert_eq!((served_au["kind"].as_str(), served_au["namespace"].as_str()), (Some("authority"), Some("prod")));
    assert!(named(&au, "caller.prod.svc.cluster.local:80").is_some(), "{au}");
    let from = mesh.poll(&["stat", "au", "-n", "prod", "--from", "deploy/caller"], Duration::from_secs(30), |v| {
        named(v, CALLEE_AUTHORITY).is_some_and(|r| r["tcp_open_connections"].is_u64())
    });
    let called = named(&from, CALLEE_AUTHORITY).unwrap();
    assert!(called["rps"].as_f64().is_some_and(|r| r > 0.0) && called["meshed"] == "-", "{called}");
    assert_eq!(rows(&from).len(), 1, "caller calls callee only: {from}");
    let (code, text, err) = mesh.cli(&["stat", "authority/callee.prod.svc.cluster.local", "-n", "prod"]);
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with("NAME ") && text.lines().any(|l| l.starts_with(CALLEE_AUTHORITY)), "{text}");
    let (code, _, err) = mesh.cli(&["stat", "deploy", "-n", "prod", "--from", "au/callee.prod.svc.cluster.local:80"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("authorities are not supported in --to or --from"), "{err}");

    // tap --scheme: the mesh carries requests in origin form, which are http.
    let mut cmd = meshlens();
    cmd.args(["tap", "deploy/callee", "-n", "prod", "--scheme", "HTTP", "--max-rps", "5"])
        .env("XDG_STATE_HOME", mesh.state())
        .env_remove("MESHLENS_CONTROL");
    let tap = ChildGuard::spawn(&mut cmd).unwrap();
    let mut poller = Poller::with_patience(Duration::from_secs(60));
    while !tap.stdout_text().lines().any(|l| l.starts_with("req ")) {
        assert!(poller.wait_blocking(), "no request tapped with --scheme HTTP: {}", tap.stderr_text());
    }
    let (code, _, err) = mesh.cli(&["tap", "deploy/callee", "-n", "prod", "--scheme", "ftp"]);
    assert_eq!(code, 2, "a scheme clap refuses: {err}");
}
