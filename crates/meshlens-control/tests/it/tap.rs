//! `/api/v1/tap` end to end: fake proxy tap listeners that check the token and the query and stream the
//! events the test pushes; the control plane resolves the resource, fans out, merges and streams.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::BodyExt;
use hyper::{Method, StatusCode};
use meshlens_api::control::Registration;
use meshlens_api::tap::{ProxyDirection, RequestInit, StreamId, TapEndpoint, TapEvent, TapFilter};
use meshlens_testkit::assert_eventually;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

use crate::support::*;

/// What a fake tap listener does once a stream is open.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Sends the first event, then the lines the test pushes, until the client closes.
    Hold,
    /// Sends the first event and ends the stream (every time it is opened).
    EndAfterFirst,
}

/// A proxy's tap listener: answers 401 unless the bearer token is right, then streams NDJSON.
struct FakeTap {
    addr: SocketAddr,
    token: Arc<Mutex<String>>,
    /// Request targets (`/tap?…`) of accepted streams.
    seen: Arc<Mutex<Vec<String>>>,
    refused: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    push: broadcast::Sender<String>,
}

impl FakeTap {
    async fn start(mode: Mode, first: TapEvent) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (push, _) = broadcast::channel::<String>(64);
        let fake = FakeTap {
            addr,
            token: Arc::new(Mutex::new(String::new())),
            seen: Arc::new(Mutex::new(Vec::new())),
            refused: Arc::new(AtomicUsize::new(0)),
            open: Arc::new(AtomicUsize::new(0)),
            push: push.clone(),
        };
        let (token, seen, refused, open) =
            (fake.token.clone(), fake.seen.clone(), fake.refused.clone(), fake.open.clone());
        let first = format!("{}\n", serde_json::to_string(&first).unwrap());
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let (token, seen, refused, open) = (token.clone(), seen.clone(), refused.clone(), open.clone());
                let (first, mut pushed) = (first.clone(), push.subscribe());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let target = head.split(' ').nth(1).unwrap_or("").to_string();
                    let expected = format!("authorization: bearer {}", token.lock().unwrap()).to_ascii_lowercase();
                    if !head.to_ascii_lowercase().lines().any(|l| l.trim() == expected) {
                        refused.fetch_add(1, Ordering::SeqCst);
                        let _ = conn
                            .write_all(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                    seen.lock().unwrap().push(target);
                    let chunk = |line: &str| format!("{:x}\r\n{line}\r\n", line.len());
                    let head =
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n";
                    if conn.write_all(format!("{head}{}", chunk(&first)).as_bytes()).await.is_err() {
                        return;
                    }
                    if mode == Mode::EndAfterFirst {
                        let _ = conn.write_all(b"0\r\n\r\n").await;
                        return;
                    }
                    open.fetch_add(1, Ordering::SeqCst);
                    loop {
                        tokio::select! {
                            line = pushed.recv() => {
                                let Ok(line) = line else { break };
                                if conn.write_all(chunk(&line).as_bytes()).await.is_err() {
                                    break;
                                }
                            }
                            n = conn.read(&mut buf) => if matches!(n, Ok(0) | Err(_)) { break },
                        }
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        fake
    }

    fn push(&self, event: &TapEvent) {
        let _ = self.push.send(format!("{}\n", serde_json::to_string(event).unwrap()));
    }

    fn streams(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

/// An outbound request-init event with id `0:stream`, to `dst`.
fn event(stream: u64, path: &str, dst: SocketAddr) -> TapEvent {
    let at = |a: SocketAddr| TapEndpoint { ip: a.ip().to_string(), port: a.port(), metadata: BTreeMap::new() };
    TapEvent {
        request_init_event: Some(RequestInit {
            id: StreamId { base: 0, stream },
            method: "GET".into(),
            scheme: "http".into(),
            authority: "web.prod.svc.cluster.local:80".into(),
            path: path.into(),
            headers: vec![],
        }),
        ..TapEvent::new(ProxyDirection::Outbound, at("127.0.0.1:40000".parse().unwrap()), at(dst))
    }
}

fn with_tap(mut reg: Registration, tap: SocketAddr) -> Registration {
    reg.tap = tap;
    reg
}

/// Registers and hands the lease's token to the fake.
async fn register_tap(addr: SocketAddr, reg: Registration, fake: &FakeTap) -> String {
    let (code, lease) = register(addr, &reg).await;
    assert_eq!(code, StatusCode::OK, "{lease}");
    let token = lease["tapToken"].as_str().expect("the lease carries the tap token").to_string();
    *fake.token.lock().unwrap() = token.clone();
    token
}

/// The client side of `/api/v1/tap`, read in the background.
struct TapClient {
    events: Arc<Mutex<Vec<TapEvent>>>,
    ended: Arc<Mutex<bool>>,
    task: tokio::task::JoinHandle<()>,
}

impl TapClient {
    async fn open(addr: SocketAddr, query: &str) -> Self {
        let resp = send(addr, Method::GET, &format!("/api/v1/tap?{query}"), b"").await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
        let events = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(Mutex::new(false));
        let (ev, end) = (events.clone(), ended.clone());
        let task = tokio::spawn(async move {
            let mut body = resp.into_body();
            let mut buf = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else { continue };
                buf.extend_from_slice(&data);
                while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=end).collect();
                    let event: TapEvent = serde_json::from_slice(&line)
                        .unwrap_or_else(|e| panic!("bad tap line ({e}): {}", String::from_utf8_lossy(&line)));
                    ev.lock().unwrap().push(event);
                }
            }
            *end.lock().unwrap() = true;
        });
        TapClient { events, ended, task }
    }

    fn events(&self) -> Vec<TapEvent> {
        self.events.lock().unwrap().clone()
    }

    fn paths_of(&self, base: u32) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| e.request_init_event)
            .filter(|r| r.id.base == base)
            .map(|r| r.path)
            .collect()
    }

    fn ended(&self) -> bool {
        *self.ended.lock().unwrap()
    }
}

impl Drop for TapClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn events_of_every_proxy_of_the_resource_are_merged_with_unique_ids() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    let web_inbound: SocketAddr = "127.0.0.1:5100".parse().unwrap();
    let orders0 = FakeTap::start(Mode::Hold, event(1, "/from-orders-0", web_inbound)).await;
    let orders1 = FakeTap::start(Mode::Hold, event(1, "/from-orders-1", web_inbound)).await;
    let web = FakeTap::start(Mode::Hold, event(1, "/from-web", web_inbound)).await;
    let token =
        register_tap(addr, with_tap(registration("orders", "orders-0", "127.0.0.1:5000"), orders0.addr), &orders0)
            .await;
    register_tap(addr, with_tap(registration("orders", "orders-1", "127.0.0.1:5001"), orders1.addr), &orders1).await;
    register_tap(addr, with_tap(registration("web", "web-0", &web_inbound.to_string()), web.addr), &web).await;
    assert_eq!(token.len(), 32);
    assert!(status(addr).await["lease"].get("tapToken").is_none(), "the status does not show the tap token");

    let client = TapClient::open(addr, "resource=deploy/orders&namespace=prod&to=svc/web&method=get&maxRps=10").await;
    // Both streams are still open: the events arrive as they come, not when a stream ends.
    assert_eventually!(client.events().len() == 2, "events so far: {:?}", client.events());
    assert_eq!(client.paths_of(0), ["/from-orders-0"], "orders-0 is index 0 in the fan-out");
    assert_eq!(client.paths_of(1), ["/from-orders-1"]);
    let from_orders1 =
        client.events().into_iter().find(|e| e.request_init_event.as_ref().unwrap().id.base == 1).unwrap();
    assert_eq!(from_orders1.source.metadata["pod"], "orders-1", "the tapped proxy names its own side");
    assert_eq!(from_orders1.source.metadata["deployment"], "orders");
    assert_eq!(from_orders1.destination.metadata["pod"], "web-0", "the far side is found by its address");
    assert_eq!(web.streams(), 0, "web is not part of deploy/orders");
    assert_eq!(web.refused.load(Ordering::SeqCst), 0);

    // Each proxy got the token and the filter: `to` as destination keys, the method, its share of the rate.
    for fake in [&orders0, &orders1] {
        let seen = fake.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        let query = seen[0].strip_prefix("/tap?").unwrap();
        let filter: TapFilter = serde_urlencoded::from_str(query).unwrap();
        assert_eq!(filter.dst_service.as_deref(), Some("web"));
        assert_eq!(filter.dst_namespace.as_deref(), Some("prod"));
        assert_eq!(filter.method.as_deref(), Some("GET"));
        assert_eq!(filter.max_rps, Some(5.0), "{query}");
        assert_eq!(fake.refused.load(Ordering::SeqCst), 0);
    }

    // Live: a later event comes through with the same stream numbering.
    orders1.push(&event(2, "/later", web_inbound));
    assert_eventually!(client.paths_of(1) == ["/from-orders-1", "/later"], "{:?}", client.paths_of(1));

    // The client goes away: the upstream streams close.
    assert_eq!((orders0.open(), orders1.open()), (1, 1));
    drop(client);
    assert_eventually!(orders0.open() == 0 && orders1.open() == 0, "open: {} {}", orders0.open(), orders1.open());
}

#[tokio::test]
async fn an_ended_stream_is_reopened_while_its_proxy_is_registered() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    let dst: SocketAddr = "127.0.0.1:5100".parse().unwrap();
    let ending = FakeTap::start(Mode::EndAfterFirst, event(1, "/short", dst)).await;
    let holding = FakeTap::start(Mode::Hold, event(1, "/long", dst)).await;
    register_tap(addr, with_tap(registration("orders", "orders-0", "127.0.0.1:5000"), ending.addr), &ending).await;
    register_tap(addr, with_tap(registration("orders", "orders-1", "127.0.0.1:5001"), holding.addr), &holding).await;

    let client = TapClient::open(addr, "resource=deploy/orders&namespace=prod").await;
    assert_eventually!(client.paths_of(0).len() >= 3, "orders-0's stream is reopened: {:?}", client.paths_of(0));
    assert!(ending.streams() >= 3);
    // The other proxy's stream went on all along.
    holding.push(&event(2, "/still-here", dst));
    assert_eventually!(client.paths_of(1) == ["/long", "/still-here"], "{:?}", client.paths_of(1));
    assert_eq!(holding.streams(), 1, "a stream that did not end is not reopened");
    assert!(!client.ended());

    // A proxy that leaves has its stream closed; when none is left the tap ends.
    let (code, _) = request(addr, Method::DELETE, "/v1/proxies/prod/orders-1", b"").await;
    assert_eq!(code, StatusCode::OK);
    assert_eventually!(holding.open() == 0, "the stream of a deregistered proxy is closed");
    let (code, _) = request(addr, Method::DELETE, "/v1/proxies/prod/orders-0", b"").await;
    assert_eq!(code, StatusCode::OK);
    assert_eventually!(client.ended(), "the tap ends when no proxy of the resource is left");
}

#[tokio::test]
async fn bad_taps_are_refused_with_the_parameter_named() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    let fake = FakeTap::start(Mode::Hold, event(1, "/", "127.0.0.1:1".parse().unwrap())).await;
    register_tap(addr, with_tap(registration("orders", "orders-0", "127.0.0.1:5000"), fake.addr), &fake).await;

    let cases = [
        ("resource=svc/orders&namespace=prod", StatusCode::BAD_REQUEST, "services can only be tapped as a destination"),
        ("resource=cronjob/x", StatusCode::BAD_REQUEST, "resource: unsupported resource type"),
        ("resource=deploy/orders&status=7xx", StatusCode::BAD_REQUEST, "status: invalid status filter"),
        ("resource=deploy/orders&maxRps=-1", StatusCode::BAD_REQUEST, "maxRps: expected a number greater than 0"),
        ("resource=deploy/orders&to=deploy", StatusCode::BAD_REQUEST, "to: \"deploy\" needs a name"),
        ("resource=deploy/orders&colour=red", StatusCode::BAD_REQUEST, "unknown tap parameter \"colour\""),
        (
            "resource=deploy/nothing&namespace=prod",
            StatusCode::NOT_FOUND,
            "no running instance of deploy/nothing in namespace prod",
        ),
        (
            "resource=deploy/orders&namespace=staging",
            StatusCode::NOT_FOUND,
            "no running instance of deploy/orders in namespace staging",
        ),
        (
            "resource=po/orders-7&namespace=prod",
            StatusCode::NOT_FOUND,
            "no running instance of po/orders-7 in namespace prod",
        ),
    ];
    for (query, code, message) in cases {
        let (got, body) = get_json(addr, &format!("/api/v1/tap?{query}")).await;
        assert_eq!(got, code, "{query}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(message), "{query}: {error}");
    }
    assert_eq!(fake.streams(), 0, "a refused tap opens no stream");

    // Every way of naming orders-0 reaches it.
    let mut bases = BTreeSet::new();
    for query in
        ["resource=po/orders-0&namespace=prod", "resource=ns/prod", "resource=deployments/orders&namespace=prod"]
    {
        let client = TapClient::open(addr, query).await;
        assert_eventually!(client.events().len() == 1, "{query}");
        bases.insert(client.events()[0].request_init_event.as_ref().unwrap().id.base);
    }
    assert_eq!(bases, BTreeSet::from([0]));
}

#[tokio::test]
async fn a_label_selector_taps_only_the_matching_instances() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    let web_inbound: SocketAddr = "127.0.0.1:5100".parse().unwrap();
    let canary = FakeTap::start(Mode::Hold, event(1, "/from-canary", web_inbound)).await;
    let stable = FakeTap::start(Mode::Hold, event(1, "/from-stable", web_inbound)).await;
    let mut reg = with_tap(registration("orders", "orders-0", "127.0.0.1:5000"), canary.addr);
    reg.labels.insert("canary".into(), "true".into());
    register_tap(addr, reg, &canary).await;
    register_tap(addr, with_tap(registration("orders", "orders-1", "127.0.0.1:5001"), stable.addr), &stable).await;

    let client = TapClient::open(addr, "resource=deploy/orders&namespace=prod&selector=%21canary").await;
    assert_eventually!(client.paths_of(0) == ["/from-stable"], "events so far: {:?}", client.events());
    assert_eq!(canary.streams(), 0, "orders-0 has the label canary");
}
