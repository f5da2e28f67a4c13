//! Registration and the watch stream: endpoints join at once, leave on DELETE or when a lease lapses,
//! heartbeats arrive, the restart rule, shutdown ends streams.

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use meshlens_testkit::assert_eventually;

use crate::support::*;

#[tokio::test]
async fn a_registered_instance_appears_in_the_watch_stream_and_leaves_on_delete() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    let w = Watcher::start(addr).await;
    assert_eventually!(w.snapshots().len() == 1, "the current snapshot arrives at once");
    let (_, complete, first) = w.snapshots().remove(0);
    assert!(complete);
    assert_eq!(first.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["web", "orders"]);
    assert!(first.services.iter().all(|s| s.endpoints.is_empty()));

    let (code, lease) = register(addr, &registration("orders", "orders-0", "0.0.0.0:4143")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!((&lease["ttlMs"], &lease["renewMs"]), (&serde_json::json!(10000), &serde_json::json!(3000)));
    assert_eventually!(w.endpoints("orders") == ["127.0.0.1:4143"], "endpoints: {:?}", w.endpoints("orders"));
    let latest = w.latest().unwrap();
    assert_eq!(latest.version, first.version + 1);
    let ep = &latest.services[1].endpoints[0];
    assert_eq!(ep.labels["namespace"], "prod");
    assert_eq!(ep.labels["deployment"], "orders");
    assert_eq!(ep.labels["pod"], "orders-0");

    register(addr, &registration("orders", "orders-1", "127.0.0.1:4144")).await;
    assert_eventually!(w.endpoints("orders").len() == 2);
    assert_eq!(status(addr).await["proxies"], 2);

    let (code, body) = request(addr, Method::DELETE, "/v1/proxies/prod/orders-0", b"").await;
    assert_eq!(code, StatusCode::OK, "{body:?}");
    assert_eventually!(w.endpoints("orders") == ["127.0.0.1:4144"], "endpoints: {:?}", w.endpoints("orders"));
    let (code, body) = request(addr, Method::DELETE, "/v1/proxies/prod/orders-0", b"").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap()["error"],
        "no proxy 'orders-0' is registered in namespace 'prod'"
    );
    cp.shutdown().await;
}

#[tokio::test]
async fn an_instance_whose_lease_lapses_leaves_its_service() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let mut c = config(&dir);
    c.lease_ttl = Duration::from_millis(600);
    c.sweep_interval = Duration::from_millis(100);
    let cp = start(c).await;
    let addr = cp.addr();
    let w = Watcher::start(addr).await;
    let (_, lease) = register(addr, &registration("orders", "orders-0", "127.0.0.1:4143")).await;
    assert_eq!(lease["ttlMs"], 600);
    let registered = Instant::now();
    register(addr, &registration("orders", "orders-1", "127.0.0.1:4144")).await;
    assert_eventually!(w.endpoints("orders").len() == 2);
    // orders-1 keeps renewing; orders-0 stops.
    let keep = tokio::spawn(async move {
        loop {
            register(addr, &registration("orders", "orders-1", "127.0.0.1:4144")).await;
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });
    assert_eventually!(w.endpoints("orders") == ["127.0.0.1:4144"], "endpoints: {:?}", w.endpoints("orders"));
    assert!(registered.elapsed() >= Duration::from_millis(600), "not before the lease lapsed");
    keep.abort();
    assert!(metrics(addr).await.contains("\nmeshlens_control_lease_expirations_total 1\n"));
    cp.shutdown().await;
}

#[tokio::test]
async fn heartbeats_carry_the_current_version() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let mut c = config(&dir);
    c.heartbeat = Duration::from_millis(50);
    let cp = start(c).await;
    let w = Watcher::start(cp.addr()).await;
    assert_eventually!(w.heartbeats().len() >= 3, "heartbeats: {:?}", w.heartbeats());
    let version = w.latest().unwrap().version;
    assert!(w.heartbeats().iter().all(|v| *v == version));
    cp.shutdown().await;
}

#[tokio::test]
async fn after_a_start_snapshots_are_incomplete_for_the_grace_period() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let mut c = config(&dir);
    c.restart_grace = Duration::from_millis(800);
    c.lease_ttl = Duration::from_millis(300);
    c.sweep_interval = Duration::from_millis(50);
    let started = Instant::now();
    let cp = start(c).await;
    let addr = cp.addr();
    let w = Watcher::start(addr).await;
    register(addr, &registration("orders", "orders-0", "127.0.0.1:4143")).await;
    assert_eventually!(w.endpoints("orders").len() == 1);
    assert!(w.snapshots().iter().all(|(_, complete, _)| !complete));
    assert_eq!(status(addr).await["complete"], false);
    // The lease lapses at ~300 ms, but the endpoint stays until the grace period ends at 800 ms.
    assert_eventually!(w.snapshots().last().is_some_and(|(_, complete, _)| *complete));
    assert!(started.elapsed() >= Duration::from_millis(800));
    let (_, _, last) = w.snapshots().pop().unwrap();
    assert!(last.services[1].endpoints.is_empty(), "removed once complete");
    let incomplete_with_endpoint =
        w.snapshots().iter().filter(|(_, c, s)| !c && s.services[1].endpoints.len() == 1).count();
    assert!(incomplete_with_endpoint >= 1);
    cp.shutdown().await;
}

#[tokio::test]
async fn shutdown_ends_open_watch_streams() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let w = Watcher::start(cp.addr()).await;
    assert_eventually!(w.snapshots().len() == 1);
    let t = Instant::now();
    cp.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(2), "shutdown waited for the stream: {:?}", t.elapsed());
    assert_eventually!(w.ended());
}
