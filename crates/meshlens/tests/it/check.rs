//! `meshlens check`: every check passes on the healthy demo shop (exit 0) and a tampered mesh directory
//! fails (a declared proxy that never registers, a rejected reload: exit 1); scenarios report the audits
//! that apply, naming the resource; `--pre` on every scenario's exported directory; `--compare` between
//! two exported directories lists exactly what was changed. Output pinned by golden files (numbers,
//! ports and paths normalised).

use std::path::Path;
use std::time::Duration;

use meshlens_testkit::eventually::Poller;
use serde_json::Value;

use crate::stats::golden;
use crate::support::{Running, TempDir, meshlens};

/// `meshlens args…` without a mesh: (exit code, stdout, stderr).
fn cli(args: &[&str]) -> (i32, String, String) {
    let out = meshlens().args(args).env("NO_COLOR", "1").env_remove("MESHLENS_CONTROL").output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// `meshlens demo --export DIR [--scenario NAME]`.
fn export(dir: &Path, scenario: Option<&str>) {
    let mut args = vec!["demo", "--export", dir.to_str().unwrap()];
    args.extend(scenario.iter().flat_map(|s| ["--scenario", s]));
    let (code, out, err) = cli(&args);
    assert_eq!(code, 0, "{out}{err}");
}

/// Every file under `dir`, relative paths with their text.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_str().unwrap().to_string();
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out
}

/// Paths, then every number, made constant: what stays is the text a person reads.
fn normalise(text: &str, paths: &[(&Path, &str)]) -> String {
    let mut t = text.to_string();
    for (p, name) in paths {
        t = t.replace(p.to_str().unwrap(), name);
    }
    let mut out = String::new();
    let mut in_number = false;
    for c in t.chars() {
        if c.is_ascii_digit() {
            if !in_number {
                out.push('N');
            }
            in_number = true;
        } else {
            out.push(c);
            in_number = false;
        }
    }
    out
}

/// Every check of a JSON report: (status, description, detail joined).
fn checks(report: &Value) -> Vec<(String, String, String)> {
    let sections = report["sections"].as_array().into_iter().flatten();
    sections
        .flat_map(|s| s["checks"].as_array().into_iter().flatten())
        .map(|c| {
            let detail: Vec<&str> = c["detail"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            (
                c["status"].as_str().unwrap_or_default().to_string(),
                c["description"].as_str().unwrap_or_default().to_string(),
                detail.join("\n"),
            )
        })
        .collect()
}

/// Polls `check -t 30s -o json` until `ok(exit code, report)`; returns the report.
fn poll_check(mesh: &Running, ok: impl Fn(i32, &Value) -> bool) -> Value {
    let mut poller = Poller::with_patience(Duration::from_secs(150));
    loop {
        let (code, out, err) = mesh.cli(&["check", "-t", "30s", "-o", "json"]);
        let report: Option<Value> = serde_json::from_str(&out).ok();
        if let Some(r) = report.as_ref().filter(|r| ok(code, r)) {
            return r.clone();
        }
        assert!(poller.wait_blocking(), "check never satisfied the condition; last answer (exit {code}): {out}{err}");
    }
}

#[test]
fn the_healthy_demo_passes_every_check_and_a_tampered_directory_fails() {
    let _one = crate::mesh_e2e::one_mesh_at_a_time();
    let shop = TempDir::new("check-shop");
    export(shop.path(), None);
    let exported = files(shop.path());
    let exported: Vec<(&str, &str)> = exported.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let mesh = Running::up("check-healthy", &exported);
    let dir = mesh.dir().unwrap().to_path_buf();

    // Every check passes once the window has traffic, and the table says so.
    let mut poller = Poller::with_patience(Duration::from_secs(150));
    let table = loop {
        let (code, out, err) = mesh.cli(&["check", "-t", "30s"]);
        if code == 0 && out.lines().all(|l| !l.starts_with('‼') && !l.starts_with('×')) && !out.contains(" 0 requests")
        {
            break out;
        }
        assert!(poller.wait_blocking(), "the healthy shop never passed every check (exit {code}): {out}{err}");
    };
    assert!(table.ends_with("Status check results are √\n"), "{table}");
    golden("check_healthy_table", &normalise(&table, &[(&dir, "MESHDIR")]));

    // No drift between the running mesh and the directory it was started from.
    let (code, out, err) = mesh.cli(&["check", "--compare", shop.path().to_str().unwrap()]);
    assert_eq!((code, out.trim_end().ends_with(": no differences")), (0, true), "{out}{err}");

    // A declared workload whose proxy never registers.
    let yaml = std::fs::read_to_string(dir.join("mesh.yaml")).unwrap();
    let ghost = yaml.replacen("  workloads:\n", "  workloads:\n    - {name: ghost, namespace: prod}\n", 1);
    std::fs::write(dir.join("mesh.yaml"), ghost).unwrap();
    let report = poll_check(&mesh, |code, r| {
        code == 1 && checks(r).iter().any(|(s, d, _)| s == "failure" && d.starts_with("deploy/ghost -n prod: 0 of 1"))
    });
    assert!(checks(&report).iter().any(|(s, d, _)| s == "ok" && d.starts_with("every proxy is ready")), "{report:#}");

    // A change the control plane rejects: × with file:line, the last good configuration serving.
    std::fs::write(
        dir.join("broken.yaml"),
        "apiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata:\n  name: nope.prod.svc.cluster.local\nspec: {routes: []}\n",
    )
    .unwrap();
    let report = poll_check(&mesh, |code, r| {
        code == 1 && checks(r).iter().any(|(s, d, _)| s == "failure" && d.contains("was rejected"))
    });
    let (_, _, detail) = checks(&report).into_iter().find(|(_, d, _)| d.contains("was rejected")).unwrap();
    assert!(detail.contains("broken.yaml:4: metadata.name: no service 'nope'"), "{detail}");
}

#[test]
fn split_math_fails_naming_the_split_its_sum_and_the_shares_observed() {
    let _one = crate::mesh_e2e::one_mesh_at_a_time();
    let demo = Running::demo("check-split-math", &["--scenario", "split-math"]);
    // The canary's share as observed, once it has served some of the window.
    let canary = |r: &Value| -> Option<f64> {
        let (_, _, detail) =
            checks(r).into_iter().find(|(s, d, _)| s == "failure" && d.starts_with("ts/checkout-service"))?;
        let line = detail.lines().find(|l| l.starts_with("checkout-service-canary:"))?.to_string();
        line.split("observed ").nth(1)?.trim_end_matches('%').parse().ok()
    };
    // Enough traffic that the shares mean something: every workload's inbound counts (~80 req/s on the demo
    // mesh-wide) and the split carries ~3.5 of them, so 2,000 served put ~90 through it (the canary's share
    // then within ±11 pp at 2σ; it once read 100% after a handful).
    let served = |r: &Value| -> f64 {
        checks(r)
            .iter()
            .find_map(|(_, d, _)| d.split_once(" requests served in the last ").and_then(|(n, _)| n.parse().ok()))
            .unwrap_or(0.0)
    };
    let report =
        poll_check(&demo, |code, r| code == 1 && served(r) >= 2000.0 && canary(r).is_some_and(|share| share > 0.0));
    let (_, description, detail) =
        checks(&report).into_iter().find(|(_, d, _)| d.starts_with("ts/checkout-service")).unwrap();
    assert_eq!(description, "ts/checkout-service -n prod: the weights add up to 110%, not 100%");
    assert!(detail.contains("checkout-service-canary: weight 50 → share 45.5% (not 50%), observed"), "{detail}");
    let share = canary(&report).unwrap();
    assert!((25.0..=65.0).contains(&share), "the canary gets about 45.5%, not 50%: {detail}");
    // Nothing else of the install is wrong.
    let failures: Vec<_> = checks(&report).into_iter().filter(|(s, _, _)| s == "failure").collect();
    assert_eq!(failures.len(), 1, "{failures:#?}");
}

/// Starts the demo with `scenario` and waits until a check with `status` starts with `description`;
/// returns that check's detail.
fn scenario_reports(scenario: &str, status: &str, description: &str) -> String {
    let _one = crate::mesh_e2e::one_mesh_at_a_time();
    let demo = Running::demo(&format!("check-{scenario}"), &["--scenario", scenario]);
    let found = |r: &Value| checks(r).into_iter().find(|(s, d, _)| s == status && d.starts_with(description));
    let report = poll_check(&demo, |code, r| (status != "failure" || code == 1) && found(r).is_some());
    found(&report).unwrap().2
}

#[test]
fn timeout_504_fails_the_route_whose_timeout_is_below_its_p99() {
    let detail = scenario_reports(
        "timeout-504",
        "failure",
        "route GET /users/{id} of svc/user-service -n prod: timeout 5s is below the observed p99",
    );
    assert!(detail.contains("user-service.profile.yaml:3: timeout 5s"), "{detail}");
}

#[test]
fn regex_miss_warns_of_the_route_that_matches_nothing() {
    let detail = scenario_reports("regex-miss", "warning", "route deploy/order-service PUT /orders/{id} -n prod");
    assert!(detail.contains("[DEFAULT]"), "{detail}");
    // The paths it was meant to match, tapped from the callers: UUIDs, not numbers.
    let samples = detail.lines().find_map(|l| l.strip_prefix("sample [DEFAULT] paths: "));
    assert!(samples.is_some_and(|s| s.starts_with("/orders/") && s.contains('-')), "{detail}");
}

#[test]
fn stale_split_warns_of_the_live_backend_it_leaves_out() {
    let detail = scenario_reports("stale-split", "warning", "ts/ml-inference -n prod: ml-inference-c gets no traffic");
    assert!(detail.contains("ml-inference.split.yaml:3: backends ml-inference-a, ml-inference-b"), "{detail}");
}

#[test]
fn retry_storm_fails_order_service_s_objective_and_warns_of_the_retries() {
    let _one = crate::mesh_e2e::one_mesh_at_a_time();
    let demo = Running::demo("check-retry-storm", &["--scenario", "retry-storm"]);
    let report = poll_check(&demo, |code, r| {
        let all = checks(r);
        code == 1
            && all.iter().any(|(s, d, _)| s == "failure" && d.starts_with("deploy/order-service -n prod: success"))
            && all.iter().any(|(s, d, _)| {
                s == "warning"
                    && d.starts_with("route PUT /orders/{id} of svc/order-service -n prod: payment-service's retries")
            })
    });
    let all = checks(&report);
    let objective = all.iter().find(|(_, d, _)| d.starts_with("deploy/order-service -n prod: success")).unwrap();
    assert!(objective.1.ends_with("is below its objective 99.5%"), "{objective:?}");
}

#[test]
fn pre_checks_every_scenario_directory_and_compare_lists_exactly_what_changed() {
    let root = TempDir::new("check-pre");
    let scenarios =
        ["retry-storm", "timeout-504", "stale-split", "bad-headers", "split-math", "regex-miss", "slow-success"];
    for s in scenarios {
        let dir = root.join(s);
        export(&dir, Some(s));
        let (code, out, err) = cli(&["check", "--pre", dir.to_str().unwrap()]);
        match s {
            "split-math" => {
                assert_eq!(code, 1, "{out}{err}");
                assert!(out.contains("× ts/checkout-service -n prod: the weights add up to 110%, not 100%"), "{out}");
                golden("check_pre_split_math", &normalise(&out, &[(&dir, "DIR")]));
            }
            "stale-split" => {
                assert_eq!(code, 0, "a warning is no failure: {out}{err}");
                assert!(out.contains("‼ ts/ml-inference -n prod: workload ml-inference-c (app ml-inference)"), "{out}");
            }
            _ => assert_eq!((code, out.contains('×') || out.contains('‼')), (0, false), "{s}: {out}{err}"),
        }
    }

    // An invalid directory: every problem with file:line, exit 1.
    let bad = root.join("bad");
    export(&bad, None);
    std::fs::write(bad.join("ml-inference.split.yaml"), "kind: TrafficSplit\n").unwrap();
    let (code, out, err) = cli(&["check", "--pre", bad.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let (status, _, detail) = checks(&report).remove(0);
    assert_eq!(status, "failure");
    assert!(detail.contains("ml-inference.split.yaml:1: apiVersion: missing"), "{detail}");

    // Drift: one timeout and one split weight changed → exactly those two differences.
    let (a, b) = (root.join("a"), root.join("b"));
    export(&a, None);
    export(&b, None);
    let edit = |rel: &str, from: &str, to: &str| {
        let text = std::fs::read_to_string(b.join(rel)).unwrap();
        assert!(text.contains(from), "{rel}: {text}");
        std::fs::write(b.join(rel), text.replacen(from, to, 1)).unwrap();
    };
    edit("user-service.profile.yaml", "timeout: 2s", "timeout: 3s");
    edit("ml-inference.split.yaml", "ml-inference-b\n      weight: 100", "ml-inference-b\n      weight: 50");
    let (code, out, err) =
        cli(&["check", "--pre", a.to_str().unwrap(), "--compare", b.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 1, "{out}{err}");
    let drift: Value = serde_json::from_str(&out).unwrap();
    let found: Vec<(&str, &str, &str, &str)> = drift["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let s = |k: &str| d[k].as_str().unwrap_or_default();
            (s("kind"), s("subject"), s("this"), s("other"))
        })
        .collect();
    assert_eq!(
        found,
        [
            ("timeout", "route sp/prod/user-service.prod.svc.cluster.local GET /users/{id}", "2s", "3s"),
            ("weight", "ts/prod/ml-inference ml-inference-b", "100", "50"),
        ]
    );
    let (code, out, _) = cli(&["check", "--pre", a.to_str().unwrap(), "--compare", b.to_str().unwrap()]);
    assert_eq!(code, 1);
    golden("check_compare", &normalise(&out, &[(&a, "A"), (&b, "B")]));
    let (code, out, _) = cli(&["check", "--pre", a.to_str().unwrap(), "--compare", a.to_str().unwrap()]);
    assert_eq!((code, out.trim_end().ends_with(": no differences")), (0, true), "{out}");
}
