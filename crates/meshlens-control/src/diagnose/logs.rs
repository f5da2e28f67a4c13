//! Step 5: the recent WARN/ERROR proxy log lines of the workloads the findings name, up to three a
//! finding, added to its evidence (read through the same relay as `/api/v1/logs`).

use meshlens_api::diagnose::{Report, Severity};
use meshlens_api::logs::LogEvent;

use crate::api_types::Resources;
use crate::logs::{self, LogsQuery, Plan};

/// Log lines added to one finding, at most.
const PER_FINDING: usize = 3;
/// Findings whose workloads' logs are read, at most (the first, most important ones).
const FINDINGS: usize = 5;

fn line(e: &LogEvent) -> String {
    let pod = e.source.as_ref().map_or("-", |s| s.pod.as_str());
    let fields: Vec<String> = e.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("log {pod} {} {} {}: {}", e.timestamp, e.level, e.message, fields.join(" "))
}

/// Adds each serious finding's workload's recent proxy log lines to its evidence.
pub(crate) async fn attach(report: &mut Report, res: &Resources) {
    let since = format!("{}s", report.window_s.max(1.0).round());
    let wanted: Vec<(usize, Plan)> = report
        .findings
        .iter()
        .enumerate()
        .filter(|(_, f)| f.severity > Severity::Info && f.subject.starts_with("deploy/"))
        .take(FINDINGS)
        .filter_map(|(i, f)| {
            let q = LogsQuery {
                resource: f.subject.clone(),
                namespace: Some(f.namespace.clone()),
                level: None,
                since: Some(since.clone()),
                follow: None,
            };
            Plan::new(res, None, &q).ok().map(|p| (i, p))
        })
        .collect();
    let pages = futures_util::future::join_all(wanted.iter().map(|(_, p)| logs::once(p))).await;
    for ((i, _), page) in wanted.iter().zip(pages) {
        let newest = page.events.iter().rev().take(PER_FINDING);
        report.findings[*i].evidence.extend(newest.map(line));
    }
}
