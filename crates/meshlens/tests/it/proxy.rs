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
    assert_eq!(out.status.code(), Some(2));
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
