//! End-to-end acceptance of the local mesh (issue 4, "What it must show"): the real `meshlens up` with the
//! real control plane, sidecars and `meshlens demo-app` instances, driven from outside the way a user
//! drives it: requests through an instance's OUTBOUND listener (an HTTP proxy into the mesh), edits to
//! the mesh directory (atomic: temp file + rename), SIGKILL to the control plane, a workload scaled up.
//!
//! The mesh: workload `client` (1 instance, a demo app that calls `web`) and workload `web` (2 instances),
//! service `web`. Steady load is sent from the test through client-0's sidecar, so every request crosses
//! client-0's proxy → a web proxy → a web app.
//!
//! Measured numbers (time to serve, reload-to-effect latency, control plane memory) are printed with
//! `eprintln!`: `cargo test -p meshlens --test it mesh_e2e -- --nocapture`. The tests of this module run
//! one at a time (each runs a whole mesh; the latencies they measure should not be each other's).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use meshlens_testkit::process::Stream;
use meshlens_testkit::prom::{Sample, parse_prometheus, sum};
use meshlens_testkit::{ChildGuard, HttpReply, eventually_blocking, http_get, http_get_as, write_atomic};
use serde_json::Value;

use crate::support::{GroupReaper, TempDir, addr, descendants, in_groups, meshlens, table};

// ---------------------------------------------------------------------------------------------------
// The mesh directory.

/// `mesh.yaml`: services first, so cutting the file anywhere in `workloads` leaves a service whose
/// workload is gone.
fn mesh_yaml(web_replicas: u32, extra_services: &[&str]) -> String {
    let mut s = String::from(
        "apiVersion: meshlens.io/v1alpha1\n\
         kind: Mesh\n\
         metadata: {name: e2e}\n\
         spec:\n  \
           namespaces: [prod]\n  \
           services:\n    \
             - {name: web, namespace: prod, workload: web}\n",
    );
    for svc in extra_services {
        s.push_str(&format!("    {svc}\n"));
    }
    s.push_str(&format!(
        "  workloads:\n    \
           - name: client\n      \
             namespace: prod\n      \
             command: [meshlens, demo-app, --config, apps/client.conf]\n      \
             calls: [web]\n    \
           - name: web\n      \
             namespace: prod\n      \
             replicas: {web_replicas}\n      \
             command: [meshlens, demo-app, --config, apps/web.conf]\n"
    ));
    s
}

/// web answers every path with a JSON description of the request (which names the instance).
const WEB_CONF: &str = "routes:\n  - {path: '/*'}\n";
/// client's `/call` calls web through its sidecar (HTTP_PROXY).
const CLIENT_CONF: &str = "routes:\n  - path: /call\n    calls: [{service: web, path: /from-client}]\n";

/// A valid ServiceProfile for web.
const PROFILE: &str = "apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: web.prod.svc.cluster.local
  namespace: prod
spec:
  routes:
    - name: GET /hello
      condition: {method: GET, pathRegex: /hello}
      timeout: 5s
";

/// The profile with a second route.
const PROFILE_TWO_ROUTES: &str = "apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: web.prod.svc.cluster.local
  namespace: prod
spec:
  routes:
    - name: GET /hello
      condition: {method: GET, pathRegex: /hello}
      timeout: 5s
    - name: GET /slow
      condition: {method: GET, pathRegex: /slow}
      timeout: 2s
";

const SPLIT: &str = "apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: api-split, namespace: prod}
spec:
  service: api
  backends:
    - {service: web, weight: 100}
";

/// The 1-based number of the `nth` (0-based) line of `text` that contains `needle`.
fn line_of(text: &str, needle: &str, nth: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(nth)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} (#{nth}) is not in\n{text}"))
}

// ---------------------------------------------------------------------------------------------------
// HTTP/1.1 GETs (meshlens_testkit::http_get keeps the head for `l5d-proxy-error`).

/// `GET http://web{path}` through a proxy's outbound listener.
fn via_proxy(outbound: SocketAddr, service: &str, path: &str) -> std::io::Result<HttpReply> {
    http_get(outbound, service, &format!("http://{service}{path}"), Duration::from_secs(10))
}

fn get_json(addr: SocketAddr, path: &str) -> Option<Value> {
    get_json_as(addr, path, None)
}

fn get_json_as(addr: SocketAddr, path: &str, token: Option<&str>) -> Option<Value> {
    let r = http_get_as(addr, "localhost", path, Duration::from_secs(5), token).ok()?;
    if r.status != 200 {
        return None;
    }
    serde_json::from_str(&r.body).ok()
}

fn metrics(admin: SocketAddr) -> Vec<Sample> {
    let r = http_get(admin, "localhost", "/metrics", Duration::from_secs(5)).expect("GET /metrics");
    assert_eq!(r.status, 200, "{admin}/metrics: {}", r.describe());
    parse_prometheus(&r.body)
}

// ---------------------------------------------------------------------------------------------------
// A proxy's discovery state (admin `/config` → `discovery`).

fn discovery(admin: SocketAddr) -> Option<Value> {
    get_json(admin, "/config").map(|c| c["discovery"].clone())
}

fn version(d: &Value) -> u64 {
    d["version"].as_u64().unwrap_or(0)
}

fn service<'a>(d: &'a Value, name: &str) -> Option<&'a Value> {
    d["services"].as_array()?.iter().find(|s| s["name"] == name)
}

/// The endpoint addresses of a service (None: no such service).
fn endpoints(d: &Value, name: &str) -> Option<BTreeSet<String>> {
    let eps = service(d, name)?["endpoints"].as_array().cloned().unwrap_or_default();
    Some(eps.iter().filter_map(|e| e["address"].as_str().map(str::to_owned)).collect())
}

fn names_of(d: &Value, key: &str) -> BTreeSet<String> {
    d[key]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn profile<'a>(d: &'a Value, name: &str) -> Option<&'a Value> {
    d["profiles"].as_array()?.iter().find(|p| p["metadata"]["name"] == name)
}

/// `version 12: web [a, b], api [c]; profiles [..]; splits [..]`.
fn summary(d: &Value) -> String {
    let services: Vec<String> = d["services"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let name = s["name"].as_str().unwrap_or_default();
                    format!("{name} {:?}", endpoints(d, name).unwrap_or_default())
                })
                .collect()
        })
        .unwrap_or_default();
    format!(
        "version {}: {}; profiles {:?}; splits {:?}",
        version(d),
        services.join(", "),
        names_of(d, "profiles"),
        names_of(d, "trafficSplits")
    )
}

/// The discovery state without its version, endpoints in address order (what "the same state" means).
fn state(d: &Value) -> Value {
    let mut d = d.clone();
    if let Some(o) = d.as_object_mut() {
        o.remove("version");
    }
    if let Some(services) = d["services"].as_array_mut() {
        for s in services {
            if let Some(eps) = s["endpoints"].as_array_mut() {
                eps.sort_by(|a, b| a["address"].as_str().cmp(&b["address"].as_str()));
            }
        }
    }
    d
}

// ---------------------------------------------------------------------------------------------------
// A running `meshlens up`.

/// Each test runs a whole mesh; two at once on a 2-core machine would measure each other.
static ONE_MESH_AT_A_TIME: Mutex<()> = Mutex::new(());

pub(crate) fn one_mesh_at_a_time() -> MutexGuard<'static, ()> {
    ONE_MESH_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Clone, Copy, Debug)]
struct Instance {
    app: SocketAddr,
    inbound: SocketAddr,
    outbound: SocketAddr,
    admin: SocketAddr,
}

/// `meshlens up -f DIR --control-port 0` on a temp mesh directory. Dropping it kills `up` (its watchdog
/// stops the rest) and then every process group it was seen to start.
struct Mesh {
    // Drop order is declaration order: up first, then the groups it started, then the directories.
    up: ChildGuard,
    reaper: GroupReaper,
    dir: TempDir,
    _state: TempDir,
    control: SocketAddr,
    /// `client-0`, `web-0`, … (instances added while it runs too).
    instances: BTreeMap<String, Instance>,
}

impl Mesh {
    /// Starts the mesh (`web_replicas` web instances; `extra` files beside mesh.yaml) and waits until it
    /// serves: a request through client-0's sidecar answered by web, and every proxy knowing every web
    /// instance. Prints the time from `meshlens up` to the first answered request.
    fn start(name: &str, web_replicas: u32, extra: &[(&str, &str)]) -> Mesh {
        let dir = TempDir::new(name);
        dir.write("mesh.yaml", &mesh_yaml(web_replicas, &[]));
        dir.write("apps/web.conf", WEB_CONF);
        dir.write("apps/client.conf", CLIENT_CONF);
        for (rel, text) in extra {
            dir.write(rel, text);
        }
        let state = TempDir::new(&format!("{name}-state"));
        let mut cmd = meshlens();
        cmd.args(["up", "-f"]).arg(dir.path()).args(["--control-port", "0", "--stop-grace", "5"]);
        cmd.env("XDG_STATE_HOME", state.path()).env("NO_COLOR", "1");
        let t0 = Instant::now();
        let up = ChildGuard::spawn(&mut cmd).unwrap();
        // Owned by the mesh at once, so a failed start still kills what it started.
        let mut mesh = Mesh {
            up,
            reaper: GroupReaper(BTreeSet::new()),
            dir,
            _state: state,
            control: addr("127.0.0.1:9"),
            instances: BTreeMap::new(),
        };
        let apps = 1 + web_replicas;
        let ready = mesh.up.wait_for_line(Stream::Stdout, |l| {
            l.contains("apps accept connections") || l.contains("not accepting connections")
        });
        mesh.track();
        assert!(ready.contains(&format!("all {apps} apps accept connections")), "{ready}");
        let out = mesh.up.stdout_text();
        let control = out
            .lines()
            .find_map(|l| l.split("control plane listening at http://").nth(1))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("no control plane address in\n{out}"));
        mesh.control = addr(control);
        for (row, cols) in table(&out) {
            let name = row.strip_prefix("prod/").unwrap_or(&row).to_owned();
            let i = Instance {
                app: addr(&cols[0]),
                inbound: addr(&cols[1]),
                outbound: addr(&cols[2]),
                admin: addr(&cols[3]),
            };
            mesh.instances.insert(name, i);
        }
        let names: Vec<&String> = mesh.instances.keys().collect();
        assert_eq!(names.len(), apps as usize, "{out}");

        let outbound = mesh.instance("client-0").outbound;
        eventually_blocking(
            || via_proxy(outbound, "web", "/ready").is_ok_and(|r| r.status == 200),
            "web answers through client-0's proxy",
        );
        eprintln!(
            "[e2e] {name}: meshlens up → first request served through the mesh: {:.2} s",
            t0.elapsed().as_secs_f64()
        );
        let webs = mesh.web_inbounds();
        mesh.wait_proxies("every proxy knows every web instance", |d| endpoints(d, "web").as_ref() == Some(&webs));
        mesh
    }

    fn instance(&self, name: &str) -> Instance {
        *self.instances.get(name).unwrap_or_else(|| panic!("no instance {name}: {:?}", self.instances.keys()))
    }

    /// The inbound addresses of the web instances (what service web's endpoints must be).
    fn web_inbounds(&self) -> BTreeSet<String> {
        self.instances.iter().filter(|(n, _)| n.starts_with("web-")).map(|(_, i)| i.inbound.to_string()).collect()
    }

    /// Every proxy's admin address.
    fn admins(&self) -> Vec<(String, SocketAddr)> {
        self.instances.iter().map(|(n, i)| (n.clone(), i.admin)).collect()
    }

    /// Remembers the process groups `up` runs now, so they are killed even if the test fails.
    fn track(&mut self) {
        self.reaper.0.extend(descendants(self.up.id()).iter().map(|p| p.pgid));
    }

    fn status(&self) -> Value {
        self.api("/api/v1/status").expect("control plane /api/v1/status")
    }

    /// `GET path` on the control plane with the API token of the session file, as the CLI sends it.
    fn api(&self, path: &str) -> Option<Value> {
        let session = std::fs::read(self._state.path().join("meshlens/session.json")).ok()?;
        let session: Value = serde_json::from_slice(&session).ok()?;
        get_json_as(self.control, path, session["token"].as_str())
    }

    fn wait_proxies(&self, what: &str, pred: impl Fn(&Value) -> bool) {
        let admins = self.admins();
        eventually_blocking(|| admins.iter().all(|(_, a)| discovery(*a).is_some_and(|d| pred(&d))), what);
    }

    /// Runs `edit` (a change of the mesh directory), then polls every proxy's `/config` until its
    /// discovery has a newer version for which `reached` holds. Returns the time from the edit to the
    /// last proxy (and prints it, with each proxy's), or what the proxies still had after 10 s.
    fn propagate(
        &self,
        what: &str,
        edit: impl FnOnce(&Path),
        reached: impl Fn(&Value) -> bool,
    ) -> Result<Duration, String> {
        let admins = self.admins();
        let before: BTreeMap<String, u64> = admins
            .iter()
            .map(|(n, a)| (n.clone(), discovery(*a).map(|d| version(&d)).unwrap_or_else(|| panic!("{n}: /config"))))
            .collect();
        let t0 = Instant::now();
        edit(self.dir.path());
        let mut pending: BTreeMap<String, SocketAddr> = admins.into_iter().collect();
        let mut seen = BTreeMap::new();
        let deadline = Duration::from_secs(10);
        while !pending.is_empty() && t0.elapsed() < deadline {
            for (name, admin) in pending.clone() {
                if discovery(admin).is_some_and(|d| version(&d) > before[&name] && reached(&d)) {
                    seen.insert(name.clone(), t0.elapsed());
                    pending.remove(&name);
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if !pending.is_empty() {
            let stuck: Vec<String> = pending
                .iter()
                .map(|(n, a)| format!("  {n}: {}", discovery(*a).map(|d| summary(&d)).unwrap_or_default()))
                .collect();
            let status = self.api("/api/v1/status").unwrap_or_default();
            let msg = format!(
                "{what}: not on every proxy within {deadline:?} (control plane: version {}, complete {}, uptime {} s); they have:\n{}",
                status["version"],
                status["complete"],
                status["uptimeSeconds"],
                stuck.join("\n")
            );
            eprintln!("[e2e] reload-to-effect, {msg}");
            return Err(msg);
        }
        let max = seen.values().copied().max().unwrap_or_default();
        let each: Vec<String> = seen.iter().map(|(n, d)| format!("{n} {} ms", d.as_millis())).collect();
        eprintln!("[e2e] reload-to-effect, {what}: {} ms ({})", max.as_millis(), each.join(", "));
        Ok(max)
    }

    /// SIGTERM to `up`: it exits 0 and leaves no process behind.
    fn stop(mut self) {
        self.track();
        self.up.terminate();
        let status = self.up.wait_for_exit();
        assert_eq!(status.code(), Some(0), "{}", self.up.stdout_text());
        let mut groups = self.reaper.0.clone();
        groups.insert(self.up.id());
        eventually_blocking(|| in_groups(&groups).is_empty(), "no process left in up's or its children's groups");
    }
}

// ---------------------------------------------------------------------------------------------------
// Steady load.

/// A request that did not get a 2xx answer.
struct Failure {
    at: Instant,
    what: String,
}

struct LoadReport {
    sent: u64,
    ok: u64,
    failures: Vec<Failure>,
}

/// Sends `GET http://web/load` through a proxy's outbound listener at `rps` from a background thread,
/// until stopped, `max` has passed or `rps * max` requests were sent.
struct Load {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<LoadReport>>,
}

impl Load {
    fn start(outbound: SocketAddr, rps: u32, max: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let interval = Duration::from_secs(1) / rps;
            let limit = u64::from(rps) * max.as_secs().max(1);
            let t0 = Instant::now();
            let mut report = LoadReport { sent: 0, ok: 0, failures: Vec::new() };
            for n in 0..limit {
                if flag.load(Ordering::Relaxed) || t0.elapsed() >= max {
                    break;
                }
                let due = t0 + interval * n as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let at = Instant::now();
                report.sent += 1;
                match via_proxy(outbound, "web", &format!("/load/{n}")) {
                    Ok(r) if (200..300).contains(&r.status) => report.ok += 1,
                    Ok(r) => report.failures.push(Failure { at, what: r.describe() }),
                    Err(e) => report.failures.push(Failure { at, what: format!("error: {e}") }),
                }
            }
            report
        });
        Load { stop, thread: Some(thread) }
    }

    fn finish(mut self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().expect("load thread")
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Failures grouped by the last mark (an edit, a kill) before each, and by what went wrong.
fn attribute(failures: &[Failure], marks: &[(Instant, String)]) -> String {
    let mut groups: BTreeMap<(usize, String), usize> = BTreeMap::new();
    for f in failures {
        let mark = marks.iter().rposition(|(at, _)| *at <= f.at).map_or(0, |i| i + 1);
        *groups.entry((mark, f.what.clone())).or_default() += 1;
    }
    groups
        .iter()
        .map(|((mark, what), n)| {
            let when =
                if *mark == 0 { "before the first mark".to_owned() } else { format!("after {}", marks[mark - 1].1) };
            format!("  {n} × {what}, {when}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------------
// The tests.

/// app → proxy → proxy → app: a request sent to client-0's OUTBOUND listener (absolute form, as an
/// app with HTTP_PROXY sends it) reaches a web app through web's sidecar, over both web instances; and
/// the client app's own call to web (through its sidecar) succeeds.
#[test]
fn a_request_crosses_app_proxy_proxy_app() {
    let _one = one_mesh_at_a_time();
    let mesh = Mesh::start("e2e-request", 2, &[]);
    let client = mesh.instance("client-0");

    let r = via_proxy(client.outbound, "web", "/hello").unwrap();
    assert_eq!(r.status, 200, "{}", r.describe());
    let body: Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body));
    assert_eq!(body["service"], "web", "{body}");
    assert_eq!(body["path"], "/hello", "{body}");

    let mut answered_by = BTreeSet::new();
    for i in 0..20 {
        let r = via_proxy(client.outbound, "web", &format!("/hello/{i}")).unwrap();
        assert_eq!(r.status, 200, "{}", r.describe());
        let body: Value = serde_json::from_str(&r.body).unwrap();
        answered_by.insert(body["instance"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(answered_by, BTreeSet::from(["web-0".to_owned(), "web-1".to_owned()]), "both web instances serve");

    // The client app itself calls web through its sidecar (HTTP_PROXY).
    let r = http_get(client.app, "client", "/call", Duration::from_secs(10)).unwrap();
    assert_eq!(r.status, 200, "{}", r.describe());
    let body: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(body["calls"][0]["service"], "web", "{body}");
    assert_eq!(body["calls"][0]["status"], 200, "{body}");

    // Both proxies of each hop counted the requests: client-0 outbound, web-0 + web-1 inbound.
    let outbound = sum(&metrics(client.admin), "request_total", &[("direction", "outbound"), ("dst_service", "web")]);
    assert!(outbound.unwrap_or(0.0) >= 22.0, "client-0's proxy counted {outbound:?} outbound requests to web");
    let inbound: f64 = ["web-0", "web-1"]
        .iter()
        .map(|w| sum(&metrics(mesh.instance(w).admin), "request_total", &[("direction", "inbound")]).unwrap_or(0.0))
        .sum();
    assert!(inbound >= 22.0, "web's proxies counted {inbound} inbound requests");
    mesh.stop();
}

/// A valid edit of the mesh directory (a new service, a changed endpoint set, a new and a changed
/// ServiceProfile, a TrafficSplit added and removed, a service removed) reaches every proxy's discovery
/// (admin /config) within 1 s: the median of the edits ≤ 1 s, and each ≤ 3 s (CI load). The edits are
/// made right after `up` started, as a user makes them, and the endpoint-set changes once more after the
/// control plane's start-up grace period (its snapshots say `complete: true` from then on).
#[test]
fn mesh_edits_reach_every_proxy_within_a_second() {
    let _one = one_mesh_at_a_time();
    let mesh = Mesh::start("e2e-reload", 2, &[]);
    let webs = mesh.web_inbounds();
    let client = BTreeSet::from([mesh.instance("client-0").inbound.to_string()]);
    let profile_name = "web.prod.svc.cluster.local";
    let api_on = |workload: &str| format!("- {{name: api, namespace: prod, workload: {workload}}}");
    let mut results: Vec<(String, Result<Duration, String>)> = Vec::new();
    let mut run = |what: &str, edit: &dyn Fn(&Path), reached: &dyn Fn(&Value) -> bool| {
        results.push((what.to_owned(), mesh.propagate(what, edit, reached)));
    };

    run(
        "a new service (api → workload web)",
        &|dir| write_atomic(dir, "mesh.yaml", &mesh_yaml(2, &[&api_on("web")])),
        &|d| endpoints(d, "api").as_ref() == Some(&webs),
    );
    run(
        "a changed endpoint set (api → workload client)",
        &|dir| write_atomic(dir, "mesh.yaml", &mesh_yaml(2, &[&api_on("client")])),
        &|d| endpoints(d, "api").as_ref() == Some(&client),
    );
    run("a new ServiceProfile", &|dir| write_atomic(dir, "web.profile.yaml", PROFILE), &|d| {
        profile(d, profile_name).is_some()
    });
    run(
        "a changed ServiceProfile (a second route)",
        &|dir| write_atomic(dir, "web.profile.yaml", PROFILE_TWO_ROUTES),
        &|d| profile(d, profile_name).is_some_and(|p| p["spec"]["routes"].as_array().is_some_and(|r| r.len() == 2)),
    );
    run("a new TrafficSplit", &|dir| write_atomic(dir, "api.split.yaml", SPLIT), &|d| {
        names_of(d, "trafficSplits").contains("api-split")
    });
    run("a TrafficSplit removed", &|dir| std::fs::remove_file(dir.join("api.split.yaml")).unwrap(), &|d| {
        names_of(d, "trafficSplits").is_empty()
    });
    run("a service removed", &|dir| write_atomic(dir, "mesh.yaml", &mesh_yaml(2, &[])), &|d| {
        service(d, "api").is_none()
    });

    // After the start-up grace period (2 lease periods): the endpoint set changes again.
    eventually_blocking(|| mesh.status()["complete"] == true, "the control plane's snapshots are complete");
    run(
        "a new service (api → workload web), after the grace period",
        &|dir| write_atomic(dir, "mesh.yaml", &mesh_yaml(2, &[&api_on("web")])),
        &|d| endpoints(d, "api").as_ref() == Some(&webs),
    );
    run(
        "a changed endpoint set (api → workload client), after the grace period",
        &|dir| write_atomic(dir, "mesh.yaml", &mesh_yaml(2, &[&api_on("client")])),
        &|d| endpoints(d, "api").as_ref() == Some(&client),
    );

    let took: Vec<Duration> = results.iter().filter_map(|(_, r)| r.as_ref().ok().copied()).collect();
    let failed: Vec<String> =
        results.iter().filter_map(|(what, r)| r.as_ref().err().map(|e| format!("{what}: {e}"))).collect();
    let med = median(took.clone());
    let max = took.iter().max().copied().unwrap_or_default();
    eprintln!(
        "[e2e] reload-to-effect over {} edits that arrived: median {} ms, max {} ms; {} did not arrive within 10 s",
        took.len(),
        med.as_millis(),
        max.as_millis(),
        failed.len()
    );
    assert!(
        failed.is_empty(),
        "{} of {} edits did not reach every proxy:\n{}",
        failed.len(),
        results.len(),
        failed.join("\n")
    );
    assert!(med <= Duration::from_secs(1), "median reload-to-effect {med:?} > 1 s: {took:?}");
    assert!(max <= Duration::from_secs(3), "an edit took {max:?} (> 3 s) to reach every proxy: {took:?}");
    let status = mesh.status();
    assert_eq!(status["reload"]["ok"], true, "{status}");
    assert_eq!(status["reload"]["rejected"], 0, "{status}");
    mesh.stop();
}

/// Where a rejected edit's message must point.
enum Place {
    /// `file:LINE: <text>`: the line and the start of the message are known.
    Exact(String),
    /// `file:<some line>:` (YAML syntax errors: the parser reports where it noticed).
    AnyLine(&'static str),
}

impl Place {
    fn found_in(&self, error: &str) -> bool {
        match self {
            Place::Exact(s) => error.contains(s.as_str()),
            Place::AnyLine(file) => error.lines().any(|l| {
                l.strip_prefix(file)
                    .and_then(|r| r.strip_prefix(':'))
                    .and_then(|r| r.split_once(':'))
                    .is_some_and(|(line, _)| !line.is_empty() && line.chars().all(|c| c.is_ascii_digit()))
            }),
        }
    }

    fn describe(&self) -> String {
        match self {
            Place::Exact(s) => format!("{s:?}"),
            Place::AnyLine(file) => format!("{file}:<line>:"),
        }
    }
}

/// An edit the control plane must reject: what it is, the file it replaces, its text, where the
/// message must point.
struct InvalidEdit {
    what: &'static str,
    file: &'static str,
    text: String,
    place: Place,
}

impl InvalidEdit {
    /// Rejected with `msg` at the line of `text` holding the `nth` (from 0) occurrence of `needle`.
    fn at(what: &'static str, file: &'static str, text: String, needle: &str, nth: usize, msg: &str) -> InvalidEdit {
        let place = Place::Exact(format!("{file}:{}: {msg}", line_of(&text, needle, nth)));
        InvalidEdit { what, file, text, place }
    }

    /// Rejected at some line of `file` (YAML syntax errors).
    fn anywhere(what: &'static str, file: &'static str, text: String) -> InvalidEdit {
        InvalidEdit { what, file, text, place: Place::AnyLine(file) }
    }
}

/// 20 invalid edits in a row, each of a kind a user makes, and where its message must point.
fn invalid_edits() -> Vec<InvalidEdit> {
    let good = mesh_yaml(2, &[]);
    let (at, anywhere) = (InvalidEdit::at, InvalidEdit::anywhere);
    let (profile, mesh) = ("web.profile.yaml", "mesh.yaml");
    let edits = vec![
        // ServiceProfile file (web.profile.yaml holds a valid profile in the good state).
        at(
            "a regex that does not compile",
            profile,
            PROFILE.replace("pathRegex: /hello}", "pathRegex: '/hello/('}"),
            "pathRegex",
            0,
            "spec.routes[0].condition.pathRegex: '/hello/(' is not a valid regular expression",
        ),
        at(
            "duplicate route names",
            profile,
            PROFILE_TWO_ROUTES.replace("GET /slow", "GET /hello"),
            "- name: GET /hello",
            1,
            "spec.routes[1].name: duplicate route name 'GET /hello'",
        ),
        at(
            "a timeout that is not a duration",
            profile,
            PROFILE.replace("timeout: 5s", "timeout: 5 seconds"),
            "timeout",
            0,
            "spec.routes[0].timeout: '5 seconds' is not a duration",
        ),
        // A kind of another API group (a ConfigMap) is skipped; an unknown kind of a mesh group is a typo.
        at(
            "an unknown kind",
            profile,
            PROFILE.replace("kind: ServiceProfile", "kind: ServiceProfiles"),
            "kind:",
            0,
            "kind: unknown kind 'ServiceProfiles'",
        ),
        at(
            "a profile of an undeclared service",
            profile,
            PROFILE.replace("name: web.prod.svc", "name: shop.prod.svc"),
            "name: shop.prod",
            0,
            "metadata.name: no service 'shop' in namespace 'prod'",
        ),
        anywhere(
            "a truncated profile (cut mid-line)",
            profile,
            PROFILE[..PROFILE.find("pathRegex").unwrap() + 5].to_owned(),
        ),
        anywhere("bad YAML in a profile (an unclosed [)", profile, PROFILE.replace("  routes:\n", "  routes: [\n")),
        at(
            "a split backend that is no service",
            "web.split.yaml",
            SPLIT
                .replace("spec:\n  service: api", "spec:\n  service: web")
                .replace("{service: web,", "{service: nowhere,"),
            "nowhere",
            0,
            "spec.backends[0].service: no service 'nowhere' in namespace 'prod'",
        ),
        // mesh.yaml.
        InvalidEdit {
            what: "an empty mesh.yaml",
            file: mesh,
            text: String::new(),
            place: Place::Exact("mesh.yaml:1: the file is empty".into()),
        },
        anywhere("mesh.yaml truncated mid-line", mesh, good[..good.find("apps/web.conf").unwrap() - 10].to_owned()),
        at(
            "mesh.yaml truncated at a line end (web's workload cut off)",
            mesh,
            good[..good.find("    - name: web").unwrap()].to_owned(),
            "workload: web",
            0,
            "spec.services[0].workload: no workload 'web' is declared in namespace 'prod'",
        ),
        anywhere("bad YAML: an unclosed [", mesh, good.replace("replicas: 2", "replicas: [2")),
        anywhere("bad YAML: an unclosed quote", mesh, good.replace("{name: e2e}", "{name: \"e2e}")),
        at(
            "a service whose workload does not exist",
            mesh,
            mesh_yaml(2, &["- {name: ghost, namespace: prod, workload: nobody}"]),
            "ghost",
            0,
            "spec.services[1].workload: no workload 'nobody' is declared in namespace 'prod'",
        ),
        at(
            "a misspelt kind",
            mesh,
            good.replace("kind: Mesh", "kind: Mash"),
            "kind: Mash",
            0,
            "kind: unknown kind 'Mash'",
        ),
        at(
            "replicas that are not a number",
            mesh,
            good.replace("replicas: 2", "replicas: two"),
            "replicas: two",
            0,
            "spec.workloads[1].replicas",
        ),
        at(
            "an unsupported apiVersion",
            mesh,
            good.replace("meshlens.io/v1alpha1", "meshlens.io/v9"),
            "apiVersion",
            0,
            "apiVersion: 'meshlens.io/v9' is not a supported apiVersion",
        ),
        anywhere("a misspelt field (replica)", mesh, good.replace("replicas: 2", "replica: 2")),
        at(
            "a call to a service that does not exist",
            mesh,
            good.replace("calls: [web]", "calls: [web, nowhere]"),
            "calls: [web, nowhere]",
            0,
            "spec.workloads[0].calls[1]: 'nowhere' names no declared service",
        ),
        at(
            "a service declared twice",
            mesh,
            mesh_yaml(2, &["- {name: web, namespace: prod, workload: client}"]),
            "workload: client}",
            0,
            "spec.services[1].name: service 'web' is declared twice",
        ),
    ];
    assert_eq!(edits.len(), 20);
    edits
}

/// 20 invalid edits in a row are each rejected with a message naming the file and line (control plane
/// /api/v1/status), the last good state keeps serving (every proxy's discovery stays what it was), and
/// not one request of a steady 50/s load through client-0's sidecar fails meanwhile.
#[test]
fn invalid_edits_are_rejected_and_the_last_good_state_keeps_serving() {
    let _one = one_mesh_at_a_time();
    let mut mesh = Mesh::start("e2e-invalid", 2, &[("web.profile.yaml", PROFILE)]);
    mesh.wait_proxies("every proxy has web's profile", |d| profile(d, "web.prod.svc.cluster.local").is_some());
    let good: BTreeMap<String, Value> = mesh.admins().into_iter().map(|(n, a)| (n, discovery(a).unwrap())).collect();
    let client = mesh.instance("client-0");
    let out_before = mesh.up.stdout_text().len();

    let load = Load::start(client.outbound, 50, Duration::from_secs(120));
    let mut marks = vec![(Instant::now(), "the load started".to_owned())];
    std::thread::sleep(Duration::from_secs(1));
    let mut problems: Vec<String> = Vec::new();
    let edits = invalid_edits();
    for (n, InvalidEdit { what, file, text, place }) in edits.iter().enumerate() {
        let n = n + 1;
        let before = mesh.status()["reload"]["rejected"].as_u64().unwrap_or(0);
        let t0 = Instant::now();
        write_atomic(mesh.dir.path(), file, text);
        marks.push((t0, format!("edit {n} ({what})")));
        let mut status = Value::Null;
        let deadline = Duration::from_secs(10);
        while t0.elapsed() < deadline {
            status = mesh.status();
            let reload = &status["reload"];
            if reload["rejected"].as_u64().unwrap_or(0) > before || reload["accepted"].as_u64().unwrap_or(0) > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let reload = &status["reload"];
        let error = reload["error"].as_str().unwrap_or_default();
        if reload["rejected"].as_u64().unwrap_or(0) != before + 1 || reload["ok"] != false {
            problems.push(format!("edit {n} ({what}): not rejected within {deadline:?}: {reload}"));
        } else if !place.found_in(error) {
            problems.push(format!("edit {n} ({what}): the message does not name {}: {error:?}", place.describe()));
        } else {
            let newest = error.lines().find(|l| l.starts_with(file)).unwrap_or_default();
            eprintln!("[e2e] edit {n} ({what}): rejected after {} ms: {newest}", t0.elapsed().as_millis());
        }
        // Each edit stays long enough for everything that watches the directory to see it on its own
        // (the control plane polls every 200 ms, up's mesh.yaml watcher every 300 ms).
        let dwell = Duration::from_millis(900);
        if let Some(rest) = dwell.checked_sub(t0.elapsed()) {
            std::thread::sleep(rest);
        }
        for (name, admin) in mesh.admins() {
            match discovery(admin) {
                Some(d) if state(&d) == state(&good[&name]) => {}
                Some(d) => problems.push(format!(
                    "after edit {n} ({what}): {name}'s discovery is no longer the last good state: {} (was {})",
                    summary(&d),
                    summary(&good[&name]),
                )),
                None => problems.push(format!("after edit {n} ({what}): {name}'s admin /config does not answer")),
            }
        }
    }

    // Still rejected: visible as a metric too.
    let control_metrics = metrics(mesh.control);
    let valid = sum(&control_metrics, "meshlens_control_config_valid", &[]);
    let rejected = sum(&control_metrics, "meshlens_control_config_reloads_total", &[("result", "rejected")]);
    if valid != Some(0.0) || rejected != Some(20.0) {
        problems
            .push(format!("control plane metrics: config_valid {valid:?}, reloads rejected {rejected:?} (want 0, 20)"));
    }
    if !mesh.up.stdout_text().contains("mesh directory change rejected: keeping the last good configuration") {
        problems.push("no log line says the change was rejected".into());
    }

    // Fixed: the good state is loaded again.
    let t0 = Instant::now();
    write_atomic(mesh.dir.path(), "mesh.yaml", &mesh_yaml(2, &[]));
    write_atomic(mesh.dir.path(), "web.profile.yaml", PROFILE);
    std::fs::remove_file(mesh.dir.path().join("web.split.yaml")).unwrap();
    marks.push((t0, "the fix".to_owned()));
    eventually_blocking(|| mesh.status()["reload"]["ok"] == true, "the fixed directory is accepted");
    std::thread::sleep(Duration::from_secs(1));
    let report = load.finish();
    mesh.track();

    let out = mesh.up.stdout_text();
    let up_said: Vec<&str> = out[out_before..]
        .lines()
        .filter(|l| l.starts_with("up ") && (l.contains("mesh.yaml changed") || l.contains("exited")))
        .collect();
    eprintln!(
        "[e2e] invalid edits: {} requests sent at 50/s, {} ok, {} failed",
        report.sent,
        report.ok,
        report.failures.len()
    );
    assert!(report.sent >= 200, "the load ran: {} requests", report.sent);
    let failed = attribute(&report.failures, &marks);
    assert!(
        problems.is_empty() && report.failures.is_empty(),
        "{} problems:\n{}\n{} of {} requests failed:\n{failed}\nup said meanwhile:\n{}",
        problems.len(),
        problems.join("\n"),
        report.failures.len(),
        report.sent,
        up_said.join("\n"),
    );
    mesh.stop();
}

/// SIGKILL to the control plane under steady load: for the 10 s after it not one request fails; `up`
/// restarts it; every proxy registers and watches again, and a mesh edit made after the restart reaches
/// every proxy.
#[test]
fn killing_the_control_plane_fails_no_request_and_proxies_reconnect() {
    let _one = one_mesh_at_a_time();
    let mut mesh = Mesh::start("e2e-kill", 2, &[]);
    let client = mesh.instance("client-0");
    let control = descendants(mesh.up.id())
        .into_iter()
        .find(|p| p.cmdline.contains(" control --mesh-dir "))
        .unwrap_or_else(|| panic!("no control plane among up's children: {:#?}", descendants(mesh.up.id())));
    let started_before = mesh.status()["startedAt"].clone();

    let load = Load::start(client.outbound, 50, Duration::from_secs(60));
    let mut marks = vec![(Instant::now(), "the load started".to_owned())];
    std::thread::sleep(Duration::from_secs(1));
    let killed_at = Instant::now();
    let kill = std::process::Command::new("kill").args(["-KILL", &control.pid.to_string()]).status().unwrap();
    assert!(kill.success());
    marks.push((killed_at, format!("SIGKILL to the control plane (pid {})", control.pid)));
    let line = mesh.up.wait_for_line(Stream::Stdout, |l| l.contains("control restarted (pid"));
    let restarted_after = killed_at.elapsed();
    marks.push((Instant::now(), format!("up: {}", line.trim())));
    mesh.track();
    eventually_blocking(
        || mesh.api("/api/v1/status").is_some_and(|s| s["startedAt"] != started_before),
        "the restarted control plane answers",
    );
    eventually_blocking(
        || mesh.api("/api/v1/status").is_some_and(|s| s["proxies"] == 3 && s["watchers"] == 3),
        "every proxy registered and watches the restarted control plane",
    );
    let reconnected_after = killed_at.elapsed();
    if let Some(rest) = Duration::from_secs(10).checked_sub(killed_at.elapsed()) {
        std::thread::sleep(rest);
    }
    let report = load.finish();
    eprintln!(
        "[e2e] control plane killed: restarted by up after {:.2} s, every proxy back after {:.2} s; {} requests at 50/s, {} ok, {} failed",
        restarted_after.as_secs_f64(),
        reconnected_after.as_secs_f64(),
        report.sent,
        report.ok,
        report.failures.len()
    );
    assert!(report.sent >= 200, "the load ran: {} requests", report.sent);
    assert!(
        report.failures.is_empty(),
        "{} of {} requests failed:\n{}",
        report.failures.len(),
        report.sent,
        attribute(&report.failures, &marks)
    );

    // The proxies follow the restarted control plane: an edit reaches all of them.
    let webs = mesh.web_inbounds();
    let took = mesh
        .propagate(
            "a new service after the control plane restarted",
            |dir| write_atomic(dir, "mesh.yaml", &mesh_yaml(2, &["- {name: api, namespace: prod, workload: web}"])),
            |d| endpoints(d, "api").as_ref() == Some(&webs),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(took <= Duration::from_secs(3), "{took:?}");
    mesh.stop();
}

/// web scaled from 2 to 3 replicas in mesh.yaml: web-2 starts, joins service web on every proxy, and
/// gets a share of the traffic (its app answers, its proxy counts inbound requests).
#[test]
fn scaling_a_workload_spreads_traffic_to_the_new_instance() {
    let _one = one_mesh_at_a_time();
    let mut mesh = Mesh::start("e2e-scale", 2, &[]);
    let client = mesh.instance("client-0");
    let load = Load::start(client.outbound, 50, Duration::from_secs(60));

    let t0 = Instant::now();
    write_atomic(mesh.dir.path(), "mesh.yaml", &mesh_yaml(3, &[]));
    let line = mesh.up.wait_for_line(Stream::Stdout, |l| l.contains("mesh.yaml changed: started prod/web-2"));
    mesh.track();
    let field = |key: &str| {
        let v = line.split(&format!(" {key} ")).nth(1).and_then(|s| s.split(',').next()).map(str::trim);
        addr(v.unwrap_or_else(|| panic!("no {key} in {line:?}")))
    };
    let web2 =
        Instance { app: field("app"), inbound: field("inbound"), outbound: field("outbound"), admin: field("admin") };
    mesh.instances.insert("web-2".into(), web2);
    let webs = mesh.web_inbounds();
    assert_eq!(webs.len(), 3);
    let admin = client.admin;
    eventually_blocking(
        || discovery(admin).is_some_and(|d| endpoints(&d, "web").as_ref() == Some(&webs)),
        "client-0's proxy sends to web-2 too",
    );
    let joined = t0.elapsed();
    mesh.wait_proxies("every proxy knows web-2", |d| endpoints(d, "web").as_ref() == Some(&webs));

    // Traffic reaches web-2: its app answers some requests, its proxy counts them.
    let mut answered_by: BTreeMap<String, u32> = BTreeMap::new();
    for i in 0..300 {
        let r = via_proxy(client.outbound, "web", &format!("/spread/{i}")).unwrap();
        assert_eq!(r.status, 200, "{}", r.describe());
        let body: Value = serde_json::from_str(&r.body).unwrap();
        *answered_by.entry(body["instance"].as_str().unwrap_or_default().to_owned()).or_default() += 1;
        if i >= 60 && answered_by.len() == 3 {
            break;
        }
    }
    // The load spans the scale-up and a few seconds after it.
    if let Some(rest) = Duration::from_secs(4).checked_sub(t0.elapsed()) {
        std::thread::sleep(rest);
    }
    let report = load.finish();
    eprintln!(
        "[e2e] scale 2 → 3: web-2 in client-0's discovery {} ms after the edit; answered by {answered_by:?}; load meanwhile: {} sent, {} failed{}",
        joined.as_millis(),
        report.sent,
        report.failures.len(),
        if report.failures.is_empty() { String::new() } else { format!(":\n{}", attribute(&report.failures, &[])) }
    );
    assert!(answered_by.get("web-2").is_some_and(|n| *n > 0), "web-2 answers a share: {answered_by:?}");
    let inbound = sum(&metrics(web2.admin), "request_total", &[("direction", "inbound")]).unwrap_or(0.0);
    assert!(inbound > 0.0, "web-2's proxy counted {inbound} inbound requests");
    mesh.stop();
}

/// `meshlens demo` (the README's first command), measured: the time from the command to the shop
/// serving through a sidecar, traffic over every edge of the shop's call graph (each caller's proxies
/// count outbound requests to each callee; every backend of the ml-inference split gets some), and the
/// control plane's memory (VmRSS) with the demo running. Its start and clean stop are `demo.rs`'s.
#[test]
fn demo_serves_every_edge_and_reports_its_numbers() {
    let _one = one_mesh_at_a_time();
    let state = TempDir::new("e2e-demo-state");
    let mut cmd = meshlens();
    cmd.args(["demo", "--control-port", "0", "--rps", "20", "--stop-grace", "5"]).env("XDG_STATE_HOME", state.path());
    let mut reaper = GroupReaper(BTreeSet::new());
    let t0 = Instant::now();
    let mut demo = ChildGuard::spawn(&mut cmd).unwrap();
    demo.wait_for_line(Stream::Stdout, |l| l.contains("apps accept connections"));
    reaper.0.extend(descendants(demo.id()).iter().map(|p| p.pgid));
    let out = demo.stdout_text();
    let rows = table(&out);
    let traffic = addr(&rows["prod/traffic-0"][2]);
    eventually_blocking(
        || via_proxy(traffic, "frontend", "/products/42").is_ok_and(|r| r.status == 200),
        "frontend answers through traffic-0's proxy",
    );
    let serving = t0.elapsed();

    let admins = |workload: &str| -> Vec<SocketAddr> {
        rows.iter()
            .filter(|(k, _)| {
                k.strip_prefix("prod/").and_then(|n| n.rsplit_once('-')).is_some_and(|(w, _)| w == workload)
            })
            .map(|(_, c)| addr(&c[3]))
            .collect()
    };
    // Caller workload → concrete destination service (the ml-inference split's three backends).
    let edges: [(&str, &str); 11] = [
        ("traffic", "frontend"),
        ("frontend", "api-gateway"),
        ("frontend", "checkout-service"),
        ("frontend", "recommendation-service"),
        ("api-gateway", "user-service"),
        ("api-gateway", "auth-service"),
        ("checkout-service", "payment-service"),
        ("payment-service", "order-service"),
        ("recommendation-service", "ml-inference-a"),
        ("recommendation-service", "ml-inference-b"),
        ("recommendation-service", "ml-inference-c"),
    ];
    // Successful responses the caller's proxies counted from the destination.
    let served = |caller: &str, dst: &str| -> f64 {
        let labels = [("direction", "outbound"), ("dst_service", dst), ("classification", "success")];
        admins(caller).iter().map(|a| sum(&metrics(*a), "response_total", &labels).unwrap_or(0.0)).sum()
    };
    let missing = || -> Vec<String> {
        edges.iter().filter(|(c, d)| served(c, d) == 0.0).map(|(c, d)| format!("{c} → {d}")).collect()
    };
    let deadline = Instant::now() + meshlens_testkit::patience();
    while !missing().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let missing = missing();
    assert!(missing.is_empty(), "no successful request over these edges of the shop: {missing:?}");
    let all_edges = t0.elapsed();

    let control: u32 = out
        .lines()
        .find_map(|l| l.split("control plane listening at ").nth(1))
        .and_then(|rest| rest.split("(pid ").nth(1))
        .and_then(|rest| rest.trim_end().trim_end_matches(')').parse().ok())
        .unwrap_or_else(|| panic!("no control plane pid in\n{out}"));
    let rss_kib = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{control}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    let mut samples = Vec::new();
    for _ in 0..5 {
        samples.push(rss_kib());
        std::thread::sleep(Duration::from_millis(500));
    }
    let rss = samples.iter().copied().max().unwrap_or(0);
    let proxy_pid = descendants(demo.id()).into_iter().find(|p| p.cmdline.contains(" proxy --control ")).map(|p| p.pid);
    let proxy_rss = proxy_pid
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmRSS:")).map(|v| v.trim().to_owned()));
    eprintln!(
        "[e2e] meshlens demo: serving through a sidecar {:.2} s after the command, every edge {:.2} s after; control plane VmRSS {:.1} MiB (samples {samples:?} KiB; one proxy: {})",
        serving.as_secs_f64(),
        all_edges.as_secs_f64(),
        rss as f64 / 1024.0,
        proxy_rss.unwrap_or_default(),
    );
    assert!(rss < 256 * 1024, "the control plane uses {rss} KiB with the demo running");

    let int = std::process::Command::new("kill").args(["-INT", &demo.id().to_string()]).status().unwrap();
    assert!(int.success());
    assert_eq!(demo.wait_for_exit().code(), Some(0), "{}", demo.stdout_text());
    reaper.0.insert(demo.id());
    eventually_blocking(|| in_groups(&reaper.0).is_empty(), "no process left");
}

// ---------------------------------------------------------------------------------------------------
// An HTTPRoute with Linkerd's annotations, as written for Linkerd (issue 17).

/// web: `/slow` answers after 3 s, `/flaky` fails every 2nd request with 503, `/down` always 503.
const WEB_CONF_FAULTS: &str = "routes:
  - {path: /slow, latency: 3s}
  - path: /flaky
    faults: [{every: 2, status: 503}]
  - {path: /down, status: 503}
  - {path: '/*'}
";

/// A Kubernetes manifest file: the Service, the route with Linkerd's retry annotations and a rule timeout
/// for `/slow`, and a route without retries for requests with `?retry=no`.
const WEB_ROUTE: &str = "apiVersion: v1
kind: Service
metadata: {name: web, namespace: prod}
spec:
  ports: [{port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web-route
  annotations:
    retry.linkerd.io/http: 5xx
    retry.linkerd.io/limit: \"2\"
spec:
  parentRefs:
  - {name: web, kind: Service, group: core, port: 80}
  rules:
  - matches:
    - path: {type: PathPrefix, value: /slow}
    timeouts: {request: 500ms}
  - matches:
    - path: {type: PathPrefix, value: /}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web-once}
spec:
  parentRefs:
  - {name: web, kind: Service, group: core, port: 80}
  rules:
  - matches:
    - queryParams: [{name: retry, value: \"no\"}]
";

#[test]
fn an_httproute_routes_times_out_and_retries_as_written() {
    let _one = one_mesh_at_a_time();
    let mesh = Mesh::start("e2e-httproute", 1, &[("apps/web.conf", WEB_CONF_FAULTS), ("web-route.yaml", WEB_ROUTE)]);
    let client = mesh.instance("client-0");
    // Every attempt the client's proxy made on the route and got a 503 for.
    let attempts = || {
        sum(&metrics(client.admin), "route_actual_response_total", &[("rt_route", "web-route"), ("status_code", "503")])
            .unwrap_or(0.0)
    };

    // The rule's `timeouts.request: 500ms` answers /slow (3 s at the app) with 504.
    let t0 = Instant::now();
    let slow = via_proxy(client.outbound, "web", "/slow").unwrap();
    assert_eq!(slow.status, 504, "{}", slow.describe());
    assert!(t0.elapsed() < Duration::from_secs(3), "the route timeout answered before the app: {:?}", t0.elapsed());

    // `retry.linkerd.io/http: 5xx`: every other /flaky request fails at the app, none reaches the caller.
    for i in 0..10 {
        let r = via_proxy(client.outbound, "web", "/flaky").unwrap();
        assert_eq!(r.status, 200, "request {i}: {}", r.describe());
    }

    // `retry.linkerd.io/limit: 2`: /down is tried three times, then its 503 is the answer.
    let before = attempts();
    for _ in 0..4 {
        assert_eq!(via_proxy(client.outbound, "web", "/down").unwrap().status, 503);
    }
    eventually_blocking(|| attempts() - before == 12.0, "4 requests to /down made 12 attempts (1 + 2 retries each)");

    // The query parameter match picks the route without retries: one attempt per request.
    for _ in 0..4 {
        assert_eq!(via_proxy(client.outbound, "web", "/down?retry=no").unwrap().status, 503);
    }
    let once = || {
        sum(&metrics(client.admin), "route_actual_response_total", &[("rt_route", "web-once"), ("status_code", "503")])
            .unwrap_or(0.0)
    };
    eventually_blocking(|| once() == 4.0, "4 requests to /down?retry=no made 4 attempts on route web-once");

    // `meshlens routes` names the route as the HTTPRoute does.
    eventually_blocking(
        || {
            let out = meshlens()
                .args(["routes", "svc/web", "-n", "prod"])
                .env("XDG_STATE_HOME", mesh._state.path())
                .env("NO_COLOR", "1")
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with("web-route "))
        },
        "meshlens routes svc/web lists web-route",
    );
    // The Service beside the route is skipped, and says so.
    let status = mesh.status();
    let skipped: Vec<String> = status["reload"]["skipped"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    assert_eq!(skipped, ["web-route.yaml:1: skipped Service 'web' (v1): not a mesh kind"]);
}
