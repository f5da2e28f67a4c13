//! Which side gave up: edges whose failures are mostly requests the caller abandoned (`cancelled`) before
//! the callee answered — the callee's latency tail is longer than its caller's patience.

use meshlens_api::diagnose::{CALLER_GAVE_UP, Severity};
use meshlens_api::labels::ERROR_CANCELLED;

use super::evidence::Evidence;
use super::{Candidate, finding, pct, wilson};

pub(crate) fn check(ev: &Evidence<'_>, out: &mut Vec<Candidate>, checked: &mut Vec<String>) {
    for (edge, c) in &ev.edges {
        let n = c.requests();
        let cancelled = c.errors.get(ERROR_CANCELLED).copied().unwrap_or(0.0);
        if cancelled < 0.5 * c.failed || !wilson::below_objective(cancelled, n, ev.success_objective(&edge.dst)) {
            continue;
        }
        // A route timeout of the caller's proxy cancels too: that is a `route-timeout`, not impatience.
        let timed_out = ev.routes.iter().any(|(r, rc)| {
            r.src == edge.src && rc.timeouts > 0.0 && ev.workload_of_service(r.service()) == Some(edge.dst.as_str())
        });
        if timed_out {
            continue;
        }
        let mut f = finding(
            ev,
            if cancelled / n >= 0.05 { Severity::Critical } else { Severity::Warning },
            CALLER_GAVE_UP,
            format!("deploy/{}", edge.dst),
            format!(
                "{} gives up on {} of its requests to {} before they are answered: {}'s slowest answers take longer \
                 than its caller's patience",
                edge.src,
                pct(cancelled / n),
                edge.dst,
                edge.dst
            ),
        );
        f.impact_rps = ev.rps(cancelled);
        f.evidence.push(format!("{cancelled:.0} of {n:.0} requests cancelled by {} in {:.0}s", edge.src, ev.covered_s));
        if let (Some(p50), Some(p99)) = (c.p50_ms, c.p99_ms) {
            f.evidence
                .push(format!("{} → {}: p50 {p50:.0} ms, p99 {p99:.0} ms (≈ where it gives up)", edge.src, edge.dst));
        }
        f.commands
            .push(format!("meshlens stat deploy/{} -n {} --to deploy/{} -o wide", edge.src, ev.namespace, edge.dst));
        f.commands.push(format!("meshlens tap deploy/{} -n {} --to deploy/{}", edge.src, ev.namespace, edge.dst));
        out.push(Candidate { finding: f, root: true });
    }
    checked.push("cancellations: callers that give up before their callees answer".into());
}
