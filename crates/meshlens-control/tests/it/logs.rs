//! `/api/v1/logs` relays the WARN/ERROR events of a resource's proxies (their admin `/logs`), each with its
//! source, merged by time; an instance that does not answer is reported; `follow` streams new events and
//! follows the instances registered as they come and go, and stops asking the proxies once the client
//! leaves; `control` is the control plane's own events.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::Method;
use meshlens_api::logs::{LogEvent, LogPage};
use meshlens_control::OwnLogs;
use meshlens_testkit::assert_eventually;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// A proxy's admin listener: `/logs?since=SEQ` from its events, `/endpoints` and `/metrics` as set.
pub(crate) struct FakeProxy {
    pub addr: SocketAddr,
    events: Arc<Mutex<Vec<LogEvent>>>,
    pages: Arc<Mutex<BTreeMap<String, String>>>,
    /// Every request target, with when it came.
    asked: Arc<Mutex<Vec<(Instant, String)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeProxy {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let events = Arc::new(Mutex::new(Vec::<LogEvent>::new()));
        let pages = Arc::new(Mutex::new(BTreeMap::<String, String>::new()));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (e, p, a) = (events.clone(), pages.clone(), asked.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (e, p, a) = (e.clone(), p.clone(), a.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let target = String::from_utf8_lossy(&head).split_whitespace().nth(1).unwrap_or("").to_string();
                    a.lock().unwrap().push((Instant::now(), target.clone()));
                    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
                    let body = if path == "/logs" {
                        let since = query
                            .split('&')
                            .find_map(|kv| kv.strip_prefix("since="))
                            .and_then(|s| s.parse::<u64>().ok())
                            .unwrap_or(0);
                        let all = e.lock().unwrap().clone();
                        let newer = all.iter().filter(|x| x.seq > since);
                        // Events logged as `LOST` are ones the ring no longer holds.
                        let (lost, kept): (Vec<&LogEvent>, Vec<&LogEvent>) = newer.partition(|x| x.level == "LOST");
                        let page = LogPage {
                            events: kept.into_iter().cloned().collect(),
                            dropped: lost.len() as u64,
                            last_seq: all.last().map_or(0, |x| x.seq),
                        };
                        serde_json::to_string(&page).unwrap()
                    } else {
                        p.lock().unwrap().get(path).cloned().unwrap_or_default()
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(body.as_bytes()).await;
                });
            }
        });
        FakeProxy { addr, events, pages, asked, task }
    }

    /// Logs one event (the next seq) at `timestamp`.
    pub fn log(&self, timestamp: &str, level: &str, message: &str) {
        let mut events = self.events.lock().unwrap();
        let seq = events.len() as u64 + 1;
        events.push(event(seq, timestamp, level, message));
    }

    /// Logs `n` events at once that the ring drops before anyone reads them.
    pub fn lose(&self, n: usize) {
        let mut events = self.events.lock().unwrap();
        for _ in 0..n {
            let seq = events.len() as u64 + 1;
            events.push(event(seq, "2026-12-02T21:37:51.000Z", "LOST", "dropped"));
        }
    }

    pub fn set(&self, path: &str, body: String) {
        self.pages.lock().unwrap().insert(path.into(), body);
    }

    /// The `/logs` requests it got.
    pub fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().iter().filter(|(_, t)| t.starts_with("/logs")).map(|(_, t)| t.clone()).collect()
    }

    /// When it got the last `/logs` request.
    fn last_asked(&self) -> Option<Instant> {
        self.asked.lock().unwrap().iter().rev().find(|(_, t)| t.starts_with("/logs")).map(|(t, _)| *t)
    }
}

impl Drop for FakeProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn event(seq: u64, timestamp: &str, level: &str, message: &str) -> LogEvent {
    LogEvent {
        seq,
        timestamp: timestamp.into(),
        level: level.into(),
        target: "meshlens_proxy::forward".into(),
        message: message.into(),
        fields: BTreeMap::from([("reason".to_string(), "connect_error".to_string())]),
        source: None,
    }
}

/// An address nothing listens on (bound, then closed).
pub(crate) fn dead_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

pub(crate) async fn register_all(cp: SocketAddr, instances: &[(&str, &str, SocketAddr, &str)]) {
    for (workload, instance, admin, inbound) in instances {
        let mut reg = registration(workload, instance, inbound);
        reg.admin = *admin;
        register(cp, &reg).await;
    }
}

fn messages(answer: &Value) -> Vec<String> {
    answer["events"].as_array().unwrap().iter().map(|e| e["message"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn a_deployments_events_are_sourced_merged_by_time_and_a_silent_instance_is_reported() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    let (orders0, orders1) = (FakeProxy::start().await, FakeProxy::start().await);
    orders0.log("2026-12-02T21:37:46.100Z", "WARN", "first");
    orders0.log("2026-12-02T21:37:46.300Z", "ERROR", "third");
    orders1.log("2026-12-02T21:37:46.200Z", "WARN", "second");
    orders1.log("2026-12-02T21:37:46.400Z", "WARN", "fourth");
    let dead = dead_addr();
    register_all(
        addr,
        &[
            ("orders", "orders-0", orders0.addr, "127.0.0.1:24143"),
            ("orders", "orders-1", orders1.addr, "127.0.0.1:34143"),
            ("web", "web-0", dead, "127.0.0.1:14143"),
        ],
    )
    .await;

    let (code, answer) = get_json(addr, "/api/v1/logs?resource=deploy/orders&namespace=prod").await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(messages(&answer), ["first", "second", "third", "fourth"]);
    let second = &answer["events"][1];
    assert_eq!(second["source"], serde_json::json!({"namespace": "prod", "deployment": "orders", "pod": "orders-1"}));
    assert_eq!(second["fields"]["reason"], "connect_error");
    assert_eq!(second["level"], "WARN");
    assert!(answer.get("unreachable").is_none(), "{answer}");
    assert_eq!(orders0.asked(), ["/logs?since=0&level=warn"]);

    let (_, errors) = get_json(addr, "/api/v1/logs?resource=deploy/orders&namespace=prod&level=error").await;
    assert_eq!(messages(&errors), ["third"]);
    assert_eq!(orders0.asked().last().unwrap(), "/logs?since=0&level=error");
    let (_, pod) = get_json(addr, "/api/v1/logs?resource=po/orders-1&namespace=prod").await;
    assert_eq!(messages(&pod), ["second", "fourth"]);
    let (_, old) = get_json(addr, "/api/v1/logs?resource=deploy/orders&namespace=prod&since=5m").await;
    assert_eq!(messages(&old), Vec::<String>::new(), "events from long ago are older than 5m");

    // web-0's admin listener is gone: reported, not skipped.
    let (code, web) = get_json(addr, "/api/v1/logs?resource=deploy/web&namespace=prod").await;
    assert_eq!(code, 200, "{web}");
    assert_eq!(messages(&web), Vec::<String>::new());
    assert_eq!(web["unreachable"][0]["source"]["pod"], "web-0");
    assert!(web["unreachable"][0]["error"].as_str().unwrap().contains(&dead.to_string()), "{web}");
    let (_, ns) = get_json(addr, "/api/v1/logs?resource=ns/prod").await;
    assert_eq!((messages(&ns).len(), ns["unreachable"].as_array().unwrap().len()), (4, 1));

    for (q, code, says) in [
        ("resource=deploy/nope&namespace=prod", 404, "deployment 'nope' not found in namespace 'prod'"),
        ("resource=deploy/orders&namespace=prod&level=info", 400, "invalid level 'info'"),
        ("resource=deploy/orders&namespace=prod&since=soon", 400, "'soon' is not a duration"),
        ("resource=orders", 400, "expected TYPE/NAME"),
        ("resource=control", 404, "does not keep its own log events"),
        ("namespace=prod", 400, "invalid logs query"),
    ] {
        let (c, e) = get_json(addr, &format!("/api/v1/logs?{q}")).await;
        assert_eq!(c.as_u16(), code, "{q}: {e}");
        assert!(e["error"].as_str().unwrap().contains(says), "{q}: {e}");
    }
}

#[tokio::test]
async fn the_control_planes_own_events_are_the_resource_control() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let mut c = config(&dir);
    let own = [event(1, "2026-12-02T21:37:46.100Z", "ERROR", "mesh directory unreadable")];
    c.own_logs = Some(OwnLogs(Arc::new(move |since| LogPage {
        events: own.iter().filter(|e| e.seq > since).cloned().collect(),
        dropped: 2,
        last_seq: 1,
    })));
    let cp = start(c).await;
    let (code, answer) = get_json(cp.addr(), "/api/v1/logs?resource=control").await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(messages(&answer), ["mesh directory unreadable"]);
    assert_eq!(answer["events"][0]["source"]["pod"], "control");
    assert_eq!(answer["dropped"], 2);
}

#[tokio::test]
async fn follow_streams_new_events_and_stops_asking_when_the_client_leaves() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    let orders0 = FakeProxy::start().await;
    orders0.log("2026-12-02T21:37:46.100Z", "WARN", "before");
    let dead = dead_addr();
    register_all(
        addr,
        &[("orders", "orders-0", orders0.addr, "127.0.0.1:24143"), ("orders", "orders-1", dead, "127.0.0.1:34143")],
    )
    .await;

    let resp = send(addr, Method::GET, "/api/v1/logs?resource=deploy/orders&namespace=prod&follow=true", b"").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let lines = Arc::new(Mutex::new(Vec::<Value>::new()));
    let seen = lines.clone();
    let reader = tokio::spawn(async move {
        let mut body = resp.into_body();
        let mut buf = Vec::new();
        while let Some(Ok(frame)) = body.frame().await {
            buf.extend_from_slice(&frame.into_data().unwrap_or_default());
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                seen.lock().unwrap().push(serde_json::from_slice(&line).unwrap());
            }
        }
    });
    let got = || lines.lock().unwrap().clone();
    assert_eventually!(got().len() >= 2, "what the instances hold and the silent instance");
    let first = got();
    let silent = first.iter().find(|l| l.get("error").is_some()).expect("the silent instance is reported");
    assert_eq!(silent["source"]["pod"], "orders-1");
    assert!(first.iter().any(|l| l["message"] == "before" && l["source"]["pod"] == "orders-0"), "{first:?}");

    orders0.log("2026-12-02T21:37:50.000Z", "ERROR", "after");
    assert_eventually!(got().iter().any(|l| l["message"] == "after"), "the new event arrives");
    assert_eq!(got().iter().filter(|l| l["message"] == "before").count(), 1, "old events are not repeated");
    let silent_lines = got().into_iter().filter(|l| l["source"]["pod"] == "orders-1" && l.get("error").is_some());
    assert_eq!(silent_lines.count(), 1, "the silent instance is reported once");
    assert!(orders0.asked().iter().any(|t| t == "/logs?since=1&level=warn"), "{:?}", orders0.asked());

    // Events the proxy's ring dropped before they were read are reported.
    orders0.lose(3);
    orders0.log("2026-12-02T21:37:52.000Z", "WARN", "after the loss");
    assert_eventually!(got().iter().any(|l| l["message"] == "after the loss"));
    let errors: Vec<Value> = got().into_iter().filter(|l| l.get("error").is_some()).collect();
    assert!(
        errors.iter().any(|l| l["source"]["pod"] == "orders-0"
            && l["error"].as_str().unwrap().contains("3 events were dropped before they could be read")),
        "{errors:?}"
    );

    // orders-1 comes back at another admin address (a restart): it is read from its start.
    let restarted = FakeProxy::start().await;
    restarted.log("2026-12-02T21:37:40.000Z", "WARN", "from the restarted instance");
    register_all(addr, &[("orders", "orders-1", restarted.addr, "127.0.0.1:34143")]).await;
    assert_eventually!(
        got().iter().any(|l| l["message"] == "from the restarted instance" && l["source"]["pod"] == "orders-1"),
        "the restarted instance's events arrive"
    );

    // The client leaves: the control plane stops asking the proxy.
    reader.abort();
    let _ = reader.await;
    assert_eventually!(
        orders0.last_asked().is_some_and(|t| t.elapsed() > Duration::from_secs(3)),
        "no /logs request for 3s after the client left"
    );
}
