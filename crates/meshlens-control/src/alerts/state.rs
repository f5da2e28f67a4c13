//! The life of each alert: pending while its condition holds for less than its `for:`, then firing, then
//! resolved when the condition stops holding (a pending one that stops is forgotten, as in Prometheus).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use meshlens_api::alerts::{Alert, AlertState};
use meshlens_api::time::{Precision, rfc3339};

/// How long resolved alerts stay listed.
pub(crate) const KEEP_RESOLVED: Duration = Duration::from_secs(15 * 60);
/// At most this many resolved alerts are kept.
const MAX_RESOLVED: usize = 200;

/// One rule's verdict on one subject this evaluation: its condition holds, with these numbers.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Observation {
    pub rule: &'static str,
    pub subject: String,
    pub labels: BTreeMap<String, String>,
    pub summary: String,
    pub value: f64,
    pub threshold: f64,
    pub evidence: Vec<String>,
}

struct Live {
    alert: Alert,
    active: SystemTime,
}

/// Every pending and firing alert, and the recently resolved.
#[derive(Default)]
pub(crate) struct Tracker {
    live: BTreeMap<(&'static str, String), Live>,
    resolved: VecDeque<(SystemTime, Alert)>,
}

fn stamp(t: SystemTime) -> String {
    rfc3339(t, Precision::Millis)
}

impl Tracker {
    /// Applies one evaluation at `now`: `held` are the conditions that hold. Returns the alerts that
    /// changed to firing or resolved (what receivers are told).
    pub fn update(&mut self, now: SystemTime, held: Vec<Observation>, for_of: impl Fn(&str) -> Duration) -> Vec<Alert> {
        let mut changed = Vec::new();
        let mut seen = BTreeMap::new();
        for o in held {
            let key = (o.rule, o.subject.clone());
            let live = self.live.entry(key.clone()).or_insert_with(|| Live {
                alert: Alert {
                    rule: o.rule.to_string(),
                    state: AlertState::Pending,
                    labels: BTreeMap::new(),
                    subject: o.subject.clone(),
                    summary: String::new(),
                    value: 0.0,
                    threshold: 0.0,
                    evidence: Vec::new(),
                    active_at: stamp(now),
                    fired_at: None,
                    resolved_at: None,
                },
                active: now,
            });
            let a = &mut live.alert;
            a.labels = o.labels;
            a.summary = o.summary;
            a.value = o.value;
            a.threshold = o.threshold;
            a.evidence = o.evidence;
            let held_for = now.duration_since(live.active).unwrap_or_default();
            if a.state == AlertState::Pending && held_for >= for_of(o.rule) {
                a.state = AlertState::Firing;
                a.fired_at = Some(stamp(now));
                changed.push(a.clone());
            }
            seen.insert(key, ());
        }
        let gone: Vec<_> = self.live.keys().filter(|k| !seen.contains_key(*k)).cloned().collect();
        for key in gone {
            let Some(Live { mut alert, .. }) = self.live.remove(&key) else { continue };
            if alert.state == AlertState::Firing {
                alert.state = AlertState::Resolved;
                alert.resolved_at = Some(stamp(now));
                changed.push(alert.clone());
                self.resolved.push_back((now, alert));
            }
        }
        while self.resolved.len() > MAX_RESOLVED
            || self.resolved.front().is_some_and(|(t, _)| now.duration_since(*t).unwrap_or_default() > KEEP_RESOLVED)
        {
            self.resolved.pop_front();
        }
        changed
    }

    /// Firing, then pending, then resolved (newest first).
    pub fn alerts(&self) -> Vec<Alert> {
        let mut out: Vec<Alert> = self.live.values().map(|l| l.alert.clone()).collect();
        out.sort_by(|a, b| {
            b.state.cmp(&a.state).then_with(|| a.rule.cmp(&b.rule)).then_with(|| a.subject.cmp(&b.subject))
        });
        out.extend(self.resolved.iter().rev().map(|(_, a)| a.clone()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(subject: &str) -> Observation {
        Observation {
            rule: "successRate",
            subject: subject.into(),
            labels: BTreeMap::from([("alertname".into(), "SuccessRateBelowObjective".into())]),
            summary: "low".into(),
            value: 90.0,
            threshold: 99.5,
            evidence: vec!["90 of 100".into()],
        }
    }

    fn at(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + s)
    }

    const FOR: Duration = Duration::from_secs(60);

    #[test]
    fn pending_fires_after_its_for_then_resolves_once() {
        let mut t = Tracker::default();
        assert!(t.update(at(0), vec![held("deploy/a")], |_| FOR).is_empty());
        assert_eq!(t.alerts()[0].state, AlertState::Pending);
        assert!(t.update(at(59), vec![held("deploy/a")], |_| FOR).is_empty());
        let fired = t.update(at(60), vec![held("deploy/a")], |_| FOR);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].state, AlertState::Firing);
        assert_eq!(fired[0].active_at, "2027-01-15T08:00:00.000Z");
        assert_eq!(fired[0].fired_at.as_deref(), Some("2027-01-15T08:01:00.000Z"));
        // Still firing: nothing new to tell.
        assert!(t.update(at(65), vec![held("deploy/a")], |_| FOR).is_empty());
        let resolved = t.update(at(70), vec![], |_| FOR);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, AlertState::Resolved);
        assert_eq!(resolved[0].resolved_at.as_deref(), Some("2027-01-15T08:01:10.000Z"));
        assert_eq!(resolved[0].evidence, ["90 of 100"]);
        assert!(t.update(at(75), vec![], |_| FOR).is_empty());
        assert_eq!(t.alerts().len(), 1, "the resolved alert stays listed");
        t.update(at(70 + KEEP_RESOLVED.as_secs() + 1), vec![], |_| FOR);
        assert!(t.alerts().is_empty(), "… for a while");
    }

    #[test]
    fn a_pending_alert_that_stops_holding_is_forgotten_and_starts_over() {
        let mut t = Tracker::default();
        t.update(at(0), vec![held("deploy/a")], |_| FOR);
        assert!(t.update(at(30), vec![], |_| FOR).is_empty());
        assert!(t.alerts().is_empty());
        t.update(at(40), vec![held("deploy/a")], |_| FOR);
        assert!(t.update(at(90), vec![held("deploy/a")], |_| FOR).is_empty(), "the clock restarted at 40");
        assert_eq!(t.update(at(100), vec![held("deploy/a")], |_| FOR).len(), 1);
    }

    #[test]
    fn zero_for_fires_at_once_and_evidence_follows_the_latest_numbers() {
        let mut t = Tracker::default();
        let fired = t.update(at(0), vec![held("ts/x")], |_| Duration::ZERO);
        assert_eq!(fired[0].state, AlertState::Firing);
        let mut worse = held("ts/x");
        worse.value = 80.0;
        t.update(at(5), vec![worse, held("deploy/b")], |_| Duration::ZERO);
        let all = t.alerts();
        assert_eq!(all.len(), 2);
        assert_eq!(all.iter().find(|a| a.subject == "ts/x").unwrap().value, 80.0);
        assert_eq!(all.iter().find(|a| a.subject == "ts/x").unwrap().active_at, "2027-01-15T08:00:00.000Z");
    }
}
