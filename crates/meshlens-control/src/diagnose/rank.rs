//! Ranking: causes above the symptoms they explain, then the most requests per second explained; info
//! last.

use std::cmp::Reverse;

use meshlens_api::diagnose::{Finding, Severity};

use super::Candidate;

pub(crate) fn rank(mut found: Vec<Candidate>) -> Vec<Finding> {
    found.sort_by(|a, b| {
        let key = |c: &Candidate| (c.finding.severity == Severity::Info, !c.root, Reverse(c.finding.severity));
        key(a).cmp(&key(b)).then(b.finding.impact_rps.total_cmp(&a.finding.impact_rps))
    });
    found.into_iter().map(|c| c.finding).collect()
}
