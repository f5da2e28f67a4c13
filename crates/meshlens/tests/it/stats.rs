//! `meshlens stat`, `routes`, `edges`: every output format pinned by golden files (fixed API answers from
//! a fake control plane, rendered by the real binary; `UPDATE_GOLDEN=1` rewrites them), how the CLI finds
//! the control plane, and the whole chain on the running demo.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use meshlens_testkit::eventually::Poller;
use meshlens_testkit::process::Stream;
use meshlens_testkit::{ChildGuard, eventually_blocking};
use serde_json::{Value, json};

use crate::support::{GroupReaper, TempDir, descendants, meshlens, read_request_target};

fn deploy_rows() -> Value {
    json!([
        {"namespace": "prod", "kind": "deployment", "name": "orders", "meshed": "2/2", "success": 0.9333333333,
         "rps": 2.5, "latency_ms_p50": 5, "latency_ms_p95": 123, "latency_ms_p99": 1234, "tcp_open_connections": 6,
         "tcp_read_bytes_rate": 1024.25, "tcp_write_bytes_rate": 20.0, "cancelled": 3,
         "proxy_errors": {"connect_error": 2, "timeout": 5}, "window_s": 60.0, "covered_s": 41.2},
        {"namespace": "prod", "kind": "deployment", "name": "web", "meshed": "1/1", "success": null, "rps": null,
         "latency_ms_p50": null, "latency_ms_p95": null, "latency_ms_p99": null, "tcp_open_connections": 0,
         "tcp_read_bytes_rate": 0.0, "tcp_write_bytes_rate": 0.0, "cancelled": null,
         "proxy_errors": {"no_route": 7}, "window_s": 60.0, "covered_s": 41.2}
    ])
}

fn all_rows() -> Value {
    let mut rows = deploy_rows().as_array().unwrap().clone();
    rows.push(json!({"namespace": "prod", "kind": "pod", "name": "orders-0", "meshed": "1/1", "success": 1.0,
        "rps": 0.1, "latency_ms_p50": 1, "latency_ms_p95": 2, "latency_ms_p99": 3, "tcp_open_connections": 1,
        "tcp_read_bytes_rate": 1.0, "tcp_write_bytes_rate": 2.0}));
    rows.push(json!({"namespace": "prod", "kind": "service", "name": "orders", "meshed": "-", "success": 0.5,
        "rps": 12.34, "latency_ms_p50": 10, "latency_ms_p95": 20, "latency_ms_p99": 30, "tcp_open_connections": null,
        "tcp_read_bytes_rate": null, "tcp_write_bytes_rate": null}));
    Value::Array(rows)
}

fn routes(to: bool) -> Value {
    let row = |route: &str, data: bool| {
        let mut r = json!({"route": route, "authority": "orders.prod.svc.cluster.local:80",
            "latency_ms_p50": if data { json!(10) } else { Value::Null },
            "latency_ms_p95": if data { json!(90) } else { Value::Null },
            "latency_ms_p99": if data { json!(450) } else { Value::Null }});
        let n = |v: f64| if data { json!(v) } else { Value::Null };
        r["window_s"] = json!(60.0);
        r["covered_s"] = json!(60.0);
        if to {
            r["effective_success"] = n(1.0);
            r["effective_rps"] = n(1.5);
            r["actual_success"] = n(0.85);
            r["actual_rps"] = n(1.75);
            r["timeouts"] = json!(if data { 2 } else { 0 });
            r["cancelled"] = if data { json!(4) } else { Value::Null };
            r["retry_fates"] = if data {
                json!({"succeeded_first": 80, "succeeded_after_retry": 12, "failed_no_budget": 3})
            } else {
                json!({})
            };
        } else {
            r["success"] = n(1.0);
            r["rps"] = n(1.5);
        }
        r
    };
    json!({"deploy/web": [row("GET /api/orders", true), row("[DEFAULT]", false)]})
}

fn edges() -> Value {
    let mut rows = json!([
        {"src": "", "src_namespace": "", "dst": "web", "dst_namespace": "prod", "client_id": "",
         "server_id": "", "no_tls_reason": "not_provided_by_remote", "protocol": "http", "src_meshed": false,
         "dst_meshed": true},
        {"src": "web", "src_namespace": "prod", "dst": "orders", "dst_namespace": "prod", "client_id": "",
         "server_id": "", "no_tls_reason": "disabled", "protocol": "http", "src_meshed": true, "dst_meshed": true},
        {"src": "orders", "src_namespace": "prod", "dst": "db", "dst_namespace": "data", "client_id": "",
         "server_id": "", "no_tls_reason": "disabled", "protocol": "tcp", "src_meshed": true, "dst_meshed": true},
        {"src": "orders", "src_namespace": "prod", "dst": "api.example.com:443", "dst_namespace": "",
         "client_id": "", "server_id": "", "no_tls_reason": "not_provided_by_service_discovery",
         "protocol": "tcp", "src_meshed": true, "dst_meshed": false},
        {"src": "web", "src_namespace": "prod", "dst": "recommendations.prod.svc.cluster.local:80",
         "dst_namespace": "", "client_id": "", "server_id": "", "no_tls_reason": "not_provided_by_service_discovery",
         "protocol": "http", "src_meshed": true, "dst_meshed": false, "dst_unknown": true, "cancelled": 0}
    ]);
    for r in rows.as_array_mut().unwrap() {
        r["window_s"] = json!(60.0);
        r["covered_s"] = json!(60.0);
    }
    rows
}

fn proxy_metrics() -> Value {
    json!([
        {"namespace": "prod", "workload": "web", "pod": "web-0",
         "metrics": "# TYPE request_total counter\nrequest_total{direction=\"inbound\"} 3\n"},
        {"namespace": "prod", "workload": "web", "pod": "web-1",
         "error": "cannot fetch 127.0.0.1:4191/metrics: Connection refused (os error 111)"}
    ])
}

fn endpoints() -> Value {
    let row = |ns: &str, port: u16, pod: &str, svc: &str| {
        json!({"namespace": ns, "ip": "127.0.0.1", "port": port, "pod": pod, "service": svc, "weight": 10000,
            "labels": {"deployment": svc.split('.').next().unwrap(), "namespace": ns, "pod": pod,
                       "service": svc.split('.').next().unwrap()}})
    };
    json!({
        "web": [row("prod", 41431, "web-1", "web.prod"), row("prod", 41430, "web-0", "web.prod")],
        "db.data.svc.cluster.local:5432": [row("data", 51430, "db-0", "db.data")],
        "orders.prod:80": [],
    })
}

/// A fake control plane answering fixed JSON; returns its URL and the paths it was asked for.
pub(crate) fn fake_control() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let path = read_request_target(&conn);
            log.lock().unwrap().push(path.clone());
            let body = if path.contains("nope") {
                json!({"error": "deployment 'nope' not found in namespace 'prod'"})
            } else if path == "/api/v1/resources" {
                json!({"workloads": [{"namespace": "prod", "name": "web", "instances": [{"instance": "web-0"}]},
                                     {"namespace": "staging", "name": "web", "instances": []}]})
            } else if path.starts_with("/api/v1/stat?resource=ts") {
                json!([{"namespace": "prod", "kind": "trafficsplit", "name": "ml", "meshed": "-", "success": 1.0,
                    "rps": 3.0, "latency_ms_p50": 10, "latency_ms_p95": 20, "latency_ms_p99": 30,
                    "tcp_open_connections": null, "tcp_read_bytes_rate": null, "tcp_write_bytes_rate": null,
                    "apex": "ml", "leaf": "ml-a", "weight": 0.9, "share": 1.0, "cancelled": 1},
                    {"namespace": "prod", "kind": "trafficsplit", "name": "ml", "meshed": "-", "success": null,
                    "rps": null, "latency_ms_p50": null, "latency_ms_p95": null, "latency_ms_p99": null,
                    "tcp_open_connections": null, "tcp_read_bytes_rate": null, "tcp_write_bytes_rate": null,
                    "apex": "ml", "leaf": "ml-b", "weight": 0.1, "share": 0.0, "cancelled": null}])
            } else if path.starts_with("/api/v1/stat?resource=all") {
                all_rows()
            } else if path.starts_with("/api/v1/stat?resource=ns") {
                json!([])
            } else if path.starts_with("/api/v1/stat") {
                deploy_rows()
            } else if path.starts_with("/api/v1/routes") {
                routes(path.contains("&to="))
            } else if path.starts_with("/api/v1/edges") {
                edges()
            } else if path.starts_with("/api/v1/proxy-metrics?resource=deploy%2Fnone") {
                json!([])
            } else if path.starts_with("/api/v1/proxy-metrics") {
                proxy_metrics()
            } else if path.starts_with("/api/v1/endpoints?authority=orders") {
                json!({"orders": []})
            } else if path.starts_with("/api/v1/endpoints") {
                endpoints()
            } else {
                json!({"error": "no such endpoint"})
            };
            let body = body.to_string();
            let mut conn = conn;
            let status = if path.contains("nope") { "404 Not Found" } else { "200 OK" };
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (format!("http://{addr}"), seen)
}

/// Compares with `tests/testdata/NAME.golden` (`UPDATE_GOLDEN=1` rewrites it).
pub(crate) fn golden(name: &str, actual: &str) {
    meshlens_testkit::assert_golden(format!("{}/tests/testdata/{name}.golden", env!("CARGO_MANIFEST_DIR")), actual);
}

pub(crate) fn run(control: &str, args: &[&str]) -> (String, String) {
    let out = meshlens().args(args).args(["--control", control]).env_remove("MESHLENS_CONTROL").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

#[test]
fn output_formats_match_golden_files() {
    let (url, seen) = fake_control();
    let cases: [(&str, &[&str]); 15] = [
        ("stat_ts_table", &["stat", "ts", "-n", "prod"]),
        ("stat_ts_wide", &["stat", "ts", "-n", "prod", "-o", "wide"]),
        ("stat_ts_json", &["stat", "ts/ml", "-n", "prod", "-o", "json"]),
        ("stat_table", &["stat", "deploy", "-n", "prod"]),
        ("stat_wide", &["stat", "deploy", "-n", "prod", "-o", "wide"]),
        ("stat_json", &["stat", "deploy", "-n", "prod", "-o", "json"]),
        ("stat_all_table", &["stat", "all", "-A"]),
        ("stat_all_wide", &["stat", "all", "-A", "-o", "wide"]),
        ("routes_table", &["routes", "deploy/web", "-n", "prod"]),
        ("routes_json", &["routes", "deploy/web", "-n", "prod", "-o", "json"]),
        ("routes_to_table", &["routes", "deploy/web", "-n", "prod", "--to", "svc/orders"]),
        ("routes_to_wide", &["routes", "deploy/web", "-n", "prod", "--to", "svc/orders", "-o", "wide"]),
        ("routes_to_json", &["routes", "deploy/web", "-n", "prod", "--to", "svc/orders", "-o", "json"]),
        ("edges_table", &["edges", "deploy", "-n", "prod"]),
        ("edges_wide", &["edges", "deploy", "-n", "prod", "-o", "wide"]),
    ];
    for (name, args) in cases {
        golden(name, &run(&url, args).0);
    }
    golden("edges_json", &run(&url, &["edges", "deploy", "-n", "prod", "-o", "json"]).0);

    // The query the CLI sends.
    run(&url, &["stat", "deploy", "web", "orders", "-n", "prod", "-t", "30s", "--to", "svc/orders"]);
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last, "/api/v1/stat?resource=deploy&namespace=prod&window=30s&names=web%2Corders&to=svc%2Forders");
    run(&url, &["routes", "deploy/web", "-n", "prod", "--offset", "1h"]);
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last, "/api/v1/routes?resource=deploy%2Fweb&namespace=prod&window=1m&offset=1h");
    run(&url, &["edges", "po", "-A", "--offset", "90s"]);
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last, "/api/v1/edges?resource=po&namespace=default&window=1m&offset=90s&all_namespaces=true");

    // Nothing to show: stderr says so, and where workloads do run; JSON is an empty array.
    let (out, err) = run(&url, &["stat", "ns"]);
    assert_eq!(
        (out.as_str(), err.as_str()),
        ("", "No traffic found in namespace default; workloads run in prod: try -n prod\n")
    );
    assert_eq!(run(&url, &["stat", "ns", "-o", "json"]).0, "[]\n");

    // A resource that does not exist: its name, exit code 1.
    for cmd in [&["stat", "deploy/nope"][..], &["routes", "deploy/nope"][..], &["edges", "deploy/nope"][..]] {
        let out = meshlens().args(cmd).args(["-n", "prod", "--control", &url]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {err}");
        assert_eq!(err, "meshlens: deployment 'nope' not found in namespace 'prod'\n", "{cmd:?}");
    }

    // A selector goes to the control plane as it was typed; a malformed one fails before any request.
    run(&url, &["stat", "po", "-n", "prod", "-l", "app in (web,orders),!canary"]);
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        last,
        "/api/v1/stat?resource=po&namespace=prod&window=1m&selector=app+in+%28web%2Corders%29%2C%21canary"
    );
    // Shared flags before the command, as Linkerd's docs write them.
    run(&url, &["-n", "prod", "-o", "json", "stat", "deploy"]);
    assert_eq!(seen.lock().unwrap().last().unwrap(), "/api/v1/stat?resource=deploy&namespace=prod&window=1m");
    let out = meshlens().args(["-n", "prod", "stat"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error is clap's exit status 2");
    run(&url, &["routes", "deploy/web", "-n", "prod", "--selector", "app=web"]);
    assert!(seen.lock().unwrap().last().unwrap().ends_with("&selector=app%3Dweb"));
    let asked = seen.lock().unwrap().len();
    for cmd in [&["stat", "deploy"][..], &["routes", "deploy/web"][..]] {
        let out = meshlens().args(cmd).args(["-l", "app in (web", "--control", &url]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("invalid selector 'app in (web': missing ')'"), "{err}");
    }
    assert_eq!(seen.lock().unwrap().len(), asked, "no request for a malformed selector");

    // Wide routes need --to.
    let out = meshlens().args(["routes", "deploy/web", "-o", "wide", "--control", &url]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wide output is only available when --to is specified"));
}

#[test]
fn finds_the_control_plane_or_says_how_to_start_one() {
    let (url, seen) = fake_control();
    let state = TempDir::new("stat-session");
    // The session file of a running `up`/`demo`.
    std::fs::create_dir_all(state.path().join("meshlens")).unwrap();
    std::fs::write(
        state.path().join("meshlens/session.json"),
        json!({"control": url, "pid": 1, "meshDir": "/x", "startedAt": "2026-01-01T00:00:00Z"}).to_string(),
    )
    .unwrap();
    let out = meshlens()
        .args(["stat", "deploy"])
        .env("XDG_STATE_HOME", state.path())
        .env_remove("MESHLENS_CONTROL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(seen.lock().unwrap().len(), 1);

    // MESHLENS_CONTROL wins over the session; --control wins over both.
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dead_url = format!("http://{dead}");
    let out = meshlens()
        .args(["stat", "deploy"])
        .env("XDG_STATE_HOME", state.path())
        .env("MESHLENS_CONTROL", &dead_url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot reach the control plane at {dead_url}")), "{err}");
    assert!(err.contains("is `meshlens up` or `meshlens demo` running?"), "{err}");
    let out = meshlens()
        .args(["stat", "deploy", "--control", &url])
        .env("XDG_STATE_HOME", state.path())
        .env("MESHLENS_CONTROL", &dead_url)
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// The running demo, scraped every 500 ms: `stat deploy -n prod -o json` lists every demo workload that
/// serves traffic with a non-zero RPS, and `edges` lists the shop's call graph.
#[test]
fn stat_on_the_running_demo() {
    let state = TempDir::new("stat-demo");
    let mut cmd = meshlens();
    cmd.args(["demo", "--control-port", "0", "--rps", "20", "--stop-grace", "5"])
        .env("XDG_STATE_HOME", state.path())
        .env("MESHLENS_CONTROL_SCRAPE_INTERVAL", "500ms")
        .env_remove("MESHLENS_CONTROL");
    let mut reaper = GroupReaper(BTreeSet::new());
    let mut demo = ChildGuard::spawn(&mut cmd).unwrap();
    let pid = demo.id();
    demo.wait_for_line(Stream::Stdout, |l| l.contains("apps accept connections"));
    reaper.0.extend(descendants(pid).iter().map(|p| p.pgid));

    let stat = || -> Option<Vec<Value>> {
        let out = meshlens()
            .args(["stat", "deploy", "-n", "prod", "-t", "10s", "-o", "json"])
            .env("XDG_STATE_HOME", state.path())
            .env_remove("MESHLENS_CONTROL")
            .output()
            .ok()?;
        serde_json::from_slice::<Value>(&out.stdout).ok()?.as_array().cloned()
    };
    let serving = ["frontend", "api-gateway", "user-service", "auth-service", "checkout-service", "payment-service"];
    eventually_blocking(
        || {
            stat().is_some_and(|rows| {
                serving
                    .iter()
                    .all(|w| rows.iter().any(|r| r["name"] == *w && r["rps"].as_f64().is_some_and(|v| v > 0.0)))
            })
        },
        "every serving demo workload has a non-zero rps",
    );
    let rows = stat().unwrap();
    let frontend = rows.iter().find(|r| r["name"] == "frontend").unwrap();
    assert_eq!(frontend["kind"], "deployment");
    assert_eq!(frontend["namespace"], "prod");
    assert_eq!(frontend["meshed"], "2/2");
    assert!(frontend["success"].as_f64().unwrap() > 0.9, "{frontend}");
    assert!(frontend["latency_ms_p99"].as_u64().is_some(), "{frontend}");

    // The demo's workloads carry labels: a selector narrows stat to the ML tier.
    let out = meshlens()
        .args(["stat", "deploy", "-n", "prod", "-t", "10s", "-l", "tier=ml,version!=c", "-o", "json"])
        .env("XDG_STATE_HOME", state.path())
        .env_remove("MESHLENS_CONTROL")
        .output()
        .unwrap();
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: BTreeSet<&str> = rows.iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(["ml-inference-a", "ml-inference-b"]), "{rows:?}");

    let out = meshlens()
        .args(["edges", "deploy", "-n", "prod", "-t", "10s", "-o", "json"])
        .env("XDG_STATE_HOME", state.path())
        .output()
        .unwrap();
    let edges: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let pairs: BTreeSet<(String, String)> = edges
        .iter()
        .map(|e| (e["src"].as_str().unwrap().to_string(), e["dst"].as_str().unwrap().to_string()))
        .collect();
    for (s, d) in [("traffic", "frontend"), ("frontend", "api-gateway"), ("checkout-service", "payment-service")] {
        assert!(pairs.contains(&(s.to_string(), d.to_string())), "{s} → {d}: {pairs:?}");
    }

    // diagnostics, through the control plane: each frontend proxy's raw metrics, and discovery as the
    // traffic generator's proxy resolves `frontend`.
    let out = meshlens()
        .args(["diagnostics", "proxy-metrics", "deploy/frontend", "-n", "prod"])
        .env("XDG_STATE_HOME", state.path())
        .env_remove("MESHLENS_CONTROL")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("#\n# POD frontend-0 (1 of 2)\n#\n"), "{}", &text[..text.len().min(300)]);
    assert!(text.contains("\n#\n# POD frontend-1 (2 of 2)\n#\n"));
    assert!(text.contains("response_total{direction=\"inbound\""));
    let out = meshlens()
        .args(["diagnostics", "endpoints", "frontend", "-n", "prod", "-o", "json"])
        .env("XDG_STATE_HOME", state.path())
        .env_remove("MESHLENS_CONTROL")
        .output()
        .unwrap();
    let eps: Value = serde_json::from_slice(&out.stdout).unwrap();
    let pods: BTreeSet<&str> = eps["frontend"].as_array().unwrap().iter().map(|e| e["pod"].as_str().unwrap()).collect();
    assert_eq!(pods, BTreeSet::from(["frontend-0", "frontend-1"]), "{eps}");
    let out = meshlens()
        .args(["diagnostics", "endpoints", "no-such-service", "-n", "prod"])
        .env("XDG_STATE_HOME", state.path())
        .env_remove("MESHLENS_CONTROL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("'no-such-service' does not resolve to a mesh service"), "{err}");

    // --from narrows to one client's requests: only frontend's callees have rows.
    let json_of = |args: &[&str]| -> Value {
        let out =
            meshlens().args(args).env("XDG_STATE_HOME", state.path()).env_remove("MESHLENS_CONTROL").output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let from = json_of(&["stat", "deploy", "-n", "prod", "-t", "10s", "--from", "deploy/frontend", "-o", "json"]);
    let names: BTreeSet<&str> = from.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, BTreeSet::from(["api-gateway", "checkout-service", "recommendation-service"]), "{from}");
    // The demo's profiled routes, as payment-service calls order-service.
    let routes = || {
        json_of(&[
            "routes",
            "deploy/payment-service",
            "-n",
            "prod",
            "-t",
            "10s",
            "--to",
            "svc/order-service",
            "-o",
            "json",
        ])
    };
    eventually_blocking(
        || {
            routes()["deploy/payment-service"].as_array().is_some_and(|rows| {
                rows.iter().any(|r| r["route"] == "[DEFAULT]")
                    && rows.iter().any(|r| {
                        r["route"] == "PUT /orders/{id}" && r["effective_rps"].as_f64().is_some_and(|v| v > 0.0)
                    })
            })
        },
        "payment-service's requests to order-service show on its profiled routes",
    );

    let int = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    assert!(int.success());
    demo.wait_for_exit();
}

/// The retry-storm scenario as `routes -o wide` shows it: order-service fails ~15% of payment-service's
/// requests (ACTUAL success ≈ 85%), the proxy's retries hide them from payment-service (EFFECTIVE ≈ 100%).
#[test]
fn retry_storm_routes_show_actual_and_effective_success() {
    let state = TempDir::new("retry-storm");
    let mut cmd = meshlens();
    cmd.args(["demo", "--control-port", "0", "--rps", "60", "--stop-grace", "5", "--scenario", "retry-storm"])
        .env("XDG_STATE_HOME", state.path())
        .env("MESHLENS_CONTROL_SCRAPE_INTERVAL", "500ms")
        .env_remove("MESHLENS_CONTROL");
    let mut reaper = GroupReaper(BTreeSet::new());
    let demo = ChildGuard::spawn(&mut cmd).unwrap();
    demo.wait_for_line(Stream::Stdout, |l| l.contains("apps accept connections"));
    reaper.0.extend(descendants(demo.id()).iter().map(|p| p.pgid));

    let routes = || -> Option<Value> {
        let out = meshlens()
            .args(["routes", "deploy/payment-service", "-n", "prod", "-t", "30s", "--to", "svc/order-service"])
            .args(["-o", "json"])
            .env("XDG_STATE_HOME", state.path())
            .env_remove("MESHLENS_CONTROL")
            .output()
            .ok()?;
        serde_json::from_slice::<Value>(&out.stdout).ok()
    };
    // Totals (requests) over the profiled routes, once enough are in the window for ~85% to be measurable
    // (rates are over the part of the window the control plane covers).
    let totals = |v: &Value| -> Option<(f64, f64, f64, f64)> {
        let rows = v["deploy/payment-service"].as_array()?;
        let (mut eff_ok, mut eff, mut act_ok, mut act) = (0.0, 0.0, 0.0, 0.0);
        for r in rows.iter().filter(|r| r["route"] != "[DEFAULT]") {
            // A route without traffic in the window has null rates.
            let covered = r["covered_s"].as_f64()?;
            let (er, ar) = (r["effective_rps"].as_f64().unwrap_or(0.0), r["actual_rps"].as_f64().unwrap_or(0.0));
            let (er, ar) = (er * covered, ar * covered);
            eff += er;
            act += ar;
            eff_ok += er * r["effective_success"].as_f64().unwrap_or(0.0);
            act_ok += ar * r["actual_success"].as_f64().unwrap_or(0.0);
        }
        Some((eff_ok, eff, act_ok, act))
    };
    // At least 120 requests. Filling the window takes a while on a loaded machine.
    let mut poller = Poller::with_patience(Duration::from_secs(120));
    let mut last = routes();
    while !last.as_ref().and_then(totals).is_some_and(|(_, eff, _, act)| eff >= 120.0 && act > eff) {
        assert!(
            poller.wait_blocking(),
            "payment-service's profiled routes to order-service carry enough traffic: {last:?}"
        );
        last = routes();
    }
    let v = last.unwrap();
    let (eff_ok, eff, act_ok, act) = totals(&v).unwrap();
    let (effective, actual) = (eff_ok / eff, act_ok / act);
    assert!((0.75..=0.93).contains(&actual), "ACTUAL success ≈ 85%: {actual:.4} in {v}");
    assert!(effective >= 0.97, "EFFECTIVE success ≈ 100%: {effective:.4} in {v}");
    assert!(act / eff > 1.05, "retries make ACTUAL requests exceed EFFECTIVE: {act} vs {eff}");
}
