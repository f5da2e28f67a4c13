//! Failures the proxies made, by reason: route timeouts against the latency the callee needed, names no
//! service has, and callees that cannot be reached.

use std::collections::BTreeMap;

use meshlens_api::diagnose::{ROUTE_TIMEOUT, Severity, UNKNOWN_DESTINATION, UNREACHABLE_DESTINATION};

use meshlens_api::labels::ERROR_CANCELLED;

use super::evidence::Evidence;
use super::{Candidate, finding, pct};

/// Reasons that say the callee could not be reached at all.
const UNREACHABLE: &[&str] =
    &["connect_error", "connect_timeout", "failfast", "load_shed", "peer:connect_error", "peer:connect_timeout"];
/// Fewer proxy-made failures than this in a window are not a finding.
const MIN_FAILURES: f64 = 3.0;

pub(crate) fn check(ev: &Evidence<'_>, out: &mut Vec<Candidate>, checked: &mut Vec<String>) {
    timeouts(ev, out);
    refused(ev, out);
    unreachable(ev, out);
    checked.push("proxy-made failures by reason: route timeouts, unknown names, unreachable callees".into());
}

/// The profile route of a service and where it was declared.
fn route_spec<'e>(
    ev: &'e Evidence<'e>,
    authority: &str,
    route: &str,
) -> Option<(&'e str, &'e meshlens_api::profile::RouteSpec)> {
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let p = ev.res.profiles.iter().find(|p| p.profile.metadata.name == host)?;
    p.profile.spec.routes.iter().find(|r| r.name == route).map(|r| (p.source.as_str(), r))
}

fn timeouts(ev: &Evidence<'_>, out: &mut Vec<Candidate>) {
    // Per route of a service (callers summed).
    let mut by_route: BTreeMap<(String, String), (f64, f64, Vec<String>)> = BTreeMap::new();
    for (id, rc) in &ev.routes {
        if rc.timeouts <= 0.0 {
            continue;
        }
        let e = by_route.entry((id.authority.clone(), id.route.clone())).or_default();
        e.0 += rc.timeouts;
        e.1 += rc.effective.requests();
        e.2.push(id.src.clone());
    }
    for ((authority, route), (timeouts, n, callers)) in by_route {
        if timeouts < MIN_FAILURES {
            continue;
        }
        let service = authority.split('.').next().unwrap_or_default();
        let workload = ev.workload_of_service(service).unwrap_or(service);
        let spec = route_spec(ev, &authority, &route);
        let limit = spec.and_then(|(_, r)| r.timeout.clone()).unwrap_or_else(|| "its timeout".into());
        let rate = timeouts / n.max(1.0);
        let mut f = finding(
            ev,
            if rate >= 0.01 { Severity::Critical } else { Severity::Warning },
            ROUTE_TIMEOUT,
            format!("route deploy/{workload} {route}"),
            format!(
                "the route timeout ({limit}) is shorter than {workload}'s slowest answers: {} of the requests \
                 on {route} end in a 504 made by the caller's proxy, not by {workload}",
                pct(rate)
            ),
        );
        f.impact_rps = ev.rps(timeouts);
        f.evidence.push(format!(
            "{timeouts:.0} of {n:.0} requests timed out in {:.0}s (callers: {})",
            ev.window_s,
            callers.join(", ")
        ));
        if let Some((source, r)) = spec {
            f.evidence.push(format!("{source}: route '{}' timeout: {limit}", r.name));
        }
        if let Some(served) = ev.served.get(workload)
            && let Some(p99) = served.p99_ms
        {
            let p50 = served.p50_ms.unwrap_or_default();
            let cancelled = served.errors.get(ERROR_CANCELLED).copied().unwrap_or(0.0);
            f.evidence.push(format!(
                "{workload}'s own proxy saw p50 {p50:.0} ms, p99 {p99:.0} ms; {cancelled:.0} requests it was still \
                 working on were cancelled when the timeout fired"
            ));
        }
        f.commands
            .push(format!("meshlens routes deploy/{} --to svc/{service} -n {} -o wide", callers[0], ev.namespace));
        f.commands.push(format!(
            "meshlens tap deploy/{} --to deploy/{workload} -n {} --status 5xx",
            callers[0], ev.namespace
        ));
        out.push(Candidate { finding: f, root: true });
    }
}

/// Names a caller's proxy refused because no service has them.
fn refused(ev: &Evidence<'_>, out: &mut Vec<Candidate>) {
    for ((src, authority), c) in &ev.refused {
        let no_route = c.errors.get("no_route").copied().unwrap_or(0.0);
        if no_route < MIN_FAILURES {
            continue;
        }
        let rate = ev.rps(no_route);
        let mut f = finding(
            ev,
            Severity::Critical,
            UNKNOWN_DESTINATION,
            format!("deploy/{src}"),
            format!("{src} calls '{authority}', a name no service in the mesh has: its proxy answers 404 no_route"),
        );
        f.impact_rps = rate;
        f.evidence.push(format!("{no_route:.0} requests to {authority} refused in {:.0}s ({rate:.2}/s)", ev.window_s));
        f.commands.push(format!("meshlens stat deploy/{src} -n {} -o wide", ev.namespace));
        f.commands.push(format!("meshlens logs deploy/{src} -n {}", ev.namespace));
        out.push(Candidate { finding: f, root: true });
    }
}

/// Callees whose callers could not reach them (connection errors, no ready endpoint, shed load).
fn unreachable(ev: &Evidence<'_>, out: &mut Vec<Candidate>) {
    let mut by_dst: BTreeMap<String, (f64, f64, BTreeMap<String, f64>)> = BTreeMap::new();
    let mut add = |dst: String, n: f64, errors: &BTreeMap<String, f64>| {
        let e = by_dst.entry(dst).or_default();
        e.1 += n;
        for r in UNREACHABLE {
            if let Some(v) = errors.get(*r) {
                e.0 += v;
                *e.2.entry(r.to_string()).or_default() += v;
            }
        }
    };
    for (edge, c) in &ev.edges {
        add(edge.dst.clone(), c.requests(), &c.errors);
    }
    for ((_, _, dst), c) in &ev.edges_in {
        add(dst.clone(), c.requests(), &c.errors);
    }
    for ((_, authority), c) in &ev.refused {
        let service = authority.split('.').next().unwrap_or_default();
        if let Some(w) = ev.workload_of_service(service) {
            add(w.to_string(), c.requests(), &c.errors);
        }
    }
    for (dst, (failed, n, reasons)) in by_dst {
        if failed < MIN_FAILURES || failed < 0.005 * n {
            continue;
        }
        let reasons: Vec<String> = reasons.iter().map(|(r, v)| format!("{r} {v:.0}")).collect();
        let mut f = finding(
            ev,
            if failed >= 0.05 * n { Severity::Critical } else { Severity::Warning },
            UNREACHABLE_DESTINATION,
            format!("deploy/{dst}"),
            format!("callers cannot reach {dst}: {} of their requests failed before it answered", pct(failed / n)),
        );
        f.impact_rps = ev.rps(failed);
        f.evidence.push(format!("{failed:.0} of {n:.0} requests in {:.0}s: {}", ev.window_s, reasons.join(", ")));
        f.commands.push(format!("meshlens diagnostics endpoints {dst} -n {} -o wide", ev.namespace));
        f.commands.push(format!("meshlens logs deploy/{dst} -n {}", ev.namespace));
        out.push(Candidate { finding: f, root: true });
    }
}
