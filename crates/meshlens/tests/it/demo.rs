//! `meshlens demo`: the exported mesh directory of every scenario, and the running shop.

use std::collections::BTreeSet;

use meshlens_api::mesh::Mesh;
use meshlens_api::profile::{ServiceProfile, TrafficSplit};
use meshlens_testkit::process::Stream;
use meshlens_testkit::{ChildGuard, HttpReply, eventually_blocking, http_get};

use crate::support::{GroupReaper, HTTP_PATIENCE, TempDir, addr, descendants, in_groups, meshlens, table};

const SCENARIOS: [&str; 7] =
    ["retry-storm", "timeout-504", "stale-split", "bad-headers", "split-math", "regex-miss", "slow-success"];

#[derive(serde::Deserialize)]
struct Kind {
    kind: String,
}

#[test]
fn export_writes_a_mesh_directory_for_every_scenario() {
    for scenario in std::iter::once(None).chain(SCENARIOS.map(Some)) {
        let dir = TempDir::new("export");
        let out_dir = dir.path().join("shop");
        let mut cmd = meshlens();
        cmd.args(["demo", "--export"]).arg(&out_dir);
        if let Some(s) = scenario {
            cmd.args(["--scenario", s]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{scenario:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("meshlens up -f"));

        let mesh: Mesh = serde_saphyr::from_str(&std::fs::read_to_string(out_dir.join("mesh.yaml")).unwrap()).unwrap();
        assert_eq!(mesh.kind, "Mesh");
        let workloads: BTreeSet<&str> = mesh.spec.workloads.iter().map(|w| w.name.as_str()).collect();
        for w in ["traffic", "frontend", "api-gateway", "user-service", "auth-service", "checkout-service"] {
            assert!(workloads.contains(w), "{scenario:?}: {w}");
        }
        assert!(mesh.spec.workloads.iter().all(|w| w.namespace == "prod"));
        let (mut profiles, mut splits) = (0, 0);
        for entry in std::fs::read_dir(&out_dir).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "yaml") || path.ends_with("mesh.yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let kind: Kind = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            match kind.kind.as_str() {
                "ServiceProfile" => {
                    let _: ServiceProfile = serde_saphyr::from_str(&text).unwrap();
                    profiles += 1;
                }
                "TrafficSplit" => {
                    let _: TrafficSplit = serde_saphyr::from_str(&text).unwrap();
                    splits += 1;
                }
                k => panic!("{}: kind {k}", path.display()),
            }
        }
        assert_eq!(profiles, 9, "{scenario:?}");
        assert_eq!(splits, if scenario == Some("split-math") { 2 } else { 1 }, "{scenario:?}");
        for entry in std::fs::read_dir(out_dir.join("apps")).unwrap().flatten() {
            let out = meshlens().args(["demo-app", "--check", "--config"]).arg(entry.path()).output().unwrap();
            assert!(out.status.success(), "{}: {}", entry.path().display(), String::from_utf8_lossy(&out.stderr));
        }
    }

    let dir = TempDir::new("export-busy");
    dir.write("something", "x");
    let out = meshlens().args(["demo", "--export"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not empty"));
}

/// The whole demo with the real control plane: it starts, frontend answers through a proxy (which
/// needs discovery from the control plane), and Ctrl-C (SIGINT) stops everything.
#[test]
fn demo_starts_serves_through_a_proxy_and_stops_cleanly() {
    let state = TempDir::new("demo-state");
    let mut cmd = meshlens();
    cmd.args(["demo", "--control-port", "0", "--rps", "5", "--stop-grace", "5"]).env("XDG_STATE_HOME", state.path());
    // Declared before the guard of demo: dropped after it, it kills whatever a failed test left.
    let mut reaper = GroupReaper(BTreeSet::new());
    let mut demo = ChildGuard::spawn(&mut cmd).unwrap();
    let pid = demo.id();
    demo.wait_for_line(Stream::Stdout, |l| l.contains("apps accept connections"));
    let out = demo.stdout_text();
    reaper.0.extend(descendants(pid).iter().map(|p| p.pgid));
    assert!(out.contains("all 16 apps accept connections"), "{out}");
    assert!(out.contains("control plane listening at http://127.0.0.1:"), "{out}");
    assert!(out.contains("curl -x http://"), "how to reach it: {out}");
    let session: serde_json::Value =
        serde_json::from_slice(&std::fs::read(state.path().join("meshlens/session.json")).unwrap()).unwrap();
    assert!(session["control"].as_str().unwrap().starts_with("http://127.0.0.1:"));
    // The CLI's API token is in the session file, private to the user; no secret is in any argv.
    use std::os::unix::fs::PermissionsExt;
    let token = session["token"].as_str().expect("the session file carries the API token");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state.path().join("meshlens/session.json")), 0o600);
    assert_eq!(mode(&state.path().join("meshlens")), 0o700);
    let children = descendants(pid);
    assert!(children.iter().any(|p| p.cmdline.contains("--credential-file")), "proxies get credential files");
    for p in &children {
        assert!(!p.cmdline.contains(token) && !p.cmdline.contains("mlp1:"), "a secret in argv: {}", p.cmdline);
    }

    let rows = table(&out);
    assert_eq!(rows.len(), 16, "{out}");
    let outbound = addr(&rows["prod/traffic-0"][2]);
    eventually_blocking(
        || http_get(outbound, "frontend", "http://frontend/products/42", HTTP_PATIENCE).is_ok_and(|r| r.status == 200),
        "frontend answers through traffic-0's proxy",
    );
    let body = http_get(outbound, "frontend", "http://frontend/products/42", HTTP_PATIENCE).unwrap().body;
    assert!(body.contains("\"service\":\"frontend\""), "{body}");

    // Ctrl-C.
    let int = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    assert!(int.success());
    let status = demo.wait_for_exit();
    assert_eq!(status.code(), Some(0), "{}", demo.stdout_text());
    assert!(!state.path().join("meshlens/session.json").exists());
    assert!(!state.path().join(format!("meshlens/run-{pid}")).exists(), "the secrets directory is removed");
    let mut groups = reaper.0.clone();
    groups.insert(pid);
    eventually_blocking(|| in_groups(&groups).is_empty(), "no process left");
}

/// The shop's call graph itself, without the mesh: every demo app started directly, each call wired to
/// the called service's first instance through MESHLENS_UPSTREAM_<SERVICE>, and the traffic generator's
/// whole mix answered with 200 (so a failure in the demo is the mesh's, or a scenario's, never the
/// shop's own).
#[test]
fn the_healthy_shop_answers_every_page_without_the_mesh() {
    let dir = TempDir::new("shop-direct");
    let shop = dir.path().join("shop");
    assert!(meshlens().args(["demo", "--export"]).arg(&shop).output().unwrap().status.success());
    // Leaves first, so every app's callees are listening when it starts.
    let order: [(&str, &str, &[&str]); 9] = [
        ("ml-inference", "ml-inference-a", &[]),
        ("user-service", "user-service", &[]),
        ("auth-service", "auth-service", &[]),
        ("order-service", "order-service", &[]),
        ("payment-service", "payment-service", &["order-service"]),
        ("checkout-service", "checkout-service", &["payment-service"]),
        ("api-gateway", "api-gateway", &["user-service", "auth-service"]),
        ("recommendation-service", "recommendation-service", &["ml-inference"]),
        ("frontend", "frontend", &["api-gateway", "checkout-service", "recommendation-service"]),
    ];
    let mut addrs = std::collections::BTreeMap::new();
    let mut guards = Vec::new();
    for (service, config, calls) in order {
        let mut cmd = meshlens();
        cmd.current_dir(&shop)
            .args(["demo-app", "--listen", "127.0.0.1:0", "--config"])
            .arg(format!("apps/{config}.conf"));
        for k in ["HTTP_PROXY", "http_proxy", "MESHLENS_SUPERVISOR_PID"] {
            cmd.env_remove(k);
        }
        for c in calls {
            let var = format!("MESHLENS_UPSTREAM_{}", c.to_uppercase().replace('-', "_"));
            cmd.env(var, addrs.get(*c).map(ToString::to_string).unwrap());
        }
        let (guard, line) = meshlens_testkit::spawn_and_read_json_line(&mut cmd);
        addrs.insert(service, addr(line["addr"].as_str().unwrap()));
        guards.push(guard);
    }
    let frontend = addrs["frontend"];
    for path in ["/", "/products/42", "/account/7"] {
        let HttpReply { status, body, .. } = http_get(frontend, "frontend", path, HTTP_PATIENCE).unwrap();
        assert_eq!(status, 200, "{path}: {body}");
    }
    let mut load = meshlens();
    load.args(["demo-load", "--target", "http://frontend", "--rps", "50", "--requests", "40", "--report-every", "1s"]);
    load.env_remove("HTTP_PROXY").env_remove("http_proxy").env_remove("PORT");
    load.env("MESHLENS_UPSTREAM_FRONTEND", frontend.to_string());
    let out = load.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let totals: serde_json::Value = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message"] == "load totals")
        .unwrap_or_else(|| panic!("no totals line: {stdout}"));
    assert_eq!(totals["total"], 40, "{totals}");
    assert_eq!(totals["total_failed"], 0, "{totals}");
}
