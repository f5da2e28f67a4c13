//! Alerts: the `spec.alerts` section of `mesh.yaml` (rules, `for:` durations, receivers) and the shapes of
//! `GET /api/v1/alerts` (docs/api.md).
//!
//! ```yaml
//! alerts:
//!   window: 1m              # rates, success and p99 are judged over this window (default 1m)
//!   baseline: 1h            # p99 is compared with the same window this long ago (PromQL's offset; default 1h),
//!                           # or with the second window held while the store is younger
//!   minRequestRate: 1       # req/s a series needs in the window to be judged (default 1)
//!   rules:                  # each: {enabled: true, for: DURATION}
//!     successRate: {for: 2m}
//!     latency: {for: 5m}
//!     retryRate: {for: 5m}
//!     splitWeights: {for: 0s}
//!   receivers:              # Alertmanager-format webhooks (http://), told of firing and resolved alerts
//!     - {name: ops, url: "http://127.0.0.1:9093/api/v2/alerts-webhook"}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `spec.alerts` of `mesh.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AlertsSpec {
    #[serde(default = "default_window")]
    pub window: String,
    #[serde(default = "default_baseline")]
    pub baseline: String,
    #[serde(default = "default_min_rate")]
    pub min_request_rate: f64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, RuleSpec>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub receivers: Vec<Receiver>,
}

/// One rule's settings; what it leaves out is the rule's default.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<String>,
}

/// A webhook that gets Alertmanager's webhook payload (version 4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Receiver {
    pub name: String,
    /// `http://HOST:PORT/PATH`
    pub url: String,
}

fn default_window() -> String {
    "1m".into()
}
fn default_baseline() -> String {
    "1h".into()
}
fn default_min_rate() -> f64 {
    1.0
}

impl Default for AlertsSpec {
    fn default() -> Self {
        AlertsSpec {
            window: default_window(),
            baseline: default_baseline(),
            min_request_rate: default_min_rate(),
            rules: BTreeMap::new(),
            receivers: Vec::new(),
        }
    }
}

/// The default rules: (key under `rules:`, alert name, default `for:`).
pub const RULES: [(&str, &str, &str); 4] = [
    (SUCCESS_RATE, "SuccessRateBelowObjective", "2m"),
    (LATENCY, "LatencyAboveBaseline", "5m"),
    (RETRY_RATE, "RetryRateAboveObjective", "5m"),
    (SPLIT_WEIGHTS, "SplitWeightsNot100", "0s"),
];
pub const SUCCESS_RATE: &str = "successRate";
pub const LATENCY: &str = "latency";
pub const RETRY_RATE: &str = "retryRate";
pub const SPLIT_WEIGHTS: &str = "splitWeights";

impl AlertsSpec {
    pub fn is_default(&self) -> bool {
        *self == AlertsSpec::default()
    }

    /// Whether rule `key` is on.
    pub fn enabled(&self, key: &str) -> bool {
        self.rules.get(key).and_then(|r| r.enabled).unwrap_or(true)
    }

    /// Rule `key`'s `for:` as written (its default when not set).
    pub fn for_of(&self, key: &str) -> &str {
        let default = RULES.iter().find(|r| r.0 == key).map_or("0s", |r| r.2);
        self.rules.get(key).and_then(|r| r.for_.as_deref()).unwrap_or(default)
    }

    /// What is wrong with this section: (field path under `spec`, message).
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut duration = |at: String, v: &str, positive: bool| match crate::duration::parse(v) {
            Err(e) => out.push((at, e)),
            Ok(d) if positive && d.is_zero() => out.push((at, format!("'{v}' must be longer than 0"))),
            Ok(_) => {}
        };
        duration("alerts.window".into(), &self.window, true);
        duration("alerts.baseline".into(), &self.baseline, true);
        for (key, r) in &self.rules {
            if let Some(f) = &r.for_ {
                duration(format!("alerts.rules.{key}.for"), f, false);
            }
        }
        for key in self.rules.keys() {
            if !RULES.iter().any(|r| r.0 == key) {
                let known: Vec<&str> = RULES.iter().map(|r| r.0).collect();
                out.push((
                    format!("alerts.rules.{key}"),
                    format!("unknown rule '{key}' (rules: {})", known.join(", ")),
                ));
            }
        }
        if !(self.min_request_rate.is_finite() && self.min_request_rate >= 0.0) {
            out.push(("alerts.minRequestRate".into(), format!("{} must be a rate >= 0", self.min_request_rate)));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, r) in self.receivers.iter().enumerate() {
            if r.name.is_empty() || !names.insert(r.name.as_str()) {
                out.push((
                    format!("alerts.receivers[{i}].name"),
                    format!("'{}' must be a unique non-empty name", r.name),
                ));
            }
            if let Err(e) = http_url(&r.url) {
                out.push((format!("alerts.receivers[{i}].url"), e));
            }
        }
        out
    }
}

/// `http://HOST:PORT/PATH` → (`HOST:PORT`, `/PATH`); the port defaults to 80, the path to `/`.
pub fn http_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("'{url}' must be an http:// URL"))?;
    let (host, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
    if host.is_empty() || host.contains('@') {
        return Err(format!("'{url}' has no host"));
    }
    let authority = match host.rsplit_once(':') {
        Some((h, p)) => {
            p.parse::<u16>().map_err(|_| format!("'{url}' has an invalid port '{p}'"))?;
            if h.is_empty() {
                return Err(format!("'{url}' has no host"));
            }
            host.to_string()
        }
        None => format!("{host}:80"),
    };
    Ok((authority, path.to_string()))
}

/// Whole-number weights that do not add up to 100 but come close (80..=120) were meant as percentages:
/// their sum, else None. `milli` is each backend's weight in thousandths (None: not a number).
pub fn percent_weights_off(milli: &[Option<i64>]) -> Option<i64> {
    let weights: Vec<i64> = milli.iter().copied().collect::<Option<_>>()?;
    let sum: i64 = weights.iter().sum();
    let whole = weights.iter().all(|w| w % 1000 == 0);
    (whole && sum != 100_000 && (80_000..=120_000).contains(&sum)).then_some(sum / 1000)
}

/// Where an alert is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition holds, not yet for its `for:` duration.
    Pending,
    Firing,
    /// It fired, and the condition no longer holds.
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// One alert of `GET /api/v1/alerts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// The rule key (`successRate`, `latency`, `retryRate`, `splitWeights`).
    pub rule: String,
    pub state: AlertState,
    /// `alertname`, `namespace`, and what it is about (`deployment`, `dst_service`, `rt_route`,
    /// `trafficsplit`), `severity`: the labels of its webhook notification.
    pub labels: BTreeMap<String, String>,
    /// `deploy/order-service`, `route deploy/payment-service PUT /orders/{id}`, `ts/checkout-service`.
    pub subject: String,
    pub summary: String,
    /// The measured value (percent for rates, ms for latency, percent for weights) and its threshold.
    pub value: f64,
    pub threshold: f64,
    /// The numbers behind it, as sentences.
    pub evidence: Vec<String>,
    /// When the condition started to hold (RFC 3339).
    pub active_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fired_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<String>,
}

impl Alert {
    /// Its `namespace` label.
    pub fn namespace(&self) -> &str {
        self.labels.get("namespace").map_or("", String::as_str)
    }
}

/// `GET /api/v1/alerts`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertsReport {
    /// False in Prometheus mode (use `meshlens alerts --prometheus-rules` there).
    pub evaluating: bool,
    /// The last evaluation (RFC 3339), none before the first scrape round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluated_at: Option<String>,
    /// Pending and firing alerts, then those resolved in the last 15 minutes.
    pub alerts: Vec<Alert>,
    /// Each rule: key, alert name, enabled, `for:`.
    pub rules: Vec<RuleInfo>,
    /// The configuration judged by (what `meshlens alerts --prometheus-rules` renders).
    pub spec: AlertsSpec,
    pub objectives: crate::mesh::Objectives,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleInfo {
    pub rule: String,
    pub alertname: String,
    pub enabled: bool,
    #[serde(rename = "for")]
    pub for_: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_weights() {
        assert_eq!(http_url("http://127.0.0.1:9/hook").unwrap(), ("127.0.0.1:9".into(), "/hook".into()));
        assert_eq!(http_url("http://alerts").unwrap(), ("alerts:80".into(), "/".into()));
        assert!(http_url("https://x/").is_err() && http_url("http://:9/").is_err());
        assert_eq!(percent_weights_off(&[Some(60_000), Some(50_000)]), Some(110));
        assert_eq!(percent_weights_off(&[Some(100_000); 3]), None);
        assert_eq!(percent_weights_off(&[Some(90_000), Some(10_000)]), None);
    }

    #[test]
    fn problems_name_the_field() {
        let mut s = AlertsSpec { window: "soon".into(), ..AlertsSpec::default() };
        s.rules.insert("latencyy".into(), RuleSpec::default());
        s.receivers.push(Receiver { name: "a".into(), url: "ftp://x".into() });
        let p: Vec<String> = s.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(p, ["alerts.window", "alerts.rules.latencyy", "alerts.receivers[0].url"]);
        assert_eq!(AlertsSpec::default().for_of(LATENCY), "5m");
    }
}
