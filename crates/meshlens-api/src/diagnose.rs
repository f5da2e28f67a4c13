//! The JSON shape of `/api/v1/diagnose`, which is also `meshlens diagnose -o json` (docs/diagnose.md):
//! ranked findings, each with a severity, a stable `kind` from [`KINDS`], a subject, a one-sentence cause,
//! evidence and the plain commands that show the same thing.

use serde::{Deserialize, Serialize};

/// How bad a finding is. Ordered: `Info < Warning < Critical`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Severity> {
        Some(match s {
            "info" => Severity::Info,
            "warning" => Severity::Warning,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// A workload's own app answers failures (not explained by the services it calls).
pub const FAILING_WORKLOAD: &str = "failing-workload";
/// One instance of a workload fails far more than its peers.
pub const FAILING_INSTANCE: &str = "failing-instance";
/// A workload fails the requests of one caller (in its namespace or another) far more than the others'.
pub const FAILING_CALLER: &str = "failing-caller";
/// Retries on a route hide a callee's failures and multiply the requests it gets.
pub const RETRY_AMPLIFICATION: &str = "retry-amplification";
/// Retryable failures were not retried because the retry budget was spent.
pub const RETRY_BUDGET_EXHAUSTED: &str = "retry-budget-exhausted";
/// A route timeout cuts requests the callee would have answered (proxy-made 504s).
pub const ROUTE_TIMEOUT: &str = "route-timeout";
/// A callee's responses are malformed; its proxy rejects them (`invalid_response`).
pub const INVALID_RESPONSE: &str = "invalid-response";
/// A caller asks for a name no service has (`no_route`).
pub const UNKNOWN_DESTINATION: &str = "unknown-destination";
/// A callee cannot be reached (`connect_error`, `connect_timeout`, `failfast`, `load_shed`).
pub const UNREACHABLE_DESTINATION: &str = "unreachable-destination";
/// A route succeeds but a share of its requests is far slower than its median (a slow success path).
pub const SLOW_ROUTE: &str = "slow-route";
/// A route's p99 rose beyond its latency objective (`latencyFactor` × its baseline p99).
pub const LATENCY_REGRESSION: &str = "latency-regression";
/// One instance or one route of a workload carries its sampled latency tail (step 3, the tap sample).
pub const LATENCY_TAIL: &str = "latency-tail";
/// A caller gives up (cancels) on a callee's requests before they are answered.
pub const CALLER_GAVE_UP: &str = "caller-gave-up";
/// A TrafficSplit's weights do not add up to 100%.
pub const SPLIT_WEIGHTS: &str = "split-weights";
/// A live service that looks like a backend of a split gets no traffic because the split omits it.
pub const SPLIT_OMITS_BACKEND: &str = "split-omits-backend";
/// A ServiceProfile route matched no request while `[DEFAULT]` carried the traffic.
pub const ROUTE_MATCHES_NOTHING: &str = "route-matches-nothing";
/// An edge that carried traffic in the previous window carries none now.
pub const STOPPED_EDGE: &str = "stopped-edge";
/// Too little traffic or window coverage to conclude (info).
pub const LOW_CONFIDENCE: &str = "low-confidence";
/// The configuration differs from another mesh's (`meshlens diagnose --compare`; info).
pub const CONFIG_DRIFT: &str = "config-drift";

/// Every kind, in the order docs/diagnose.md documents them.
pub const KINDS: &[&str] = &[
    FAILING_WORKLOAD,
    FAILING_INSTANCE,
    FAILING_CALLER,
    RETRY_AMPLIFICATION,
    RETRY_BUDGET_EXHAUSTED,
    ROUTE_TIMEOUT,
    SLOW_ROUTE,
    LATENCY_REGRESSION,
    LATENCY_TAIL,
    CALLER_GAVE_UP,
    INVALID_RESPONSE,
    UNKNOWN_DESTINATION,
    UNREACHABLE_DESTINATION,
    SPLIT_WEIGHTS,
    SPLIT_OMITS_BACKEND,
    ROUTE_MATCHES_NOTHING,
    STOPPED_EDGE,
    LOW_CONFIDENCE,
    CONFIG_DRIFT,
];

/// One finding.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// One of [`KINDS`].
    pub kind: String,
    /// What it is about: `deploy/NAME`, `po/NAME`, `svc/NAME`, `ts/NAME`, `route deploy/NAME ROUTE`.
    pub subject: String,
    pub namespace: String,
    /// One sentence.
    pub cause: String,
    /// Numbers and config excerpts (`file:line`) behind the cause, one item a line.
    pub evidence: Vec<String>,
    /// Plain commands that show the same thing.
    pub commands: Vec<String>,
    /// Failed (or slowed) requests per second this finding explains: the ranking key.
    pub impact_rps: f64,
}

/// `GET /api/v1/diagnose?namespace=&window=`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub namespace: String,
    /// The window judged, in seconds.
    pub window_s: f64,
    /// How much of it the control plane holds data for (less while it is younger than the window).
    pub covered_s: f64,
    /// Ranked: the most requests explained first, a root cause above its symptoms.
    pub findings: Vec<Finding>,
    /// What was checked, and what was ruled out, one sentence each.
    pub checked: Vec<String>,
}

impl Report {
    /// The highest severity among the findings, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_and_round_trip() {
        assert!(Severity::Critical > Severity::Warning && Severity::Warning > Severity::Info);
        for s in [Severity::Info, Severity::Warning, Severity::Critical] {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
        }
        assert_eq!(Severity::parse("fatal"), None);
    }
}
