//! The default rules, judged on the embedded metric store and the mesh configuration: which conditions
//! hold now, with their numbers.

use std::collections::BTreeMap;
use std::time::Duration;

use meshlens_api::alerts::{self as api, AlertsSpec};
use meshlens_api::mesh::Objectives;

use super::state::Observation;
use crate::meshdir::MeshConfig;
use crate::metricstore::{Family, Key, MetricStore, Totals, split_fqdn};

/// The windows of one evaluation (store milliseconds).
pub(crate) struct Windows {
    pub now: u64,
    pub window: u64,
    pub baseline: u64,
}

impl Windows {
    pub fn of(spec: &AlertsSpec, now: u64) -> Windows {
        let ms =
            |s: &str, d: u64| meshlens_api::duration::parse(s).map_or(d, |d: Duration| d.as_millis() as u64).max(1);
        Windows { now, window: ms(&spec.window, 60_000), baseline: ms(&spec.baseline, 3_600_000) }
    }
}

/// A p99 of fewer requests than this is little more than their maximum: not compared.
const MIN_LATENCY_REQUESTS: f64 = 100.0;

fn alertname(rule: &str) -> &'static str {
    api::RULES.iter().find(|r| r.0 == rule).map_or("", |r| r.1)
}

fn labels(rule: &str, severity: &str, namespace: &str, extra: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut l = BTreeMap::from([
        ("alertname".to_string(), alertname(rule).to_string()),
        ("namespace".to_string(), namespace.to_string()),
        ("severity".to_string(), severity.to_string()),
    ]);
    l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    l
}

/// Every condition that holds at `w.now`.
pub(crate) fn judge(config: &MeshConfig, ms: &MetricStore, w: &Windows) -> Vec<Observation> {
    let spec = &config.mesh.spec.alerts;
    let objectives = &config.mesh.spec.objectives;
    let mut out = Vec::new();
    let covered_s = ms.covered(w.now, w.window) as f64 / 1000.0;
    if covered_s > 0.0 {
        let served =
            |k: &Key| (k.family == Family::Http && !k.outbound).then(|| (k.namespace.clone(), k.workload.clone()));
        let now = ms.query(w.now, w.window, served);
        if spec.enabled(api::SUCCESS_RATE) {
            success(spec, objectives, &now, covered_s, w, &mut out);
        }
        if spec.enabled(api::LATENCY)
            && let Some(end) = baseline_end(ms, w)
        {
            let earlier = ms.query(end, w.window, served);
            latency(spec, objectives, &now, covered_s, (&earlier, end), w, &mut out);
        }
        if spec.enabled(api::RETRY_RATE) {
            retries(spec, objectives, ms, covered_s, w, &mut out);
        }
    }
    if spec.enabled(api::SPLIT_WEIGHTS) {
        splits(config, &mut out);
    }
    out
}

/// Where the baseline window ends: `baseline` before now (PromQL's `offset`), or, while the store holds
/// less history than that, at the end of its second whole window (the first has start-up in it: new
/// connections, cold caches). None while that window would overlap the current one.
fn baseline_end(ms: &MetricStore, w: &Windows) -> Option<u64> {
    let first = ms.held_from()? + 2 * w.window;
    let end = w.now.saturating_sub(w.baseline).max(first);
    (end <= w.now.saturating_sub(w.window)).then_some(end)
}

fn secs(ms: u64) -> String {
    format!("{}s", ms / 1000)
}

fn success(
    spec: &AlertsSpec,
    objectives: &Objectives,
    served: &BTreeMap<(String, String), Totals>,
    covered_s: f64,
    w: &Windows,
    out: &mut Vec<Observation>,
) {
    for ((ns, workload), t) in served {
        let n = t.requests();
        let Some(rate) = t.success_rate() else { continue };
        if n / covered_s < spec.min_request_rate {
            continue;
        }
        let objective = objectives.for_service(ns, workload).success_rate;
        if rate * 100.0 >= objective {
            continue;
        }
        out.push(Observation {
            rule: api::SUCCESS_RATE,
            subject: format!("deploy/{workload}"),
            labels: labels(api::SUCCESS_RATE, "critical", ns, &[("deployment", workload)]),
            summary: format!(
                "{workload} answered {:.2}% of its requests successfully, below its objective of {objective}%",
                rate * 100.0
            ),
            value: rate * 100.0,
            threshold: objective,
            evidence: vec![format!(
                "{:.0} of {n:.0} requests failed in the last {} ({:.1} req/s)",
                t.failure,
                secs(w.window),
                n / covered_s
            )],
        });
    }
}

fn latency(
    spec: &AlertsSpec,
    objectives: &Objectives,
    served: &BTreeMap<(String, String), Totals>,
    covered_s: f64,
    (earlier, end): (&BTreeMap<(String, String), Totals>, u64),
    w: &Windows,
    out: &mut Vec<Observation>,
) {
    let earlier_s = w.window as f64 / 1000.0;
    let ago = secs(w.now - end);
    for (key @ (ns, workload), t) in served {
        let (Some(p99), Some(base)) = (t.quantile(0.99), earlier.get(key)) else { continue };
        let Some(base_p99) = base.quantile(0.99) else { continue };
        if t.requests() / covered_s < spec.min_request_rate
            || base.requests() / earlier_s < spec.min_request_rate
            || t.requests().min(base.requests()) < MIN_LATENCY_REQUESTS
        {
            continue;
        }
        let factor = objectives.for_service(ns, workload).latency_factor;
        let limit = factor * base_p99;
        if p99 <= limit {
            continue;
        }
        out.push(Observation {
            rule: api::LATENCY,
            subject: format!("deploy/{workload}"),
            labels: labels(api::LATENCY, "warning", ns, &[("deployment", workload)]),
            summary: format!("{workload}'s p99 is {p99:.0} ms, over {factor}× its baseline of {base_p99:.0} ms"),
            value: p99,
            threshold: limit,
            evidence: vec![
                format!("p99 {p99:.0} ms over the last {} ({:.0} requests)", secs(w.window), t.requests()),
                format!(
                    "baseline p99 {base_p99:.0} ms over the same window {ago} earlier ({:.0} requests)",
                    base.requests()
                ),
            ],
        });
    }
}

fn retries(
    spec: &AlertsSpec,
    objectives: &Objectives,
    ms: &MetricStore,
    covered_s: f64,
    w: &Windows,
    out: &mut Vec<Observation>,
) {
    let route = |family: Family| {
        move |k: &Key| {
            (k.family == family && k.outbound)
                .then(|| (k.namespace.clone(), k.workload.clone(), k.authority.clone(), k.route.clone()))
        }
    };
    let effective = ms.query(w.now, w.window, route(Family::Route));
    let actual = ms.query(w.now, w.window, route(Family::RouteActual));
    for (key @ (ns, caller, authority, rt), e) in &effective {
        let n = e.requests();
        let attempts = actual.get(key).map_or(0.0, Totals::requests);
        if n <= 0.0 || n / covered_s < spec.min_request_rate {
            continue;
        }
        let (service, service_ns) = split_fqdn(authority);
        let service_ns = if service_ns.is_empty() { ns.clone() } else { service_ns };
        let objective = objectives.for_service(&service_ns, &service).retry_rate;
        let rate = (attempts / n - 1.0).max(0.0) * 100.0;
        if rate <= objective {
            continue;
        }
        out.push(Observation {
            rule: api::RETRY_RATE,
            subject: format!("route deploy/{caller} {rt} → svc/{service}"),
            labels: labels(
                api::RETRY_RATE,
                "warning",
                ns,
                &[("deployment", caller), ("dst_service", &service), ("rt_route", rt)],
            ),
            summary: format!(
                "{caller} retries {rt} of {service}: {rate:.1}% extra attempts, above the objective of {objective}%"
            ),
            value: rate,
            threshold: objective,
            evidence: vec![format!(
                "{attempts:.0} attempts for {n:.0} requests in the last {} (EFFECTIVE_RPS {:.2}, ACTUAL_RPS {:.2})",
                secs(w.window),
                n / covered_s,
                attempts / covered_s
            )],
        });
    }
}

fn splits(config: &MeshConfig, out: &mut Vec<Observation>) {
    for ts in &config.traffic_splits {
        let split = &ts.value;
        let milli: Vec<Option<i64>> = split.spec.backends.iter().map(|b| b.weight.milli_value()).collect();
        let Some(sum) = api::percent_weights_off(&milli) else { continue };
        let ns = split.metadata.namespace.as_deref().unwrap_or(crate::validate::DEFAULT_NAMESPACE);
        let name = &split.metadata.name;
        let mut evidence: Vec<String> = split
            .spec
            .backends
            .iter()
            .map(|b| {
                let share = 100.0 * b.weight.milli_value().unwrap_or(0) as f64 / (sum * 1000) as f64;
                format!("{}: weight {} → effective share {share:.1}%", b.service, b.weight)
            })
            .collect();
        evidence.push(format!("declared at {}", ts.origin()));
        out.push(Observation {
            rule: api::SPLIT_WEIGHTS,
            subject: format!("ts/{name}"),
            labels: labels(api::SPLIT_WEIGHTS, "warning", ns, &[("trafficsplit", name)]),
            summary: format!("the weights of TrafficSplit {name} add up to {sum}, not 100"),
            value: sum as f64,
            threshold: 100.0,
            evidence,
        });
    }
}
