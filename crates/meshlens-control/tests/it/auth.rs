//! Issue 12's reproductions against the control plane: forged registrations, overwrites and DELETEs are
//! refused and never point anyone at the attacker; the API needs its token; oversized bodies get JSON 413.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hyper::{Method, StatusCode};
use meshlens_control::auth::ProxyKey;
use meshlens_testkit::assert_eventually;

use crate::support::*;

/// A listener that counts the connections it gets (the attacker's).
async fn attacker() -> (std::net::SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let task = tokio::spawn(async move {
        while let Ok((_conn, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::Relaxed);
        }
    });
    (addr, hits, task)
}

#[tokio::test]
async fn forged_registrations_overwrites_and_deletes_are_refused() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    let w = Watcher::start(addr).await;
    let (code, _) = register(addr, &registration("orders", "orders-0", "127.0.0.1:4143")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eventually!(w.endpoints("orders") == ["127.0.0.1:4143"]);

    let (evil, hits, _task) = attacker().await;
    let mut forged = registration("orders", "orders-evil", &evil.to_string());
    (forged.admin, forged.tap) = (evil, evil);
    let body = serde_json::to_vec(&forged).unwrap();

    // No credential: 401 with a JSON reason.
    let (code, v) = request_as(addr, Method::POST, "/v1/proxies", &body, None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{v}");
    assert!(v["error"].as_str().unwrap().contains("missing credential"), "{v}");
    // A credential of another key, or a made-up one: 401.
    let foreign = ProxyKey::generate().mint("prod", "orders", "orders-evil");
    for bad in [foreign.as_str(), "mlp1:prod:orders:orders-evil:00", "anything"] {
        let (code, v) = request_as(addr, Method::POST, "/v1/proxies", &body, Some(bad)).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{bad}: {v}");
    }
    // A real credential of another instance: 403, for a new name and for overwriting orders-0.
    let web0 = proxy_key().mint("prod", "web", "web-0");
    let (code, v) = request_as(addr, Method::POST, "/v1/proxies", &body, Some(&web0)).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{v}");
    forged.instance = "orders-0".into();
    let overwrite = serde_json::to_vec(&forged).unwrap();
    let (code, v) = request_as(addr, Method::POST, "/v1/proxies", &overwrite, Some(&web0)).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"], "the credential is for prod/web-0 (workload web), not for prod/orders-0 (workload orders)");
    // orders-1's own credential cannot take orders-0's name either.
    let orders1 = proxy_key().mint("prod", "orders", "orders-1");
    let (code, _) = request_as(addr, Method::POST, "/v1/proxies", &overwrite, Some(&orders1)).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // DELETE: 401 without, 403 with another instance's credential; orders-0 stays.
    let path = "/v1/proxies/prod/orders-0";
    let (code, _) = request_as(addr, Method::DELETE, path, b"", None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = request_as(addr, Method::DELETE, path, b"", Some(&orders1)).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    // Its own credential, but an address off this host or a workload mesh.yaml does not declare: 400.
    let mut remote = registration("orders", "orders-1", "10.0.0.9:4143");
    let (code, v) = register(addr, &remote).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    remote = registration("batch", "batch-0", "127.0.0.1:4999");
    let (code, v) = register(addr, &remote).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");

    // Nothing changed: orders-0 alone serves orders, and the attacker got no connection, not even when
    // the proxies' metrics are fetched.
    let (code, _) = get_json(addr, "/api/v1/proxy-metrics?resource=deploy/orders&namespace=prod").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(w.endpoints("orders"), ["127.0.0.1:4143"]);
    assert_eq!(status(addr).await["proxies"], 1);
    assert_eq!(hits.load(Ordering::Relaxed), 0, "the attacker's listener got connections");
    cp.shutdown().await;
}

#[tokio::test]
async fn the_api_and_the_watch_stream_need_credentials() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    register(addr, &registration("orders", "orders-0", "127.0.0.1:4143")).await;
    let paths = [
        "/api/v1/tap?resource=deploy/orders&namespace=prod&headers=true",
        "/api/v1/proxy-metrics?resource=deploy/orders&namespace=prod",
        "/api/v1/status",
        "/api/v1/resources",
        "/api/v1/stat?resource=deploy&namespace=prod",
        "/api/v1/endpoints?authority=orders.prod",
        "/api/v1/prometheus/targets",
        "/v1/watch?namespace=prod&instance=x",
    ];
    for path in paths {
        for bearer in [None, Some("wrong-token")] {
            let (code, v) = request_as(addr, Method::GET, path, b"", bearer).await;
            assert_eq!(code, StatusCode::UNAUTHORIZED, "{path} {bearer:?}: {v}");
            assert!(v["error"].is_string(), "{path}: {v}");
        }
    }
    // A proxy credential is no API token.
    let cred = proxy_key().mint("prod", "orders", "orders-0");
    let (code, _) = request_as(addr, Method::GET, "/api/v1/status", b"", Some(&cred)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    // With the token, the API answers; the watch stream takes a proxy credential too.
    let (code, _) = request_as(addr, Method::GET, "/api/v1/status", b"", Some(API_TOKEN)).await;
    assert_eq!(code, StatusCode::OK);
    let resp = send_as(addr, Method::GET, "/v1/watch?namespace=prod&instance=orders-0", b"", Some(&cred)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    cp.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_get_json_413() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let mut reg = registration("orders", "orders-0", "127.0.0.1:4143");
    reg.labels.insert("big".into(), "x".repeat(1024 * 1024));
    let (code, v) = register(cp.addr(), &reg).await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert!(v["error"].as_str().unwrap().contains("cannot read the request body"), "{v}");
    cp.shutdown().await;
}
