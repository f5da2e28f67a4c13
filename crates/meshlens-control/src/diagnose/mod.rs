//! `/api/v1/diagnose`: the five-step method (DESIGN.md §1) run over the metric store and the mesh's
//! configuration, as ranked findings (`meshlens_api::diagnose`, docs/diagnose.md).
//!
//! | module | step |
//! |---|---|
//! | `evidence` | one read of the window: workloads, instances, edges, refused names, routes |
//! | `baseline` | the earlier windows latencies are compared with: `--offset`'s, or learned from history |
//! | `wilson` | success-rate intervals, so few requests never make a finding |
//! | `failing` | steps 1–2: workloads and instances whose own answers fail (callees netted out) |
//! | `latency` | step 1: routes that succeed with a tail far beyond their median (a slow success path) |
//! | `patience` | step 3 from the counts: callers that give up (cancel) before their callees answer |
//! | `proxy` | step 5 by reason: route timeouts, invalid responses, unknown and unreachable names |
//! | `retries` | step 4: retry amplification and spent budgets |
//! | `topology` | step 2: edges that carried traffic before and stopped |
//! | `config` | step 4: split weights, splits that omit a live backend, routes that match nothing |
//! | `sample` | step 3: a bounded tap sample of the serious findings' workloads (reasons, instances, periods) |
//! | `sides` | step 3 from the sample: which side gave up per edge (caller, proxy timeout, app) |
//! | `period` | step 3 from the sample: every Nth request or fixed intervals, or too few failures to tell |
//! | `tails` | step 3 from the sample: one instance or route carrying a workload's latency tail |
//! | `logs` | step 5: the implicated workloads' recent WARN/ERROR proxy log lines as evidence |
//! | `rank` | a root cause above its symptoms, then by requests per second explained |

mod baseline;
mod config;
pub(crate) mod evidence;
mod failing;
mod latency;
mod logs;
mod patience;
mod period;
mod proxy;
mod rank;
mod retries;
mod sample;
mod sides;
mod tails;
mod topology;
mod wilson;

#[cfg(test)]
mod tests;

use meshlens_api::diagnose::{Finding, LOW_CONFIDENCE, Report, Severity};
use meshlens_api::mesh::Objectives;
use meshlens_api::stats::StatQuery;
use serde::Deserialize;

use crate::api_types::Resources;
use crate::diagnostics::QueryError;
use crate::metricstore::MetricStore;
use crate::statsapi;
pub(crate) use baseline::{History, Plan};
pub(crate) use config::misweighted;
pub(crate) use evidence::Evidence;
pub(crate) use logs::attach as attach_logs;
pub(crate) use sample::{Counters, attach as attach_sample};
pub(crate) use wilson::below_objective;

/// Query parameters of `/api/v1/diagnose`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct DiagnoseQuery {
    #[serde(default)]
    pub namespace: Option<String>,
    /// Go-style duration, default `1m`.
    #[serde(default)]
    pub window: Option<String>,
    /// Go-style duration: the baseline (latencies, edges that stopped) is the same window this long ago;
    /// default: the window just before for edges, and for latencies one learned from the earlier windows.
    #[serde(default)]
    pub offset: Option<String>,
    /// Go-style duration: how long the caller waits; the tap sample takes a tenth of it (at most 3 s).
    #[serde(default)]
    pub budget: Option<String>,
}

impl DiagnoseQuery {
    /// How long to tap the serious findings' workloads.
    pub fn sample_duration(&self) -> Result<std::time::Duration, String> {
        let budget = match self.budget.as_deref() {
            Some(b) => Some(meshlens_api::duration::parse(b).map_err(|e| format!("invalid budget '{b}': {e}"))?),
            None => None,
        };
        Ok(sample::duration(budget))
    }

    /// The window (ms) and the earlier windows to compare it with.
    pub fn plan(&self, interval_ms: u64) -> Result<(u64, Plan), QueryError> {
        let window = statsapi::window_ms(self.window.as_deref(), interval_ms).map_err(QueryError::Invalid)?;
        let offset = match self.offset.as_deref() {
            Some(o) => Some(statsapi::offset_ms(Some(o)).map_err(QueryError::Invalid)?),
            None => None,
        };
        Ok((window, Plan::new(window, offset)))
    }

    /// The window as the stats queries name it (what the metric source reads).
    pub fn stat_query(&self) -> StatQuery {
        StatQuery {
            resource: "deploy".into(),
            namespace: self.namespace.clone(),
            window: self.window.clone(),
            ..StatQuery::default()
        }
    }
}

/// A finding before ranking: symptoms (`root: false`) rank below the causes that explain them.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub finding: Finding,
    pub root: bool,
}

/// What every rule needs to write a finding.
pub(crate) fn finding(ev: &Evidence<'_>, severity: Severity, kind: &str, subject: String, cause: String) -> Finding {
    Finding {
        severity,
        kind: kind.to_string(),
        subject,
        namespace: ev.namespace.clone(),
        cause,
        evidence: Vec::new(),
        commands: Vec::new(),
        impact_rps: 0.0,
    }
}

/// `0.8512` → `85.12%`.
pub(crate) fn pct(v: f64) -> String {
    format!("{:.2}%", v * 100.0)
}

/// `/api/v1/diagnose` over the embedded store, which holds the earlier windows too.
/// `objectives` are mesh.yaml's (`spec.objectives`): what each workload is held to.
pub(crate) fn diagnose(
    res: &Resources,
    objectives: &Objectives,
    ms: &MetricStore,
    q: &DiagnoseQuery,
    now: u64,
) -> Result<Report, QueryError> {
    diagnose_counted(res, objectives, ms, q, now).map(|(report, _)| report)
}

/// [`diagnose`], with what each instance served in the window: the counters a tap sample is read
/// against.
pub(crate) fn diagnose_counted(
    res: &Resources,
    objectives: &Objectives,
    ms: &MetricStore,
    q: &DiagnoseQuery,
    now: u64,
) -> Result<(Report, Counters), QueryError> {
    let (window, plan) = q.plan(ms.settings().interval_ms)?;
    diagnose_over(res, objectives, (ms, now), q, &History::held(ms, now, window, plan))
}

/// [`diagnose_counted`], with the earlier windows read elsewhere (Prometheus).
pub(crate) fn diagnose_over(
    res: &Resources,
    objectives: &Objectives,
    (ms, now): (&MetricStore, u64),
    q: &DiagnoseQuery,
    history: &History<'_>,
) -> Result<(Report, Counters), QueryError> {
    let (window, _) = q.plan(ms.settings().interval_ms)?;
    let ns = q.namespace.clone().unwrap_or_else(|| "default".into());
    let ev = Evidence::gather(res, objectives, ms, &ns, now, window, history);
    let instances = ev.instances.iter().map(|((_, i), c)| (i.clone(), (c.requests(), c.failed))).collect();
    Ok((run(&ev), Counters { seconds: ev.covered_s, instances }))
}

/// The configuration-against-traffic findings `check` reports: splits that omit a live backend, routes
/// that match nothing while `[DEFAULT]` carries the traffic, spent retry budgets.
pub(crate) fn audits(ev: &Evidence<'_>) -> Vec<Finding> {
    use meshlens_api::diagnose::{RETRY_BUDGET_EXHAUSTED, ROUTE_MATCHES_NOTHING, SPLIT_OMITS_BACKEND};
    let (mut found, mut checked) = (Vec::new(), Vec::new());
    config::check(ev, &mut found, &mut checked);
    retries::check(ev, &mut found, &mut checked);
    let wanted = [SPLIT_OMITS_BACKEND, ROUTE_MATCHES_NOTHING, RETRY_BUDGET_EXHAUSTED];
    found.into_iter().map(|c| c.finding).filter(|f| wanted.contains(&f.kind.as_str())).collect()
}

fn run(ev: &Evidence<'_>) -> Report {
    let mut checked = Vec::new();
    let mut found = Vec::new();
    let total: f64 = ev.served.values().map(|c| c.requests()).sum();
    let mut quiet = |cause: String, command: String| {
        let mut f = finding(ev, Severity::Info, LOW_CONFIDENCE, format!("ns/{}", ev.namespace), cause);
        f.commands.push(command);
        found.push(Candidate { finding: f, root: true });
    };
    let ns = &ev.namespace;
    if total < wilson::MIN_REQUESTS {
        quiet(
            format!(
                "too little traffic to judge: {total:.0} requests served in namespace {ns} in the last {:.0}s",
                ev.window_s
            ),
            format!("meshlens stat deploy -n {ns}"),
        );
    }
    if ev.covered_s < ev.window_s {
        quiet(
            format!(
                "the control plane holds {:.0}s of the {:.0}s window: rates are over what it holds",
                ev.covered_s, ev.window_s
            ),
            format!("meshlens stat deploy -n {ns} -t {:.0}s", ev.covered_s.max(1.0)),
        );
    }
    failing::check(ev, &mut found, &mut checked);
    latency::check(ev, &mut found, &mut checked);
    latency::regressions(ev, &mut found, &mut checked);
    patience::check(ev, &mut found, &mut checked);
    proxy::check(ev, &mut found, &mut checked);
    retries::check(ev, &mut found, &mut checked);
    topology::check(ev, &mut found, &mut checked);
    topology::other_namespaces(ev, &mut found, &mut checked);
    config::check(ev, &mut found, &mut checked);
    let findings = rank::rank(found);
    if findings.iter().all(|f| f.severity == Severity::Info) {
        checked.push("nothing above info: no failing workload, edge, route or configuration found".into());
    }
    Report { namespace: ev.namespace.clone(), window_s: ev.window_s, covered_s: ev.covered_s, findings, checked }
}
