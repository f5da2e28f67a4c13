//! Step 2, topology: edges that carried traffic in the window before this one and carry none now.

use meshlens_api::diagnose::{STOPPED_EDGE, Severity};

use super::evidence::Evidence;
use super::{Candidate, finding};

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
