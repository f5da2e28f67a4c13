//! Configuration against traffic, per namespace over the window: route timeouts below the p99 the route
//! needs, services called without a ServiceProfile, workloads below their objectives, and diagnose's
//! configuration rules (splits omitting a live backend, routes matching nothing, spent retry budgets).

use std::collections::BTreeMap;

use meshlens_api::check::Check;
use meshlens_api::diagnose::{Finding, ROUTE_MATCHES_NOTHING, Severity};

use super::Live;
use super::statics::Served;
use crate::diagnose::{Evidence, History, Plan, audits as diagnose_audits, below_objective};
use crate::metricstore::{Family, split_fqdn};

/// Requests a route or workload must see in the window before it is judged.
const MIN_REQUESTS: f64 = 20.0;
/// Route timeouts in the window that make a timeout too short, whatever the p99 says.
const MIN_TIMEOUTS: f64 = 3.0;

/// Requests each (namespace, workload) served (inbound) in the window.
pub(crate) fn served(l: &Live<'_>, window: u64) -> Served {
    l.store
        .query(l.end, window, |k| {
            (k.family == Family::Http && !k.outbound).then(|| (k.namespace.clone(), k.workload.clone()))
        })
        .into_iter()
        .map(|(g, t)| (g, t.requests()))
        .collect()
}

fn from_finding(f: Finding) -> Check {
    let hint = if f.commands.is_empty() { "meshlens diagnose".to_string() } else { f.commands.join("; ") };
    let description = format!("{} -n {}: {}", f.subject, f.namespace, f.cause);
    let check = match f.severity {
        Severity::Critical => Check::failure(description, hint),
        _ => Check::warning(description, hint),
    };
    check.with_detail(f.evidence)
}

/// How long `check` taps for sample paths of a route that matches nothing, at the most.
const SAMPLE_FOR: std::time::Duration = std::time::Duration::from_secs(2);
/// Sample paths shown per route.
const SAMPLES: usize = 5;

/// Up to [`SAMPLES`] distinct paths of requests to `workload` that no route matched (`[DEFAULT]`),
/// tapped from its callers' proxies for at most [`SAMPLE_FOR`].
async fn default_paths(tap: &super::TapAccess, ns: &str, workload: &str) -> Vec<String> {
    let query = crate::tap::parse(&format!(
        "resource=ns/{ns}&namespace={ns}&to=deploy/{workload}&route=%5BDEFAULT%5D&direction=outbound&maxRps=50"
    ));
    let Ok(mut rx) = query.and_then(|plan| crate::tap::start(tap.store.clone(), plan, tap.shutdown.clone())) else {
        return Vec::new();
    };
    let mut paths: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + SAMPLE_FOR;
    while paths.len() < SAMPLES {
        let Ok(Some(line)) = tokio::time::timeout_at(deadline, rx.recv()).await else { break };
        let event: Option<meshlens_api::tap::TapEvent> = serde_json::from_slice(&line).ok();
        if let Some(path) = event.and_then(|e| e.request_init_event).map(|r| r.path)
            && !paths.contains(&path)
        {
            paths.push(path);
        }
    }
    paths
}

pub(crate) async fn audits(l: &Live<'_>, window: u64) -> Vec<Check> {
    let mut out = Vec::new();
    let mut namespaces = l.resources.namespaces.clone();
    for w in &l.resources.workloads {
        if !namespaces.contains(&w.namespace) {
            namespaces.push(w.namespace.clone());
        }
    }
    let mut requests = 0.0;
    let (mut timeouts, mut unprofiled, mut objectives, mut rules) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ns in &namespaces {
        let before = History::held(l.store, l.end, window, Plan::before(window));
        let ev = Evidence::gather(l.resources, &l.config.mesh.spec.objectives, l.store, ns, l.end, window, &before);
        requests += ev.served.values().map(|c| c.requests()).sum::<f64>();
        timeouts.extend(route_timeouts(&ev));
        objectives.extend(below_objectives(l, &ev));
        for mut f in diagnose_audits(&ev) {
            let unmatched = f.subject.strip_prefix("route deploy/").and_then(|r| r.split_once(' ')).map(|(w, _)| w);
            if let (Some(workload), Some(tap), true) = (unmatched, &l.tap, f.kind == ROUTE_MATCHES_NOTHING) {
                let paths = default_paths(tap, ns, workload).await;
                if !paths.is_empty() {
                    f.evidence.push(format!("sample [DEFAULT] paths: {}", paths.join(", ")));
                }
            }
            rules.push(from_finding(f));
        }
        unprofiled.extend(without_profile(l, ns, window));
    }
    let window_s = window as f64 / 1000.0;
    out.push(Check::ok(format!("{requests:.0} requests served in the last {window_s:.0}s")));
    let mut section = |checks: Vec<Check>, ok: String| {
        if checks.is_empty() {
            out.push(Check::ok(ok));
        }
        out.extend(checks);
    };
    section(timeouts, "every route timeout is above the p99 its route needs".into());
    section(rules, "splits reach every live backend, routes match their traffic, retry budgets hold".into());
    section(unprofiled, "every service that receives traffic has a ServiceProfile".into());
    section(objectives, "every workload meets its success objective, every route its retry objective".into());
    out
}

/// Routes (callers summed) whose timeout cut requests, or whose p99 reaches the timeout.
fn route_timeouts(ev: &Evidence<'_>) -> Vec<Check> {
    #[derive(Default)]
    struct Seen {
        requests: f64,
        timeouts: f64,
        p99: f64,
    }
    let mut by_route: BTreeMap<(String, String), Seen> = BTreeMap::new();
    for (id, rc) in &ev.routes {
        let s = by_route.entry((id.authority.clone(), id.route.clone())).or_default();
        s.requests += rc.effective.requests();
        s.timeouts += rc.timeouts;
        s.p99 = s.p99.max(rc.effective.p99_ms.unwrap_or(0.0)).max(rc.actual.p99_ms.unwrap_or(0.0));
    }
    let mut out = Vec::new();
    for ((authority, route), s) in by_route {
        let host = authority.rsplit_once(':').map_or(authority.as_str(), |(h, _)| h);
        let Some(p) = ev.res.profiles.iter().find(|p| p.profile.metadata.name == host) else { continue };
        let Some(spec) = p.profile.spec.routes.iter().find(|r| r.name == route) else { continue };
        let Some(limit) = spec.timeout.as_deref() else { continue };
        let Ok(limit_ms) = meshlens_api::duration::parse(limit).map(|d| d.as_secs_f64() * 1000.0) else { continue };
        if s.requests < MIN_REQUESTS || (s.timeouts < MIN_TIMEOUTS && s.p99 < limit_ms) {
            continue;
        }
        let service = host.split('.').next().unwrap_or(host);
        out.push(
            Check::failure(
                format!(
                    "route {route} of svc/{service} -n {}: timeout {limit} is below the observed p99 ({:.0}ms)",
                    ev.namespace, s.p99
                ),
                format!(
                    "raise the timeout at {} above the p99, or fix the slow requests (meshlens routes svc/{service} -n {})",
                    p.source, ev.namespace
                ),
            )
            .with_detail(vec![
                format!("{:.0} of {:.0} requests timed out in {:.0}s", s.timeouts, s.requests, ev.window_s),
                format!("{}: timeout {limit}", p.source),
            ]),
        );
    }
    out
}

/// Services callers asked for by name in the window with no ServiceProfile: their traffic is all
/// `[DEFAULT]`, without routes, timeouts or retries.
fn without_profile(l: &Live<'_>, ns: &str, window: u64) -> Vec<Check> {
    let called = l.store.query(l.end, window, |k| {
        (k.family == Family::Http && k.outbound && !k.dst_workload.is_empty() && !k.authority.is_empty())
            .then(|| split_fqdn(&k.authority))
            .filter(|(_, n)| n == ns)
    });
    let domain = &l.resources.cluster_domain;
    let mut out = Vec::new();
    for ((svc, ns), t) in called {
        let Some(declared) = l.resources.services.iter().find(|s| s.namespace == ns && s.name == svc) else { continue };
        let fqdn = format!("{svc}.{ns}.svc.{domain}");
        if t.requests() < 1.0 || l.resources.profiles.iter().any(|p| p.profile.metadata.name == fqdn) {
            continue;
        }
        out.push(Check::warning(
            format!("svc/{svc} -n {ns} receives traffic ({:.0} requests) but has no ServiceProfile", t.requests()),
            format!("meshlens profile --tap deploy/{} {svc} -n {ns} writes one from live traffic", declared.workload),
        ));
    }
    out
}

/// Workloads whose own success rate is surely below their objective, and routes whose retries add more
/// attempts than the callee's retry objective allows (mesh.yaml `spec.objectives`).
fn below_objectives(l: &Live<'_>, ev: &Evidence<'_>) -> Vec<Check> {
    let objectives = &l.config.mesh.spec.objectives;
    let mut out = Vec::new();
    for (id, rc) in &ev.routes {
        let n = rc.effective.requests();
        let service = id.service();
        let allowed = objectives.for_service(&ev.namespace, service).retry_rate;
        let extra = 100.0 * (rc.actual.requests() / n.max(1.0) - 1.0);
        if n < MIN_REQUESTS || extra <= allowed {
            continue;
        }
        out.push(Check::warning(
            format!(
                "route {} of svc/{service} -n {}: {}'s retries add {extra:.1}% attempts (objective ≤ {allowed}%)",
                id.route, ev.namespace, id.src
            ),
            format!("meshlens routes deploy/{} --to svc/{service} -n {} -o wide", id.src, ev.namespace),
        ));
    }
    for (workload, c) in &ev.served {
        let n = c.requests();
        let goal = objectives.for_service(&ev.namespace, workload).success_rate;
        if n < MIN_REQUESTS || !below_objective(c.failed, n, goal / 100.0) {
            continue;
        }
        out.push(Check::failure(
            format!(
                "deploy/{workload} -n {}: success {:.2}% is below its objective {goal}%",
                ev.namespace,
                100.0 * c.ok / n
            ),
            format!("meshlens diagnose -n {}", ev.namespace),
        ));
    }
    out
}
