//! `meshlens tap` and `meshlens top` against a fake control plane streaming fixed events: every output
//! format pinned by golden files, the query the CLI sends, clear errors, `top` on a pipe and in a real
//! terminal (tmux).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshlens_api::tap::{
    ProxyDirection, RequestInit, ResponseEnd, ResponseInit, StreamId, TapEndpoint, TapEvent, TapFilter, TapRequest,
};
use meshlens_testkit::{ChildGuard, eventually_blocking};

use crate::stats::golden;
use crate::support::{TempDir, meshlens, read_request_target};

fn endpoint(ip: &str, port: u16, labels: &[(&str, &str)]) -> TapEndpoint {
    let metadata = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    TapEndpoint { ip: ip.into(), port, metadata }
}

fn req(id: (u32, u64), method: &str, authority: &str, path: &str) -> Option<RequestInit> {
    Some(RequestInit {
        id: StreamId { base: id.0, stream: id.1 },
        method: method.into(),
        scheme: "http".into(),
        authority: authority.into(),
        path: path.into(),
        headers: vec![],
    })
}

fn rsp(id: (u32, u64), status: u16, latency: Duration) -> Option<ResponseInit> {
    Some(ResponseInit {
        id: StreamId { base: id.0, stream: id.1 },
        since_request_init: latency.into(),
        http_status: status,
        headers: vec![],
    })
}

fn end(
    id: (u32, u64),
    total: Duration,
    body: Option<Duration>,
    bytes: u64,
    grpc: Option<u32>,
    reset: Option<u32>,
) -> Option<ResponseEnd> {
    Some(ResponseEnd {
        id: StreamId { base: id.0, stream: id.1 },
        since_request_init: total.into(),
        since_response_init: body.map(Into::into),
        response_bytes: bytes,
        trailers: vec![],
        grpc_status_code: grpc,
        reset_error_code: reset,
    })
}

/// An inbound gRPC request that succeeds, an outbound retry the proxy timed out (504), a reset stream,
/// and an IPv6 client.
fn events() -> Vec<TapEvent> {
    let us = Duration::from_micros;
    let client = endpoint("10.42.0.1", 60318, &[("tls", "no_tls_from_remote")]);
    let me = endpoint("127.0.0.1", 8080, &[("deployment", "web"), ("namespace", "prod"), ("pod", "web-0")]);
    let inbound = TapEvent::new(ProxyDirection::Inbound, client, me);
    let mut outbound = TapEvent::new(
        ProxyDirection::Outbound,
        endpoint("127.0.0.1", 40000, &[("pod", "web-0")]),
        endpoint("127.0.0.1", 5001, &[("deployment", "orders"), ("pod", "orders-1"), ("tls", "no_identity")]),
    );
    outbound.route_meta.insert("route".into(), "GET /api/orders/{id}".into());
    outbound.attempt = Some(2);
    outbound.original_id = Some(StreamId { base: 1, stream: 2 });
    let timed_out = TapEvent { proxy_error: Some("timeout".into()), ..outbound.clone() };
    let v6 = TapEvent::new(ProxyDirection::Inbound, endpoint("::1", 1234, &[]), endpoint("::1", 8080, &[]));
    vec![
        TapEvent {
            request_init_event: req((0, 0), "POST", "web.prod.svc.cluster.local:80", "/shop.Cart/Add"),
            ..inbound.clone()
        },
        TapEvent { response_init_event: rsp((0, 0), 200, us(267)), ..inbound.clone() },
        TapEvent { response_end_event: end((0, 0), us(301), Some(us(34)), 24, Some(0), None), ..inbound.clone() },
        TapEvent {
            request_init_event: req((1, 3), "GET", "orders.prod.svc.cluster.local:80", "/api/orders/7"),
            ..outbound.clone()
        },
        TapEvent { response_init_event: rsp((1, 3), 504, us(5_000_267)), ..timed_out.clone() },
        TapEvent { response_end_event: end((1, 3), us(5_000_300), Some(us(33)), 0, None, None), ..timed_out },
        TapEvent { response_end_event: end((1, 4), us(900), None, 0, None, Some(2)), ..outbound },
        TapEvent { request_init_event: req((0, 5), "GET", "web:80", "/health"), ..v6 },
    ]
}

/// A fake control plane: `/api/v1/tap` answers the fixed events (and then ends the stream, or holds it
/// open for `deploy/live`), `deploy/missing` a 404. Returns its URL and the request targets it saw.
fn fake_control() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let body: String = events().iter().map(|e| serde_json::to_string(e).unwrap() + "\n").collect();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (log, body) = (log.clone(), body.clone());
            std::thread::spawn(move || {
                let target = read_request_target(&conn);
                log.lock().unwrap().push(target.clone());
                let mut conn = conn;
                if target.contains("resource=deploy%2Fmissing") || target.contains("resource=deploy/missing") {
                    let body = r#"{"error":"no running instance of deploy/missing in namespace prod"}"#;
                    let _ = write!(
                        conn,
                        "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    return;
                }
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\nconnection: close\r\n\r\n{body}"
                );
                let _ = conn.flush();
                if target.contains("resource=deploy%2Flive") || target.contains("resource=deploy/live") {
                    // Held open until the client goes away.
                    let _ = conn.read(&mut [0u8; 1]);
                }
            });
        }
    });
    (format!("http://{addr}"), seen)
}

fn run(control: &str, args: &[&str]) -> std::process::Output {
    meshlens().args(args).args(["--control", control]).env_remove("MESHLENS_CONTROL").output().unwrap()
}

fn stdout_of(control: &str, args: &[&str]) -> String {
    let out = run(control, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{args:?}: {stderr}");
    assert_eq!(stderr, "tap stream ended\n", "{args:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The (request, filter) a query string carries, parsed as the control plane parses it.
fn parsed(target: &str) -> (TapRequest, TapFilter) {
    let query = target.strip_prefix("/api/v1/tap?").unwrap_or_else(|| panic!("{target}"));
    (serde_urlencoded::from_str(query).unwrap(), serde_urlencoded::from_str(query).unwrap())
}

#[test]
fn tap_output_formats_match_golden_files() {
    let (url, seen) = fake_control();
    golden("tap_table", &stdout_of(&url, &["tap", "deploy/web", "-n", "prod"]));
    golden("tap_wide", &stdout_of(&url, &["tap", "deploy/web", "-n", "prod", "-o", "wide"]));
    let json = stdout_of(&url, &["tap", "deploy/web", "-n", "prod", "-o", "json"]);
    golden("tap_json", &json);
    // -o json is the events as the control plane sent them, one per line.
    let back: Vec<TapEvent> = json.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(back, events());

    // Defaults: namespace `default`, 100 rps, no filter.
    let (request, filter) = parsed(&seen.lock().unwrap()[0]);
    assert_eq!((request.resource.as_str(), request.namespace.as_str()), ("deploy/web", "prod"));
    assert_eq!(filter, TapFilter { max_rps: Some(100.0), ..TapFilter::default() });

    // Every flag reaches the query.
    stdout_of(
        &url,
        &[
            "tap",
            "deploy",
            "web",
            "--to",
            "svc/orders",
            "--to-namespace",
            "shop",
            "--method",
            "GET",
            "--path",
            "/api",
            "--authority",
            "orders:80",
            "--max-rps",
            "2.5",
            "--status",
            "5xx,429",
            "--failed",
            "-o",
            "json",
            "--headers",
            "-l",
            "tier=ml",
        ],
    );
    let (request, filter) = parsed(seen.lock().unwrap().last().unwrap());
    assert_eq!(
        request,
        TapRequest {
            resource: "deploy/web".into(),
            namespace: "default".into(),
            to: Some("svc/orders".into()),
            to_namespace: Some("shop".into()),
            selector: Some("tier=ml".into()),
        }
    );
    assert_eq!(
        filter,
        TapFilter {
            method: Some("GET".into()),
            path: Some("/api".into()),
            authority: Some("orders:80".into()),
            status: Some("5xx,429".into()),
            failed: true,
            max_rps: Some(2.5),
            headers: true,
            ..TapFilter::default()
        }
    );
}

#[test]
fn tap_errors_say_what_is_wrong() {
    let (url, _) = fake_control();
    // Exit status 1 for an error, 2 for a flag value clap refuses.
    let status_err = |out: std::process::Output, code: i32| {
        assert_eq!(out.status.code(), Some(code), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = |out: std::process::Output| status_err(out, 1);
    let e = err(run(&url, &["tap", "deploy/missing", "-n", "prod"]));
    assert!(
        e.contains("the control plane answered 404 Not Found: no running instance of deploy/missing in namespace prod"),
        "{e}"
    );

    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = err(run(&format!("http://{dead}"), &["tap", "deploy/web"]));
    assert!(e.contains(&format!("cannot reach the control plane at http://{dead}")), "{e}");

    let e = err(run(&url, &["tap", "deploy/web", "--headers"]));
    assert!(e.contains("--headers is only available with -o json"), "{e}");
    let e = status_err(run(&url, &["tap", "deploy/web", "--status", "6xx"]), 2);
    assert!(e.contains("--status") && e.contains("invalid status filter"), "{e}");
    let e = status_err(run(&url, &["tap", "deploy/web", "--max-rps", "0"]), 2);
    assert!(e.contains("--max-rps") && e.contains("greater than 0"), "{e}");
    let e = err(run(&url, &["top", "deploy/missing", "-n", "prod"]));
    assert!(e.contains("no running instance of deploy/missing"), "{e}");
}

#[test]
fn top_on_a_pipe_prints_the_table_periodically_and_at_the_end() {
    let (url, _) = fake_control();
    // The stream ends at once: one table, the final one.
    let out = run(&url, &["top", "deploy/web", "-n", "prod", "--interval", "1h"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    golden("top_pipe", &String::from_utf8(out.stdout).unwrap());
    let out = run(&url, &["top", "deploy/web", "-n", "prod", "--interval", "1h", "--routes", "--hide-sources"]);
    golden("top_pipe_routes", &String::from_utf8(out.stdout).unwrap());

    // A live stream: the table again every interval.
    let mut cmd = meshlens();
    cmd.args(["top", "deploy/live", "-n", "prod", "--interval", "200ms", "--control", &url]);
    let top = ChildGuard::spawn(&mut cmd).unwrap();
    eventually_blocking(
        || top.stdout_text().matches("Source  ").count() >= 3,
        "top prints the table every interval while the stream is open",
    );
    // The second table is complete (a third one started after it).
    let text = top.stdout_text();
    let second = text.split("\n\n").nth(1).unwrap();
    assert!(second.starts_with("Source "), "{text}");
    assert!(second.contains("web-0        POST        /shop.Cart/Add"), "{text}");
}

/// A tmux server on its own socket, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(width: u16, height: u16, command: &str) -> Tmux {
        let found = Command::new("tmux").arg("-V").output();
        assert!(
            found.is_ok_and(|o| o.status.success()),
            "tmux is required for this test (Debian package `tmux`; scripts/test installs it)"
        );
        let socket = format!("meshlens-it-{}-{}", std::process::id(), next_socket_number());
        let tmux = Tmux { socket };
        let ok = tmux
            .cmd(&["new-session", "-d", "-x", &width.to_string(), "-y", &height.to_string(), command])
            .status
            .success();
        assert!(ok, "tmux new-session failed");
        tmux.cmd(&["set-option", "-g", "remain-on-exit", "on"]);
        tmux
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").args(["-L", &self.socket, "-f", "/dev/null"]).args(args).output().unwrap()
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p"]).stdout).into_owned()
    }

    fn pane(&self, format: &str) -> String {
        String::from_utf8_lossy(&self.cmd(&["display-message", "-p", format]).stdout).trim().to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let socket = self.pane("#{socket_path}");
        let _ = self.cmd(&["kill-server"]);
        if socket.ends_with(&self.socket) {
            let _ = std::fs::remove_file(socket);
        }
    }
}

fn next_socket_number() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

#[test]
fn top_in_a_real_terminal_draws_and_quits_on_q() {
    let (url, _) = fake_control();
    let bin = env!("CARGO_BIN_EXE_meshlens");
    let dir = TempDir::new("top-tmux");
    let status_file = dir.path().join("status");
    let tmux = Tmux::start(
        120,
        20,
        &format!("{bin} top deploy/live -n prod --control {url}; echo $? > {}", status_file.display()),
    );
    eventually_blocking(
        || tmux.screen().contains("web-0        POST        /shop.Cart/Add"),
        "top draws the rows of the tap stream",
    );
    let screen = tmux.screen();
    assert!(screen.starts_with("(press q to quit)\n"), "{screen}");
    assert!(screen.contains("Source     Destination  Method"), "{screen}");
    assert_eq!(tmux.pane("#{alternate_on}"), "1", "top runs on the alternate screen");

    tmux.cmd(&["send-keys", "q"]);
    // tmux marks the pane dead when the terminal closes and records the exit status once it reaps the
    // process: wait for both.
    // The exit status comes from the shell around top (tmux's own `pane_dead_status` is not always set).
    eventually_blocking(|| std::fs::read_to_string(&status_file).is_ok_and(|s| s.ends_with('\n')), "q quits top");
    assert_eq!(std::fs::read_to_string(&status_file).unwrap().trim(), "0", "top exits with status 0");
    eventually_blocking(|| tmux.pane("#{pane_dead}") == "1", "the pane's shell ends after top");
    assert_eq!(tmux.pane("#{alternate_on}"), "0", "the terminal is restored: back on the main screen");
    assert!(!tmux.screen().contains("Success Rate"), "the main screen does not keep the table");
}
