//! Each rule on metric text in the shape the proxies emit, fed through the metric store a minute at a
//! time: the first finding names the fault, a healthy mesh yields nothing above info.

use meshlens_api::diagnose::{self as kinds, Report, Severity};
use meshlens_api::mesh::{ObjectiveOverride, Objectives};
use meshlens_api::promtext::parse;

use super::{DiagnoseQuery, diagnose};
use crate::api_types::Resources;
use crate::metricstore::{MetricStore, Peer, Settings, Source};

const MESH: &str = "\
apiVersion: meshlens.io/v1alpha1
kind: Mesh
metadata:
  name: shop
spec:
  namespaces: [prod]
  workloads:
    - {name: web, namespace: prod, calls: [api]}
    - {name: api, namespace: prod, replicas: 2, calls: [db]}
    - {name: db, namespace: prod, labels: {app: db}}
    - {name: db-v2, namespace: prod, labels: {app: db}}
    - {name: db-v3, namespace: prod, labels: {app: db}}
  services:
    - {name: web, namespace: prod, workload: web}
    - {name: api, namespace: prod, workload: api}
    - {name: db, namespace: prod, workload: db}
    - {name: db-v2, namespace: prod, workload: db-v2}
    - {name: db-v3, namespace: prod, workload: db-v3}
";

const PROFILE: &str = "\
apiVersion: linkerd.io/v1alpha2
kind: ServiceProfile
metadata:
  name: db.prod.svc.cluster.local
  namespace: prod
spec:
  routes:
    - name: GET /items/{id}
      condition: {method: GET, pathRegex: '/items/[0-9]+'}
      isRetryable: true
      timeout: 2s
  retryBudget: {retryRatio: 0.5, minRetriesPerSecond: 20, ttl: 10s}
";

const SPLIT: &str = "\
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata:
  name: db-split
  namespace: prod
spec:
  service: db
  backends:
    - {service: db, weight: 60}
    - {service: db-v2, weight: 50}
";

const INSTANCES: &[(&str, &str)] =
    &[("web", "web-0"), ("api", "api-0"), ("api", "api-1"), ("db", "db-0"), ("db-v2", "db-v2-0"), ("db-v3", "db-v3-0")];

fn resources(extra: &[(&str, &str)]) -> Resources {
    let files: Vec<(&str, &str)> = [("mesh.yaml", MESH)].into_iter().chain(extra.iter().copied()).collect();
    crate::statsapi::tests::registered(&files, INSTANCES)
}

/// Per second, what one instance's proxy counts: each line `(series without value, per-second rate)`.
type Rates = Vec<(String, f64)>;

fn served(ok: f64, failed: f64, error: &str) -> Rates {
    let l = "direction=\"inbound\",target_addr=\"127.0.0.1:8080\"";
    vec![
        (format!("response_total{{{l},status_code=\"200\",classification=\"success\",error=\"\"}}"), ok),
        (format!("response_total{{{l},status_code=\"502\",classification=\"failure\",error=\"{error}\"}}"), failed),
        (format!("response_latency_ms_bucket{{{l},status_code=\"200\",le=\"10\"}}"), ok + failed),
        (format!("response_latency_ms_bucket{{{l},status_code=\"200\",le=\"+Inf\"}}"), ok + failed),
    ]
}

/// Requests the caller gave up on, as the callee's inbound proxy counts them.
fn cancelled(n: f64) -> Rates {
    let l = "direction=\"inbound\",target_addr=\"127.0.0.1:8080\"";
    vec![(format!("response_total{{{l},status_code=\"\",classification=\"failure\",error=\"cancelled\"}}"), n)]
}

fn call(dst: &str, ok: f64, failed: f64, error: &str) -> Rates {
    let l = format!(
        "direction=\"outbound\",authority=\"{dst}.prod.svc.cluster.local:80\",target_addr=\"127.0.0.1:9\",\
         dst_namespace=\"prod\",dst_deployment=\"{dst}\",dst_pod=\"{dst}-0\",dst_service=\"{dst}\""
    );
    vec![
        (format!("response_total{{{l},status_code=\"200\",classification=\"success\",error=\"\"}}"), ok),
        (format!("response_total{{{l},status_code=\"503\",classification=\"failure\",error=\"{error}\"}}"), failed),
    ]
}

fn refused(authority: &str, n: f64) -> Rates {
    vec![(
        format!(
            "response_total{{direction=\"outbound\",authority=\"{authority}\",target_addr=\"\",status_code=\"404\",\
             classification=\"failure\",error=\"no_route\"}}"
        ),
        n,
    )]
}

/// A route as the caller's proxy counts it: effective ok/failed (of which `timeouts` by the route
/// timeout), actual attempts ok/failed, and retry fates.
fn route(name: &str, effective: (f64, f64, f64), actual: (f64, f64), fates: &[(&str, f64)]) -> Rates {
    let l = format!("direction=\"outbound\",dst=\"db.prod.svc.cluster.local:80\",rt_route=\"{name}\"");
    let mut v = vec![
        (format!("route_response_total{{{l},status_code=\"200\",classification=\"success\",error=\"\"}}"), effective.0),
        (
            format!("route_response_total{{{l},status_code=\"503\",classification=\"failure\",error=\"\"}}"),
            effective.1 - effective.2,
        ),
        (
            format!("route_response_total{{{l},status_code=\"504\",classification=\"failure\",error=\"timeout\"}}"),
            effective.2,
        ),
        (
            format!("route_actual_response_total{{{l},status_code=\"200\",classification=\"success\",error=\"\"}}"),
            actual.0,
        ),
        (
            format!("route_actual_response_total{{{l},status_code=\"503\",classification=\"failure\",error=\"\"}}"),
            actual.1,
        ),
    ];
    for (fate, n) in fates {
        v.push((format!("route_retry_fate_total{{{l},fate=\"{fate}\"}}"), *n));
    }
    v
}

/// The mesh's proxies, each with its namespace and per-second counts.
struct Traffic(Vec<(&'static str, &'static str, &'static str, Rates)>);

impl Traffic {
    fn new() -> Self {
        Traffic(Vec::new())
    }

    fn add(self, workload: &'static str, instance: &'static str, rates: Rates) -> Self {
        self.add_in("prod", workload, instance, rates)
    }

    fn add_in(mut self, ns: &'static str, workload: &'static str, instance: &'static str, rates: Rates) -> Self {
        self.0.push((ns, workload, instance, rates));
        self
    }

    /// Feeds seconds `from..=to` (one scrape a second) into the store.
    fn feed(&self, ms: &MetricStore, from: u64, to: u64) {
        self.feed_with(ms, from, to, |_, _| String::new());
    }

    /// The same, with `extra(instance, second)` appended to each scrape (series that do not grow linearly).
    fn feed_with(&self, ms: &MetricStore, from: u64, to: u64, extra: impl Fn(&str, u64) -> String) {
        for s in from..=to {
            for (ns, workload, instance, rates) in &self.0 {
                let mut text: String =
                    rates.iter().map(|(series, rate)| format!("{series} {}\n", (rate * s as f64).round())).collect();
                text.push_str(&extra(instance, s));
                let src = Source {
                    namespace: ns.to_string(),
                    workload: workload.to_string(),
                    instance: instance.to_string(),
                };
                ms.ingest(&src, s * 1000, &parse(&text).0, true, &|_: &str| -> Option<Peer> { None });
            }
        }
    }
}

fn run(res: &Resources, traffic: &Traffic) -> Report {
    run_held_to(res, traffic, &Objectives::default())
}

fn run_held_to(res: &Resources, traffic: &Traffic, objectives: &Objectives) -> Report {
    let ms = MetricStore::new(Settings::new(1000, 3_600_000));
    traffic.feed(&ms, 0, 60);
    let q = DiagnoseQuery { namespace: Some("prod".into()), window: Some("1m".into()), ..Default::default() };
    diagnose(res, objectives, &ms, &q, 60_000).unwrap()
}

/// mesh.yaml's `spec.objectives` with one service's override.
fn objectives(service: &str, own: ObjectiveOverride) -> Objectives {
    Objectives { services: [(service.to_string(), own)].into(), ..Objectives::default() }
}

fn first(report: &Report) -> (&str, &str, Severity) {
    let f = report.findings.first().unwrap_or_else(|| panic!("no finding: {report:#?}"));
    (f.kind.as_str(), f.subject.as_str(), f.severity)
}

fn kinds_of(report: &Report) -> Vec<(&str, &str)> {
    report.findings.iter().map(|f| (f.kind.as_str(), f.subject.as_str())).collect()
}

/// web → api → db, every request fine, `db_ok` per second at db.
fn healthy() -> Traffic {
    Traffic::new()
        .add("web", "web-0", [served(10.0, 0.0, ""), call("api", 10.0, 0.0, "")].concat())
        .add("api", "api-0", [served(5.0, 0.0, ""), call("db", 5.0, 0.0, "")].concat())
        .add("api", "api-1", [served(5.0, 0.0, ""), call("db", 5.0, 0.0, "")].concat())
        .add("db", "db-0", served(10.0, 0.0, ""))
}

#[test]
fn a_healthy_mesh_has_nothing_above_info() {
    let report = run(&resources(&[("db.profile.yaml", PROFILE)]), &healthy());
    assert!(report.worst().is_none_or(|s| s == Severity::Info), "{report:#?}");
    assert!(report.checked.iter().any(|c| c.starts_with("nothing above info")), "{:?}", report.checked);
}

#[test]
fn a_quiet_mesh_says_it_cannot_judge_and_blames_nobody() {
    // 1 request in 3 fails, but there are only a few dozen of them.
    let t = Traffic::new().add("web", "web-0", [served(0.2, 0.1, ""), call("api", 0.2, 0.1, "")].concat()).add(
        "api",
        "api-0",
        served(0.2, 0.1, ""),
    );
    let report = run(&resources(&[]), &t);
    assert_eq!(report.worst(), Some(Severity::Info), "{report:#?}");
    let found = kinds_of(&report);
    assert!(found.contains(&(kinds::LOW_CONFIDENCE, "ns/prod")), "{report:#?}");
    assert!(found.contains(&(kinds::LOW_CONFIDENCE, "deploy/api")), "{report:#?}");
}

#[test]
fn failures_are_blamed_on_the_deepest_workload_not_its_callers() {
    // db fails 10% (its app); api and web fail the same requests because of it.
    let t = Traffic::new()
        .add("web", "web-0", [served(9.0, 1.0, ""), call("api", 9.0, 1.0, "")].concat())
        .add("api", "api-0", [served(4.5, 0.5, ""), call("db", 4.5, 0.5, "")].concat())
        .add("api", "api-1", [served(4.5, 0.5, ""), call("db", 4.5, 0.5, "")].concat())
        .add("db", "db-0", served(9.0, 1.0, ""));
    let report = run(&resources(&[]), &t);
    assert_eq!(first(&report), (kinds::FAILING_WORKLOAD, "deploy/db", Severity::Critical), "{report:#?}");
    assert_eq!(kinds_of(&report), [(kinds::FAILING_WORKLOAD, "deploy/db")], "callers are symptoms");
    let f = &report.findings[0];
    assert!((f.impact_rps - 1.0).abs() < 0.05, "{}", f.impact_rps);
    assert!(f.evidence.iter().any(|e| e.contains("api → db")), "{:?}", f.evidence);
    assert!(f.commands.iter().any(|c| c == "meshlens stat deploy/db -n prod"), "{:?}", f.commands);
}

#[test]
fn retries_that_hide_a_callee_s_failures_name_the_callee_first() {
    // db fails 15% per attempt; api retries (1.18 attempts per request), so api and web see no failures.
    let fates = [("succeeded_first", 4.25), ("succeeded_after_retry", 0.75)];
    let api = || {
        [served(5.0, 0.0, ""), call("db", 5.0, 0.9, ""), route("GET /items/{id}", (5.0, 0.0, 0.0), (5.0, 0.9), &fates)]
            .concat()
    };
    let t = Traffic::new()
        .add("web", "web-0", [served(10.0, 0.0, ""), call("api", 10.0, 0.0, "")].concat())
        .add("api", "api-0", api())
        .add("api", "api-1", api())
        .add("db", "db-0", served(10.0, 1.8, ""));
    let report = run(&resources(&[("db.profile.yaml", PROFILE)]), &t);
    assert_eq!(first(&report), (kinds::FAILING_WORKLOAD, "deploy/db", Severity::Critical), "{report:#?}");
    assert_eq!(
        kinds_of(&report),
        [(kinds::FAILING_WORKLOAD, "deploy/db"), (kinds::RETRY_AMPLIFICATION, "route deploy/db GET /items/{id}")]
    );
    assert!(report.findings[0].evidence.iter().any(|e| e.contains("its retries hide them")), "{report:#?}");
    let retry = &report.findings[1];
    assert!(retry.cause.contains("1.18×"), "{}", retry.cause);
    assert!(retry.evidence.iter().any(|e| e.contains("retryRatio 0.5")), "{:?}", retry.evidence);
}

#[test]
fn a_name_no_service_has_is_blamed_on_its_caller() {
    let t =
        healthy().add("api", "api-0", [served(0.0, 2.0, ""), refused("dbb.prod.svc.cluster.local:80", 2.0)].concat());
    let report = run(&resources(&[]), &t);
    assert_eq!(first(&report), (kinds::UNKNOWN_DESTINATION, "deploy/api", Severity::Critical), "{report:#?}");
    assert!(report.findings[0].cause.contains("dbb.prod.svc.cluster.local:80"));
    assert!(!kinds_of(&report).iter().any(|k| k.0 == kinds::FAILING_WORKLOAD), "{report:#?}");
}

#[test]
fn route_timeouts_name_the_route_and_its_timeout() {
    let api = || {
        [
            served(4.8, 0.2, ""),
            call("db", 4.8, 0.2, "timeout"),
            route("GET /items/{id}", (4.8, 0.2, 0.2), (4.8, 0.2), &[]),
        ]
        .concat()
    };
    let t = Traffic::new()
        .add("web", "web-0", [served(9.6, 0.4, ""), call("api", 9.6, 0.4, "")].concat())
        .add("api", "api-0", api())
        .add("api", "api-1", api())
        .add("db", "db-0", [served(9.6, 0.0, ""), cancelled(0.4)].concat());
    let report = run(&resources(&[("db.profile.yaml", PROFILE)]), &t);
    assert_eq!(
        first(&report),
        (kinds::ROUTE_TIMEOUT, "route deploy/db GET /items/{id}", Severity::Critical),
        "{report:#?}"
    );
    let f = &report.findings[0];
    assert!(f.cause.contains("(2s)"), "{}", f.cause);
    assert!(f.evidence.iter().any(|e| e.contains("db.profile.yaml")), "{:?}", f.evidence);
    assert!(
        !kinds_of(&report).iter().any(|k| k.0 == kinds::FAILING_WORKLOAD),
        "the callee is not to blame: {report:#?}"
    );
}

#[test]
fn one_failing_instance_among_healthy_peers_is_named() {
    let t = Traffic::new()
        .add("web", "web-0", [served(9.0, 1.0, ""), call("api", 9.0, 1.0, "")].concat())
        .add("api", "api-0", served(5.0, 0.0, ""))
        .add("api", "api-1", served(4.0, 1.0, ""));
    let report = run(&resources(&[]), &t);
    assert_eq!(first(&report), (kinds::FAILING_INSTANCE, "po/api-1", Severity::Critical), "{report:#?}");
}

#[test]
fn malformed_responses_are_blamed_on_the_app_behind_the_rejecting_proxy() {
    let t = Traffic::new()
        .add("web", "web-0", [served(9.0, 1.0, ""), call("api", 9.0, 1.0, "")].concat())
        .add("api", "api-0", [served(4.5, 0.5, ""), call("db", 4.5, 0.5, "peer:invalid_response")].concat())
        .add("api", "api-1", [served(4.5, 0.5, ""), call("db", 4.5, 0.5, "peer:invalid_response")].concat())
        .add("db", "db-0", served(9.0, 1.0, "invalid_response"));
    let report = run(&resources(&[]), &t);
    assert_eq!(first(&report), (kinds::INVALID_RESPONSE, "deploy/db", Severity::Critical), "{report:#?}");
    assert_eq!(kinds_of(&report).len(), 1, "{report:#?}");
}

#[test]
fn a_split_that_does_not_add_up_and_omits_a_live_backend() {
    let t = healthy().add("db-v2", "db-v2-0", served(8.0, 0.0, ""));
    let report = run(&resources(&[("split.yaml", SPLIT)]), &t);
    let found = kinds_of(&report);
    assert!(found.contains(&(kinds::SPLIT_WEIGHTS, "ts/db-split")), "{report:#?}");
    assert!(found.contains(&(kinds::SPLIT_OMITS_BACKEND, "ts/db-split")), "{report:#?}");
    let weights = report.findings.iter().find(|f| f.kind == kinds::SPLIT_WEIGHTS).unwrap();
    assert!(weights.evidence.iter().any(|e| e.contains("54.5%")), "{:?}", weights.evidence);
    let omitted = report.findings.iter().find(|f| f.kind == kinds::SPLIT_OMITS_BACKEND).unwrap();
    assert!(omitted.cause.starts_with("db-v3 gets no traffic"), "{}", omitted.cause);
}

/// web → api (two instances) → db at 10 req/s, every request of api's on db's `[DEFAULT]` route.
fn db_behind_default() -> Traffic {
    let api = || {
        [served(5.0, 0.0, ""), call("db", 5.0, 0.0, ""), route("[DEFAULT]", (5.0, 0.0, 0.0), (5.0, 0.0), &[])].concat()
    };
    Traffic::new()
        .add("web", "web-0", [served(10.0, 0.0, ""), call("api", 10.0, 0.0, "")].concat())
        .add("api", "api-0", api())
        .add("api", "api-1", api())
        .add("db", "db-0", served(10.0, 0.0, ""))
}

#[test]
fn a_route_that_matches_nothing_while_default_carries_the_traffic() {
    let t = db_behind_default();
    let report = run(&resources(&[("db.profile.yaml", PROFILE)]), &t);
    assert_eq!(
        first(&report),
        (kinds::ROUTE_MATCHES_NOTHING, "route deploy/db GET /items/{id}", Severity::Warning),
        "{report:#?}"
    );
    assert!(
        report.findings[0].cause.contains("its timeout 2s and retries never apply"),
        "{}",
        report.findings[0].cause
    );
}

#[test]
fn an_edge_that_stopped_is_reported() {
    let ms = MetricStore::new(Settings::new(1000, 3_600_000));
    healthy().feed(&ms, 0, 60);
    // Then api stops calling db (and answers from a cache).
    Traffic::new()
        .add("web", "web-0", [served(10.0, 0.0, ""), call("api", 10.0, 0.0, "")].concat())
        .add("api", "api-0", served(5.0, 0.0, ""))
        .add("api", "api-1", served(5.0, 0.0, ""))
        .feed(&ms, 61, 120);
    let q = DiagnoseQuery { namespace: Some("prod".into()), window: Some("1m".into()), ..Default::default() };
    let report = diagnose(&resources(&[]), &Objectives::default(), &ms, &q, 120_000).unwrap();
    assert_eq!(first(&report), (kinds::STOPPED_EDGE, "deploy/db", Severity::Warning), "{report:#?}");
}

#[test]
fn a_window_shorter_than_two_scrapes_is_refused() {
    let ms = MetricStore::new(Settings::new(1000, 3_600_000));
    let q = DiagnoseQuery { namespace: Some("prod".into()), window: Some("1s".into()), ..Default::default() };
    let Err(crate::diagnostics::QueryError::Invalid(e)) = diagnose(&resources(&[]), &Objectives::default(), &ms, &q, 0)
    else {
        panic!()
    };
    assert!(e.contains("too short"), "{e}");
}

/// Route latency buckets (cumulative per second) as the caller's proxy counts them.
fn route_latency(name: &str, buckets: &[(&str, f64)]) -> Rates {
    let l = format!("direction=\"outbound\",dst=\"db.prod.svc.cluster.local:80\",rt_route=\"{name}\"");
    buckets
        .iter()
        .map(|(le, n)| (format!("route_response_latency_ms_bucket{{{l},status_code=\"200\",le=\"{le}\"}}"), *n))
        .collect()
}

fn slow_route_report(buckets: &[(&str, f64)]) -> Report {
    let api = || {
        [
            served(5.0, 0.0, ""),
            call("db", 5.0, 0.0, ""),
            route("GET /items/{id}", (5.0, 0.0, 0.0), (5.0, 0.0), &[]),
            route_latency("GET /items/{id}", buckets),
        ]
        .concat()
    };
    let t = Traffic::new()
        .add("web", "web-0", [served(10.0, 0.0, ""), call("api", 10.0, 0.0, "")].concat())
        .add("api", "api-0", api())
        .add("api", "api-1", api())
        .add("db", "db-0", served(10.0, 0.0, ""));
    run(&resources(&[("db.profile.yaml", PROFILE)]), &t)
}

#[test]
fn a_slow_success_path_is_a_slow_route_not_a_failure() {
    // 80% within 25 ms, 20% between 200 and 600 ms, all 200s.
    let report = slow_route_report(&[("25", 4.0), ("200", 4.0), ("600", 5.0), ("+Inf", 5.0)]);
    assert_eq!(
        first(&report),
        (kinds::SLOW_ROUTE, "route deploy/db GET /items/{id}", Severity::Warning),
        "{report:#?}"
    );
    let f = &report.findings[0];
    assert!(f.cause.starts_with("20.00% of the requests"), "{}", f.cause);
    assert!((f.impact_rps - 2.0).abs() < 0.1, "{}", f.impact_rps);
    // A tail of 3× the median is the normal spread of a healthy route.
    let report = slow_route_report(&[("10", 4.0), ("30", 5.0), ("+Inf", 5.0)]);
    assert!(report.worst().is_none_or(|s| s == Severity::Info), "{report:#?}");
}

#[test]
fn a_caller_that_gives_up_names_the_slow_callee() {
    // web's app gives up on 10% of its calls to api after its own timeout; api's proxy sees them cancelled.
    let t = Traffic::new()
        .add("web", "web-0", [served(9.0, 1.0, ""), call("api", 9.0, 1.0, "cancelled")].concat())
        .add("api", "api-0", [served(4.5, 0.0, ""), cancelled(0.5)].concat())
        .add("api", "api-1", [served(4.5, 0.0, ""), cancelled(0.5)].concat());
    let report = run(&resources(&[]), &t);
    assert_eq!(first(&report), (kinds::CALLER_GAVE_UP, "deploy/api", Severity::Critical), "{report:#?}");
    assert!(report.findings[0].cause.starts_with("web gives up on 10.00%"), "{}", report.findings[0].cause);
    assert!(!kinds_of(&report).iter().any(|k| k.0 == kinds::FAILING_WORKLOAD), "{report:#?}");
}

#[test]
fn a_caller_in_another_namespace_that_gives_up_names_the_slow_callee() {
    // web-frontend (namespace web) gives up on 10% of its calls to api; web (prod) waits for every answer.
    let t = Traffic::new()
        .add("web", "web-0", [served(10.0, 0.0, ""), call("api", 10.0, 0.0, "")].concat())
        .add_in("web", "web-frontend", "web-frontend-0", call("api", 9.0, 1.0, "cancelled"))
        .add("api", "api-0", [served(9.5, 0.0, ""), cancelled(0.5)].concat())
        .add("api", "api-1", [served(9.5, 0.0, ""), cancelled(0.5)].concat());
    let report = run(&resources(&[]), &t);
    assert_eq!(kinds_of(&report), [(kinds::CALLER_GAVE_UP, "deploy/api")], "{report:#?}");
    let f = &report.findings[0];
    assert!(f.cause.starts_with("web-frontend.web gives up on 10.00% of its requests to api"), "{}", f.cause);
    let stat = "meshlens stat deploy/web-frontend -n web --to deploy/api --to-namespace prod -o wide";
    assert!(f.commands.contains(&stat.to_string()), "{:?}", f.commands);
}

#[test]
fn a_service_s_own_success_objective_decides_whether_it_fails() {
    // db fails 2%: below the mesh-wide 99.5%, within a 95% objective set for it (by NAMESPACE/NAME or NAME).
    let t = Traffic::new()
        .add("web", "web-0", [served(9.8, 0.2, ""), call("api", 9.8, 0.2, "")].concat())
        .add("api", "api-0", [served(4.9, 0.1, ""), call("db", 4.9, 0.1, "")].concat())
        .add("api", "api-1", [served(4.9, 0.1, ""), call("db", 4.9, 0.1, "")].concat())
        .add("db", "db-0", served(9.8, 0.2, ""));
    let report = run(&resources(&[]), &t);
    assert_eq!(first(&report), (kinds::FAILING_WORKLOAD, "deploy/db", Severity::Warning), "{report:#?}");
    assert!(report.findings[0].evidence.iter().any(|e| e.contains("objective 99.50%")), "{report:#?}");
    for key in ["prod/db", "db"] {
        let lenient = objectives(key, ObjectiveOverride { success_rate: Some(95.0), ..Default::default() });
        let report = run_held_to(&resources(&[]), &t, &lenient);
        assert!(report.worst().is_none_or(|s| s == Severity::Info), "{key}: {report:#?}");
    }
    // A stricter mesh-wide objective than the failures allow still names db, with its objective.
    let strict = Objectives { success_rate: 99.9, ..Objectives::default() };
    let report = run_held_to(&resources(&[]), &t, &strict);
    assert!(report.findings[0].evidence.iter().any(|e| e.contains("objective 99.90%")), "{report:#?}");
}

#[test]
fn a_service_s_retry_objective_decides_whether_retries_amplify() {
    // api retries db 1.18 attempts per request: above the mesh-wide 5%, within a 20% objective for db.
    let fates = [("succeeded_first", 4.25), ("succeeded_after_retry", 0.75)];
    let api = || {
        [served(5.0, 0.0, ""), call("db", 5.0, 0.9, ""), route("GET /items/{id}", (5.0, 0.0, 0.0), (5.0, 0.9), &fates)]
            .concat()
    };
    let t = Traffic::new()
        .add("web", "web-0", [served(10.0, 0.0, ""), call("api", 10.0, 0.0, "")].concat())
        .add("api", "api-0", api())
        .add("api", "api-1", api())
        .add("db", "db-0", served(10.0, 1.8, ""));
    let res = resources(&[("db.profile.yaml", PROFILE)]);
    let retry = |o: &Objectives| {
        kinds_of(&run_held_to(&res, &t, o)).contains(&(kinds::RETRY_AMPLIFICATION, "route deploy/db GET /items/{id}"))
    };
    assert!(retry(&Objectives::default()));
    assert!(!retry(&objectives("prod/db", ObjectiveOverride { retry_rate: Some(20.0), ..Default::default() })));
}

/// api → db `GET /items/{id}` at 10 requests a second: within 25 ms for the first minute, then 100–200 ms.
fn slowed_down(objectives: &Objectives) -> Report {
    slowed_down_with(objectives, None, false)
}

/// The same; `everything`: a second route of db, `GET /other`, is just as fast, then just as slow.
fn slowed_down_with(objectives: &Objectives, offset: Option<&str>, everything: bool) -> Report {
    slowed_at(objectives, (60, 120, "1m"), offset, everything)
}

/// api → db at 10 requests a second, fast until `slow_from` s, then slow, diagnosed at `until` s over
/// `window`.
fn slowed_at(
    objectives: &Objectives,
    (slow_from, until, window): (u64, u64, &str),
    offset: Option<&str>,
    everything: bool,
) -> Report {
    let (t, routes) = slowing(everything);
    let ms = MetricStore::new(Settings::new(1000, 3_600_000));
    t.feed_with(&ms, 0, until, latency(&routes, slow_from));
    let q = DiagnoseQuery {
        namespace: Some("prod".into()),
        window: Some(window.into()),
        offset: offset.map(str::to_string),
        ..Default::default()
    };
    diagnose(&resources(&[("db.profile.yaml", PROFILE)]), objectives, &ms, &q, until * 1000).unwrap()
}

/// web → api → db at 10 requests a second, api's calls on db's route `GET /items/{id}` (and `GET /other`).
fn slowing(everything: bool) -> (Traffic, Vec<&'static str>) {
    let routes = if everything { vec!["GET /items/{id}", "GET /other"] } else { vec!["GET /items/{id}"] };
    let api = || {
        let mut rates = vec![served(5.0, 0.0, ""), call("db", 5.0, 0.0, "")];
        rates.extend(routes.iter().map(|r| route(r, (5.0, 0.0, 0.0), (5.0, 0.0), &[])));
        rates.concat()
    };
    let t = Traffic::new()
        .add("web", "web-0", [served(10.0, 0.0, ""), call("api", 10.0, 0.0, "")].concat())
        .add("api", "api-0", api())
        .add("api", "api-1", api())
        .add("db", "db-0", served(10.0, 0.0, ""));
    (t, routes)
}

/// api's route latency counters at second `s`: within 25 ms until `slow_from`, then 100–200 ms.
fn latency(routes: &[&'static str], slow_from: u64) -> impl Fn(&str, u64) -> String {
    let routes = routes.to_vec();
    move |instance: &str, s: u64| {
        if !instance.starts_with("api") {
            return String::new();
        }
        let fast = 5 * s.min(slow_from);
        let buckets = [("25", fast), ("100", fast), ("200", 5 * s), ("+Inf", 5 * s)];
        let buckets = buckets.map(|(le, n)| (le, n as f64));
        routes.iter().flat_map(|r| route_latency(r, &buckets)).map(|(series, n)| format!("{series} {n}\n")).collect()
    }
}

/// Prometheus mode: each window is a store of its own holding the window's increases (what
/// `Prometheus::window` and `Prometheus::earlier` answer); `earlier` windows were fast, this one is slow.
fn slowed_in_prometheus(earlier: usize, offset: Option<&str>) -> Report {
    let (t, routes) = slowing(false);
    let one_window = |slow_from| {
        let ms = std::sync::Arc::new(MetricStore::new(Settings::new(1000, 60_000)));
        t.feed_with(&ms, 60, 60, latency(&routes, slow_from));
        ms.holds_from(0);
        (ms, 60_000)
    };
    let (now, _) = one_window(0);
    let windows: Vec<_> = (0..earlier).map(|_| one_window(60)).collect();
    let q = DiagnoseQuery {
        namespace: Some("prod".into()),
        window: Some("1m".into()),
        offset: offset.map(str::to_string),
        ..Default::default()
    };
    let (_, plan) = q.plan(1000).unwrap();
    let history = super::History::read(&windows, plan);
    let res = resources(&[("db.profile.yaml", PROFILE)]);
    super::diagnose_over(&res, &Objectives::default(), (&now, 60_000), &q, &history).unwrap().0
}

#[test]
fn prometheus_windows_give_the_same_baselines() {
    let report = slowed_in_prometheus(5, None);
    assert_eq!(first(&report), (kinds::LATENCY_REGRESSION, "route deploy/db GET /items/{id}", Severity::Warning));
    let f = &report.findings[0];
    assert!(f.evidence.iter().any(|e| e.contains("the baseline, learned over 5 earlier 60s windows")), "{f:#?}");
    let report = slowed_in_prometheus(1, Some("10m"));
    assert_eq!(first(&report).0, kinds::LATENCY_REGRESSION, "{report:#?}");
    let f = &report.findings[0];
    assert!(f.evidence.iter().any(|e| e.contains("the baseline, the same window 600s earlier (--offset)")), "{f:#?}");
    assert!(f.commands.iter().any(|c| c.ends_with("-t 60s --offset 600s")), "{:?}", f.commands);
    // Prometheus holds nothing earlier: not judged, and the narrative says why.
    let report = slowed_in_prometheus(0, None);
    assert!(report.worst().is_none_or(|s| s == Severity::Info), "{report:#?}");
    assert!(report.checked.iter().any(|c| c.contains("no earlier window is held yet")), "{:?}", report.checked);
}

#[test]
fn a_p99_beyond_its_latency_objective_times_its_baseline_is_a_regression() {
    let report = slowed_down(&Objectives::default());
    assert_eq!(
        first(&report),
        (kinds::LATENCY_REGRESSION, "route deploy/db GET /items/{id}", Severity::Warning),
        "{report:#?}"
    );
    let f = &report.findings[0];
    assert!(f.cause.contains("(objective: at most 2×)"), "{}", f.cause);
    assert!(f.commands.iter().any(|c| c.ends_with("-t 60s --offset 60s")), "{:?}", f.commands);
    // One earlier window is held: too little history to learn a baseline, and the narrative says so.
    assert!(
        f.evidence.iter().any(|e| e.contains("the baseline, the window just before (too little history")),
        "{f:#?}"
    );
    let note = "latency baseline: learned for 0 of 1 routes with ≥50 requests; too little history for the others";
    assert!(report.checked.iter().any(|c| c.starts_with(note)), "{:?}", report.checked);
    // db may be 10× slower than its baseline.
    let tolerant = objectives("db", ObjectiveOverride { latency_factor: Some(10.0), ..Default::default() });
    let report = slowed_down(&tolerant);
    assert!(report.worst().is_none_or(|s| s == Severity::Info), "{report:#?}");
}

#[test]
fn the_baseline_is_the_window_offset_ago_when_asked() {
    // Against itself (offset 0) the slowed route has not regressed.
    let report = slowed_down_with(&Objectives::default(), Some("0s"), false);
    assert!(report.worst().is_none_or(|s| s == Severity::Info), "{report:#?}");
    // 70 s ago the route was fast still (the window up to 50 s).
    let report = slowed_down_with(&Objectives::default(), Some("70s"), false);
    assert_eq!(first(&report).0, kinds::LATENCY_REGRESSION, "{report:#?}");
    assert!(report.findings[0].commands.iter().any(|c| c.ends_with("-t 60s --offset 70s")), "{report:#?}");
}

#[test]
fn a_slowdown_older_than_the_window_before_is_seen_against_the_learned_baseline() {
    // Slow since 240 s: at 300 s the window just before (240–270 s) was slow already.
    let report = slowed_at(&Objectives::default(), (240, 300, "30s"), Some("30s"), false);
    assert!(report.worst().is_none_or(|s| s == Severity::Info), "{report:#?}");
    // Learned from the eight earlier windows, seven of them fast, it is a regression.
    let report = slowed_at(&Objectives::default(), (240, 300, "30s"), None, false);
    assert_eq!(first(&report), (kinds::LATENCY_REGRESSION, "route deploy/db GET /items/{id}", Severity::Warning));
    let f = &report.findings[0];
    assert!(f.evidence.iter().any(|e| e.contains("the baseline, learned over 8 earlier 30s windows")), "{f:#?}");
    assert!(
        report.checked.iter().any(|c| c.starts_with("latency baseline: learned for each of the 1 routes")),
        "{report:#?}"
    );
    // Slow for most of the history: the learned baseline is slow too.
    let report = slowed_at(&Objectives::default(), (60, 300, "30s"), None, false);
    assert!(report.worst().is_none_or(|s| s == Severity::Info), "{report:#?}");
}

#[test]
fn every_route_slowing_down_together_is_the_host_not_a_regression() {
    let report = slowed_down_with(&Objectives::default(), None, true);
    assert!(report.worst().is_none_or(|s| s == Severity::Info), "{report:#?}");
    assert!(report.checked.iter().any(|c| c.contains("(the host, not one service)")), "{:?}", report.checked);
}

#[test]
fn a_few_retries_on_a_healthy_route_are_chance_not_amplification() {
    // 1.054 attempts per request, every attempt succeeds: at the objective's edge, not surely beyond it.
    let api = || {
        [served(2.5, 0.0, ""), call("db", 2.63, 0.0, ""), route("GET /items/{id}", (2.5, 0.0, 0.0), (2.63, 0.0), &[])]
            .concat()
    };
    let t = Traffic::new()
        .add("web", "web-0", [served(5.0, 0.0, ""), call("api", 5.0, 0.0, "")].concat())
        .add("api", "api-0", api())
        .add("api", "api-1", api())
        .add("db", "db-0", served(5.26, 0.0, ""));
    let report = run(&resources(&[("db.profile.yaml", PROFILE)]), &t);
    assert!(report.worst().is_none_or(|s| s == Severity::Info), "{report:#?}");
}

#[test]
fn a_callee_in_another_namespace_is_named_in_its_namespace() {
    // api calls cache in namespace shared, which fails 10% of the attempts; api fails those requests.
    let l = "direction=\"outbound\",authority=\"cache.shared.svc.cluster.local:80\",target_addr=\"127.0.0.1:9\",\
             dst_namespace=\"shared\",dst_deployment=\"cache\",dst_pod=\"cache-0\",dst_service=\"cache\"";
    let to_cache = vec![
        (format!("response_total{{{l},status_code=\"200\",classification=\"success\",error=\"\"}}"), 4.5),
        (format!("response_total{{{l},status_code=\"503\",classification=\"failure\",error=\"\"}}"), 0.5),
    ];
    let t = Traffic::new()
        .add("web", "web-0", [served(9.0, 1.0, ""), call("api", 9.0, 1.0, "")].concat())
        .add("api", "api-0", [served(4.5, 0.5, ""), to_cache.clone()].concat())
        .add("api", "api-1", [served(4.5, 0.5, ""), to_cache].concat());
    let report = run(&resources(&[]), &t);
    assert_eq!(first(&report), (kinds::FAILING_WORKLOAD, "deploy/cache", Severity::Critical), "{report:#?}");
    let f = &report.findings[0];
    assert_eq!(f.namespace, "shared");
    assert!(f.cause.starts_with("cache in namespace shared fails 10.00%"), "{}", f.cause);
    assert!(f.commands.contains(&"meshlens diagnose -n shared".to_string()), "{:?}", f.commands);
    assert_eq!(kinds_of(&report).len(), 1, "api and web are symptoms: {report:#?}");
}

/// api (prod) calls db at `api_rps`, fine; web-frontend in namespace web calls db at 5 req/s and 1 of them
/// fails; db answers both.
fn failing_for_a_caller_elsewhere(api_rps: f64) -> Report {
    let each = api_rps / 2.0;
    let t = Traffic::new()
        .add("web", "web-0", [served(api_rps, 0.0, ""), call("api", api_rps, 0.0, "")].concat())
        .add("api", "api-0", [served(each, 0.0, ""), call("db", each, 0.0, "")].concat())
        .add("api", "api-1", [served(each, 0.0, ""), call("db", each, 0.0, "")].concat())
        .add_in("web", "web-frontend", "web-frontend-0", call("db", 4.0, 1.0, ""))
        .add("db", "db-0", served(api_rps + 4.0, 1.0, ""));
    run(&resources(&[]), &t)
}

#[test]
fn failures_concentrated_on_a_caller_in_another_namespace_name_that_caller() {
    let report = failing_for_a_caller_elsewhere(10.0);
    assert_eq!(first(&report), (kinds::FAILING_CALLER, "deploy/web-frontend -n web", Severity::Critical));
    let f = &report.findings[0];
    assert_eq!(f.namespace, "web");
    assert!(f.cause.starts_with("db fails 20.00% of the requests web-frontend.web sends it and 0.00% of"), "{f:#?}");
    assert!(f.evidence.iter().any(|e| e.starts_with("web-frontend.web → db: 60 of 300 attempts failed")), "{f:#?}");
    assert!(
        f.commands.contains(&"meshlens stat deploy/db -n prod --from deploy/web-frontend --from-namespace web".into()),
        "{:?}",
        f.commands
    );
    // db fails as a whole too (6.7%): a symptom of what web-frontend asks for, with its callers elsewhere.
    let db = report.findings.iter().find(|f| f.subject == "deploy/db").expect("db's finding");
    assert_eq!(db.kind, kinds::FAILING_WORKLOAD);
    assert!(db.evidence.iter().any(|e| e.starts_with("web-frontend.web → db: ")), "{db:#?}");
    assert!(db.evidence.iter().any(|e| e.ends_with("one caller: deploy/web-frontend -n web (counted there)")));
    // Within db's objective as a whole (0.3% of its requests fail), the caller's 20% is still found.
    let report = failing_for_a_caller_elsewhere(300.0);
    assert_eq!(kinds_of(&report), [(kinds::FAILING_CALLER, "deploy/web-frontend -n web")], "{report:#?}");
}

#[test]
fn a_callee_failing_every_caller_alike_is_not_one_caller_s_fault() {
    let t = Traffic::new()
        .add("web", "web-0", [served(10.0, 0.0, ""), call("api", 10.0, 0.0, "")].concat())
        .add("api", "api-0", [served(5.0, 0.0, ""), call("db", 4.5, 0.5, "")].concat())
        .add("api", "api-1", [served(5.0, 0.0, ""), call("db", 4.5, 0.5, "")].concat())
        .add_in("web", "web-frontend", "web-frontend-0", call("db", 4.5, 0.5, ""))
        .add("db", "db-0", served(13.5, 1.5, ""));
    let report = run(&resources(&[]), &t);
    assert_eq!(kinds_of(&report), [(kinds::FAILING_WORKLOAD, "deploy/db")], "{report:#?}");
}

#[test]
fn a_route_whose_header_condition_matches_nothing_shows_every_condition() {
    // An HTTPRoute sends only requests carrying `x-canary: "true"` (GET or POST /items…) its way; none
    // do, so [DEFAULT] carries everything.
    let canary = "\
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: db-canary
  namespace: prod
spec:
  parentRefs:
  - {name: db, kind: Service, group: core, port: 80}
  rules:
  - matches:
    - path: {type: PathPrefix, value: /items}
      method: GET
      headers:
      - {name: x-canary, value: 'true'}
    - path: {type: PathPrefix, value: /items}
      method: POST
      queryParams:
      - {name: v, type: RegularExpression, value: '[0-9]+'}
    timeouts: {request: 2s}
";
    let t = db_behind_default();
    let report = run(&resources(&[("db-canary.yaml", canary)]), &t);
    assert_eq!(
        kinds_of(&report),
        [(kinds::ROUTE_MATCHES_NOTHING, "route deploy/db db-canary")],
        "one finding for the route's two conditions: {report:#?}"
    );
    let f = &report.findings[0];
    assert!(f.cause.contains("its timeout 2s never apply"), "{}", f.cause);
    assert_eq!(
        f.evidence[..3],
        [
            "db-canary.yaml:1: condition method GET, pathRegex /items(?:/.*)?, header x-canary=true",
            "db-canary.yaml:1: condition method POST, pathRegex /items(?:/.*)?, query v~[0-9]+",
            "every part of a condition must match: a request whose method and path match but that lacks \
             header x-canary=true or query v~[0-9]+ is not route db-canary",
        ],
        "{f:#?}"
    );
    assert!(f.commands.contains(&"meshlens tap deploy/db -n prod -o json --headers".to_string()), "{:?}", f.commands);
}
