//! Step 5: the recent WARN/ERROR proxy log lines of the workloads the findings name, grouped by reason
//! with counts per instance and the newest line of each reason as an example (up to three a finding),
//! added to its evidence (read through the same relay as `/api/v1/logs`).

use std::collections::BTreeMap;

use meshlens_api::diagnose::{Report, Severity};
use meshlens_api::logs::LogEvent;

use crate::api_types::Resources;
use crate::logs::{self, LogsQuery, Plan};

/// Reasons (each a count line and an example line) added to one finding, at most.
const PER_FINDING: usize = 3;
/// Findings whose workloads' logs are read, at most (the first, most important ones).
const FINDINGS: usize = 5;

fn line(e: &LogEvent) -> String {
    let pod = e.source.as_ref().map_or("-", |s| s.pod.as_str());
    let fields: Vec<String> = e.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("log {pod} {} {} {}: {}", e.timestamp, e.level, e.message, fields.join(" "))
}

/// Why an event was logged: its `reason` field, else its message.
fn reason(e: &LogEvent) -> &str {
    e.fields.get("reason").map_or(e.message.as_str(), String::as_str)
}

/// Events (oldest first) grouped by reason, the most frequent first: a count line per reason with its
/// instances, then the newest line of each as an example.
pub(crate) fn grouped(events: &[LogEvent]) -> Vec<String> {
    // reason → (count, per instance, newest)
    let mut by_reason: BTreeMap<&str, (usize, BTreeMap<&str, usize>, &LogEvent)> = BTreeMap::new();
    for e in events {
        let pod = e.source.as_ref().map_or("-", |s| s.pod.as_str());
        let entry = by_reason.entry(reason(e)).or_insert((0, BTreeMap::new(), e));
        entry.0 += 1;
        *entry.1.entry(pod).or_default() += 1;
        entry.2 = e;
    }
    let mut reasons: Vec<_> = by_reason.into_iter().collect();
    reasons.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
    reasons.truncate(PER_FINDING);
    let mut out: Vec<String> = reasons
        .iter()
        .map(|(r, (n, pods, newest))| {
            let pods: Vec<String> = pods.iter().map(|(p, k)| format!("{p} {k}")).collect();
            format!("logs: {n} {} line(s) with reason {r} ({})", newest.level, pods.join(", "))
        })
        .collect();
    out.extend(reasons.iter().map(|(_, (_, _, newest))| line(newest)));
    out
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
                // `deploy/NAME`, or `deploy/NAME -n NS` (a caller elsewhere: `namespace` is NS).
                resource: f.subject.split(' ').next().unwrap_or_default().to_string(),
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
        report.findings[*i].evidence.extend(grouped(&page.events));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlens_api::logs::LogSource;

    fn event(seq: u64, pod: &str, reason: &str) -> LogEvent {
        LogEvent {
            seq,
            timestamp: format!("2026-12-02T21:37:{seq:02}.000Z"),
            level: "WARN".into(),
            target: "meshlens_proxy::forward".into(),
            message: "proxy error response".into(),
            fields: [("reason".to_string(), reason.to_string())].into(),
            source: Some(LogSource { namespace: "prod".into(), deployment: "auth".into(), pod: pod.into() }),
        }
    }

    #[test]
    fn log_lines_are_counted_by_reason_and_instance_with_the_newest_of_each() {
        let mut events: Vec<LogEvent> =
            (0..8).map(|i| event(i, ["auth-0", "auth-1"][(i % 4 == 3) as usize], "invalid_response")).collect();
        events.push(event(20, "auth-1", "connect_error"));
        let lines = grouped(&events);
        assert_eq!(
            lines,
            [
                "logs: 8 WARN line(s) with reason invalid_response (auth-0 6, auth-1 2)",
                "logs: 1 WARN line(s) with reason connect_error (auth-1 1)",
                "log auth-1 2026-12-02T21:37:07.000Z WARN proxy error response: reason=invalid_response",
                "log auth-1 2026-12-02T21:37:20.000Z WARN proxy error response: reason=connect_error",
            ]
        );
    }
}
