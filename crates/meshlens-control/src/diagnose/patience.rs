//! Which side gave up: edges whose failures are mostly requests the caller abandoned (`cancelled`) before
//! the callee answered — the callee's latency tail is longer than its caller's patience.

use meshlens_api::diagnose::{CALLER_GAVE_UP, Severity};
use meshlens_api::labels::ERROR_CANCELLED;

use super::evidence::{Caller, Evidence};
use super::{Candidate, finding, pct, wilson};

pub(crate) fn check(ev: &Evidence<'_>, out: &mut Vec<Candidate>, checked: &mut Vec<String>) {
    let here = ev.edges.iter().map(|(e, c)| (Caller { name: &e.src, namespace: None }, e.dst.as_str(), c));
    let elsewhere =
        ev.edges_in.iter().map(|((ns, src, dst), c)| (Caller { name: src, namespace: Some(ns) }, dst.as_str(), c));
    for (caller, dst, c) in here.chain(elsewhere) {
        let n = c.requests();
        let cancelled = c.errors.get(ERROR_CANCELLED).copied().unwrap_or(0.0);
        if cancelled < 0.5 * c.failed || !wilson::below_objective(cancelled, n, ev.success_objective(dst)) {
            continue;
        }
        // A route timeout of the caller's proxy cancels too: that is a `route-timeout`, not impatience (a
        // caller elsewhere: its proxy's 504s on the edge).
        let timed_out = match caller.namespace {
            None => ev.routes.iter().any(|(r, rc)| {
                r.src == caller.name && rc.timeouts > 0.0 && ev.workload_of_service(r.service()) == Some(dst)
            }),
            Some(_) => c.errors.get("timeout").is_some_and(|t| *t > 0.0),
        };
        if timed_out {
            continue;
        }
        let mut f = finding(
            ev,
            if cancelled / n >= 0.05 { Severity::Critical } else { Severity::Warning },
            CALLER_GAVE_UP,
            format!("deploy/{dst}"),
            format!(
                "{caller} gives up on {} of its requests to {dst} before they are answered: {dst}'s slowest answers \
                 take longer than its caller's patience",
                pct(cancelled / n),
            ),
        );
        f.impact_rps = ev.rps(cancelled);
        f.evidence.push(format!("{cancelled:.0} of {n:.0} requests cancelled by {caller} in {:.0}s", ev.covered_s));
        if let (Some(p50), Some(p99)) = (c.p50_ms, c.p99_ms) {
            f.evidence.push(format!("{caller} → {dst}: p50 {p50:.0} ms, p99 {p99:.0} ms (≈ where it gives up)"));
        }
        let (src_ns, to_ns) = match caller.namespace {
            Some(other) => (other, format!(" --to-namespace {}", ev.namespace)),
            None => (ev.namespace.as_str(), String::new()),
        };
        let src = caller.name;
        f.commands.push(format!("meshlens stat deploy/{src} -n {src_ns} --to deploy/{dst}{to_ns} -o wide"));
        f.commands.push(format!("meshlens tap deploy/{src} -n {src_ns} --to deploy/{dst}{to_ns}"));
        out.push(Candidate { finding: f, root: true });
    }
    checked
        .push("cancellations: callers (in this namespace and others) that give up before their callees answer".into());
}
