//! Step 1, latency: a route whose requests succeed but whose tail is far beyond its median — a slow
//! success path, not a mesh fault (no failures, no timeouts, no retries to explain it) — and a route whose
//! p99 rose beyond its objective's `latencyFactor` × its baseline (`--offset`'s window, else learned from
//! the earlier windows, else the window just before: `baseline`).

use meshlens_api::diagnose::{LATENCY_REGRESSION, SLOW_ROUTE, Severity};

use super::baseline::{Baseline, LEARN_WINDOWS, MIN_LEARNED};
use super::evidence::{Evidence, SLOW_FACTOR};
use super::{Candidate, finding, pct, wilson};

/// p99 over p50 beyond which a route's tail is a finding.
const TAIL_RATIO: f64 = 8.0;
/// A tail shorter than this is nobody's problem.
const MIN_P99_MS: f64 = 100.0;
/// At least this share of the requests must be slow.
const MIN_SLOW_SHARE: f64 = 0.02;

/// At least this share of a route's requests must be beyond its latency objective: a machine's hiccup
/// moves a p99, not a twentieth of the requests.
const MIN_REGRESSED_SHARE: f64 = 0.05;

/// A baseline is comparable when its request rate is within this factor of the window's (a load change
/// explains a latency change).
const COMPARABLE_LOAD: f64 = 1.5;

/// Routes whose p99 rose beyond `latencyFactor` × the baseline's, with ≥5% of the requests beyond it — on
/// comparable traffic, and not when the medians of most routes rose as much (the host, not a service).
pub(crate) fn regressions(ev: &Evidence<'_>, out: &mut Vec<Candidate>, checked: &mut Vec<String>) {
    let comparable: Vec<_> = ev
        .routes
        .iter()
        .filter_map(|(id, rc)| {
            let (e, base) = (&rc.effective, ev.baselines.get(id)?);
            let (n, b) = (e.requests(), base.requests);
            let load = n / b.max(1.0);
            (n >= wilson::MIN_REQUESTS
                && b >= wilson::MIN_REQUESTS
                && (1.0 / COMPARABLE_LOAD..=COMPARABLE_LOAD).contains(&load))
            .then_some((id, e, base))
        })
        .collect();
    let mut medians: Vec<f64> =
        comparable.iter().filter_map(|(_, e, base)| Some(e.p50_ms? / base.p50_ms?.max(1.0))).collect();
    medians.sort_by(f64::total_cmp);
    let everything_slower = medians.len() >= 2 && medians[medians.len() / 2] >= 2.0;
    if ev.history.1 == 0 {
        checked.push("p99 of routes against their baseline: not judged, no earlier window is held yet".into());
        return;
    }
    checked.push(history_note(ev));
    if everything_slower {
        checked.push(format!(
            "p99 of {} routes against their baseline: not judged, the medians of most routes rose ≥2× together (the \
             host, not one service)",
            comparable.len()
        ));
        return;
    }
    let mut judged = 0;
    for (id, e, base) in comparable {
        let (Some(p99), Some(base_p99)) = (e.p99_ms, base.p99_ms) else { continue };
        judged += 1;
        let workload = ev.route_workload(id).to_string();
        let factor = ev.objectives_of(&workload).latency_factor;
        let limit = factor * base_p99.max(1.0);
        let share = e.share_above(limit);
        if p99 < MIN_P99_MS || p99 <= limit || share < MIN_REGRESSED_SHARE {
            continue;
        }
        let mut f = finding(
            ev,
            Severity::Warning,
            LATENCY_REGRESSION,
            format!("route deploy/{workload} {}", id.route),
            format!(
                "the p99 of {} rose to {p99:.0} ms, {:.1}× its baseline of {base_p99:.0} ms (objective: at most \
                 {factor}×): {} of its requests are slower than {limit:.0} ms",
                id.route,
                p99 / base_p99.max(1.0),
                pct(share)
            ),
        );
        f.impact_rps = ev.rps(e.requests() * share);
        f.evidence.push(format!(
            "{} → {}: p50 {:.0} ms, p99 {p99:.0} ms over {:.0} requests; the baseline, {}: p50 {:.0} ms, p99 \
             {base_p99:.0} ms over {:.0} requests",
            id.src,
            id.route,
            e.p50_ms.unwrap_or_default(),
            e.requests(),
            which(ev, base),
            base.p50_ms.unwrap_or_default(),
            base.requests
        ));
        f.evidence
            .push(format!("objective for {workload}: p99 at most {factor}× its baseline (mesh.yaml spec.objectives)"));
        let cmd = format!("meshlens routes deploy/{} --to svc/{} -n {}", id.src, id.service(), ev.namespace);
        f.commands.push(format!("{cmd} -t {:.0}s", ev.window_s));
        f.commands.push(format!("{cmd} -t {:.0}s --offset {:.0}s", ev.window_s, ev.baseline_offset_s));
        // A symptom: what slowed it (retries, a callee, a timeout) ranks above when found.
        out.push(Candidate { finding: f, root: false });
    }
    checked.push(format!("p99 of {judged} routes against their baseline on comparable traffic and objectives"));
}

/// What the latency baselines were: `--offset`'s window, or learned, or (too little history) the window
/// just before.
fn history_note(ev: &Evidence<'_>) -> String {
    let (plan, _) = ev.history;
    let window = ev.window_s;
    if plan.asked {
        return format!(
            "latency baseline: the same {window:.0}s window {:.0}s earlier (--offset)",
            ev.baseline_offset_s
        );
    }
    let busy: Vec<_> = ev.routes.iter().filter(|(_, rc)| rc.effective.requests() >= wilson::MIN_REQUESTS).collect();
    let learned = busy.iter().filter(|(id, _)| ev.baselines.get(*id).is_some_and(|b| b.learned_from > 0)).count();
    let min = wilson::MIN_REQUESTS;
    if learned == busy.len() {
        format!(
            "latency baseline: learned for each of the {learned} routes with ≥{min} requests: the median p99 over up to \
             {LEARN_WINDOWS} earlier {window:.0}s windows with ≥{min} requests"
        )
    } else {
        format!(
            "latency baseline: learned for {learned} of {} routes with ≥{min} requests; too little history for the \
             others (fewer than {MIN_LEARNED} earlier {window:.0}s windows with ≥{min} requests): compared with \
             the window just before when it had ≥{min}, else not judged",
            busy.len()
        )
    }
}

/// Which baseline a route was compared with, for its evidence.
fn which(ev: &Evidence<'_>, base: &Baseline) -> String {
    let (plan, _) = ev.history;
    if plan.asked {
        format!("the same window {:.0}s earlier (--offset)", ev.baseline_offset_s)
    } else if base.learned_from > 0 {
        format!("learned over {} earlier {:.0}s windows (median; requests per window)", base.learned_from, ev.window_s)
    } else {
        format!("the window just before (too little history to learn one: {MIN_LEARNED} earlier windows needed)")
    }
}

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
        let failing = e.failed / n > 1.0 - ev.success_objective(ev.route_workload(id)) || rc.timeouts > 0.0;
        let retried = ev.retried(id, rc);
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
