//! Issue 12's data-plane reproductions: no way past the proxy's HTTP checks. Empty lines before a request
//! line and heads that trickle in are still HTTP (parsed, guarded, counted), never opaque TCP; an
//! `Upgrade: h2c` offer is removed (and counted), so the connection never leaves HTTP/1.

use std::net::SocketAddr;
use std::time::Duration;

use meshlens_testkit::backend::echo;
use meshlens_testkit::raw::raw_http1_with;
use meshlens_testkit::{HttpBackend, raw_http1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// A proxy in front of `app` whose detection gives up after 200 ms (so a slow head outlasts it).
async fn proxy_to(app: SocketAddr) -> (meshlens_proxy::Proxy, meshlens_testkit::TempDir) {
    let mut cfg = config_with_app(app);
    cfg.timeouts.detect = Duration::from_millis(200);
    start(cfg, &snapshot(vec![service("users", "default", &[app])])).await
}

fn smuggling(host: &str) -> String {
    let body = format!("0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n");
    format!(
        "POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n{body}",
        body.len()
    )
}

async fn metric(proxy: &meshlens_proxy::Proxy, prefix: &str) -> String {
    let (_, body) = send(proxy.listen().admin, get("/metrics", "a")).await;
    String::from_utf8_lossy(&body).lines().filter(|l| l.starts_with(prefix)).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn crlf_prefixed_requests_are_http_and_smuggling_behind_them_is_refused() {
    let app = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(app.addr()).await;
    let inbound = proxy.listen().inbound.unwrap();
    let rsp = raw_http1(inbound, "\r\nGET /bypass HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(rsp.status, Some(200));
    assert!(metric(&proxy, "request_total{direction=\"inbound\"").await.ends_with(" 1"), "the request is counted");
    let rsp = raw_http1(inbound, format!("\r\n{}", smuggling("x"))).await;
    assert_eq!(rsp.status, Some(400), "{:?}", String::from_utf8_lossy(&rsp.raw));
    let paths: Vec<String> = app.seen().iter().map(|s| s.uri.path().to_string()).collect();
    assert_eq!(paths, ["/bypass"], "nothing smuggled reached the app");
}

#[tokio::test]
async fn a_slow_first_line_is_still_http() {
    let app = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(app.addr()).await;
    let inbound = proxy.listen().inbound.unwrap();
    for (case, first, rest, status) in [
        (
            "a slow request",
            "G".to_string(),
            "ET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_string(),
            "200",
        ),
        ("slow smuggling", "\r\nPO".to_string(), smuggling("x")[2..].to_string(), "400"),
    ] {
        let mut conn = TcpStream::connect(inbound).await.unwrap();
        conn.write_all(first.as_bytes()).await.unwrap();
        // Past the detect timeout: before, the rest went to the app as opaque bytes.
        tokio::time::sleep(Duration::from_millis(600)).await;
        conn.write_all(rest.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer)).await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with(&format!("HTTP/1.1 {status}")), "{case}: {answer}");
    }
    let paths: Vec<String> = app.seen().iter().map(|s| s.uri.path().to_string()).collect();
    assert_eq!(paths, ["/slow"], "nothing smuggled reached the app");
}

#[tokio::test]
async fn h2c_upgrades_are_stripped_and_counted() {
    let app = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(app.addr()).await;
    for (way, addr, host) in
        [("outbound", proxy.listen().outbound, "users"), ("inbound", proxy.listen().inbound.unwrap(), "x")]
    {
        // An h2c offer with a second request behind it: both are HTTP/1 requests to the app, each checked.
        let req = format!(
            "GET /h2c HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n\
             HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n{}",
            smuggling(host)
        );
        let rsp = raw_http1(addr, req).await;
        assert_eq!(rsp.status, Some(200), "{way}: {:?}", String::from_utf8_lossy(&rsp.raw));
        assert!(
            String::from_utf8_lossy(&rsp.raw).contains("HTTP/1.1 400"),
            "{way}: the request behind it is still guarded"
        );
    }
    let seen = app.seen();
    let paths: Vec<String> = seen.iter().map(|s| s.uri.path().to_string()).collect();
    assert_eq!(paths, ["/h2c", "/h2c"]);
    for s in &seen {
        assert!(!s.headers.contains_key("upgrade") && !s.headers.contains_key("http2-settings"), "{:?}", s.headers);
    }
    assert_eq!(metric(&proxy, "h2c_upgrades_stripped_total").await, "h2c_upgrades_stripped_total 2");
}

#[tokio::test]
async fn connect_reaches_mesh_services_but_no_other_port_of_this_host() {
    let app = HttpBackend::start(echo("app"));
    let (proxy, _d) = proxy_to(app.addr()).await;
    let (victim, _v) = start(config(), &snapshot(vec![])).await;
    let outbound = proxy.listen().outbound;
    let admin = victim.listen().admin;
    for target in [admin.to_string(), format!("localhost:{}", admin.port()), app.addr().to_string()] {
        let req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
        let rsp = raw_http1_with(outbound, req, Duration::from_millis(300)).await;
        assert_eq!(rsp.status, Some(403), "CONNECT {target}: {:?}", String::from_utf8_lossy(&rsp.raw));
        assert_eq!(rsp.header("l5d-proxy-error"), Some("forbidden"), "CONNECT {target}");
    }
    assert_eq!(app.requests(), 0);
    // A mesh service's endpoints on this host are fine.
    let rsp =
        raw_http1_with(outbound, "CONNECT users:80 HTTP/1.1\r\nHost: users:80\r\n\r\n", Duration::from_millis(300))
            .await;
    assert_eq!(rsp.status, Some(200), "{:?}", String::from_utf8_lossy(&rsp.raw));
}
