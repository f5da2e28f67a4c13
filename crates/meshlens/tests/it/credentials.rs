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
    let dir = TempDir::new("creds-mesh");
    dir.write("mesh.yaml", MESH);
    let secrets = TempDir::new("creds-secrets");
    let secrets_dir = secrets.path().join("control");
    let mut cmd = meshlens();
    cmd.args(["control", "--mesh-dir"]).arg(dir.path()).args(["--listen", "127.0.0.1:0", "--secrets-dir"]);
    cmd.arg(&secrets_dir);
    cmd.env_remove("MESHLENS_CONTROL_PROXY_KEY_FILE").env_remove("MESHLENS_CONTROL_API_TOKEN_FILE");
    let (_control, line) = spawn_and_read_json_line(&mut cmd);
    let control = format!("http://{}", line["api"].as_str().unwrap());
    let (key, token) = (secrets_dir.join("proxy.key"), secrets_dir.join("api.token"));
    assert_eq!(mode(&secrets_dir), 0o700);
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
