//! Step 2, topology: edges that carried traffic in the window before this one and carry none now, and
//! callees in other namespaces that fail the namespace's callers.

use meshlens_api::diagnose::{FAILING_WORKLOAD, STOPPED_EDGE, Severity};

use super::evidence::Evidence;
use super::{Candidate, finding, pct, wilson};

/// Callees in another namespace whose answers to this namespace's callers fail below their objective
/// (per attempt): the cause lies there, so the finding is in that namespace.
pub(crate) fn other_namespaces(ev: &Evidence<'_>, out: &mut Vec<Candidate>, checked: &mut Vec<String>) {
    let mut callees = std::collections::BTreeMap::new();
    for (edge, c) in ev.edges.iter().filter(|(e, _)| !e.dst_ns.is_empty() && e.dst_ns != ev.namespace) {
        let entry = callees.entry((edge.dst_ns.as_str(), edge.dst.as_str())).or_insert((0.0, 0.0, Vec::new()));
        entry.0 += c.requests();
        entry.1 += c.failed;
        entry.2.push(format!(
            "{} → {}.{}: {:.0} of {:.0} attempts failed",
            edge.src,
            edge.dst,
            edge.dst_ns,
            c.failed,
            c.requests()
        ));
    }
    for ((ns, dst), (n, failed, lines)) in &callees {
        let objective = ev.objectives.for_service(ns, dst).success_rate / 100.0;
        if !wilson::below_objective(*failed, *n, objective) {
            continue;
        }
        let mut f = finding(
            ev,
            if failed / n >= 0.05 { Severity::Critical } else { Severity::Warning },
            FAILING_WORKLOAD,
            format!("deploy/{dst}"),
            format!(
                "{dst} in namespace {ns} fails {} of the requests namespace {}'s workloads send it",
                pct(failed / n),
                ev.namespace
            ),
        );
        f.namespace = ns.to_string();
        f.impact_rps = ev.rps(*failed);
        f.evidence.extend(lines.iter().cloned());
        f.commands.push(format!("meshlens diagnose -n {ns}"));
        f.commands.push(format!("meshlens stat deploy/{dst} -n {ns}"));
        out.push(Candidate { finding: f, root: true });
    }
    checked.push(format!("{} callees in other namespaces", callees.len()));
}

/// Requests an edge must have carried in the earlier window for its silence to mean something.
const MIN_EARLIER: f64 = 20.0;

pub(crate) fn check(ev: &Evidence<'_>, out: &mut Vec<Candidate>, checked: &mut Vec<String>) {
    for (edge, earlier) in &ev.earlier_edges {
        if *earlier < MIN_EARLIER || ev.edges.get(edge).is_some_and(|c| c.requests() > 0.0) {
            continue;
        }
        // The caller itself went quiet (no traffic at all): nothing to say about this one edge.
        if !ev.served.get(&edge.src).is_some_and(|c| c.requests() > 0.0) {
            continue;
        }
        let mut f = finding(
            ev,
            Severity::Warning,
            STOPPED_EDGE,
            format!("deploy/{}", edge.dst),
            format!(
                "{} stopped calling {}: {earlier:.0} requests in the window before, none in the last {:.0}s",
                edge.src, edge.dst, ev.window_s
            ),
        );
        f.impact_rps = ev.rps(*earlier);
        f.commands.push(format!("meshlens edges deploy -n {}", ev.namespace));
        f.commands.push(format!("meshlens stat deploy/{} -n {} --to deploy/{}", edge.src, ev.namespace, edge.dst));
        out.push(Candidate { finding: f, root: true });
    }
    checked.push("edges that carried traffic in the window before and stopped".into());
}
