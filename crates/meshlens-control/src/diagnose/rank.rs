//! Ranking: causes above the symptoms they explain, then the most requests per second explained; info
//! last.

use std::cmp::Reverse;

use meshlens_api::diagnose::{CALLER_GAVE_UP, Finding, LATENCY_REGRESSION, ROUTE_TIMEOUT, SLOW_ROUTE, Severity};

use super::Candidate;

pub(crate) fn rank(mut found: Vec<Candidate>) -> Vec<Finding> {
    found.sort_by(|a, b| {
        let key = |c: &Candidate| (c.finding.severity == Severity::Info, !c.root, Reverse(c.finding.severity));
        key(a).cmp(&key(b)).then(b.finding.impact_rps.total_cmp(&a.finding.impact_rps))
    });
    found.into_iter().map(|c| c.finding).collect()
}

/// Kinds whose finding is about a workload's latency: what a located latency tail explains.
pub(crate) const LATENCY_KINDS: [&str; 4] = [CALLER_GAVE_UP, SLOW_ROUTE, LATENCY_REGRESSION, ROUTE_TIMEOUT];

/// Places `found`, which locates where the finding at `parent` happens (one instance or route of its
/// workload), next to it: above it when the parent is about latency (the located tail is its cause),
/// else just below it (a detail of a different fault).
pub(crate) fn locate(findings: &mut Vec<Finding>, parent: usize, found: Finding) {
    let at = match findings.get(parent) {
        Some(p) if LATENCY_KINDS.contains(&p.kind.as_str()) => parent,
        Some(_) => parent + 1,
        None => findings.len(),
    };
    findings.insert(at, found);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(kind: &str, subject: &str) -> Finding {
        Finding {
            severity: Severity::Warning,
            kind: kind.into(),
            subject: subject.into(),
            namespace: "prod".into(),
            cause: String::new(),
            evidence: Vec::new(),
            commands: Vec::new(),
            impact_rps: 1.0,
        }
    }

    #[test]
    fn a_located_tail_goes_above_a_latency_finding_and_below_any_other() {
        let mut found = vec![f("failing-workload", "deploy/a"), f(CALLER_GAVE_UP, "deploy/b")];
        locate(&mut found, 1, f("latency-tail", "po/b-1"));
        locate(&mut found, 0, f("latency-tail", "po/a-0"));
        let subjects: Vec<&str> = found.iter().map(|f| f.subject.as_str()).collect();
        assert_eq!(subjects, ["deploy/a", "po/a-0", "po/b-1", "deploy/b"]);
    }
}
