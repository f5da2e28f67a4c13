//! The web dashboard in a real headless Chromium (through chromedriver) on the running demo: login by
//! `meshlens dashboard`, every page without a console error, the overview's numbers equal to
//! `stat -o json`, the scenarios' failing, retrying and idle parts of the topology, the live tap.
//! Screenshots of each page go to `target/tmp/dashboard/` (artefacts, not committed).

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use meshlens_testkit::ChildGuard;
use meshlens_testkit::eventually::Poller;
use meshlens_testkit::process::Stream;
use serde_json::{Value, json};

use crate::support::{Running, TempDir};

/// The demo at 40 requests per second (`--scenario` when given), running until dropped.
fn start_demo(scenario: Option<&str>) -> Running {
    let name = format!("dashboard-{}", scenario.unwrap_or("demo"));
    match scenario {
        Some(s) => Running::demo(&name, &["--rps", "40", "--scenario", s]),
        None => Running::demo(&name, &["--rps", "40"]),
    }
}

/// `meshlens dashboard --no-open`: the one-time login link.
fn login_link(demo: &Running) -> String {
    let (code, out, err) = demo.cli(&["dashboard", "--no-open"]);
    assert_eq!(code, 0, "{err}");
    let link = out.trim().to_string();
    assert!(link.starts_with("http://127.0.0.1:") && link.contains("/login?code="), "{link}");
    link
}

fn stat_json(demo: &Running) -> Vec<Value> {
    let (code, out, err) = demo.cli(&["stat", "deploy", "-n", "prod", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// chromedriver on a free local port, killed on drop.
struct Driver {
    guard: ChildGuard,
    url: String,
    _profile: TempDir,
}

impl Driver {
    fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = Command::new("chromedriver");
        cmd.arg(format!("--port={port}"));
        let guard =
            ChildGuard::spawn(&mut cmd).expect("chromedriver is installed (scripts/test installs chromium-driver)");
        guard.wait_for_line(Stream::Stdout, |l| l.contains("started successfully"));
        Driver { guard, url: format!("http://127.0.0.1:{port}"), _profile: TempDir::new("chromium-profile") }
    }

    async fn browser(&self) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1400,1000",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", self._profile.path().display()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(caps) = caps else { unreachable!() };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot start Chromium: {e}\n{}", self.guard.stderr_text()))
    }
}

/// chromedriver's browser log (`POST /session/ID/se/log`): console messages, uncaught errors, failed loads.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_string()))
    }
}

/// Fails on any SEVERE browser log entry since the last call.
async fn assert_no_console_error(c: &Client, page: &str) {
    let log = c.issue_cmd(BrowserLog).await.unwrap();
    let severe: Vec<&Value> = log.as_array().into_iter().flatten().filter(|e| e["level"] == "SEVERE").collect();
    assert!(severe.is_empty(), "console errors on {page}: {severe:?}");
}

/// Prints the page's first contentful paint, DOM ready time and size (the figures in docs/dashboard.md).
async fn report_timing(c: &Client, page: &str) {
    let t = c
        .execute(
            "const n = performance.getEntriesByType('navigation')[0];
             const p = performance.getEntriesByName('first-contentful-paint')[0];
             return { fcp_ms: p ? Math.round(p.startTime) : null, dom_ready_ms: Math.round(n.domContentLoadedEventEnd),
                      html_bytes: n.decodedBodySize,
                      all_bytes: performance.getEntriesByType('resource').reduce((s, r) => s + r.decodedBodySize, n.decodedBodySize) };",
            vec![],
        )
        .await
        .unwrap();
    eprintln!("dashboard {page}: {t}");
}

async fn screenshot(c: &Client, name: &str) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), c.screenshot().await.unwrap()).unwrap();
}

/// Logs the browser in with the link and checks it lands on the overview.
async fn log_in(c: &Client, demo: &Running) -> String {
    let link = login_link(demo);
    c.goto(&link).await.unwrap();
    let url = c.current_url().await.unwrap();
    assert_eq!(url.path(), "/", "the login redirects to the overview");
    c.find(Locator::Css("[data-workload]")).await.expect("the overview lists workloads");
    format!("{}://{}", url.scheme(), url.authority())
}

/// Polls `script` (returning a value) in the page until `done` holds for it.
async fn until(c: &Client, what: &str, script: &str, mut done: impl FnMut(&Value) -> bool) -> Value {
    let mut poller = Poller::new();
    loop {
        let v = c.execute(script, vec![]).await.unwrap();
        if done(&v) {
            return v;
        }
        assert!(poller.wait().await, "{what}: last value {v}");
    }
}

/// The `data-state` of an element of the topology after a reload (`null` when absent).
async fn topology_state(c: &Client, base: &str, what: &str, selector: &str, want: &[&str]) -> Value {
    let script = format!("const e = document.querySelector(\"{selector}\"); return e ? e.dataset.state : null;");
    let mut poller = Poller::new();
    loop {
        c.goto(&format!("{base}/topology")).await.unwrap();
        let v = c.execute(&script, vec![]).await.unwrap();
        if want.iter().any(|w| v == *w) {
            return v;
        }
        assert!(poller.wait().await, "{what}: {selector} has state {v}, expected one of {want:?}");
    }
}

const ROWS: &str = "return [...document.querySelectorAll('tr[data-workload]')].map(r => ({
    id: r.dataset.workload,
    success: r.querySelector('[data-col=success]').textContent,
    rps: r.querySelector('[data-col=rps]').textContent,
    p50: r.querySelector('[data-col=p50]').textContent,
}));";

/// A page number (`99.50%`, `12.3`, `7ms`, `-`) as a number.
fn number(text: &str) -> Option<f64> {
    text.trim_end_matches(['%', 's', 'm']).parse().ok()
}

fn within(page: Option<f64>, before: Option<f64>, after: Option<f64>, rounding: f64) -> bool {
    match (page, before, after) {
        (None, None, _) | (None, _, None) => true,
        (Some(p), Some(a), Some(b)) => p >= a.min(b) - rounding && p <= a.max(b) + rounding,
        (Some(p), Some(a), None) | (Some(p), None, Some(a)) => (p - a).abs() <= rounding,
        _ => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_loads_and_the_overview_matches_stat() {
    let demo = start_demo(None);
    let driver = Driver::start();
    let c = driver.browser().await;
    // Without the login nothing is shown: no cookie, no pages, no API.
    let base = {
        let link = login_link(&demo);
        let base = link.split("/login").next().unwrap().to_string();
        let addr = crate::support::addr(base.trim_start_matches("http://"));
        let get = |target: &str| {
            meshlens_testkit::blocking::http_get(addr, "127.0.0.1", target, Duration::from_secs(10)).unwrap()
        };
        let page = get("/");
        assert_eq!(page.status, 401, "{}", page.body);
        assert_eq!(get("/api/v1/stat?resource=deploy").status, 401);
        assert_eq!(get("/login?code=forged").status, 401);
        base
    };
    assert_eq!(log_in(&c, &demo).await, base);

    // Every demo workload, with the numbers of `stat -o json` (taken before and after; rounding allowed).
    let names: BTreeSet<String> =
        stat_json(&demo).iter().map(|r| format!("prod/{}", r["name"].as_str().unwrap())).collect();
    assert!(names.len() >= 12, "{names:?}");
    let mut poller = Poller::new();
    loop {
        let before = stat_json(&demo);
        c.refresh().await.unwrap();
        let rows = c.execute(ROWS, vec![]).await.unwrap();
        let after = stat_json(&demo);
        let rows = rows.as_array().unwrap();
        let ids: BTreeSet<String> = rows.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
        let find = |rows: &[Value], id: &str| {
            rows.iter().find(|r| format!("prod/{}", r["name"].as_str().unwrap()) == id).cloned()
        };
        let mismatches: Vec<String> = rows
            .iter()
            .filter_map(|r| {
                let id = r["id"].as_str().unwrap();
                let (b, a) = (find(&before, id)?, find(&after, id)?);
                let f = |v: &Value, k: &str| v[k].as_f64();
                let ok = within(number(r["rps"].as_str()?), f(&b, "rps"), f(&a, "rps"), 0.05)
                    && within(
                        number(r["success"].as_str()?).map(|s| s / 100.0),
                        f(&b, "success"),
                        f(&a, "success"),
                        0.00005,
                    )
                    && within(number(r["p50"].as_str()?), f(&b, "latency_ms_p50"), f(&a, "latency_ms_p50"), 0.5);
                (!ok).then(|| format!("{id}: page {r} stat {b} / {a}"))
            })
            .collect();
        // Live numbers: every workload but the load generator serves requests.
        let serving = rows
            .iter()
            .filter(|r| r["id"] != "prod/traffic")
            .all(|r| r["rps"].as_str().and_then(number).is_some_and(|v| v > 0.0));
        if names.is_subset(&ids) && mismatches.is_empty() && serving {
            break;
        }
        assert!(
            poller.wait().await,
            "overview vs stat: missing {:?}, mismatches {mismatches:#?}",
            names.difference(&ids)
        );
    }
    assert_no_console_error(&c, "/").await;
    report_timing(&c, "/").await;
    screenshot(&c, "overview").await;

    // Live update: the page refreshes itself.
    until(&c, "the overview updates itself", "return document.getElementById('live').textContent", |v| {
        v.as_str().is_some_and(|s| s.starts_with("live ·"))
    })
    .await;

    c.goto(&format!("{base}/topology")).await.unwrap();
    let nodes = c
        .execute("return [...document.querySelectorAll('[data-node]')].map(n => n.dataset.node)", vec![])
        .await
        .unwrap();
    for name in &names {
        assert!(nodes.as_array().unwrap().iter().any(|n| n == name.as_str()), "{name} on the topology: {nodes}");
    }
    topology_state(&c, &base, "a healthy edge", "[data-edge='prod/frontend->prod/api-gateway']", &["ok"]).await;
    assert_no_console_error(&c, "/topology").await;
    report_timing(&c, "/topology").await;
    screenshot(&c, "topology").await;

    // One namespace's topology has the same workloads; another has none of them.
    c.goto(&format!("{base}/topology?namespace=prod")).await.unwrap();
    let prod = c.execute("return document.querySelectorAll('[data-node]').length", vec![]).await.unwrap();
    assert_eq!(prod.as_u64(), Some(nodes.as_array().unwrap().len() as u64));
    c.goto(&format!("{base}/topology?namespace=elsewhere")).await.unwrap();
    assert!(c.find_all(Locator::Css("[data-node]")).await.unwrap().is_empty());

    // An edge's page: the callee's numbers as the caller sees them, the caller's routes to it.
    c.goto(&format!("{base}/edge/prod/checkout-service/prod/payment-service")).await.unwrap();
    c.find(Locator::Css("tr[data-callee='prod/payment-service']")).await.unwrap();
    c.find(Locator::Css("tr[data-route]")).await.expect("checkout-service's routes to payment-service");
    assert_no_console_error(&c, "/edge/prod/checkout-service/prod/payment-service").await;
    screenshot(&c, "edge").await;

    // A route's page, reached from the edge page's route link: the route as served and as called, its
    // configuration with file:line.
    let link = c.find(Locator::Css("tr[data-route='POST /charge'] a")).await.expect("a link to POST /charge's page");
    link.click().await.unwrap();
    c.find(Locator::Css("tr[data-route-config='POST /charge']")).await.expect("the route's configuration");
    let rows = c.find_all(Locator::Css("tr[data-route='POST /charge']")).await.unwrap();
    assert!(!rows.is_empty(), "POST /charge as served and as called");
    let declared = c.find(Locator::Css("tr[data-route-config='POST /charge']")).await.unwrap().text().await.unwrap();
    assert!(declared.contains(".yaml:"), "declared at file:line: {declared}");
    assert_no_console_error(&c, "/route/prod/payment-service").await;
    screenshot(&c, "route").await;
    c.goto(&format!("{base}/topology")).await.unwrap();

    // Compared with 10 minutes ago (before the demo started: no numbers then).
    c.goto(&format!("{base}/?offset=10m")).await.unwrap();
    let row = c.find(Locator::Css("[data-compare='prod/frontend']")).await.unwrap();
    assert!(row.text().await.unwrap().contains('%'), "now has a success rate");
    assert_no_console_error(&c, "/?offset=10m").await;

    // The configuration: the directory is valid, the demo's split shows its backends.
    c.goto(&format!("{base}/config")).await.unwrap();
    let reload = c.find(Locator::Css("[data-reload]")).await.unwrap();
    assert_eq!(reload.attr("data-reload").await.unwrap().as_deref(), Some("ok"));
    c.find(Locator::Css("[data-split='prod/ml-inference-c']")).await.unwrap();
    assert_no_console_error(&c, "/config").await;
    screenshot(&c, "config").await;
    c.goto(&format!("{base}/topology")).await.unwrap();

    // A click on a node opens its workload page.
    c.find(Locator::Css("[data-node='prod/payment-service']")).await.unwrap().click().await.unwrap();
    until(&c, "the workload page", "return location.pathname", |v| v == "/workload/prod/payment-service").await;
    for name in &names {
        let (ns, wl) = name.split_once('/').unwrap();
        c.goto(&format!("{base}/workload/{ns}/{wl}")).await.unwrap();
        c.find(Locator::Css(&format!("tr[data-workload='{name}']"))).await.unwrap();
        c.find(Locator::Css("[data-chart=RPS] polyline")).await.expect("an RPS history line");
        until(&c, "log events loaded", "return document.getElementById('logs').textContent", |v| {
            v.as_str().is_some_and(|s| !s.contains("loading"))
        })
        .await;
        assert_no_console_error(&c, &format!("/workload/{name}")).await;
        if wl == "payment-service" {
            report_timing(&c, "/workload/prod/payment-service").await;
            // Its instances sit in checkout-service's balancer and answer a share of its requests.
            let cells = "return [...document.querySelectorAll('tr[data-instance] td[data-col=balancer-state]')]\
                         .map(td => td.textContent)";
            until(&c, "instances in a balancer", cells, |v| {
                v.as_array().is_some_and(|a| {
                    !a.is_empty() && a.iter().all(|s| s.as_str().is_some_and(|s| s.starts_with("in ")))
                })
            })
            .await;
        }
        screenshot(&c, &format!("workload-{wl}")).await;
    }

    // The live tap panel streams the workload's requests.
    // With the CLI's filters: only GET requests whose path starts with /products.
    c.goto(&format!("{base}/workload/prod/frontend")).await.unwrap();
    c.find(Locator::Css("#tap-filter [name=method]")).await.unwrap().send_keys("GET").await.unwrap();
    c.find(Locator::Css("#tap-filter [name=path]")).await.unwrap().send_keys("/products").await.unwrap();
    c.find(Locator::Id("tap-toggle")).await.unwrap().click().await.unwrap();
    until(&c, "tap rows", "return document.querySelectorAll('#tap tbody tr').length", |v| {
        v.as_u64().is_some_and(|n| n >= 3)
    })
    .await;
    let paths = c
        .execute(
            "return [...document.querySelectorAll('#tap tbody tr')].map(r => r.cells[4].textContent).filter(p => p)",
            vec![],
        )
        .await
        .unwrap();
    let paths = paths.as_array().unwrap();
    assert!(!paths.is_empty() && paths.iter().all(|p| p.as_str().unwrap().starts_with("/products")), "{paths:?}");
    let command = c.find(Locator::Id("tap-command")).await.unwrap().text().await.unwrap();
    assert_eq!(command, "meshlens tap deploy/frontend -n prod --method GET --path /products");
    screenshot(&c, "tap").await;
    c.find(Locator::Id("tap-toggle")).await.unwrap().click().await.unwrap();
    assert_no_console_error(&c, "/workload/prod/frontend (tap)").await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_storm_shows_the_payment_to_order_edge_retrying_or_failing() {
    let demo = start_demo(Some("retry-storm"));
    let driver = Driver::start();
    let c = driver.browser().await;
    let base = log_in(&c, &demo).await;
    let edge = "[data-edge='prod/payment-service->prod/order-service']";
    topology_state(&c, &base, "retry storm", edge, &["retrying", "failing"]).await;
    assert_no_console_error(&c, "/topology").await;
    screenshot(&c, "topology-retry-storm").await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_split_shows_the_failing_backend_and_the_idle_one() {
    let demo = start_demo(Some("stale-split"));
    let driver = Driver::start();
    let c = driver.browser().await;
    let base = log_in(&c, &demo).await;
    let edge = "[data-edge='prod/recommendation-service->prod/ml-inference-b']";
    topology_state(&c, &base, "stale split", edge, &["failing"]).await;
    topology_state(&c, &base, "stale split", "[data-node='prod/ml-inference-c']", &["idle"]).await;
    assert_no_console_error(&c, "/topology").await;
    screenshot(&c, "topology-stale-split").await;
    c.close().await.unwrap();
}

#[test]
fn page_numbers_parse_and_compare_within_rounding() {
    assert_eq!(number("99.50%"), Some(99.5));
    assert_eq!(number("12ms"), Some(12.0));
    assert_eq!(number("-"), None);
    assert!(within(Some(12.3), Some(12.26), Some(12.4), 0.05));
    assert!(!within(Some(13.0), Some(12.26), Some(12.4), 0.05));
}
