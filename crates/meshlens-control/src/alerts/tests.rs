//! The rules on metric text in the shape the proxies emit, fed through the metric store a second at a
//! time: each default rule holds on the fault that breaks it, and on nothing else.

use meshlens_api::alerts as api;
use meshlens_api::promtext::parse;
use meshlens_testkit::TempDir;

use super::rules::{Windows, judge};
use super::state::Observation;
use crate::metricstore::{MetricStore, Peer, Settings, Source};

const MESH: &str = "\
apiVersion: meshlens.io/v1alpha1
kind: Mesh
metadata: {name: shop}
spec:
  namespaces: [prod]
  workloads:
    - {name: web, namespace: prod, calls: [db]}
    - {name: db, namespace: prod}
    - {name: db-v2, namespace: prod}
  services:
    - {name: db, namespace: prod, workload: db}
    - {name: db-v2, namespace: prod, workload: db-v2}
  objectives:
    services:
      prod/web: {successRate: 50}
  alerts:
    window: 10s
    baseline: 1m
    minRequestRate: 2
";

const SPLIT: &str = "\
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {name: db-split, namespace: prod}
spec:
  service: db
  backends:
    - {service: db, weight: 60}
    - {service: db-v2, weight: 50}
";

/// Per-second counts of one instance: inbound (ok, failed, slow: over 10 ms), outbound route (requests,
/// attempts).
#[derive(Clone, Copy, Default)]
struct Second {
    ok: f64,
    failed: f64,
    slow: bool,
    requests: f64,
    attempts: f64,
}

/// Cumulative counters of one instance.
#[derive(Default)]
struct Counters {
    ok: f64,
    failed: f64,
    fast: f64,
    requests: f64,
    attempts: f64,
}

fn text(c: &Counters) -> String {
    let i = "direction=\"inbound\",target_addr=\"127.0.0.1:8080\"";
    let r = "direction=\"outbound\",dst=\"db.prod.svc.cluster.local:80\",rt_route=\"GET /items/{id}\"";
    let ok = "status_code=\"200\",classification=\"success\",error=\"\"";
    let all = c.ok + c.failed;
    format!(
        "response_total{{{i},{ok}}} {}\n\
         response_total{{{i},status_code=\"503\",classification=\"failure\",error=\"\"}} {}\n\
         response_latency_ms_bucket{{{i},status_code=\"200\",le=\"10\"}} {}\n\
         response_latency_ms_bucket{{{i},status_code=\"200\",le=\"1000\"}} {all}\n\
         response_latency_ms_bucket{{{i},status_code=\"200\",le=\"+Inf\"}} {all}\n\
         route_response_total{{{r},{ok}}} {}\n\
         route_actual_response_total{{{r},{ok}}} {}\n",
        c.ok, c.failed, c.fast, c.requests, c.attempts
    )
}

/// `workload`'s counters growing by `c` per second, scraped every second from `from` to `to` (s).
fn feed(ms: &MetricStore, workload: &str, c: Second, (from, to): (u64, u64), total: &mut Counters) {
    let src = Source { namespace: "prod".into(), workload: workload.into(), instance: format!("{workload}-0") };
    for s in from..=to {
        total.ok += c.ok;
        total.failed += c.failed;
        if !c.slow {
            total.fast += c.ok + c.failed;
        }
        total.requests += c.requests;
        total.attempts += c.attempts;
        ms.ingest(&src, s * 1000, &parse(&text(total)).0, true, &|_: &str| -> Option<Peer> { None });
    }
}

fn judged(files: &[(&str, &str)], ms: &MetricStore, now_s: u64) -> Vec<Observation> {
    let dir = TempDir::new("alerts-rules");
    for (f, t) in files {
        dir.write(f, t);
    }
    let config = crate::meshdir::load(dir.path()).unwrap();
    judge(&config, ms, &Windows::of(&config.mesh.spec.alerts, now_s * 1000))
}

fn subjects(held: &[Observation], rule: &str) -> Vec<String> {
    held.iter().filter(|o| o.rule == rule).map(|o| o.subject.clone()).collect()
}

const HEALTHY: Second = Second { ok: 10.0, failed: 0.0, slow: false, requests: 10.0, attempts: 10.0 };

#[test]
fn each_rule_holds_on_its_fault_only() {
    let ms = MetricStore::new(Settings::new(1000, 3_600_000));
    let (mut db, mut web, mut v2) = (Counters::default(), Counters::default(), Counters::default());
    // A minute of healthy traffic …
    feed(&ms, "db", HEALTHY, (1, 60), &mut db);
    feed(&ms, "web", HEALTHY, (1, 60), &mut web);
    feed(&ms, "db-v2", Second { ok: 1.0, ..HEALTHY }, (1, 60), &mut v2);
    let held = judged(&[("mesh.yaml", MESH)], &ms, 60);
    assert!(held.is_empty(), "{held:#?}");
    // … then db fails 20% and slows down, web retries 30% (and misses its own lax objective of 50%: no),
    // db-v2 fails everything at 1 req/s (under minRequestRate: no).
    feed(&ms, "db", Second { ok: 8.0, failed: 2.0, slow: true, ..HEALTHY }, (61, 75), &mut db);
    feed(&ms, "web", Second { ok: 7.0, failed: 3.0, attempts: 13.0, ..HEALTHY }, (61, 75), &mut web);
    feed(&ms, "db-v2", Second { ok: 0.0, failed: 1.0, ..HEALTHY }, (61, 75), &mut v2);
    let held = judged(&[("mesh.yaml", MESH), ("db.split.yaml", SPLIT)], &ms, 75);
    assert_eq!(subjects(&held, api::SUCCESS_RATE), ["deploy/db"], "{held:#?}");
    assert_eq!(subjects(&held, api::LATENCY), ["deploy/db"], "{held:#?}");
    assert_eq!(subjects(&held, api::RETRY_RATE), ["route deploy/web GET /items/{id} → svc/db"], "{held:#?}");
    assert_eq!(subjects(&held, api::SPLIT_WEIGHTS), ["ts/db-split"], "{held:#?}");
    let success = held.iter().find(|o| o.rule == api::SUCCESS_RATE).unwrap();
    assert!((success.value - 80.0).abs() < 0.01 && success.threshold == 99.5, "{success:#?}");
    assert_eq!(success.labels["alertname"], "SuccessRateBelowObjective");
    let retry = held.iter().find(|o| o.rule == api::RETRY_RATE).unwrap();
    assert!((retry.value - 30.0).abs() < 0.01, "{retry:#?}");
    assert_eq!(retry.labels["rt_route"], "GET /items/{id}");
    let latency = held.iter().find(|o| o.rule == api::LATENCY).unwrap();
    assert!(latency.value > 500.0 && latency.threshold < 20.0, "{latency:#?}");
    let split = held.iter().find(|o| o.rule == api::SPLIT_WEIGHTS).unwrap();
    assert!(split.evidence[0].contains("54.5%"), "{split:#?}");

    // Disabled rules hold on nothing.
    let off =
        MESH.replace("    minRequestRate: 2\n", "    minRequestRate: 2\n    rules: {latency: {enabled: false}}\n");
    let held = judged(&[("mesh.yaml", &off)], &ms, 75);
    assert!(subjects(&held, api::LATENCY).is_empty() && !subjects(&held, api::SUCCESS_RATE).is_empty());
}
