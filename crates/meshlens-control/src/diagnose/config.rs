//! Step 4, configuration against traffic: split weights that do not add up, splits that omit a live
//! backend of the same app, profile routes that match nothing while `[DEFAULT]` carries the traffic.

use meshlens_api::diagnose::{ROUTE_MATCHES_NOTHING, SPLIT_OMITS_BACKEND, SPLIT_WEIGHTS, Severity};
use meshlens_api::profile::{RequestMatch, RouteSpec};

use super::evidence::Evidence;
use super::{Candidate, finding};

/// `[DEFAULT]` must carry at least this share of a service's requests for an unmatched route to count.
const DEFAULT_SHARE: f64 = 0.5;
/// Requests a service must see in the window before its routes are judged.
const MIN_REQUESTS: f64 = 20.0;

pub(crate) fn check(ev: &Evidence<'_>, out: &mut Vec<Candidate>, checked: &mut Vec<String>) {
    splits(ev, out);
    routes(ev, out);
    checked.push("TrafficSplit weights and backends, ServiceProfile routes against the paths called".into());
}

fn short(service: &str) -> &str {
    service.split('.').next().unwrap_or(service)
}

/// The sum of a split's weights (whole percent) when they look meant as percentages but do not add to 100
/// (`meshlens_api::alerts::percent_weights_off`); `None` when they add up or are relative weights.
pub(crate) fn misweighted(split: &meshlens_api::profile::TrafficSplit) -> Option<i64> {
    let milli: Vec<Option<i64>> = split.spec.backends.iter().map(|b| b.weight.milli_value()).collect();
    meshlens_api::alerts::percent_weights_off(&milli)
}

fn splits(ev: &Evidence<'_>, out: &mut Vec<Candidate>) {
    for ts in &ev.res.traffic_splits {
        let split = &ts.traffic_split;
        if split.metadata.namespace.as_deref().unwrap_or("default") != ev.namespace {
            continue;
        }
        let name = &split.metadata.name;
        if let Some(sum) = misweighted(split) {
            let mut f = finding(
                ev,
                Severity::Warning,
                SPLIT_WEIGHTS,
                format!("ts/{name}"),
                format!(
                    "the weights of TrafficSplit {name} add up to {sum}, not 100: each backend gets its weight / {sum}"
                ),
            );
            for b in &split.spec.backends {
                let w = b.weight.milli_value().unwrap_or(0) as f64;
                f.evidence.push(format!(
                    "{}: weight {} → effective share {:.1}%",
                    b.service,
                    b.weight,
                    100.0 * w / (sum * 1000) as f64
                ));
            }
            f.evidence.push(format!("declared at {}", ts.source));
            f.commands.push(format!("meshlens stat ts/{name} -n {}", ev.namespace));
            out.push(Candidate { finding: f, root: true });
        }
        omitted(ev, ts, out);
    }
}

/// A workload with the same `app` label as the split's backends, with live instances, serving nothing,
/// that the split does not list.
fn omitted(ev: &Evidence<'_>, ts: &crate::api_types::TrafficSplitResource, out: &mut Vec<Candidate>) {
    let split = &ts.traffic_split;
    let listed: Vec<&str> = split.spec.backends.iter().map(|b| short(&b.service)).collect();
    let backend_workloads: Vec<&str> = listed.iter().filter_map(|s| ev.workload_of_service(s)).collect();
    let apps: Vec<&String> = ev
        .res
        .workloads
        .iter()
        .filter(|w| w.namespace == ev.namespace && backend_workloads.contains(&w.name.as_str()))
        .filter_map(|w| w.labels.get("app"))
        .collect();
    let carried: f64 = backend_workloads.iter().filter_map(|w| ev.served.get(*w)).map(|c| c.requests()).sum();
    if apps.is_empty() || carried < MIN_REQUESTS {
        return;
    }
    for w in &ev.res.workloads {
        if w.namespace != ev.namespace
            || backend_workloads.contains(&w.name.as_str())
            || w.instances.is_empty()
            || !w.labels.get("app").is_some_and(|a| apps.contains(&a))
            || ev.served.get(&w.name).is_some_and(|c| c.requests() > 0.0)
        {
            continue;
        }
        let name = &split.metadata.name;
        let mut f = finding(
            ev,
            Severity::Warning,
            SPLIT_OMITS_BACKEND,
            format!("ts/{name}"),
            format!(
                "{} gets no traffic: it runs {} ready instance(s) of app {} but TrafficSplit {name} does not list it",
                w.name,
                w.instances.len(),
                w.labels.get("app").map_or("", String::as_str)
            ),
        );
        // What it would serve at an equal share: the requests that go elsewhere than meant.
        f.impact_rps = ev.rps(carried) / (backend_workloads.len() + 1) as f64;
        f.evidence.push(format!("{}: backends {}", ts.source, listed.join(", ")));
        f.evidence.push(format!(
            "the listed backends served {:.0} requests in {:.0}s, {} served none",
            carried, ev.window_s, w.name
        ));
        f.commands.push(format!("meshlens stat deploy -n {}", ev.namespace));
        f.commands.push(format!("meshlens stat ts/{name} -n {}", ev.namespace));
        out.push(Candidate { finding: f, root: true });
    }
}

fn routes(ev: &Evidence<'_>, out: &mut Vec<Candidate>) {
    for p in &ev.res.profiles {
        let host = &p.profile.metadata.name;
        let on = |route: &str| -> f64 {
            ev.routes
                .iter()
                .filter(|(id, _)| {
                    id.route == route && id.authority.rsplit_once(':').map_or(id.authority.as_str(), |(h, _)| h) == host
                })
                .map(|(_, c)| c.effective.requests())
                .sum()
        };
        // One HTTPRoute rule with several matches is one route name with several conditions.
        let mut names: Vec<&str> = Vec::new();
        for r in &p.profile.spec.routes {
            if !names.contains(&r.name.as_str()) {
                names.push(&r.name);
            }
        }
        let default = on("[DEFAULT]");
        let total: f64 = default + names.iter().map(|n| on(n)).sum::<f64>();
        if total < MIN_REQUESTS || default < DEFAULT_SHARE * total {
            continue;
        }
        let service = short(host);
        let workload = ev.workload_of_service(service).unwrap_or(service).to_string();
        for name in names.into_iter().filter(|n| on(n) <= 0.0) {
            let specs: Vec<&RouteSpec> = p.profile.spec.routes.iter().filter(|r| r.name == name).collect();
            let mut what = Vec::new();
            if let Some(t) = specs.iter().find_map(|r| r.timeout.as_ref()) {
                what.push(format!("timeout {t}"));
            }
            if specs.iter().any(|r| r.is_retryable) {
                what.push("retries".to_string());
            }
            let lost =
                if what.is_empty() { String::new() } else { format!(", so its {} never apply", what.join(" and ")) };
            let mut f = finding(
                ev,
                Severity::Warning,
                ROUTE_MATCHES_NOTHING,
                format!("route deploy/{workload} {name}"),
                format!(
                    "route {name} of {service} matched no request while [DEFAULT] carried {:.0}% of them{lost}",
                    100.0 * default / total
                ),
            );
            for r in &specs {
                f.evidence.push(format!("{}: condition {}", p.source, r.condition));
            }
            let beyond_path: Vec<String> = specs.iter().filter_map(|r| beyond_path(&r.condition)).collect();
            if !beyond_path.is_empty() {
                f.evidence.push(format!(
                    "every part of a condition must match: a request whose method and path match but that lacks {} \
                     is not route {name}",
                    beyond_path.join(" or ")
                ));
            }
            f.evidence.push(format!("[DEFAULT] {default:.0} of {total:.0} requests in {:.0}s", ev.window_s));
            f.commands.push(format!("meshlens routes svc/{service} -n {}", ev.namespace));
            f.commands.push(format!("meshlens top deploy/{workload} -n {}", ev.namespace));
            if specs.iter().any(|r| !r.condition.headers.is_empty()) {
                f.commands.push(format!("meshlens tap deploy/{workload} -n {} -o json --headers", ev.namespace));
            }
            out.push(Candidate { finding: f, root: true });
        }
    }
}

/// The header and query parameter parts of a condition (`header x-canary=true and query v~[0-9]+`), which
/// the paths called do not show; `None` when it has none.
fn beyond_path(condition: &RequestMatch) -> Option<String> {
    let headers = condition.headers.iter().map(|v| format!("header {v}"));
    let parts: Vec<String> = headers.chain(condition.query_params.iter().map(|v| format!("query {v}"))).collect();
    (!parts.is_empty()).then(|| parts.join(" and "))
}
