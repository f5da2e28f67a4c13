//! Step 1, latency: a route whose requests succeed but whose tail is far beyond its median — a slow
//! success path, not a mesh fault (no failures, no timeouts, no retries to explain it).

use meshlens_api::diagnose::{SLOW_ROUTE, Severity};

use super::evidence::{Evidence, SLOW_FACTOR};
use super::{Candidate, DEFAULT_OBJECTIVE, finding, pct, wilson};

/// p99 over p50 beyond which a route's tail is a finding.
const TAIL_RATIO: f64 = 8.0;
/// A tail shorter than this is nobody's problem.
const MIN_P99_MS: f64 = 100.0;
/// At least this share of the requests must be slow.
const MIN_SLOW_SHARE: f64 = 0.02;

pub(crate) fn check(ev: &Evidence<'_>, out: &mut Vec<Candidate>, checked: &mut Vec<String>) {
    let mut judged = 0;
    for (id, rc) in &ev.routes {
        let e = &rc.effective;
        let n = e.requests();
        let (Some(p50), Some(p99)) = (e.p50_ms, e.p99_ms) else { continue };
        if n < wilson::MIN_REQUESTS {
            continue;
        }
        judged += 1;
        let failing = e.failed / n > 1.0 - DEFAULT_OBJECTIVE || rc.timeouts > 0.0;
        let retried = rc.actual.requests() > n * 1.05;
        if failing || retried || p99 < MIN_P99_MS || p99 < TAIL_RATIO * p50.max(1.0) || e.slow_share < MIN_SLOW_SHARE {
            continue;
        }
        let workload = ev.workload_of_service(id.service()).unwrap_or(id.service()).to_string();
        let mut f = finding(
            ev,
            Severity::Warning,
            SLOW_ROUTE,
            format!("route deploy/{workload} {}", id.route),
            format!(
                "{} of the requests on {} take over {SLOW_FACTOR}× its median yet succeed: a slow success path in \
                 {workload}, not a mesh fault",
                pct(e.slow_share),
                id.route
            ),
        );
        f.impact_rps = ev.rps(n * e.slow_share);
        f.evidence.push(format!(
            "{} → {}: p50 {p50:.0} ms, p99 {p99:.0} ms, success {} over {n:.0} requests in {:.0}s",
            id.src,
            id.route,
            pct(e.ok / n),
            ev.covered_s
        ));
        f.commands.push(format!(
            "meshlens routes deploy/{} --to svc/{} -n {} -o wide",
            id.src,
            id.service(),
            ev.namespace
        ));
        f.commands.push(format!("meshlens top deploy/{workload} -n {}", ev.namespace));
        out.push(Candidate { finding: f, root: true });
    }
    checked.push(format!("latency tails of {judged} routes against their medians"));
}
