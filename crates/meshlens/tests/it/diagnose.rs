//! `meshlens diagnose` on the real demo: with a scenario running, its root cause is the first finding
//! (kind and subject); the healthy shop has nothing above info, run after run.

use std::time::Duration;

use serde_json::Value;

use crate::support::Running;

fn first(report: &Value) -> (String, String) {
    let f = &report["findings"][0];
    (f["kind"].as_str().unwrap_or_default().to_string(), f["subject"].as_str().unwrap_or_default().to_string())
}

fn above_info(report: &Value) -> Vec<Value> {
    report["findings"].as_array().into_iter().flatten().filter(|f| f["severity"] != "info").cloned().collect()
}

#[test]
fn retry_storm_names_order_service_first_and_its_retries_after() {
    let _one = crate::mesh_e2e::one_mesh_at_a_time();
    let demo = Running::demo("diagnose-retry-storm", &["--scenario", "retry-storm"]);
    let args = ["diagnose", "-n", "prod", "-t", "30s"];
    // Once there are requests enough for the retries to be surely beyond the objective, too.
    let report = demo.poll(&args, Duration::from_secs(120), |r| {
        first(r) == ("failing-workload".into(), "deploy/order-service".into())
            && r["findings"].as_array().into_iter().flatten().any(|f| f["kind"] == "retry-amplification")
    });
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings[0]["severity"], "critical", "{report:#}");
    let retries = findings
        .iter()
        .find(|f| f["kind"] == "retry-amplification")
        .unwrap_or_else(|| panic!("no retry-amplification finding: {report:#}"));
    assert!(retries["subject"].as_str().unwrap().starts_with("route deploy/order-service "), "{retries:#}");
    assert!(retries["cause"].as_str().unwrap().starts_with("payment-service's retries"), "{retries:#}");
    assert!(
        !findings.iter().any(|f| f["kind"] == "failing-workload" && f["subject"] == "deploy/payment-service"),
        "payment-service's retries hide the failures; it is no cause: {report:#}"
    );
    let (code, out, err) = demo.cli(&["diagnose", "-n", "prod", "-t", "30s", "--fail-on", "critical"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("CRITICAL failing-workload deploy/order-service"), "{out}");
}

#[test]
fn the_healthy_demo_has_nothing_above_info_five_runs_in_a_row() {
    healthy_five_runs("20");
}

#[test]
fn the_healthy_demo_at_40_rps_has_nothing_above_info_five_runs_in_a_row() {
    healthy_five_runs("40");
}

fn healthy_five_runs(rps: &str) {
    let _one = crate::mesh_e2e::one_mesh_at_a_time();
    let demo = Running::demo(&format!("diagnose-healthy-{rps}"), &["--rps", rps]);
    let args = ["diagnose", "-n", "prod", "-t", "30s"];
    // Once the shop has traffic enough to judge (no namespace-wide low-confidence note) …
    demo.poll(&args, Duration::from_secs(120), |r| {
        let quiet = r["findings"].as_array().into_iter().flatten().any(|f| f["subject"] == "ns/prod");
        !quiet && above_info(r).is_empty()
    });
    // … it stays clean.
    for run in 0..5 {
        let report = demo.json(&args).expect("diagnose answers");
        assert!(above_info(&report).is_empty(), "run {run}: {report:#}");
        let started = std::time::Instant::now();
        let (code, out, err) = demo.cli(&["diagnose", "-n", "prod", "-t", "30s", "--fail-on", "warning"]);
        assert_eq!(code, 0, "run {run}: {out}{err}");
        // The wall-clock of one run, for docs/diagnose.md (`--nocapture`).
        eprintln!("diagnose at {rps} req/s took {:?}", started.elapsed());
    }
}

/// Starts the demo with `scenario` and waits until `diagnose` names (kind, subject) first.
fn names_first(scenario: &str, kind: &str, subject: &str) -> Value {
    names_first_with(scenario, kind, subject, |_| true)
}

/// [`names_first`], waiting also until the report satisfies `also` (evidence that depends on a tap sample,
/// which a few seconds of a low-rate fault may miss in one run).
fn names_first_with(scenario: &str, kind: &str, subject: &str, also: impl Fn(&Value) -> bool) -> Value {
    let _one = crate::mesh_e2e::one_mesh_at_a_time();
    let demo = Running::demo(&format!("diagnose-{scenario}"), &["--scenario", scenario]);
    let args = ["diagnose", "-n", "prod", "-t", "30s"];
    // Once the window is whole, so the answer is the steady one.
    let report = demo.poll(&args, Duration::from_secs(120), |r| {
        r["covered_s"].as_f64() >= Some(30.0) && first(r) == (kind.to_string(), subject.to_string()) && also(r)
    });
    // The evidence of the run, for docs/diagnose.md (`--nocapture`).
    eprintln!("{scenario}: {:#}", report["findings"][0]);
    report
}

#[test]
fn timeout_504_names_the_route_timeout_first() {
    let report = names_first("timeout-504", "route-timeout", "route deploy/user-service GET /users/{id}");
    let cause = report["findings"][0]["cause"].as_str().unwrap();
    assert!(cause.contains("(5s)"), "{report:#}");
}

#[test]
fn bad_headers_names_auth_service_s_responses_first() {
    // Its proxy's log lines grouped by reason, and a tap sample of auth-service saying its proxy made them.
    let evidence = |r: &Value| r["findings"][0]["evidence"].to_string();
    let report = names_first_with("bad-headers", "invalid-response", "deploy/auth-service", |r| {
        evidence(r).contains("proxy-made invalid_response")
    });
    let lines = report["findings"][0]["evidence"].as_array().unwrap();
    assert!(
        lines
            .iter()
            .filter_map(Value::as_str)
            .any(|e| e.starts_with("log auth-service-") && e.contains("invalid_response")),
        "{report:#}"
    );
    assert!(evidence(&report).contains("with reason invalid_response (auth-service-"), "{report:#}");
}

#[test]
fn split_math_names_the_split_first() {
    let report = names_first("split-math", "split-weights", "ts/checkout-service");
    assert!(report["findings"][0]["evidence"].to_string().contains("54.5%"), "{report:#}");
}

#[test]
fn regex_miss_names_the_route_that_matches_nothing_first() {
    let report = names_first("regex-miss", "route-matches-nothing", "route deploy/order-service PUT /orders/{id}");
    assert!(report["findings"][0]["cause"].as_str().unwrap().contains("never apply"), "{report:#}");
}

#[test]
fn stale_split_names_the_split_first() {
    let report = names_first("stale-split", "split-omits-backend", "ts/ml-inference");
    assert!(
        report["findings"][0]["cause"].as_str().unwrap().starts_with("ml-inference-c gets no traffic"),
        "{report:#}"
    );
}

#[test]
fn slow_success_names_the_slow_route_first() {
    let report = names_first("slow-success", "slow-route", "route deploy/payment-service POST /charge");
    assert_eq!(report["findings"][0]["severity"], "warning", "{report:#}");
}

/// Polls `diagnose` on a mesh directory until (kind, subject) is first over a whole window.
fn mesh_names_first(name: &str, files: &[(&'static str, String)], kind: &str, subject: &str) -> Value {
    mesh_names_first_with(name, files, kind, subject, |_| true)
}

/// [`mesh_names_first`], waiting also until the report satisfies `also` (evidence from a tap sample).
fn mesh_names_first_with(
    name: &str,
    files: &[(&'static str, String)],
    kind: &str,
    subject: &str,
    also: impl Fn(&Value) -> bool,
) -> Value {
    let _one = crate::mesh_e2e::one_mesh_at_a_time();
    let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let mesh = Running::up(name, &files);
    let args = ["diagnose", "-n", "prod", "-t", "30s"];
    let report = mesh.poll(&args, Duration::from_secs(120), |r| {
        r["covered_s"].as_f64() >= Some(30.0) && first(r) == (kind.to_string(), subject.to_string()) && also(r)
    });
    eprintln!("{name}: {:#}", report["findings"][0]);
    report
}

/// [`crate::evidence::impatient_mesh`] with the load at `rps` and the caller's client timeout `timeout`.
fn impatient_mesh_at(rps: &str, timeout: &str, callee: &str, calls: &str) -> Vec<(&'static str, String)> {
    let mut files = crate::evidence::impatient_mesh(callee, calls);
    files[0].1 = files[0].1.replace("--rps, '10'", &format!("--rps, '{rps}'"));
    files[1].1 = files[1].1.replace("clientTimeout: 2s", &format!("clientTimeout: {timeout}"));
    assert!(files[0].1.contains(&format!("--rps, '{rps}'")) && files[1].1.contains(timeout));
    files
}

/// The first finding's evidence as one string.
fn evidence_of(report: &Value) -> String {
    report["findings"][0]["evidence"].to_string()
}

/// A fault of our own: a caller asks for a service by a name no service has.
#[test]
fn a_misspelled_service_name_is_blamed_on_its_caller() {
    let callee = "routes:\n  - {path: /work, latency: 2ms}\n";
    let files = crate::evidence::impatient_mesh(callee, "{service: callee, path: /work}, {service: calee, path: /w}");
    let report = mesh_names_first("diagnose-misspelled", &files, "unknown-destination", "deploy/caller");
    assert!(report["findings"][0]["cause"].as_str().unwrap().contains("calee"), "{report:#}");
}

/// A fault of our own: the callee takes 3 s on a quarter of its requests, the caller waits 2 s. The tap
/// sample says which side gave up (the caller, after ~2 s) and that the callee's slow requests are why.
#[test]
fn a_caller_that_gives_up_names_the_slow_callee() {
    let callee = "routes:\n  - path: /work\n    latency: 5ms\n    faults:\n      - {rate: 0.25, latency: 3s}\n";
    let files = crate::evidence::impatient_mesh(callee, "{service: callee, path: /work}");
    let report = mesh_names_first_with("diagnose-impatient", &files, "caller-gave-up", "deploy/callee", |r| {
        evidence_of(r).contains("tap: caller gives up after ~")
    });
    let evidence = evidence_of(&report);
    assert!(evidence.contains("the cause is callee's slow requests"), "{report:#}");
    assert!(evidence.contains("cancelled by caller before any response"), "{report:#}");
    let after = evidence.split("tap: caller gives up after ~").nth(1).unwrap();
    let seconds: f64 = after.split(' ').next().unwrap().parse().unwrap();
    assert!((1.5..=2.6).contains(&seconds), "the caller's 2 s patience: {report:#}");
}

/// A fault of our own: a caller with a 500 ms client timeout calls a service without a profile (so its
/// counters hold no route but `[DEFAULT]`) on two paths; `GET /slow` takes 1 s on half its requests. The
/// caller gives up on the callee, and the tap sample names the path that carries the tail, first.
#[test]
fn one_slow_path_is_named_from_the_tap_sample() {
    let callee = "routes:\n  - {method: GET, path: /fast, latency: 2ms}\n  - method: GET\n    path: /slow\n    \
                  latency: 2ms\n    faults:\n      - {rate: 0.5, latency: 1s}\n";
    let calls = "{service: callee, path: /fast}, {service: callee, path: /slow}";
    let files = impatient_mesh_at("20", "500ms", callee, calls);
    let report = mesh_names_first("diagnose-slow-path", &files, "latency-tail", "route deploy/callee GET /slow");
    let evidence = evidence_of(&report);
    assert!(evidence.contains("tap: route GET /slow: "), "{report:#}");
    assert!(evidence.contains("tap: callee's other routes: 0 of "), "{report:#}");
    let located = &report["findings"][1];
    assert_eq!(
        (&located["kind"], &located["subject"]),
        (&"caller-gave-up".into(), &"deploy/callee".into()),
        "{report:#}"
    );
}

/// A fault of our own: every 10th request fails at ~4 req/s. A 3 s tap sample holds one or two of the
/// failures: it says that is too few to tell a period, beside the counters' rate, rather than guessing.
#[test]
fn a_period_longer_than_the_tap_sample_is_too_few_to_tell() {
    let callee = "routes:\n  - path: /work\n    latency: 2ms\n    faults:\n      - {every: 10, status: 503}\n";
    let files = impatient_mesh_at("4", "2s", callee, "{service: callee, path: /work}");
    let report = mesh_names_first_with("diagnose-long-period", &files, "failing-workload", "deploy/callee", |r| {
        evidence_of(r).contains("tap sample of deploy/callee")
    });
    let evidence = evidence_of(&report);
    assert!(evidence.contains("too few to tell whether its failures come every Nth request"), "{report:#}");
    assert!(evidence.contains("its counters: "), "{report:#}");
    assert!(!evidence.contains("failed every"), "{report:#}");
}

/// A fault of our own: the callee's app answers every 5th request with 503. The tap sample names the
/// period and says the app (not the proxy) made them.
#[test]
fn every_fifth_request_failing_names_the_callee_and_its_period() {
    let callee = "routes:\n  - path: /work\n    latency: 2ms\n    faults:\n      - {every: 5, status: 503}\n";
    let files = crate::evidence::impatient_mesh(callee, "{service: callee, path: /work}");
    let report = mesh_names_first("diagnose-every-fifth", &files, "failing-workload", "deploy/callee");
    let evidence = report["findings"][0]["evidence"].to_string();
    assert!(evidence.contains("tap sample of deploy/callee"), "{report:#}");
    assert!(evidence.contains("app-made 503"), "{report:#}");
    assert!(evidence.contains("failed every 5th request it served"), "{report:#}");
}

/// A fault of our own: one of the callee's two instances fails 30% of its requests, the other none.
#[test]
fn one_bad_instance_of_two_is_named() {
    let callee =
        "routes:\n  - path: /work\n    latency: 2ms\n    faults:\n      - {rate: 0.3, status: 500, instances: [1]}\n";
    let mut files = crate::evidence::impatient_mesh(callee, "{service: callee, path: /work}");
    files[0].1 = files[0].1.replace(
        "      command: [meshlens, demo-app, --config, apps/callee.conf]",
        "      replicas: 2\n      command: [meshlens, demo-app, --config, apps/callee.conf]",
    );
    assert!(files[0].1.contains("replicas: 2"));
    let report = mesh_names_first("diagnose-bad-instance", &files, "failing-instance", "po/callee-1");
    // The balancer steers most requests away from it; its peer's clean record is the evidence.
    let evidence = report["findings"][0]["evidence"].to_string();
    assert!(evidence.contains("callee-0: 0 of "), "{report:#}");
}

/// A fault of our own across namespaces: callee (prod) fails 30% of `/export`, a route only web-frontend in
/// namespace web calls; caller (prod) calls its healthy `/work`. Diagnosing prod names the caller elsewhere.
#[test]
fn failures_of_one_caller_in_another_namespace_name_that_caller() {
    let callee = "routes:\n  - path: /work\n    latency: 2ms\n  - path: /export\n    latency: 2ms\n    faults:\n      \
                  - {rate: 0.3, status: 500}\n";
    let mut files = crate::evidence::impatient_mesh(callee, "{service: callee, path: /work}");
    let web = "    - name: web-traffic
      namespace: web
      command: [meshlens, demo-load, --target, 'http://web-frontend', --rps, '5', --mix, 'GET /call=1', --report-every, 1h]
      calls: [web-frontend]
    - name: web-frontend
      namespace: web
      command: [meshlens, demo-app, --config, apps/web-frontend.conf]
      calls: [callee.prod]
";
    let mesh = files[0].1.replace("namespaces: [prod]", "namespaces: [prod, web]").replace(
        "    - {name: callee, namespace: prod, workload: callee}\n",
        "    - {name: callee, namespace: prod, workload: callee}\n    - {name: web-frontend, namespace: web, workload: web-frontend}\n",
    );
    assert!(mesh.contains("[prod, web]") && mesh.contains("name: web-frontend, namespace: web"));
    files[0].1 = mesh + web;
    let frontend = "clientTimeout: 2s\nroutes:\n  - path: /call\n    calls: [{service: callee.prod, path: /export}]\n";
    files.push(("apps/web-frontend.conf", frontend.to_string()));
    let report = mesh_names_first("diagnose-caller-elsewhere", &files, "failing-caller", "deploy/web-frontend -n web");
    let f = &report["findings"][0];
    assert_eq!(f["namespace"], "web", "{report:#}");
    let evidence = f["evidence"].to_string();
    assert!(evidence.contains("web-frontend.web → callee: "), "{report:#}");
    assert!(evidence.contains("caller → callee: 0 of "), "{report:#}");
}
