//! The credentials of a control plane run by hand (docs/security.md): it writes a new proxy key and API
//! token to its own private directory; the CLI needs the token, a standalone proxy registers with the
//! key, and one without it stays out of the mesh.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use meshlens_testkit::{ChildGuard, eventually_blocking, spawn_and_read_json_line};

use crate::support::{TempDir, meshlens};

const MESH: &str = "apiVersion: meshlens.io/v1alpha1
kind: Mesh
metadata: {name: creds}
spec:
  namespaces: [prod]
  services:
    - {name: web, namespace: prod, workload: web}
  workloads:
    - {name: web, namespace: prod}
";

/// `meshlens control` run by hand on a mesh directory holding `mesh_yaml`, writing its secrets to a fresh
/// directory (none from the environment); stopped on drop.
struct ByHand {
    _control: ChildGuard,
    api: std::net::SocketAddr,
    secrets_dir: std::path::PathBuf,
    _dirs: (TempDir, TempDir),
}

impl ByHand {
    fn start(tag: &str, mesh_yaml: &str) -> ByHand {
        let dir = TempDir::new(&format!("{tag}-mesh"));
        dir.write("mesh.yaml", mesh_yaml);
        let secrets = TempDir::new(&format!("{tag}-secrets"));
        let secrets_dir = secrets.path().join("control");
        let mut cmd = meshlens();
        cmd.args(["control", "--mesh-dir"]).arg(dir.path()).args(["--listen", "127.0.0.1:0", "--secrets-dir"]);
        cmd.arg(&secrets_dir);
        cmd.env_remove("MESHLENS_CONTROL_PROXY_KEY_FILE").env_remove("MESHLENS_CONTROL_API_TOKEN_FILE");
        let (control, line) = spawn_and_read_json_line(&mut cmd);
        let api = line["api"].as_str().unwrap().parse().unwrap();
        ByHand { _control: control, api, secrets_dir, _dirs: (dir, secrets) }
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn proxy(control: &str, instance: &str, key: Option<&Path>) -> ChildGuard {
    let mut cmd = meshlens();
    cmd.args(["proxy", "--control", control, "--workload", "web", "--namespace", "prod", "--instance", instance]);
    cmd.args(["--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--tap", "127.0.0.1:0"]);
    cmd.args(["--inbound", "127.0.0.1:0", "--app", "127.0.0.1:9"]);
    if let Some(key) = key {
        cmd.arg("--proxy-key-file").arg(key);
    }
    spawn_and_read_json_line(&mut cmd).0
}

fn status(control: &str, token_file: Option<&Path>) -> std::process::Output {
    let mut cmd: Command = meshlens();
    cmd.args(["diagnostics", "endpoints", "web.prod", "-o", "json", "--control", control]);
    cmd.env_remove("MESHLENS_CONTROL").env_remove("MESHLENS_API_TOKEN_FILE");
    if let Some(file) = token_file {
        cmd.arg("--api-token-file").arg(file);
    }
    cmd.output().unwrap()
}

#[test]
fn a_control_plane_run_by_hand_writes_its_secrets_and_checks_them() {
    let by_hand = ByHand::start("creds", MESH);
    let (control, secrets_dir) = (format!("http://{}", by_hand.api), &by_hand.secrets_dir);
    let (key, token) = (secrets_dir.join("proxy.key"), secrets_dir.join("api.token"));
    assert_eq!(mode(secrets_dir), 0o700);
    assert_eq!((mode(&key), mode(&token)), (0o600, 0o600));

    // The CLI without the token: the control plane's 401, said plainly.
    let out = status(&control, None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401") && stderr.contains("token"), "{stderr}");

    // A proxy with the key registers; one without any credential does not.
    let _web0 = proxy(&control, "web-0", Some(&key));
    let _evil = proxy(&control, "web-1", None);
    let endpoints = || {
        let out = status(&control, Some(&token));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    eventually_blocking(|| endpoints().contains("127.0.0.1"), "web-0 registers with the key");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let v: serde_json::Value = serde_json::from_str(&endpoints()).unwrap();
    let pods: Vec<&str> = v["web.prod"].as_array().unwrap().iter().map(|e| e["pod"].as_str().unwrap()).collect();
    assert_eq!(pods, ["web-0"], "only web-0 is an endpoint: {v}");
}

/// One raw HTTP/1 request with a JSON body (no credential, as an attacker sends it); the status.
fn raw(addr: std::net::SocketAddr, method: &str, path: &str, body: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

#[test]
fn forged_registrations_and_deletes_take_no_traffic_from_a_running_mesh() {
    let mesh = MESH.replace(
        "    - {name: web, namespace: prod}\n",
        "    - {name: web, namespace: prod}\n    - {name: client, namespace: prod}\n",
    );
    let by_hand = ByHand::start("creds-forge", &mesh);
    let control_addr = by_hand.api;
    let control = format!("http://{control_addr}");
    let key = by_hand.secrets_dir.join("proxy.key");

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let _in = rt.enter();
    let app = meshlens_testkit::HttpBackend::start(meshlens_testkit::backend::echo("web"));
    let attacker = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let evil = attacker.local_addr().unwrap();
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    rt.spawn(async move {
        while let Ok(_conn) = attacker.accept().await {
            h.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });

    let mut web = meshlens();
    web.args(["proxy", "--control", &control, "--workload", "web", "--namespace", "prod", "--instance", "web-0"]);
    web.args(["--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--tap", "127.0.0.1:0"]);
    web.args(["--inbound", "127.0.0.1:0", "--app", &app.addr().to_string()]).arg("--proxy-key-file").arg(&key);
    let (_web, _) = spawn_and_read_json_line(&mut web);
    let mut client = meshlens();
    client.args(["proxy", "--control", &control, "--workload", "client", "--namespace", "prod"]);
    client.args(["--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--tap", "127.0.0.1:0"]);
    client.arg("--proxy-key-file").arg(&key);
    let (_client, line) = spawn_and_read_json_line(&mut client);
    let outbound: std::net::SocketAddr = line["outbound"].as_str().unwrap().parse().unwrap();
    let get = || {
        let r =
            meshlens_testkit::http_get(outbound, "web.prod", "http://web.prod/", std::time::Duration::from_secs(20));
        r.map(|r| r.status).unwrap_or(0)
    };
    eventually_blocking(|| get() == 200, "web answers through client-0's proxy");

    // The attacks of issue 12: a new instance, the existing one's name, and DELETEs, without a credential.
    let forged = |instance: &str| {
        format!(
            r#"{{"workload":"web","namespace":"prod","instance":"{instance}","inbound":"{evil}","admin":"{evil}","tap":"{evil}"}}"#
        )
    };
    for round in 0..20 {
        assert_eq!(raw(control_addr, "POST", "/v1/proxies", &forged("web-evil")), 401);
        assert_eq!(raw(control_addr, "POST", "/v1/proxies", &forged("web-0")), 401);
        assert_eq!(raw(control_addr, "DELETE", "/v1/proxies/prod/web-0", ""), 401);
        for _ in 0..5 {
            assert_eq!(get(), 200, "round {round}: a request failed");
        }
    }
    assert!(app.requests() >= 100, "every request reached the real app: {}", app.requests());
    assert_eq!(hits.load(std::sync::atomic::Ordering::Relaxed), 0, "the attacker's listener got connections");
}
