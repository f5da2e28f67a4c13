//! Steps 1–2: workloads whose own answers fail below the objective once what their callees and refused
//! names explain is netted out (the deepest failing workload is the root), instances that fail far more
//! than their peers, and callers (in this namespace or another) whose requests fail far more than the
//! other callers'.

use meshlens_api::diagnose::{
    FAILING_CALLER, FAILING_INSTANCE, FAILING_WORKLOAD, INVALID_RESPONSE, LOW_CONFIDENCE, Severity,
};
use meshlens_api::labels::ERROR_CANCELLED;

use super::evidence::{Caller, Counts, Evidence};
use super::{Candidate, finding, pct, wilson};

/// Proxy-error reasons at a workload's own inbound proxy that say its app could not be reached.
const INBOUND_REASONS: &[&str] = &["connect_error", "connect_timeout"];

pub(crate) fn check(ev: &Evidence<'_>, out: &mut Vec<Candidate>, checked: &mut Vec<String>) {
    let mut judged = 0;
    for (workload, served) in &ev.served {
        let n = served.requests();
        if n <= 0.0 {
            continue;
        }
        judged += 1;
        let objective = ev.success_objective(workload);
        let invalid = served.errors.get("invalid_response").copied().unwrap_or(0.0);
        if invalid > 0.0 && wilson::below_objective(invalid, n, objective) {
            out.push(Candidate { finding: invalid_response(ev, workload, served, invalid), root: true });
        }
        let explained = ev.failures_from_callees(workload);
        let inbound_made: f64 = INBOUND_REASONS.iter().filter_map(|r| served.errors.get(*r)).sum();
        // Requests the caller gave up on are its impatience (or a route timeout), not this app's answer.
        let cancelled = served.errors.get(ERROR_CANCELLED).copied().unwrap_or(0.0);
        let own = (served.failed - explained - invalid - cancelled).max(0.0);
        let concentrated = one_caller(ev, workload, own);
        if let Some((caller, c)) = concentrated {
            out.push(Candidate { finding: failing_caller(ev, workload, caller, c), root: true });
        }
        if !wilson::below_objective(own, n, objective) {
            if own >= 1.0 && n < wilson::MIN_REQUESTS {
                let mut f = finding(
                    ev,
                    Severity::Info,
                    LOW_CONFIDENCE,
                    format!("deploy/{workload}"),
                    format!(
                        "{workload} failed {own:.0} of {n:.0} requests: too few requests to tell a fault from chance"
                    ),
                );
                f.commands.push(format!("meshlens stat deploy/{workload} -n {} -t 10m", ev.namespace));
                out.push(Candidate { finding: f, root: true });
            }
            continue;
        }
        let instance = outlier(ev, workload, own);
        let mut f = match &instance {
            Some((name, c)) => {
                let mut f = finding(
                    ev,
                    severity(c.failed / c.requests()),
                    FAILING_INSTANCE,
                    format!("po/{name}"),
                    format!(
                        "instance {name} of {workload} fails {} of the requests it serves while its peers do not",
                        pct(c.failed / c.requests())
                    ),
                );
                f.evidence.push(format!("{name}: {:.0} of {:.0} requests failed", c.failed, c.requests()));
                for ((w, other), oc) in &ev.instances {
                    if w == workload && other != name {
                        f.evidence.push(format!("{other}: {:.0} of {:.0} requests failed", oc.failed, oc.requests()));
                    }
                }
                f.commands.push(format!("meshlens stat po -n {}", ev.namespace));
                f
            }
            None => finding(
                ev,
                severity(own / n),
                FAILING_WORKLOAD,
                format!("deploy/{workload}"),
                cause(workload, served, own, inbound_made),
            ),
        };
        f.impact_rps = ev.rps(own);
        f.evidence.push(format!(
            "{workload} served {n:.0} requests in {:.0}s, {:.0} failed (success {}, objective {})",
            ev.window_s,
            served.failed,
            pct(1.0 - served.failed / n),
            pct(objective)
        ));
        if explained > 0.0 {
            f.evidence.push(format!("{explained:.0} of its failures came from services it calls (counted there)"));
        }
        callers_evidence(ev, workload, &mut f.evidence);
        if let Some((caller, _)) = concentrated {
            f.evidence
                .push(format!("its failures are the answers to one caller: {} (counted there)", caller.subject()));
        }
        f.commands.push(format!("meshlens stat deploy/{workload} -n {}", ev.namespace));
        f.commands.push(format!("meshlens tap deploy/{workload} -n {} --failed", ev.namespace));
        // What one caller sends is the cause when its requests alone fail.
        out.push(Candidate { finding: f, root: concentrated.is_none() });
    }
    checked.push(format!(
        "success of {judged} workloads against their objectives (mesh-wide {}%), failures from their callees \
         netted out",
        ev.objectives.success_rate
    ));
}

fn severity(failure_rate: f64) -> Severity {
    if failure_rate >= 0.05 { Severity::Critical } else { Severity::Warning }
}

fn cause(workload: &str, served: &Counts, own: f64, inbound_made: f64) -> String {
    let n = served.requests();
    if inbound_made >= own * 0.5 {
        format!("{workload}'s proxy cannot reach its app: {} of its requests fail before the app answers", pct(own / n))
    } else {
        format!("{workload} itself answers {} of its requests with failures (its app, not the mesh)", pct(own / n))
    }
}

/// How the callers saw it: per attempt, and through their retries.
fn callers_evidence(ev: &Evidence<'_>, workload: &str, evidence: &mut Vec<String>) {
    for (caller, c) in ev.callers_of(workload) {
        let mut line = format!(
            "{caller} → {workload}: {:.2} attempts/s, {} succeeded per attempt",
            ev.rps(c.requests()),
            pct(c.ok / c.requests().max(1.0))
        );
        let retried: Vec<_> = ev
            .routes
            .iter()
            .filter(|(r, rc)| {
                caller.namespace.is_none()
                    && r.src == caller.name
                    && ev.workload_of_service(r.service()) == Some(workload)
                    && ev.retried(r, rc)
            })
            .collect();
        let (eff_ok, eff_n) =
            retried.iter().fold((0.0, 0.0), |(o, n), (_, rc)| (o + rc.effective.ok, n + rc.effective.requests()));
        if eff_n > 0.0 {
            line.push_str(&format!("; its retries hide them: {} succeeded as {caller} saw them", pct(eff_ok / eff_n)));
        }
        evidence.push(line);
    }
}

/// The one caller (of ≥2) whose requests carry most of a workload's failures — answered by its own app,
/// not its callees — when its interval is below the objective and clears the other callers'.
fn one_caller<'e>(ev: &'e Evidence<'e>, workload: &str, own: f64) -> Option<(Caller<'e>, &'e Counts)> {
    let callers = ev.callers_of(workload);
    // Requests a caller gave up on are its impatience (`caller-gave-up`), not an answer.
    let failed = |c: &Counts| (c.failed - c.errors.get(ERROR_CANCELLED).copied().unwrap_or(0.0)).max(0.0);
    let rate = |c: &Counts| failed(c) / c.requests().max(1.0);
    let &(caller, worst) = callers.iter().max_by(|a, b| rate(a.1).total_cmp(&rate(b.1)))?;
    let (rest_failed, rest_n) = callers
        .iter()
        .filter(|(other, _)| *other != caller)
        .fold((0.0, 0.0), |(f, n), (_, c)| (f + failed(c), n + c.requests()));
    let mine = failed(worst);
    let concentrated = callers.len() >= 2
        && mine >= 0.8 * (mine + rest_failed)
        && own >= 0.5 * mine
        && wilson::below_objective(mine, worst.requests(), ev.success_objective(workload))
        && wilson::interval(mine, worst.requests()).0 > wilson::interval(rest_failed, rest_n).1;
    concentrated.then_some((caller, worst))
}

fn failing_caller(
    ev: &Evidence<'_>,
    workload: &str,
    caller: Caller<'_>,
    c: &Counts,
) -> meshlens_api::diagnose::Finding {
    let (n, ns) = (c.requests(), &ev.namespace);
    let others: Vec<_> = ev.callers_of(workload).into_iter().filter(|(o, _)| *o != caller).collect();
    let (of, on) = others.iter().fold((0.0, 0.0), |(f, n), (_, c)| (f + c.failed, n + c.requests()));
    let mut f = finding(
        ev,
        severity(c.failed / n),
        FAILING_CALLER,
        caller.subject(),
        format!(
            "{workload} fails {} of the requests {caller} sends it and {} of its other callers': what {caller} asks for fails, not {workload} as a whole",
            pct(c.failed / n),
            pct(of / on.max(1.0))
        ),
    );
    if let Some(other_ns) = caller.namespace {
        f.namespace = other_ns.to_string();
    }
    f.impact_rps = ev.rps(c.failed);
    f.evidence.push(format!("{caller} → {workload}: {:.0} of {n:.0} attempts failed in {:.0}s", c.failed, ev.window_s));
    for (other, oc) in others {
        f.evidence.push(format!("{other} → {workload}: {:.0} of {:.0} attempts failed", oc.failed, oc.requests()));
    }
    let from_ns = caller.namespace.map(|cns| format!(" --from-namespace {cns}")).unwrap_or_default();
    f.commands.push(format!("meshlens stat deploy/{workload} -n {ns} --from deploy/{}{from_ns}", caller.name));
    f.commands.push(format!("meshlens tap deploy/{workload} -n {ns} --failed"));
    f
}

/// The one instance that carries most of a workload's failures, when its interval clears its peers'.
fn outlier<'e>(ev: &'e Evidence<'e>, workload: &str, own: f64) -> Option<(&'e str, &'e Counts)> {
    let peers: Vec<_> = ev.instances.iter().filter(|((w, _), _)| w == workload).collect();
    if peers.len() < 2 {
        return None;
    }
    let (name, worst) = peers
        .iter()
        .max_by(|a, b| (a.1.failed / a.1.requests().max(1.0)).total_cmp(&(b.1.failed / b.1.requests().max(1.0))))?;
    let (rest_failed, rest_n) = peers
        .iter()
        .filter(|((_, i), _)| i != &name.1)
        .fold((0.0, 0.0), |(f, n), (_, c)| (f + c.failed, n + c.requests()));
    let (worst_lo, _) = wilson::interval(worst.failed, worst.requests());
    let (_, rest_hi) = wilson::interval(rest_failed, rest_n);
    (worst_lo > rest_hi && worst.failed >= 0.8 * own).then_some((name.1.as_str(), *worst))
}

fn invalid_response(
    ev: &Evidence<'_>,
    workload: &str,
    served: &Counts,
    invalid: f64,
) -> meshlens_api::diagnose::Finding {
    let n = served.requests();
    let mut f = finding(
        ev,
        severity(invalid / n),
        INVALID_RESPONSE,
        format!("deploy/{workload}"),
        format!(
            "{workload}'s app sends malformed responses: its proxy rejected {} of them (502 invalid_response)",
            pct(invalid / n)
        ),
    );
    f.impact_rps = ev.rps(invalid);
    f.evidence.push(format!("{invalid:.0} of {n:.0} responses rejected by {workload}'s proxy in {:.0}s", ev.window_s));
    for (caller, c) in ev.callers_of(workload) {
        if let Some(v) = c.errors.get("peer:invalid_response") {
            f.evidence.push(format!("{caller} received {v:.0} of them as 502 (l5d-proxy-error: invalid_response)"));
        }
    }
    f.commands.push(format!("meshlens stat deploy/{workload} -n {} -o wide", ev.namespace));
    f.commands.push(format!("meshlens logs deploy/{workload} -n {}", ev.namespace));
    f
}
