//! `meshlens demo-app` as a process: serving routes, calls through HTTP_PROXY or an upstream listener,
//! failed calls as 502/504, and raw invalid responses.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use meshlens_testkit::backend::{delayed, echo, fixed};
use meshlens_testkit::raw::raw_http1_with;
use meshlens_testkit::{ChildGuard, HttpBackend, RawResponse, spawn_and_read_json_line_async};

/// One request; waits only briefly for the peer to close (keep-alive connections stay open).
async fn raw_http1(addr: SocketAddr, request: String) -> RawResponse {
    raw_http1_with(addr, request, Duration::from_millis(300)).await
}

async fn demo_app(config: &str, env: &[(&str, String)]) -> (ChildGuard, SocketAddr) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshlens"));
    cmd.args(["demo-app", "--listen", "127.0.0.1:0", "--config-json", config]);
    for k in ["HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "MESHLENS_SUPERVISOR_PID"] {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let (guard, line) = spawn_and_read_json_line_async(&mut cmd).await;
    let addr = line["addr"].as_str().unwrap().parse().unwrap();
    (guard, addr)
}

fn get(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: app\r\n\r\n")
}

#[tokio::test]
async fn serves_routes_and_calls_through_http_proxy() {
    let proxy = HttpBackend::start(echo("proxy"));
    let config = r#"{"routes": [
        {"method": "GET", "path": "/users/{id}", "calls": [{"service": "payment-service", "path": "/charge/{id}"}]},
        {"path": "/fixed", "status": 201, "body": "made"}
    ]}"#;
    let (_app, addr) = demo_app(config, &[("HTTP_PROXY", format!("http://{}", proxy.addr()))]).await;

    let rsp = raw_http1(addr, get("/fixed")).await;
    assert_eq!((rsp.status, rsp.body_text().as_str()), (Some(201), "made"));
    let rsp = raw_http1(addr, get("/nope")).await;
    assert_eq!(rsp.status, Some(404));

    let rsp = raw_http1(addr, get("/users/7")).await;
    assert_eq!(rsp.status, Some(200), "{}", rsp.body_text());
    let body: serde_json::Value = serde_json::from_str(&rsp.body_text()).unwrap();
    assert_eq!(body["route"], "GET /users/{id}");
    assert_eq!(body["calls"][0]["status"], 200);
    let seen = proxy.last().unwrap();
    assert_eq!(seen.uri.to_string(), "http://payment-service/charge/7", "absolute form, to the proxy");
    assert_eq!(seen.header("host"), Some("payment-service"));
}

#[tokio::test]
async fn calls_an_upstream_listener_without_http_proxy() {
    let upstream = HttpBackend::start(echo("up"));
    let config = r#"{"routes": [{"path": "/", "calls": [{"service": "order-service", "method": "PUT", "path": "/orders/{uuid}"}]}]}"#;
    let (_app, addr) = demo_app(config, &[("MESHLENS_UPSTREAM_ORDER_SERVICE", upstream.addr().to_string())]).await;
    let rsp = raw_http1(addr, get("/")).await;
    assert_eq!(rsp.status, Some(200), "{}", rsp.body_text());
    let seen = upstream.last().unwrap();
    assert_eq!(seen.method, http::Method::PUT);
    assert!(seen.uri.path().starts_with("/orders/") && seen.uri.path().len() == "/orders/".len() + 36);
    assert_eq!(seen.header("host"), Some("order-service"));
}

#[tokio::test]
async fn failed_calls_fail_the_request_with_502_or_504() {
    let failing = HttpBackend::start(fixed(503, "down"));
    let slow = HttpBackend::start(delayed(Duration::from_secs(5), echo("slow")));
    let config = r#"{"routes": [
        {"path": "/fail", "calls": [{"service": "a", "via": "upstream"}]},
        {"path": "/slow", "calls": [{"service": "b", "via": "upstream", "timeout": "200ms"}]}
    ]}"#;
    let env = [("MESHLENS_UPSTREAM_A", failing.addr().to_string()), ("MESHLENS_UPSTREAM_B", slow.addr().to_string())];
    let (_app, addr) = demo_app(config, &env).await;
    let rsp = raw_http1(addr, get("/fail")).await;
    assert_eq!(rsp.status, Some(502), "{}", rsp.body_text());
    assert!(rsp.body_text().contains("call to a failed"), "{}", rsp.body_text());
    let rsp = raw_http1(addr, get("/slow")).await;
    assert_eq!(rsp.status, Some(504), "{}", rsp.body_text());
}

#[tokio::test]
async fn writes_invalid_responses_as_raw_bytes() {
    let config = r#"{"routes": [
        {"path": "/cr", "faults": [{"rate": 1, "invalid": "bare-cr"}]},
        {"path": "/cl", "faults": [{"rate": 1, "invalid": "conflicting-content-length"}]},
        {"path": "/ok"}
    ]}"#;
    let (_app, addr) = demo_app(config, &[]).await;
    let rsp = raw_http1(addr, get("/cr")).await;
    assert!(
        rsp.raw.windows(3).any(|w| w == b"d\rv"),
        "bare CR in a header value: {:?}",
        String::from_utf8_lossy(&rsp.raw)
    );
    assert!(rsp.closed, "the connection closes after an invalid response");
    let rsp = raw_http1(addr, get("/cl")).await;
    let text = String::from_utf8_lossy(&rsp.raw).into_owned();
    assert!(text.contains("content-length: 3\r\ncontent-length: 5\r\n"), "{text:?}");
    // Other requests are not affected.
    assert_eq!(raw_http1(addr, get("/ok")).await.status, Some(200));
}

#[test]
fn check_reports_config_errors_with_the_field() {
    let out = Command::new(env!("CARGO_BIN_EXE_meshlens"))
        .args([
            "demo-app",
            "--check",
            "--config-json",
            r#"{"routes": [{"path": "/a", "faults": [{"rate": 2, "status": 503}]}]}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("routes[0].faults[0]: rate: 2 is not between 0 and 1"), "{err}");
}

/// The bad-headers scenario's premise: the sidecar refuses each kind of invalid response with 502
/// `invalid_response`, while valid ones pass.
#[tokio::test]
async fn a_proxy_refuses_the_invalid_responses() {
    let config = r#"{"routes": [
        {"path": "/cr", "faults": [{"rate": 1, "invalid": "bare-cr"}]},
        {"path": "/cl", "faults": [{"rate": 1, "invalid": "conflicting-content-length"}]},
        {"path": "/name", "faults": [{"rate": 1, "invalid": "bad-header-name"}]},
        {"path": "/ok"}
    ]}"#;
    let (_app, app) = demo_app(config, &[]).await;
    let dir = crate::support::TempDir::new("invalid-proxy");
    dir.write(
        "discovery.yaml",
        &format!(
            "services:\n  - name: auth-service\n    namespace: prod\n    ports: [{{port: 80}}]\n    endpoints:\n      - address: {app}\n"
        ),
    );
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_meshlens"));
    cmd.args(["proxy", "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--tap", "127.0.0.1:0"])
        .args(["--namespace", "prod", "--discovery"])
        .arg(dir.path().join("discovery.yaml"));
    let (_proxy, line) = spawn_and_read_json_line_async(&mut cmd).await;
    let outbound: SocketAddr = line["outbound"].as_str().unwrap().parse().unwrap();
    let via = |path: &str| format!("GET http://auth-service{path} HTTP/1.1\r\nHost: auth-service\r\n\r\n");
    for path in ["/cr", "/cl", "/name"] {
        let rsp = raw_http1(outbound, via(path)).await;
        assert_eq!(rsp.status, Some(502), "{path}: {:?}", String::from_utf8_lossy(&rsp.raw));
        assert_eq!(rsp.header("l5d-proxy-error"), Some("invalid_response"), "{path}");
    }
    assert_eq!(raw_http1(outbound, via("/ok")).await.status, Some(200));
}
