//! `meshlens logs` (the table and JSON pinned by golden files, the query it sends, a missing resource is
//! exit 1 naming it, a silent instance is reported, `-f` prints new events as they come) and
//! `diagnostics endpoints -o wide` (each caller's balancer view), against a fake control plane.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use meshlens_testkit::ChildGuard;
use meshlens_testkit::process::Stream;
use serde_json::{Value, json};

use crate::stats::{golden, run};
use crate::support::{meshlens, read_request_target};

fn event(seq: u64, time: &str, level: &str, pod: &str, message: &str, fields: Value) -> Value {
    json!({"seq": seq, "timestamp": time, "level": level, "target": "meshlens_proxy::forward", "message": message,
        "fields": fields, "source": {"namespace": "prod", "deployment": "web", "pod": pod}})
}

fn relayed() -> Value {
    json!({
        "events": [
            event(7, "2026-12-02T21:37:46.123Z", "WARN", "web-0", "endpoint refused the connection",
                json!({"authority": "orders.prod.svc.cluster.local:80", "endpoint": "127.0.0.1:24143",
                    "reason": "connect_error"})),
            event(3, "2026-12-02T21:37:47.002Z", "ERROR", "web-1", "invalid response from the upstream",
                json!({"header": "content-length", "why": "two different values"})),
        ],
        "dropped": 0,
        "unreachable": [{"source": {"namespace": "prod", "deployment": "web", "pod": "web-2"},
            "error": "cannot read 127.0.0.1:4191/logs: Connection refused (os error 111)"}],
    })
}

fn endpoints_wide() -> Value {
    let view = |pod: &str, ewma: f64, breaker: &str, remaining: Option<u64>, share: Option<f64>| {
        json!({"namespace": "prod", "workload": "web", "pod": pod, "ewma_ms": ewma, "in_flight": 1,
            "requests_total": 120, "breaker": breaker, "breaker_remaining_ms": remaining, "share": share})
    };
    let row = |pod: &str, port: u16, callers: Value| {
        json!({"namespace": "prod", "ip": "127.0.0.1", "port": port, "pod": pod, "service": "orders.prod",
            "weight": 10000, "labels": {"pod": pod}, "callers": callers})
    };
    json!({"orders": [
        row("orders-0", 24143, json!([view("web-0", 12.46, "closed", None, Some(0.75)), view("web-1", 9.0, "closed", None, None)])),
        row("orders-1", 34143, json!([view("web-0", 251.0, "open", Some(800), Some(0.25))])),
        row("orders-2", 44143, json!([])),
    ]})
}

/// A control plane that answers `/api/v1/logs` and `/api/v1/endpoints`; a `follow=true` request gets its
/// first event, then one more per message on `more`; once `more` is dropped, the connection stays open until
/// the client leaves (then `left` gets a message).
struct FakeControl {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
    more: mpsc::Sender<Value>,
    left: mpsc::Receiver<()>,
}

fn fake_control() -> FakeControl {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (more, more_rx) = mpsc::channel::<Value>();
    let (left_tx, left) = mpsc::channel();
    let log = seen.clone();
    std::thread::spawn(move || {
        let mut more_rx = Some(more_rx);
        for mut conn in listener.incoming().flatten() {
            let target = read_request_target(&conn);
            log.lock().unwrap().push(target.clone());
            if target.contains("follow=true") {
                let (more_rx, left_tx) = (more_rx.take().unwrap(), left_tx.clone());
                std::thread::spawn(move || {
                    let _ = write!(
                        conn,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nconnection: close\r\n\r\n"
                    );
                    let first = &relayed()["events"][0];
                    let silent = &relayed()["unreachable"][0];
                    let _ = writeln!(conn, "{first}\n{silent}");
                    for next in more_rx {
                        let _ = writeln!(conn, "{next}");
                    }
                    // Until the client closes its side.
                    let _ = conn.read(&mut [0u8; 64]);
                    let _ = left_tx.send(());
                });
                continue;
            }
            let (status, body) = if target.contains("resource=deploy%2Fnope") {
                ("404 Not Found", json!({"error": "deployment 'nope' not found in namespace 'prod'"}))
            } else if target.starts_with("/api/v1/logs") {
                ("200 OK", relayed())
            } else if target.starts_with("/api/v1/endpoints") {
                ("200 OK", endpoints_wide())
            } else {
                ("404 Not Found", json!({"error": "no such endpoint"}))
            };
            let body = body.to_string();
            let _ = write!(
                conn,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    FakeControl { url, seen, more, left }
}

#[test]
fn logs_table_json_and_mistakes() {
    let fake = fake_control();
    let (out, err) = run(&fake.url, &["logs", "deploy/web", "-n", "prod"]);
    golden("logs_table", &out);
    assert_eq!(
        fake.seen.lock().unwrap().last().unwrap(),
        "/api/v1/logs?resource=deploy%2Fweb&namespace=prod&level=warn"
    );
    assert!(err.contains("web-2 (prod/web): its events could not be read: cannot read 127.0.0.1:4191/logs"), "{err}");
    golden("logs_json", &run(&fake.url, &["logs", "deploy", "web", "-n", "prod", "-o", "json"]).0);
    run(&fake.url, &["logs", "po/web-0", "-n", "prod", "--level", "error", "--since", "10m"]);
    assert_eq!(
        fake.seen.lock().unwrap().last().unwrap(),
        "/api/v1/logs?resource=po%2Fweb-0&namespace=prod&level=error&since=10m"
    );

    let out = meshlens().args(["logs", "deploy/nope", "-n", "prod", "--control", &fake.url]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("deployment 'nope' not found in namespace 'prod'"), "{err}");

    let help = meshlens().args(["logs", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("grep the proxy logs for errors"), "{help}");

    let (table, _) = run(&fake.url, &["diagnostics", "endpoints", "orders", "-n", "prod", "-o", "wide"]);
    golden("diagnostics_endpoints_wide", &table);
    assert_eq!(
        fake.seen.lock().unwrap().last().unwrap(),
        "/api/v1/endpoints?authority=orders&namespace=prod&balancers=true&window=1m"
    );
}

#[test]
fn logs_follow_prints_new_events_until_stopped() {
    let fake = fake_control();
    let mut cmd = meshlens();
    cmd.args(["logs", "deploy/web", "-n", "prod", "-f", "--control", &fake.url]).env_remove("MESHLENS_CONTROL");
    let mut child = ChildGuard::spawn(&mut cmd).unwrap();
    child.wait_for_line(Stream::Stdout, |l| l.contains("endpoint refused the connection"));
    child.wait_for_line(Stream::Stderr, |l| l.contains("web-2 (prod/web): its events could not be read"));
    let next = event(8, "2026-12-02T21:38:00.000Z", "ERROR", "web-0", "a new one", json!({"reason": "timeout"}));
    fake.more.send(next).unwrap();
    let line = child.wait_for_line(Stream::Stdout, |l| l.contains("a new one"));
    assert!(line.starts_with("2026-12-02T21:38:00.000Z   ERROR   web-0 "), "{line:?}");
    assert!(line.ends_with("a new one reason=timeout"), "{line:?}");
    assert!(fake.seen.lock().unwrap()[0].ends_with("&follow=true"));
    drop(fake.more);
    child.kill();
    fake.left.recv_timeout(meshlens_testkit::patience()).expect("the control plane sees the client leave");
}
