//! The accuracy test, through the real binary: two `web` proxies in front of backends whose latency
//! follows a known smooth distribution (90% uniform in 8–12 ms, 8% in 80–120 ms, 2% in 700–900 ms) and
//! which fail 3% of requests on purpose; bounded open-loop load from the test through a `client` proxy;
//! then what `/api/v1/stat|routes|edges` say, compared with what the client measured itself:
//!
//! - embedded store: success rate and request count exact (as the client counted them), p50/p95/p99
//!   within max(5%, one bucket width) of the exact sample quantiles of the latencies the web proxies
//!   measured, read request by request from their tap streams (`sinceRequestInit`). The client's own
//!   timings are not the reference: on a loaded machine they include its scheduling delay, which is not
//!   what the proxies observe (they are printed next to the others for comparison);
//! - Prometheus mode (`control --prometheus-url` on a real Prometheus configured by
//!   `meshlens prometheus-config`): success rate and RPS within 1% of the embedded store's, quantiles
//!   within one bucket of them, and the same rows, edges and routes.
//!
//! Numbers are printed with `eprintln!` (`-- --nocapture`). The tests run one at a time: each runs a mesh
//! and measures latencies.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::AUTHORIZATION;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use meshlens_control::auth::ProxyKey;
use meshlens_proxy::LATENCY_BOUNDS_MS;
use meshlens_testkit::latency::{REFERENCE_MIX, mixed_latency, quantile};
use meshlens_testkit::{ChildGuard, HttpBackend, eventually_blocking, spawn_and_read_json_line};
use serde_json::{Value, json};

use crate::support::{TempDir, meshlens};

const MESH_YAML: &str = "apiVersion: meshlens.io/v1alpha1
kind: Mesh
metadata: {name: accuracy}
spec:
  namespaces: [prod]
  services:
    - {name: web, namespace: prod, workload: web}
  workloads:
    - {name: client, namespace: prod, calls: [web]}
    - {name: web, namespace: prod, replicas: 2}
";

const PROFILE: &str = "apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata: {name: web.prod.svc.cluster.local, namespace: prod}
spec:
  routes:
    - name: GET /work
      condition: {method: GET, pathRegex: /work}
";

/// The share of requests the backends fail (500) on purpose.
const FAILURE_RATIO: f64 = 0.03;
/// Every query covers all the traffic of a test.
const WINDOW: &str = "5m";

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner)
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// The API token of every control plane these tests start.
const API_TOKEN: &str = "accuracy-api-token";

fn proxy_key() -> ProxyKey {
    ProxyKey::from_hex(&"7b".repeat(32)).unwrap()
}

/// The files of the proxy key and the API token (private, as `meshlens up` writes them), made once.
fn secret_files() -> &'static (PathBuf, PathBuf) {
    static FILES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("meshlens-accuracy-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (key, token) = (dir.join("proxy.key"), dir.join("api.token"));
        std::fs::write(&key, proxy_key().to_hex()).unwrap();
        std::fs::write(&token, API_TOKEN).unwrap();
        (key, token)
    })
}

/// `meshlens` for a CLI command: it sends the API token.
fn cli() -> std::process::Command {
    let mut cmd = meshlens();
    cmd.env("MESHLENS_API_TOKEN_FILE", &secret_files().1);
    cmd
}

/// The test's own async side: backends, load, API calls.
struct Async {
    rt: tokio::runtime::Runtime,
    http: HttpClient,
}

impl Async {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let http = {
            let _in = rt.enter();
            Client::builder(TokioExecutor::new()).pool_max_idle_per_host(64).build_http()
        };
        Async { rt, http }
    }

    /// `GET url` with the API token → (status, JSON body or Null).
    fn get_json(&self, url: &str) -> (u16, Value) {
        let req = hyper::Request::get(url).header(AUTHORIZATION, format!("Bearer {API_TOKEN}"));
        let req = req.body(Full::default()).unwrap();
        self.rt.block_on(call_json(&self.http, req))
    }
}

async fn call_json(http: &HttpClient, req: hyper::Request<Full<Bytes>>) -> (u16, Value) {
    let Ok(Ok(resp)) = tokio::time::timeout(Duration::from_secs(20), http.request(req)).await else {
        return (0, Value::Null);
    };
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// `meshlens control` on `dir`, port 0; returns the guard and its URL.
fn control(dir: &Path, scrape_interval: &str, extra: &[&str]) -> (ChildGuard, String) {
    let mut cmd = meshlens();
    cmd.args(["control", "--mesh-dir"]).arg(dir).args([
        "--listen",
        "127.0.0.1:0",
        "--scrape-interval",
        scrape_interval,
    ]);
    cmd.args(extra).env_remove("MESHLENS_CONTROL_PROMETHEUS_URL").env("MESHLENS_CONTROL_LOG_LEVEL", "warn");
    let (key, token) = secret_files();
    cmd.env("MESHLENS_CONTROL_PROXY_KEY_FILE", key).env("MESHLENS_CONTROL_API_TOKEN_FILE", token);
    let (guard, line) = spawn_and_read_json_line(&mut cmd);
    let url = format!("http://{}", line["api"].as_str().unwrap());
    (guard, url)
}

/// The mesh: `client-0` (outbound only) and `web-0`, `web-1` (each with its own backend), registered with
/// the control plane at `control`.
struct Mesh {
    _proxies: Vec<ChildGuard>,
    _backends: Vec<HttpBackend>,
    /// client-0's outbound listener.
    outbound: SocketAddr,
    /// web-0's and web-1's tap listeners (token [`TAP_TOKEN`]).
    taps: Vec<SocketAddr>,
}

/// The tap token the test's proxies accept.
const TAP_TOKEN: &str = "accuracy-test";

impl Mesh {
    fn start(a: &Async, control: &str) -> Mesh {
        let mut backends = Vec::new();
        let mut proxies = Vec::new();
        let mut taps = Vec::new();
        let proxy = |instance: &str, workload: &str, app: Option<SocketAddr>| {
            let mut cmd = meshlens();
            cmd.args(["proxy", "--outbound", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--tap", "127.0.0.1:0"]);
            cmd.args(["--control", control, "--workload", workload, "--namespace", "prod", "--instance", instance]);
            cmd.args(["--tap-token", TAP_TOKEN]).env("MESHLENS_PROXY_LOG_LEVEL", "warn");
            cmd.env("MESHLENS_PROXY_KEY_FILE", &secret_files().0);
            if let Some(app) = app {
                cmd.args(["--inbound", "127.0.0.1:0", "--app", &app.to_string()]);
            }
            spawn_and_read_json_line(&mut cmd)
        };
        for (i, seed) in [(0, 11), (1, 23)] {
            let backend = {
                let _in = a.rt.enter();
                HttpBackend::start(mixed_latency(&REFERENCE_MIX, FAILURE_RATIO, seed))
            };
            let (guard, line) = proxy(&format!("web-{i}"), "web", Some(backend.addr()));
            proxies.push(guard);
            taps.push(line["tap"].as_str().unwrap().parse().unwrap());
            backends.push(backend);
        }
        let (client, line) = proxy("client-0", "client", None);
        proxies.push(client);
        let outbound: SocketAddr = line["outbound"].as_str().unwrap().parse().unwrap();
        let admin = line["admin"].as_str().unwrap().to_string();
        // client-0 knows both web instances and web's profile before any request is sent.
        eventually_blocking(
            || {
                let (_, config) = a.get_json(&format!("http://{admin}/config"));
                let d = &config["discovery"];
                let web = d["services"].as_array().and_then(|s| s.iter().find(|s| s["name"] == "web").cloned());
                web.is_some_and(|w| w["endpoints"].as_array().is_some_and(|e| e.len() == 2))
                    && d["profiles"].as_array().is_some_and(|p| !p.is_empty())
            },
            "client-0 discovers both web instances and web's profile",
        );
        Mesh { _proxies: proxies, _backends: backends, outbound, taps }
    }
}

/// What the client saw.
struct Measured {
    /// Latency to the response head, sorted.
    latencies_ms: Vec<f64>,
    ok: u64,
    failed: u64,
}

impl Measured {
    fn total(&self) -> u64 {
        self.ok + self.failed
    }

    fn quantile(&self, q: f64) -> f64 {
        quantile(&self.latencies_ms, q)
    }
}

/// The latency of every request the web proxies served, as each measured it (the time from the request
/// to the response head), read from their tap streams while the load runs.
struct ProxiedLatencies {
    seen: std::sync::Arc<Mutex<Vec<f64>>>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl ProxiedLatencies {
    /// Opens `GET /tap?direction=inbound` on each tap listener; returns once every stream is open.
    fn open(a: &Async, taps: &[SocketAddr]) -> ProxiedLatencies {
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for tap in taps {
            let req = hyper::Request::get(format!("http://{tap}/tap?direction=inbound"))
                .header(hyper::header::AUTHORIZATION, format!("Bearer {TAP_TOKEN}"))
                .body(Full::default())
                .unwrap();
            let rsp = a.rt.block_on(async { tokio::time::timeout(Duration::from_secs(20), a.http.request(req)).await });
            let rsp = rsp.expect("tap answers within 20 s").expect("tap stream opens");
            assert_eq!(rsp.status(), 200, "tap stream of {tap}");
            let seen = seen.clone();
            readers.push(a.rt.spawn(async move {
                let mut body = rsp.into_body();
                let mut buf = Vec::new();
                while let Some(Ok(frame)) = body.frame().await {
                    let Ok(data) = frame.into_data() else { continue };
                    buf.extend_from_slice(&data);
                    while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
                        let line: Vec<u8> = buf.drain(..=nl).collect();
                        let Ok(event) = serde_json::from_slice::<Value>(&line) else { continue };
                        let d = &event["responseInitEvent"]["sinceRequestInit"];
                        if let (Some(s), Some(n)) = (d["seconds"].as_f64(), d["nanos"].as_f64()) {
                            seen.lock().unwrap().push(s * 1000.0 + n / 1e6);
                        }
                    }
                }
            }));
        }
        ProxiedLatencies { seen, readers }
    }

    /// Waits until the taps reported `total` responses; returns their latencies, sorted.
    fn all(&self, total: u64) -> Vec<f64> {
        eventually_blocking(
            || self.seen.lock().unwrap().len() as u64 >= total,
            &format!("the web proxies' taps report all {total} responses"),
        );
        let mut all = self.seen.lock().unwrap().clone();
        all.sort_by(f64::total_cmp);
        all
    }
}

impl Drop for ProxiedLatencies {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

/// Open-loop load: `count` requests `GET /work` to web through client-0, `rate` per second, each on its
/// own task (bounded in count; each request bounded to 20 s).
fn drive(a: &Async, outbound: SocketAddr, rate: f64, count: usize) -> Measured {
    a.rt.block_on(async {
        let start = tokio::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..count {
            tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
            let http = a.http.clone();
            tasks.spawn(async move {
                let req = hyper::Request::get(format!("http://{outbound}/work"))
                    .header(hyper::header::HOST, "web.prod.svc.cluster.local")
                    .body(Full::default())
                    .unwrap();
                let sent = Instant::now();
                let resp = tokio::time::timeout(Duration::from_secs(20), http.request(req)).await;
                let latency = sent.elapsed().as_secs_f64() * 1000.0;
                let status = match resp {
                    Ok(Ok(resp)) => {
                        let status = resp.status().as_u16();
                        let _ = resp.into_body().collect().await;
                        status
                    }
                    _ => 0,
                };
                (status, latency)
            });
        }
        let mut m = Measured { latencies_ms: Vec::with_capacity(count), ok: 0, failed: 0 };
        while let Some(done) = tasks.join_next().await {
            let (status, latency) = done.unwrap();
            assert!(status != 0, "a request got no answer within 20 s");
            if status >= 500 {
                m.failed += 1;
            } else {
                m.ok += 1;
            }
            m.latencies_ms.push(latency);
        }
        m.latencies_ms.sort_by(f64::total_cmp);
        m
    })
}

/// The latency bucket (lower, upper] of the proxy's histogram that holds `ms`.
fn bucket_of(ms: f64) -> (f64, f64) {
    let i = LATENCY_BOUNDS_MS.iter().position(|b| ms <= *b).unwrap_or(LATENCY_BOUNDS_MS.len() - 1);
    (if i == 0 { 0.0 } else { LATENCY_BOUNDS_MS[i - 1] }, LATENCY_BOUNDS_MS[i])
}

fn width_at(ms: f64) -> f64 {
    let (lower, upper) = bucket_of(ms);
    upper - lower
}

fn row<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array().and_then(|r| r.iter().find(|r| r["name"] == name)).unwrap_or_else(|| panic!("{name}: {rows}"))
}

fn num(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

/// The store's quantiles against the exact ones of what the proxies measured: within max(5%, one
/// bucket width). Returns a report line (with the client's own quantiles for comparison).
fn assert_quantiles_match(web: &Value, proxied: &[f64], m: &Measured, what: &str) -> String {
    let mut report = String::new();
    for (key, q) in [("latency_ms_p50", 0.5), ("latency_ms_p95", 0.95), ("latency_ms_p99", 0.99)] {
        let exact = quantile(proxied, q);
        let got = num(web, key);
        let tolerance = (0.05 * exact).max(width_at(exact));
        assert!(
            (got - exact).abs() <= tolerance,
            "{what} {key}: {got} vs {exact:.2} measured by the proxies (tolerance {tolerance}): {web}"
        );
        report.push_str(&format!(
            "{key} {got} (proxies {exact:.1}, {:+.1}%; client {:.1}) ",
            100.0 * (got - exact) / exact,
            m.quantile(q)
        ));
    }
    report
}

/// How many requests a row's `rps` stands for: rates are over the seconds the store covers
/// (`covered_s`) within the window.
fn requests_of(row: &Value) -> f64 {
    (num(row, "rps") * num(row, "covered_s")).round()
}

/// Polls `/api/v1/stat` of the embedded store until it has counted every request web served, then checks
/// the accuracy claims; returns the rows.
fn embedded_accuracy(a: &Async, control: &str, m: &Measured, proxied: &[f64]) -> Value {
    let total = m.total() as f64;
    let stat = || a.get_json(&format!("{control}/api/v1/stat?resource=deploy&namespace=prod&window={WINDOW}")).1;
    let counted = |rows: &Value| {
        rows.as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == "web"))
            .filter(|w| w["rps"].is_number())
            .map(requests_of)
    };
    eventually_blocking(|| counted(&stat()) == Some(total), "the embedded store counts every request web served");
    let rows = stat();
    let web = row(&rows, "web");
    assert_eq!(web["meshed"], "2/2");
    let success = num(web, "success");
    assert!((success - m.ok as f64 / total).abs() < 1e-9, "success {success} vs {}/{} at the client", m.ok, total);
    let report = assert_quantiles_match(web, proxied, m, "embedded");
    eprintln!("embedded store: {} requests, success {success:.4}; {report}", m.total());

    // The client side (per attempt, no retries here) counts the same requests.
    let (_, to) = a.get_json(&format!(
        "{control}/api/v1/stat?resource=deploy/client&namespace=prod&window={WINDOW}&to=deploy/web"
    ));
    let client = row(&to, "client");
    assert_eq!(requests_of(client), total, "{client}");
    assert!((num(client, "success") - success).abs() < 1e-9, "{client}");
    rows
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Where the `prometheus` server binary is: `MESHLENS_PROMETHEUS`, else on PATH. Required in CI.
pub(crate) fn prometheus_binary() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("MESHLENS_PROMETHEUS").map(Into::into).or_else(|| {
        std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join("prometheus")).find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "the prometheus server is required in CI: install the Debian package 'prometheus' (scripts/test does)"
        );
        eprintln!("SKIPPED: no prometheus binary (install the Debian package 'prometheus' or set MESHLENS_PROMETHEUS)");
    }
    found
}

/// The embedded store through real proxies: exact counts and success rate, quantiles within
/// max(5%, one bucket width) of the client's.
#[test]
fn embedded_store_is_accurate_through_real_proxies() {
    let _one = one_at_a_time();
    let dir = TempDir::new("accuracy");
    dir.write("mesh.yaml", MESH_YAML);
    dir.write("profiles/web.yaml", PROFILE);
    let a = Async::new();
    let (_control, url) = control(dir.path(), "500ms", &[]);
    let mesh = Mesh::start(&a, &url);
    eventually_blocking(
        || a.get_json(&format!("{url}/api/v1/metricstore")).1["instances"] == 3,
        "the control plane has scraped every proxy once",
    );
    let proxied = ProxiedLatencies::open(&a, &mesh.taps);
    let m = drive(&a, mesh.outbound, 100.0, 2000);
    embedded_accuracy(&a, &url, &m, &proxied.all(m.total()));
}

/// Prometheus mode against a real Prometheus, on the same traffic as the embedded store.
#[test]
fn prometheus_mode_agrees_with_the_embedded_store() {
    let Some(prometheus) = prometheus_binary() else { return };
    let _one = one_at_a_time();
    let dir = TempDir::new("accuracy-prom");
    dir.write("mesh.yaml", MESH_YAML);
    dir.write("profiles/web.yaml", PROFILE);
    let a = Async::new();

    // The proxies register with the Prometheus-mode control plane, whose service discovery Prometheus
    // follows; the test copies their registrations to an embedded-mode one, which scrapes them itself.
    let prom_url = format!("http://127.0.0.1:{}", free_port());
    let (_prom_mode, b) = control(dir.path(), "100ms", &["--prometheus-url", &prom_url]);
    let (_embedded, e) = control(dir.path(), "500ms", &[]);

    let config = cli()
        .args(["prometheus-config", "--control", &b, "--scrape-interval", "100ms", "--refresh-interval", "1s"])
        .env_remove("MESHLENS_CONTROL")
        .output()
        .unwrap();
    assert!(config.status.success(), "{}", String::from_utf8_lossy(&config.stderr));
    let prom_dir = TempDir::new("accuracy-prometheus");
    std::fs::write(prom_dir.path().join("prometheus.yml"), &config.stdout).unwrap();
    let mut cmd = std::process::Command::new(&prometheus);
    cmd.arg(format!("--config.file={}", prom_dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", prom_dir.path().join("data").display()))
        .arg(format!("--web.listen-address={}", prom_url.trim_start_matches("http://")))
        .arg("--log.level=warn");
    let prometheus_started = Instant::now();
    let _prometheus = ChildGuard::spawn(&mut cmd).unwrap();
    eventually_blocking(
        || {
            a.rt.block_on(call_json(
                &a.http,
                hyper::Request::get(format!("{prom_url}/-/ready")).body(Full::default()).unwrap(),
            ))
            .0 == 200
        },
        "Prometheus is ready",
    );

    let mesh = Mesh::start(&a, &b);
    let mirror = {
        let (http, b, e) = (a.http.clone(), b.clone(), e.clone());
        a.rt.spawn(async move {
            // Bounded: 10 minutes of renewals at most.
            for _ in 0..600 {
                mirror_registrations(&http, &b, &e).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        })
    };
    eventually_blocking(
        || {
            let (_, t) = a.get_json(&format!("{prom_url}/api/v1/targets?state=active"));
            t["data"]["activeTargets"].as_array().is_some_and(|t| t.len() == 3 && t.iter().all(|t| t["health"] == "up"))
        },
        "Prometheus scrapes the three proxies it found through the control plane",
    );
    eventually_blocking(
        || a.get_json(&format!("{e}/api/v1/metricstore")).1["instances"] == 3,
        "the embedded store has scraped every proxy once",
    );

    let started = Instant::now();
    let proxied = ProxiedLatencies::open(&a, &mesh.taps);
    let m = drive(&a, mesh.outbound, 100.0, 3000);
    let started_to_loaded = started.elapsed();
    eprintln!("load: {} requests in {started_to_loaded:?}", m.total());
    let proxied = proxied.all(m.total());
    let embedded = embedded_accuracy(&a, &e, &m, &proxied);
    // Prometheus has the final counter values.
    let promql = |q: &str| {
        let q = serde_urlencoded::to_string([("query", q)]).unwrap();
        a.get_json(&format!("{prom_url}/api/v1/query?{q}")).1
    };
    eventually_blocking(
        || {
            let v = promql("sum(response_total{direction=\"inbound\",deployment=\"web\"})");
            v["data"]["result"][0]["value"][1].as_str().and_then(|s| s.parse::<f64>().ok()) == Some(m.total() as f64)
        },
        "Prometheus has scraped every request web served",
    );

    // stat deploy: the same rows; success and RPS within 1%, quantiles within one bucket.
    let stat = |base: &str, q: &str| {
        let (code, v) = a.get_json(&format!("{base}/api/v1/stat?namespace=prod&window={WINDOW}&{q}"));
        assert_eq!(code, 200, "{base} {q}: {v}");
        v
    };
    let prom = stat(&b, "resource=deploy");
    let names = |rows: &Value| -> Vec<String> {
        rows.as_array().unwrap().iter().map(|r| format!("{}/{} {}", r["kind"], r["name"], r["meshed"])).collect()
    };
    assert_eq!(names(&prom), names(&embedded));
    let (pw, ew) = (row(&prom, "web"), row(&embedded, "web"));
    // Prometheus holds less than the window: rates are over the seconds it holds (from before the load
    // began, since it counted every request, to now), not over the whole window.
    let covered = num(pw, "covered_s");
    let (held_at_most, load) = (prometheus_started.elapsed().as_secs_f64(), started_to_loaded.as_secs_f64());
    assert!(
        num(pw, "window_s") == 300.0 && covered >= load && covered <= held_at_most + 1.0,
        "Prometheus mode covers {covered} s: the load took {load:.1} s, Prometheus ran {held_at_most:.1} s\n{pw}"
    );
    // Rates are compared as counts: each store covers the part of the window it has seen.
    let close = |key: &str, p: &Value, e: &Value| {
        let count = |v: &Value| if key.ends_with("rps") { num(v, key) * num(v, "covered_s") } else { num(v, key) };
        let (pv, ev) = (count(p), count(e));
        assert!((pv - ev).abs() <= 0.01 * ev, "{key}: Prometheus {pv} vs embedded {ev}\n{p}\n{e}");
        format!("{key} {pv:.4} vs {ev:.4} ({:+.2}%)", 100.0 * (pv - ev) / ev)
    };
    let mut report = vec![close("rps", pw, ew), close("success", pw, ew)];
    for key in ["latency_ms_p50", "latency_ms_p95", "latency_ms_p99"] {
        let (pv, ev) = (num(pw, key), num(ew, key));
        assert!(
            (pv - ev).abs() <= width_at(ev),
            "{key}: Prometheus {pv} vs embedded {ev} (bucket {:?})",
            bucket_of(ev)
        );
        report.push(format!("{key} {pv} vs {ev}"));
    }
    report.push(assert_quantiles_match(pw, &proxied, &m, "Prometheus mode"));
    eprintln!("Prometheus mode vs embedded: {}", report.join(", "));
    // Prometheus' own histogram_quantile over the window agrees with what the API computed from the
    // increases it asked for.
    for (key, q) in [("latency_ms_p50", 0.5), ("latency_ms_p95", 0.95), ("latency_ms_p99", 0.99)] {
        let v = promql(&format!(
            "histogram_quantile({q}, sum by (le) (increase(response_latency_ms_bucket{{direction=\"inbound\",deployment=\"web\"}}[{WINDOW}])))"
        ));
        let own: f64 = v["data"]["result"][0]["value"][1].as_str().and_then(|s| s.parse().ok()).unwrap();
        assert!((own - num(pw, key)).abs() <= 1.0, "{key}: histogram_quantile {own} vs the API's {}", pw[key]);
    }
    assert!(row(&prom, "client")["rps"].is_null(), "client serves nothing: {prom}");

    // Pods, the client side, edges and routes: the same rows, numbers within 1%.
    let (pp, ep) = (stat(&b, "resource=po"), stat(&e, "resource=po"));
    assert_eq!(names(&pp), names(&ep));
    for pod in ["web-0", "web-1"] {
        close("rps", row(&pp, pod), row(&ep, pod));
    }
    let to = "resource=deploy/client&to=deploy/web";
    close("rps", row(&stat(&b, to), "client"), row(&stat(&e, to), "client"));
    // The same edges; how much of the window each store covers may differ by a scrape.
    let edges = |base: &str| {
        let mut rows = a.get_json(&format!("{base}/api/v1/edges?resource=deploy&namespace=prod&window={WINDOW}")).1;
        for r in rows.as_array_mut().into_iter().flatten() {
            if let Some(r) = r.as_object_mut() {
                r.remove("window_s");
                r.remove("covered_s");
            }
        }
        rows
    };
    let pe = edges(&b);
    assert_eq!(pe, edges(&e));
    let pairs: BTreeSet<(String, String)> = pe
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["src"].as_str().unwrap().into(), r["dst"].as_str().unwrap().into()))
        .collect();
    assert!(pairs.contains(&("client".into(), "web".into())), "{pe}");
    let routes = |base: &str| {
        a.get_json(&format!("{base}/api/v1/routes?resource=deploy/client&namespace=prod&window={WINDOW}&to=svc/web")).1
            ["deploy/client"]
            .clone()
    };
    let (pr, er) = (routes(&b), routes(&e));
    let route_names = |r: &Value| -> Vec<Value> { r.as_array().unwrap().iter().map(|r| r["route"].clone()).collect() };
    assert_eq!(route_names(&pr), vec![json!("GET /work"), json!("[DEFAULT]")]);
    assert_eq!(route_names(&pr), route_names(&er));
    close("effective_rps", &pr[0], &er[0]);
    close("actual_success", &pr[0], &er[0]);

    // The CLI renders Prometheus mode's answers like any other.
    let out = cli().args(["stat", "deploy", "-n", "prod", "-t", WINDOW, "--control", &b]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.lines().any(|l| l.starts_with("web ") && l.contains("2/2")), "{table}");

    // Diagnosis reads its baselines from Prometheus too: the earlier windows (one range query per family),
    // or --offset's.
    for (query, note) in [
        ("", "latency baseline: learned for "),
        ("&offset=20s", "latency baseline: the same 10s window 20s earlier (--offset)"),
    ] {
        let (code, v) = a.get_json(&format!("{b}/api/v1/diagnose?namespace=prod&window=10s{query}"));
        assert_eq!(code, 200, "{query}: {v}");
        assert!(v["checked"].as_array().unwrap().iter().any(|c| c.as_str().unwrap().starts_with(note)), "{query}: {v}");
    }
    mirror.abort();
}

/// Registers every proxy registered with `from` with `to` too (a renewal when it already is).
async fn mirror_registrations(http: &HttpClient, from: &str, to: &str) {
    let req = hyper::Request::get(format!("{from}/api/v1/resources"))
        .header(AUTHORIZATION, format!("Bearer {API_TOKEN}"))
        .body(Full::default())
        .unwrap();
    let (_, resources) = call_json(http, req).await;
    for w in resources["workloads"].as_array().into_iter().flatten() {
        for i in w["instances"].as_array().into_iter().flatten() {
            let mut reg = json!({"workload": w["name"], "namespace": w["namespace"], "instance": i["instance"],
                "admin": i["admin"], "tap": i["tap"]});
            for key in ["inbound", "app"] {
                if !i[key].is_null() {
                    reg[key] = i[key].clone();
                }
            }
            let credential = proxy_key().mint(
                w["namespace"].as_str().unwrap_or_default(),
                w["name"].as_str().unwrap_or_default(),
                i["instance"].as_str().unwrap_or_default(),
            );
            let req = hyper::Request::post(format!("{to}/v1/proxies"))
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header(AUTHORIZATION, format!("Bearer {credential}"))
                .body(Full::from(reg.to_string()))
                .unwrap();
            // A failed attempt is retried on the next round, well within the lease.
            let _ = call_json(http, req).await;
        }
    }
}

/// Prometheus down: the CLI says which Prometheus and why, and fails.
#[test]
fn an_unreachable_prometheus_is_reported_by_the_cli() {
    let dir = TempDir::new("accuracy-no-prom");
    dir.write("mesh.yaml", MESH_YAML);
    let prom_url = format!("http://127.0.0.1:{}", free_port());
    let (_control, url) = control(dir.path(), "1s", &["--prometheus-url", &prom_url]);
    let out = cli().args(["stat", "deploy", "-n", "prod", "--control", &url]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "the control plane answered 503 Service Unavailable: cannot reach Prometheus at {prom_url}: "
        )),
        "{err}"
    );
}
