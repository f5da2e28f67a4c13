//! The real mesh path, two proxies: app → outbound proxy → inbound proxy → app; what each side sees.

use std::net::SocketAddr;
use std::time::Duration;

use meshlens_proxy::Proxy;
use meshlens_testkit::backend::echo;
use meshlens_testkit::{HttpBackend, assert_eventually};

use crate::support::*;

/// The server side: a proxy whose inbound listener fronts `app`.
async fn server_proxy(app: SocketAddr) -> (Proxy, TempDir) {
    let mut cfg = config();
    cfg.inbound = Some("127.0.0.1:0".parse().unwrap());
    cfg.app = Some(app);
    start(cfg, &snapshot(vec![])).await
}

#[tokio::test]
async fn two_hops_http1_and_http2() {
    let app = HttpBackend::start(echo("users"));
    let (server, _d1) = server_proxy(app.addr()).await;
    let inbound = server.listen().inbound.unwrap();
    let (client, _d2) = start(config(), &snapshot(vec![service("users", "prod", &[inbound])])).await;

    let (rsp, body) = send(client.listen().outbound, get("/one", "users.prod")).await;
    assert_eq!(rsp.status(), 200);
    assert_eq!(rsp.headers()["x-backend"], "users");
    assert!(body.is_empty());

    let mut c = h2(client.listen().outbound).await;
    let req = http::Request::get("http://users.prod/two").body(http_body_util::Full::new(bytes::Bytes::new())).unwrap();
    let (rsp, _) = collect(c.send_request(req).await.unwrap()).await;
    assert_eq!(rsp.status(), 200);
    assert_eq!(app.seen().iter().map(|s| s.path().to_string()).collect::<Vec<_>>(), ["/one", "/two"]);
    assert_eq!(app.seen()[1].version, http::Version::HTTP_2, "HTTP/2 stays HTTP/2 end to end");

    let text = metrics_text(&server).await;
    assert!(
        text.lines().any(|l| l.starts_with("request_total{direction=\"inbound\"") && l.ends_with(" 2")),
        "the server side counts both requests inbound:\n{text}"
    );
}

#[tokio::test]
async fn a_peer_proxy_error_is_recorded_as_peer_and_not_passed_to_the_app() {
    // The server-side app is down: its proxy answers 502 connect_error.
    let app = HttpBackend::start(echo("users"));
    let app_addr = app.addr();
    app.stop().await;
    let (server, _d1) = server_proxy(app_addr).await;
    let inbound = server.listen().inbound.unwrap();
    let (client, _d2) = start(config(), &snapshot(vec![service("users", "prod", &[inbound])])).await;

    let (rsp, _) = send(client.listen().outbound, get("/", "users.prod")).await;
    assert_eq!(rsp.status(), 502);
    assert!(
        rsp.headers().get("l5d-proxy-error").is_none(),
        "the app sees only its own proxy's header, not the peer's: {:?}",
        rsp.headers()
    );
    assert_eventually!(
        metrics_text(&client)
            .await
            .lines()
            .any(|l| l.starts_with("response_total{") && l.contains("error=\"peer:connect_error\"")),
        "client side records the peer's reason"
    );
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_requests_finish() {
    let app = HttpBackend::start(meshlens_testkit::backend::delayed(Duration::from_millis(700), echo("slow")));
    let (proxy, _d) = start(config(), &snapshot(vec![service("slow", "default", &[app.addr()])])).await;
    let out = proxy.listen().outbound;
    let in_flight = tokio::spawn(async move { send(out, get("/", "slow")).await });
    assert_eventually!(app.requests() == 1, "request reached the app");

    let shutdown = tokio::spawn(proxy.shutdown());
    let (rsp, _) = in_flight.await.unwrap();
    assert_eq!(rsp.status(), 200, "the in-flight request completed during shutdown");
    assert!(shutdown.await.unwrap(), "shutdown finished within its grace period");
    assert!(tokio::net::TcpStream::connect(out).await.is_err(), "no longer accepting");
}

#[tokio::test]
async fn admin_endpoints() {
    let app = HttpBackend::start(echo("users"));
    let mut cfg = config();
    cfg.admin_token = Some("admin-s3cret".into());
    let (proxy, _d) = start(cfg, &snapshot(vec![service("users", "default", &[app.addr()])])).await;
    let admin = proxy.listen().admin;
    let _ = send(proxy.listen().outbound, get("/", "users")).await;

    for path in ["/ready", "/live"] {
        assert_eq!(send(admin, get(path, "a")).await.0.status(), 200, "{path}");
    }
    let (_, body) = send(admin, get("/config", "a")).await;
    let config: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(config["listen"]["outbound"], proxy.listen().outbound.to_string());
    assert_eq!(config["namespace"], "default");

    let (_, body) = send(admin, get("/endpoints", "a")).await;
    let eps: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let dest = &eps["destinations"][0];
    assert_eq!(dest["authority"], "users.default.svc.cluster.local:80");
    assert_eq!(dest["endpoints"][0]["address"], app.addr().to_string());
    assert!(dest["endpoints"][0]["ewma_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(dest["endpoints"][0]["in_flight"], 0);

    let put_as = |body: &'static str, token: Option<&str>| {
        let mut req = http::Request::put("/log-level").header("host", "a");
        if let Some(token) = token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        req.body(http_body_util::Full::new(bytes::Bytes::from(body))).unwrap()
    };
    let put = |body: &'static str| put_as(body, Some("admin-s3cret"));
    // Without the admin token, or with another one: 401, and the level stays.
    for token in [None, Some("guess")] {
        let (rsp, body) = send(admin, put_as("trace", token)).await;
        assert_eq!(rsp.status(), 401, "{token:?}: {body:?}");
    }
    let (_, body) = send(admin, get("/log-level", "a")).await;
    assert_ne!(body, "trace\n");
    let (rsp, _) = send(admin, put("debug,hyper=info")).await;
    assert_eq!(rsp.status(), 200);
    let (_, body) = send(admin, get("/log-level", "a")).await;
    assert_eq!(body, "debug,hyper=info\n");
    let (rsp, body) = send(admin, put("info,[[[")).await;
    assert_eq!(rsp.status(), 400, "a bad filter is refused: {body:?}");
    let (_, body) = send(admin, get("/log-level", "a")).await;
    assert_eq!(body, "debug,hyper=info\n", "and the old level stays");
}
