//! `meshlens up -f DIR` as a user runs it: processes, env wiring, table, session file, restarts, stop.
//!
//! These run against a stand-in control plane (`--control URL`), so what they check is the supervisor's
//! own work; `demo.rs` runs the real control plane.

use std::collections::BTreeSet;

use meshlens_testkit::backend::fixed;
use meshlens_testkit::process::Stream;
use meshlens_testkit::{ChildGuard, HttpBackend, eventually_blocking, http_get};

use crate::support::{GroupReaper, HTTP_PATIENCE, TempDir, addr, descendants, in_groups, meshlens, table};

const MESH: &str = r#"apiVersion: meshlens.io/v1alpha1
kind: Mesh
metadata: {name: small}
spec:
  namespaces: [prod]
  workloads:
    - name: web
      namespace: prod
      # A shell command with a child of its own (sleep): stopping web must stop that too.
      command: >-
        sleep 1000 &
        echo "ENV PORT=$PORT HTTP_PROXY=$HTTP_PROXY UP=$MESHLENS_UPSTREAM_API INSTANCE=$MESHLENS_INSTANCE
        NS=$MESHLENS_NAMESPACE WL=$MESHLENS_WORKLOAD CONTROL=$MESHLENS_CONTROL GREETING=$GREETING";
        exec meshlens demo-app --config apps/web.conf
      env: {GREETING: hello}
      calls: [api]
    - name: api
      namespace: prod
      replicas: 2
      command: [meshlens, demo-app, --config, apps/api.conf]
    - name: legacy
      namespace: prod
  services:
    - {name: web, namespace: prod, workload: web}
    - {name: api, namespace: prod, workload: api}
    - {name: legacy, namespace: prod, workload: legacy}
"#;

fn mesh_dir() -> TempDir {
    let dir = TempDir::new("up-mesh");
    dir.write("mesh.yaml", MESH);
    dir.write("apps/web.conf", "routes:\n  - {path: /hello, body: web says hi}\n");
    dir.write("apps/api.conf", "routes:\n  - {path: '/*'}\n");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_a_mesh_restarts_crashes_and_stops_cleanly() {
    let control = HttpBackend::start(fixed(200, "{}"));
    let control_url = format!("http://{}", control.addr());
    tokio::task::spawn_blocking(move || run_and_stop(control_url)).await.unwrap();
}

fn run_and_stop(control_url: String) {
    let dir = mesh_dir();
    let state = TempDir::new("up-state");
    // The external control plane's key and token, as `meshlens control` wrote them.
    let key = meshlens_control::auth::ProxyKey::generate();
    dir.write("secrets/proxy.key", &key.to_hex());
    dir.write("secrets/api.token", "external-token");
    let mut cmd = meshlens();
    cmd.args(["up", "-f"]).arg(dir.path()).args(["--control", &control_url, "--stop-grace", "5"]);
    cmd.arg("--proxy-key-file").arg(dir.path().join("secrets/proxy.key"));
    cmd.arg("--api-token-file").arg(dir.path().join("secrets/api.token"));
    cmd.env("XDG_STATE_HOME", state.path()).env_remove("NO_COLOR");
    // Declared before the guard of up: dropped after it, it kills whatever a failed test left.
    let mut reaper = GroupReaper(BTreeSet::new());
    let mut up = ChildGuard::spawn(&mut cmd).unwrap();
    let up_pid = up.id();

    up.wait_for_line(Stream::Stdout, |l| l.contains("all 3 apps accept connections"));
    let out = up.stdout_text();
    assert!(out.contains("using the control plane at"), "{out}");
    assert!(out.contains("3 proxies listening"), "external instances' proxies are the user's: {out}");
    let rows = table(&out);
    let names: Vec<&str> = rows.keys().map(String::as_str).collect();
    assert_eq!(names, ["prod/api-0", "prod/api-1", "prod/legacy-0", "prod/web-0"], "{out}");
    let web = &rows["prod/web-0"];
    let (web_app, web_out, web_admin) = (addr(&web[0]), addr(&web[2]), addr(&web[3]));
    let upstream = web[4].strip_prefix("api=").expect("web's upstream for api");
    assert!(out.contains("External instance prod/legacy-0"), "{out}");
    assert!(out.contains(&format!("meshlens proxy --control {control_url} --workload legacy")), "{out}");
    assert!(out.contains("curl -x http://"), "how to reach the mesh: {out}");

    // The app's environment: its port, its sidecar, its upstream, who it is, the workload's env.
    let env = up.wait_for_line(Stream::Stdout, |l| l.contains("ENV PORT="));
    assert!(env.starts_with("web-0 "), "prefixed with the instance name: {env}");
    for want in [
        format!("PORT={}", web_app.port()),
        format!("HTTP_PROXY=http://{web_out}"),
        format!("UP={upstream}"),
        "INSTANCE=web-0".into(),
        "NS=prod".into(),
        "WL=web".into(),
        format!("CONTROL={control_url}"),
        "GREETING=hello".into(),
    ] {
        assert!(env.contains(&want), "{want} in {env}");
    }

    // Everything serves: the app on its port, the proxy's admin listener.
    let hello = http_get(web_app, "web", "/hello", HTTP_PATIENCE).unwrap();
    assert_eq!((hello.status, hello.body.as_str()), (200, "web says hi"));
    assert_eq!(http_get(web_admin, "admin", "/live", HTTP_PATIENCE).unwrap().status, 200);

    // The session file points the CLI at the control plane.
    let session_path = state.path().join("meshlens/session.json");
    let session: serde_json::Value = serde_json::from_slice(&std::fs::read(&session_path).unwrap()).unwrap();
    assert_eq!(session["control"], control_url.as_str());
    assert_eq!(session["pid"], up_pid);
    assert_eq!(session["meshDir"], dir.path().to_str().unwrap());
    assert!(session["startedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(session["token"], "external-token");
    // Each proxy gets a credential minted with the external control plane's key, in a file.
    let credential = state.path().join(format!("meshlens/run-{up_pid}/prod.web-0.credential"));
    let credential = std::fs::read_to_string(&credential).unwrap();
    use meshlens_control::auth::ProxyCredentials;
    assert_eq!(key.verify(credential.trim()).unwrap().instance, "web-0");

    // Every process up started runs in a process group of its own.
    let children = descendants(up_pid);
    let groups: BTreeSet<u32> = children.iter().map(|p| p.pgid).collect();
    reaper.0.extend(&groups);
    let count = |what: &str| children.iter().filter(|p| p.cmdline.contains(what)).count();
    assert_eq!(count(" proxy --control"), 3, "{children:#?}");
    assert_eq!(count("demo-app --config apps/api.conf"), 2, "{children:#?}");
    assert_eq!(count("sleep 1000"), 1, "{children:#?}");
    assert!(!groups.contains(&up_pid), "children are not in up's own group: {children:#?}");

    // A killed app is restarted (with the same port), and up says so.
    let api = children.iter().find(|p| p.cmdline.contains("apps/api.conf")).unwrap();
    let environ = std::fs::read(format!("/proc/{}/environ", api.pid)).unwrap();
    let environ = String::from_utf8_lossy(&environ).into_owned();
    let instance = environ.split('\0').find_map(|kv| kv.strip_prefix("MESHLENS_INSTANCE=")).unwrap().to_owned();
    let api_app = addr(&rows[&format!("prod/{instance}")][0]);
    let killed = std::process::Command::new("kill").args(["-KILL", &api.pid.to_string()]).status().unwrap();
    assert!(killed.success());
    let restarting =
        up.wait_for_line(Stream::Stdout, |l| l.contains(&format!("{instance} exited (killed by SIGKILL)")));
    assert!(restarting.contains("restarting in 1 s"), "{restarting}");
    up.wait_for_line(Stream::Stdout, |l| l.contains(&format!("{instance} restarted (pid")));
    eventually_blocking(
        || http_get(api_app, "api", "/again", HTTP_PATIENCE).is_ok_and(|r| r.status == 200),
        "the restarted app serves on its old port",
    );
    reaper.0.extend(descendants(up_pid).iter().map(|p| p.pgid));

    // SIGTERM: everything stops, up exits 0, the session file is gone, no process is left.
    up.terminate();
    let status = up.wait_for_exit();
    assert_eq!(status.code(), Some(0), "{}", up.stdout_text());
    let out = up.stdout_text();
    assert!(out.contains("SIGTERM: stopping apps, then proxies, then the control plane"), "{out}");
    assert!(out.lines().last().unwrap_or_default().ends_with("| stopped"), "{out}");
    assert!(!session_path.exists(), "session file removed");
    let mut all_groups = reaper.0.clone();
    all_groups.insert(up_pid);
    eventually_blocking(|| in_groups(&all_groups).is_empty(), "no process left in up's or its children's groups");
}

#[test]
fn a_bad_mesh_directory_stops_up_with_the_reason() {
    let dir = TempDir::new("up-bad");
    let out = meshlens().args(["up", "-f"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mesh.yaml: cannot read"), "{err}");

    dir.write("mesh.yaml", &MESH.replace("      replicas: 2\n", "      replicas: 2\n      port: 8080\n"));
    let out = meshlens().args(["up", "-f"]).arg(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("spec.workloads[1] (api): port 8080 with replicas 2"), "{err}");
}

#[test]
fn a_proxy_that_cannot_start_stops_up_and_everything_it_started() {
    // A call the proxy can't turn into an upstream listener: clap refuses its flag value, the proxy exits 2 at start.
    let dir = TempDir::new("up-proxy-fails");
    dir.write(
        "mesh.yaml",
        "apiVersion: meshlens.io/v1alpha1\nkind: Mesh\nmetadata: {name: t}\nspec:\n  workloads:\n    - name: w\n      command: [meshlens, demo-app, --config-json, '{}']\n      calls: ['bad name!']\n",
    );
    let state = TempDir::new("up-proxy-fails-state");
    let out = meshlens()
        .args(["up", "-f"])
        .arg(dir.path())
        .args(["--control", "http://127.0.0.1:9"])
        .env("XDG_STATE_HOME", state.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("w-0/proxy exited (exit status 2) before it was ready"), "{stdout}");
    assert!(!state.path().join("meshlens/session.json").exists(), "session file removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_up_with_sigkill_leaves_no_orphans() {
    let control = HttpBackend::start(fixed(200, "{}"));
    let control_url = format!("http://{}", control.addr());
    tokio::task::spawn_blocking(move || {
        let dir = mesh_dir();
        let state = TempDir::new("up-killed-state");
        let mut cmd = meshlens();
        cmd.args(["up", "-f"]).arg(dir.path()).args(["--control", &control_url]);
        cmd.env("XDG_STATE_HOME", state.path());
        let up = ChildGuard::spawn(&mut cmd).unwrap();
        up.wait_for_line(Stream::Stdout, |l| l.contains("all 3 apps accept connections"));
        let children = descendants(up.id());
        let groups: BTreeSet<u32> = children.iter().map(|p| p.pgid).collect();
        let _reaper = GroupReaper(groups.clone());
        assert!(children.iter().any(|p| p.cmdline.contains("__reap")), "the watchdog runs: {children:#?}");
        // SIGKILL to up alone (not its group): it can't stop anything itself.
        let killed = std::process::Command::new("kill").args(["-KILL", &up.id().to_string()]).status().unwrap();
        assert!(killed.success());
        eventually_blocking(|| in_groups(&groups).is_empty(), "the watchdog stopped every process up started");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_a_workload_in_mesh_yaml_starts_and_stops_instances() {
    let control = HttpBackend::start(fixed(200, "{}"));
    let control_url = format!("http://{}", control.addr());
    tokio::task::spawn_blocking(move || {
        let dir = mesh_dir();
        let state = TempDir::new("up-scale-state");
        let mut reaper = GroupReaper(BTreeSet::new());
        let mut cmd = meshlens();
        cmd.args(["up", "-f"]).arg(dir.path()).args(["--control", &control_url, "--stop-grace", "5"]);
        cmd.env("XDG_STATE_HOME", state.path());
        let mut up = ChildGuard::spawn(&mut cmd).unwrap();
        up.wait_for_line(Stream::Stdout, |l| l.contains("all 3 apps accept connections"));
        reaper.0.extend(descendants(up.id()).iter().map(|p| p.pgid));

        // api: 2 → 3 replicas. The new instance starts with its proxy, and serves.
        dir.write("mesh.yaml", &MESH.replace("      replicas: 2\n", "      replicas: 3\n"));
        let line = up.wait_for_line(Stream::Stdout, |l| l.contains("mesh.yaml changed: started prod/api-2"));
        let app = line.split("app ").nth(1).and_then(|s| s.split(',').next()).unwrap();
        let app = addr(app);
        eventually_blocking(
            || http_get(app, "api", "/x", HTTP_PATIENCE).is_ok_and(|r| r.status == 200),
            "api-2 serves",
        );
        reaper.0.extend(descendants(up.id()).iter().map(|p| p.pgid));
        let api_procs = || descendants(up.id()).iter().filter(|p| p.cmdline.contains("--workload api ")).count();
        assert_eq!(api_procs(), 3, "three api proxies");

        // 3 → 1: api-1 and api-2 stop (apps and proxies), api-0 keeps running untouched.
        let api0 = descendants(up.id()).into_iter().find(|p| p.cmdline.contains("--instance api-0")).unwrap();
        dir.write("mesh.yaml", &MESH.replace("      replicas: 2\n", "      replicas: 1\n"));
        up.wait_for_line(Stream::Stdout, |l| l.contains("mesh.yaml changed: stopping prod/api-1, prod/api-2"));
        eventually_blocking(|| api_procs() == 1, "api-1 and api-2 stopped");
        assert!(descendants(up.id()).iter().any(|p| p.pid == api0.pid), "api-0's proxy was not restarted");
        assert!(!up.stdout_text().contains("api-1 exited"), "a stopped instance is not restarted");

        // An invalid mesh.yaml changes nothing, and says why.
        dir.write("mesh.yaml", "kind: Mesh\nspec: [\n");
        up.wait_for_line(Stream::Stdout, |l| l.contains("the running instances stay as they are"));
        assert_eq!(api_procs(), 1);

        up.terminate();
        assert_eq!(up.wait_for_exit().code(), Some(0), "{}", up.stdout_text());
        let mut groups = reaper.0.clone();
        groups.insert(up.id());
        eventually_blocking(|| in_groups(&groups).is_empty(), "no process left");
    })
    .await
    .unwrap();
}
