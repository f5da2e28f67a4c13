//! Alerts (issue 16): the default rules of `spec.alerts` judged on the embedded store after every scrape
//! round, their pending → firing → resolved states, `/api/v1/alerts`, and webhook notifications.

mod rules;
mod state;
#[cfg(test)]
mod tests;
pub(crate) mod webhook;

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use meshlens_api::alerts::{self as api, AlertsReport, RuleInfo};
use meshlens_api::time::{Precision, rfc3339};
use tokio::sync::mpsc;

use crate::meshdir::MeshConfig;
use crate::metricstore::MetricStore;
use state::Tracker;
use webhook::Notice;

/// The alert engine one control plane holds.
pub(crate) struct Alerts {
    /// False in Prometheus mode: nothing is scraped here, so nothing is evaluated.
    evaluating: bool,
    external_url: String,
    inner: Mutex<(Tracker, Option<SystemTime>)>,
    notices: mpsc::Sender<Notice>,
}

impl Alerts {
    /// The engine, and the notices for [`webhook::run`].
    pub fn new(evaluating: bool, external_url: String) -> (Alerts, mpsc::Receiver<Notice>) {
        let (notices, rx) = mpsc::channel(webhook::QUEUE);
        let inner = Mutex::new((Tracker::default(), None));
        (Alerts { evaluating, external_url, inner, notices }, rx)
    }

    /// One evaluation of every enabled rule at the store's latest data (after a scrape round).
    pub fn evaluate(&self, config: &MeshConfig, ms: &MetricStore) {
        let spec = &config.mesh.spec.alerts;
        let held = rules::judge(config, ms, &rules::Windows::of(spec, ms.now()));
        let for_of = |rule: &str| meshlens_api::duration::parse(spec.for_of(rule)).unwrap_or(Duration::ZERO);
        let now = SystemTime::now();
        let changed = {
            let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            inner.1 = Some(now);
            inner.0.update(now, held, for_of)
        };
        if spec.receivers.is_empty() {
            return;
        }
        for alert in changed {
            tracing::info!(subject = %alert.subject, state = alert.state.as_str(), summary = %alert.summary, "alert");
            let notice = Notice { alert, receivers: spec.receivers.clone(), external_url: self.external_url.clone() };
            if self.notices.try_send(notice).is_err() {
                tracing::warn!("alert notifications are queued beyond {}: dropped one", webhook::QUEUE);
            }
        }
    }

    /// What `GET /api/v1/alerts` answers.
    pub fn report(&self, config: &MeshConfig) -> AlertsReport {
        let spec = &config.mesh.spec.alerts;
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        AlertsReport {
            evaluating: self.evaluating,
            evaluated_at: inner.1.map(|t| rfc3339(t, Precision::Millis)),
            alerts: inner.0.alerts(),
            rules: api::RULES
                .iter()
                .map(|(key, name, _)| RuleInfo {
                    rule: key.to_string(),
                    alertname: name.to_string(),
                    enabled: spec.enabled(key),
                    for_: spec.for_of(key).to_string(),
                })
                .collect(),
            spec: spec.clone(),
            objectives: config.mesh.spec.objectives.clone(),
        }
    }
}
