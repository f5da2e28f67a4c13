//! The shipped Grafana dashboards (grafana/*.json) and Linkerd's viz dashboard queries against a real
//! Prometheus scraping the demo through `meshlens prometheus-config --job-name linkerd-proxy`: every
//! variable has values and every panel query answers with data. The test prints each query it ran.

use std::net::SocketAddr;
use std::time::Duration;

use meshlens_testkit::ChildGuard;
use meshlens_testkit::eventually::Poller;
use serde_json::Value;

use crate::support::{Running, TempDir};

/// Linkerd's viz dashboards' variable queries (namespace and deployment lists).
const LINKERD_VARIABLES: [(&str, &str); 2] = [
    ("namespace", r#"label_values(process_start_time_seconds{deployment!=""}, namespace)"#),
    ("deployment", r#"label_values(process_start_time_seconds{namespace="$namespace"}, deployment)"#),
];

/// Linkerd's viz dashboard panel queries (namespace, deployment, route and health dashboards).
const LINKERD_PANELS: [&str; 10] = [
    r#"sum(irate(response_total{classification="success", namespace="$namespace", direction="inbound"}[30s])) by (deployment) / sum(irate(response_total{namespace="$namespace", direction="inbound"}[30s])) by (deployment)"#,
    r#"sum(irate(request_total{namespace="$namespace", deployment=~"$deployment", direction="inbound"}[30s])) by (deployment)"#,
    r#"histogram_quantile(0.95, sum(irate(response_latency_ms_bucket{namespace="$namespace", direction="inbound"}[30s])) by (le, deployment))"#,
    r#"sum(irate(route_response_total{classification="success", namespace="$namespace", deployment="$deployment"}[30s])) by (rt_route) / sum(irate(route_response_total{namespace="$namespace", deployment="$deployment"}[30s])) by (rt_route)"#,
    r#"histogram_quantile(0.95, sum(irate(route_response_latency_ms_bucket{namespace="$namespace", deployment="$deployment"}[30s])) by (le, rt_route))"#,
    r#"sum(tcp_open_connections{namespace="$namespace", deployment="$deployment", direction="inbound", peer="src"})"#,
    r#"sum(irate(tcp_read_bytes_total{namespace="$namespace", deployment="$deployment", direction="outbound", peer="dst"}[30s])) by (dst_deployment)"#,
    r#"sum(tcp_open_total{direction="outbound", peer="dst", dst_namespace="$namespace"}) by (authority, dst_deployment)"#,
    r#"sum(irate(request_total{namespace="$namespace", deployment="$deployment", direction="outbound", dst_deployment!=""}[30s])) by (dst_deployment)"#,
    r#"process_resident_memory_bytes{job="linkerd-proxy"}"#,
];

/// A dashboard: its name, its variables (name, query) and its panel queries.
type Suite = (String, Vec<(String, String)>, Vec<String>);

/// The value a variable takes when the demo has it (others: the first value Prometheus lists).
const PREFERRED: [(&str, &str); 2] = [("namespace", "prod"), ("deployment", "frontend")];

struct Prometheus {
    addr: SocketAddr,
}

impl Prometheus {
    fn get(&self, path: &str, params: &[(&str, &str)]) -> Value {
        let q = serde_urlencoded::to_string(params).unwrap();
        // HTTP/1.0, so the body is not chunked; Null while Prometheus is starting.
        let get = || -> std::io::Result<String> {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(30)))?;
            write!(s, "GET {path}?{q} HTTP/1.0\r\nHost: prometheus\r\n\r\n")?;
            let mut text = String::new();
            s.read_to_string(&mut text)?;
            Ok(text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
        };
        get().ok().and_then(|body| serde_json::from_str(&body).ok()).unwrap_or(Value::Null)
    }

    /// The values of a `label_values(SELECTOR, LABEL)` variable query.
    fn label_values(&self, query: &str) -> Vec<String> {
        let inner = query.trim().strip_prefix("label_values(").and_then(|q| q.strip_suffix(')')).unwrap();
        let (selector, label) = inner.rsplit_once(',').unwrap();
        let v = self.get(&format!("/api/v1/label/{}/values", label.trim()), &[("match[]", selector.trim())]);
        v["data"]
            .as_array()
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default()
    }

    /// Number of series the instant query answers with.
    fn series(&self, query: &str) -> usize {
        self.get("/api/v1/query", &[("query", query)])["data"]["result"].as_array().map_or(0, Vec::len)
    }
}

fn substitute(query: &str, vars: &[(String, String)]) -> String {
    let mut q = query.replace("$__rate_interval", "1m").replace("${datasource}", "");
    // Longest names first, so `$dst` does not eat into a longer name.
    let mut vars = vars.to_vec();
    vars.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    for (name, value) in vars {
        q = q.replace(&format!("${name}"), &value);
    }
    q
}

/// Picks each variable's value in order (later variables may use earlier ones); Err names a variable
/// without values.
fn resolve(
    prom: &Prometheus,
    variables: &[(String, String)],
    ran: &mut Vec<String>,
) -> Result<Vec<(String, String)>, String> {
    let mut values = Vec::new();
    for (name, query) in variables {
        let query = substitute(query, &values);
        let found = prom.label_values(&query);
        ran.push(format!("{query} -> {found:?}"));
        if found.is_empty() {
            return Err(format!("variable {name}: {query} has no values"));
        }
        let preferred = PREFERRED.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        let value = preferred.filter(|p| found.iter().any(|f| f == p)).map_or_else(|| found[0].clone(), String::from);
        values.push((name.clone(), value));
    }
    Ok(values)
}

/// (variables, panel queries) of a dashboard file.
fn dashboard(path: &std::path::Path) -> (Vec<(String, String)>, Vec<String>) {
    let d: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let variables = d["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| (v["name"].as_str().unwrap().to_string(), v["query"]["query"].as_str().unwrap().to_string()))
        .collect();
    let queries = d["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_string()))
        .collect();
    (variables, queries)
}

fn find(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if let Some(f) = p.is_dir().then(|| find(&p, name)).flatten() {
            return Some(f);
        }
    }
    None
}

#[test]
fn shipped_and_linkerd_dashboards_answer_on_the_demo() {
    let Some(prometheus) = crate::accuracy::prometheus_binary() else { return };
    let _one = crate::mesh_e2e::one_mesh_at_a_time();
    // A demo with failures, so the failure panels have data.
    let demo = Running::demo("grafana", &["--scenario", "retry-storm"]);
    let token = find(demo.state(), "api.token").expect("the demo's API token file");
    let (code, config, err) = demo.cli(&[
        "prometheus-config",
        "--job-name",
        "linkerd-proxy",
        "--scrape-interval",
        "1s",
        "--refresh-interval",
        "1s",
        "--api-token-file",
        token.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let dir = TempDir::new("grafana-prometheus");
    dir.write("prometheus.yml", &config);
    let addr: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut cmd = std::process::Command::new(prometheus);
    cmd.arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn");
    let _prometheus = ChildGuard::spawn(&mut cmd).unwrap();
    let prom = Prometheus { addr };

    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../../grafana"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let names: Vec<_> = files.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["mesh.json", "proxies.json", "route.json", "workload.json"]);
    let mut suites: Vec<Suite> = files
        .iter()
        .map(|f| {
            let (v, q) = dashboard(f);
            (f.file_name().unwrap().to_string_lossy().into_owned(), v, q)
        })
        .collect();
    let linkerd_vars = LINKERD_VARIABLES.iter().map(|(n, q)| (n.to_string(), q.to_string())).collect();
    suites.push(("Linkerd viz".into(), linkerd_vars, LINKERD_PANELS.iter().map(|q| q.to_string()).collect()));

    // Every query answers once Prometheus has a minute's worth of the demo's traffic, at most.
    let mut poller = Poller::with_patience(Duration::from_secs(180).max(meshlens_testkit::patience()));
    loop {
        let mut ran = Vec::new();
        let mut empty = Vec::new();
        for (suite, variables, queries) in &suites {
            ran.push(format!("== {suite}"));
            let values = match resolve(&prom, variables, &mut ran) {
                Ok(v) => v,
                Err(e) => {
                    empty.push(format!("{suite}: {e}"));
                    continue;
                }
            };
            for q in queries {
                let q = substitute(q, &values);
                let n = prom.series(&q);
                ran.push(format!("{q} -> {n} series"));
                if n == 0 {
                    empty.push(q);
                }
            }
        }
        if empty.is_empty() {
            println!("{}", ran.join("\n"));
            return;
        }
        assert!(
            poller.wait_blocking(),
            "queries without data:\n{}\n\nall queries run:\n{}",
            empty.join("\n"),
            ran.join("\n")
        );
    }
}
