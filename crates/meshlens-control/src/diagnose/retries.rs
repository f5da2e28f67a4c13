//! Step 4, retries: routes whose retries multiply the attempts a callee gets (and hide its failures), and
//! retryable failures the budget did not cover.

use meshlens_api::diagnose::{RETRY_AMPLIFICATION, RETRY_BUDGET_EXHAUSTED, Severity};

use super::evidence::{Evidence, RouteId};
use super::{Candidate, finding, pct};

/// Fewer requests than this on a route in a window say nothing about its retries.
const MIN_REQUESTS: f64 = 20.0;

fn budget(ev: &Evidence<'_>, id: &RouteId) -> String {
    let host = id.authority.rsplit_once(':').map_or(id.authority.as_str(), |(h, _)| h);
    let Some(p) = ev.res.profiles.iter().find(|p| p.profile.metadata.name == host) else {
        return "no ServiceProfile".into();
    };
    match &p.profile.spec.retry_budget {
        Some(b) => format!(
            "{}: retryBudget retryRatio {}, minRetriesPerSecond {}, ttl {}",
            p.source, b.retry_ratio, b.min_retries_per_second, b.ttl
        ),
        None => format!("{}: default retry budget (retryRatio 0.2, minRetriesPerSecond 10, ttl 10s)", p.source),
    }
}

pub(crate) fn check(ev: &Evidence<'_>, out: &mut Vec<Candidate>, checked: &mut Vec<String>) {
    let mut routes = 0;
    for (id, rc) in &ev.routes {
        let n = rc.effective.requests();
        if n < MIN_REQUESTS {
            continue;
        }
        routes += 1;
        let workload = ev.workload_of_service(id.service()).unwrap_or(id.service()).to_string();
        let subject = format!("route deploy/{workload} {}", id.route);
        let cmd = format!("meshlens routes deploy/{} --to svc/{} -n {} -o wide", id.src, id.service(), ev.namespace);
        let ratio = rc.actual.requests() / n;
        if ev.retried(id, rc) {
            let extra = rc.actual.requests() - n;
            let mut f = finding(
                ev,
                Severity::Warning,
                RETRY_AMPLIFICATION,
                subject.clone(),
                format!(
                    "{}'s retries of {} send {workload} {ratio:.2}× the requests and hide its failures: {} succeed per \
                     attempt, {} as {} sees them",
                    id.src,
                    id.route,
                    pct(rc.actual.ok / rc.actual.requests()),
                    pct(rc.effective.ok / n),
                    id.src
                ),
            );
            f.impact_rps = ev.rps(extra);
            f.evidence.push(format!(
                "EFFECTIVE_RPS {:.2}, ACTUAL_RPS {:.2} ({extra:.0} retries in {:.0}s)",
                ev.rps(n),
                ev.rps(rc.actual.requests()),
                ev.window_s
            ));
            f.evidence.push(format!(
                "objective for {workload}: at most {:.0}% extra attempts (mesh.yaml spec.objectives retryRate)",
                (ev.retry_limit(id) - 1.0) * 100.0
            ));
            f.evidence.push(budget(ev, id));
            f.commands.push(cmd.clone());
            out.push(Candidate { finding: f, root: false });
        }
        let no_budget = rc.fates.get("failed_no_budget").copied().unwrap_or(0.0);
        if no_budget >= 3.0 {
            let mut f = finding(
                ev,
                Severity::Warning,
                RETRY_BUDGET_EXHAUSTED,
                subject,
                format!(
                    "{no_budget:.0} failed requests of {} on {} were not retried: the retry budget was spent",
                    id.src, id.route
                ),
            );
            f.impact_rps = ev.rps(no_budget);
            f.evidence.push(budget(ev, id));
            f.commands.push(cmd);
            out.push(Candidate { finding: f, root: false });
        }
    }
    checked.push(format!("retries on {routes} routes with traffic (attempts per request, budget)"));
}
