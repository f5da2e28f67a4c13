//! `meshlens proxy` as a process: start-up line, serving, bad configuration, graceful stop on SIGTERM.

use std::process::Command;
use std::time::Duration;

use meshlens_testkit::backend::{delayed, echo};
use meshlens_testkit::raw::raw_http1_with;
use meshlens_testkit::{HttpBackend, raw_http1, spawn_and_read_json_line_async};

fn meshlens() -> Command {
    Command::new(env!("CARGO_BIN_EXE_meshlens"))
}

fn write_discovery(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("discovery.yaml");
    std::fs::write(&path, body).unwrap();
    path
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("meshlens-bin-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test]
async fn serves_prints_its_addresses_and_stops_gracefully_on_sigterm() {
    let app = HttpBackend::start(delayed(Duration::from_millis(500), echo("users")));
    let dir = temp_dir("serve");
    let file = write_discovery(
        &dir,
        &format!(
            "services:\n  - name: users\n    namespace: prod\n    ports: [{{port: 80}}]\n    endpoints:\n      - address: {}\n        labels: {{deployment: users, pod: users-0}}\n",
            app.addr()
        ),
    );
    let mut cmd = meshlens();
    cmd.args(["proxy", "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--tap", "127.0.0.1:0"])
        .args(["--namespace", "prod", "--upstream", "users=127.0.0.1:0"])
        .args(["--tap-token", "start-up-token", "--access-log", "json"])
        .arg("--discovery")
        .arg(&file);
    let (mut proxy, line) = spawn_and_read_json_line_async(&mut cmd).await;
    assert_eq!(line["message"], "listening");
    assert!(line["inbound"].is_null(), "no inbound listener without --app: {line}");
    let outbound: std::net::SocketAddr = line["outbound"].as_str().unwrap().parse().unwrap();
    let upstream: std::net::SocketAddr = line["upstreams"]["users"].as_str().unwrap().parse().unwrap();

    let quick = Duration::from_millis(50);
    let rsp = raw_http1_with(outbound, "GET /via-outbound HTTP/1.1\r\nHost: users\r\n\r\n", quick).await;
    assert_eq!(rsp.status, Some(200));
    let rsp = raw_http1_with(upstream, "GET /via-upstream HTTP/1.1\r\nHost: whatever\r\n\r\n", quick).await;
    assert_eq!(rsp.status, Some(200));

    // A request in flight when SIGTERM arrives still completes; then the process exits 0.
    let in_flight = tokio::spawn(raw_http1(outbound, "GET /slow HTTP/1.1\r\nHost: users\r\n\r\n"));
    meshlens_testkit::assert_eventually!(app.requests() == 3, "slow request reached the app");
    proxy.terminate();
    let rsp = in_flight.await.unwrap();
    assert_eq!(rsp.status, Some(200), "in-flight request completed during shutdown");
    let status = tokio::task::spawn_blocking(move || proxy.wait_for_exit()).await.unwrap();
    assert_eq!(status.code(), Some(0), "graceful exit");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_invalid_discovery_file_stops_start_up_with_file_and_line() {
    let dir = temp_dir("invalid");
    let file = write_discovery(&dir, "services:\n  - name: users\n    ports: [{port: eighty}]\n");
    let out = meshlens()
        .args(["proxy", "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--tap", "127.0.0.1:0"])
        .arg("--discovery")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{}:3:", file.display());
    assert!(stderr.contains(&expected), "names file and line ({expected}): {stderr}");
    assert!(out.stdout.is_empty(), "no listening line: {}", String::from_utf8_lossy(&out.stdout));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn inbound_without_app_is_refused() {
    let out = meshlens().args(["proxy", "--inbound", "127.0.0.1:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--app"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn access_log_lines_in_both_formats_and_the_tap_token() {
    use meshlens_testkit::process::Stream;
    let app = HttpBackend::start(echo("users"));
    let dir = temp_dir("access-log");
    let file = write_discovery(
        &dir,
        &format!(
            "services:\n  - name: users\n    namespace: prod\n    ports: [{{port: 80}}]\n    endpoints:\n      - address: {}\n        labels: {{deployment: users, pod: users-0}}\n",
            app.addr()
        ),
    );
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    for format in ["apache", "json"] {
        let mut cmd = meshlens();
        cmd.args(["proxy", "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--tap", "127.0.0.1:0"])
            .args(["--namespace", "prod", "--access-log", format])
            .env("MESHLENS_PROXY_TAP_TOKEN", "env-token")
            .arg("--discovery")
            .arg(&file);
        let (proxy, line) = spawn_and_read_json_line_async(&mut cmd).await;
        let outbound: std::net::SocketAddr = line["outbound"].as_str().unwrap().parse().unwrap();
        let tap: std::net::SocketAddr = line["tap"].as_str().unwrap().parse().unwrap();

        let request = format!(
            "GET /users/{format}?q=1 HTTP/1.1\r\nHost: users\r\nUser-Agent: curl/8.0\r\ntraceparent: {traceparent}\r\n\r\n"
        );
        let rsp = raw_http1_with(outbound, request, Duration::from_millis(50)).await;
        assert_eq!(rsp.status, Some(200));
        let seen = app.last().unwrap();
        assert_eq!(seen.path(), format!("/users/{format}"));
        assert_eq!(seen.header("traceparent"), Some(traceparent), "{format}: the trace header passes untouched");

        let logged = proxy.wait_for_line_async(Stream::Stderr, |l| l.contains(&format!("/users/{format}"))).await;
        match format {
            "apache" => {
                // `127.0.0.1:PORT - - [2026-01-02T03:04:05.123456789Z] "GET /users/apache?q=1 HTTP/1.1" 200 attempt=1`
                let (client, rest) = logged.split_once(" - - [").expect(&logged);
                let (timestamp, rest) = rest.split_once("] ").expect(&logged);
                assert!(client.strip_prefix("127.0.0.1:").is_some_and(|p| p.parse::<u16>().is_ok()), "{logged}");
                assert_eq!((timestamp.len(), &timestamp[10..11], &timestamp[29..]), (30, "T", "Z"), "{logged}");
                assert_eq!(rest, "\"GET /users/apache?q=1 HTTP/1.1\" 200 attempt=1", "{logged}");
            }
            _ => {
                let v: serde_json::Value = serde_json::from_str(&logged).unwrap();
                assert_eq!(v["method"], "GET");
                assert_eq!(v["uri"], "/users/json?q=1");
                assert_eq!(v["host"], "users");
                assert_eq!(v["status"], 200);
                assert_eq!(v["version"], "HTTP/1.1");
                assert_eq!(v["user_agent"], "curl/8.0");
                assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
                assert_eq!(v["response_bytes"].as_u64(), Some(rsp.body.len() as u64));
                assert_eq!(v["attempt"], 1);
                assert!(v["total_ns"].as_u64().unwrap() >= v["processing_ns"].as_u64().unwrap());
                assert!(v["client.addr"].as_str().unwrap().starts_with("127.0.0.1:"));
            }
        }

        // The token from the environment opens a tap stream; a wrong one does not.
        let open = |token: &str| format!("GET /tap HTTP/1.1\r\nHost: tap\r\nAuthorization: Bearer {token}\r\n\r\n");
        let quick = Duration::from_millis(200);
        assert_eq!(raw_http1_with(tap, open("env-token"), quick).await.status, Some(200));
        assert_eq!(raw_http1_with(tap, open("nope"), quick).await.status, Some(401));
        drop(proxy);
    }
    let _ = std::fs::remove_dir_all(dir);
}
