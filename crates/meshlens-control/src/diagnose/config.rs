//! Step 4, configuration against traffic: split weights that do not add up, splits that omit a live
//! backend of the same app, profile routes that match nothing while `[DEFAULT]` carries the traffic.

use meshlens_api::diagnose::{ROUTE_MATCHES_NOTHING, SPLIT_OMITS_BACKEND, SPLIT_WEIGHTS, Severity};

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
        let default = on("[DEFAULT]");
        let total: f64 = default + p.profile.spec.routes.iter().map(|r| on(&r.name)).sum::<f64>();
        if total < MIN_REQUESTS || default < DEFAULT_SHARE * total {
            continue;
        }
        let service = short(host);
        let workload = ev.workload_of_service(service).unwrap_or(service).to_string();
        for r in &p.profile.spec.routes {
            if on(&r.name) > 0.0 {
                continue;
            }
            let mut what = Vec::new();
            if let Some(t) = &r.timeout {
                what.push(format!("timeout {t}"));
            }
            if r.is_retryable {
                what.push("retries".to_string());
            }
            let lost =
                if what.is_empty() { String::new() } else { format!(", so its {} never apply", what.join(" and ")) };
            let mut f = finding(
                ev,
                Severity::Warning,
                ROUTE_MATCHES_NOTHING,
                format!("route deploy/{workload} {}", r.name),
                format!(
                    "route {} of {service} matched no request while [DEFAULT] carried {:.0}% of them{lost}",
                    r.name,
                    100.0 * default / total
                ),
            );
            let cond = &r.condition;
            f.evidence.push(format!(
                "{}: condition method {}, pathRegex {}",
                p.source,
                cond.method.as_deref().unwrap_or("*"),
                cond.path_regex.as_deref().unwrap_or("*")
            ));
            f.evidence.push(format!("[DEFAULT] {default:.0} of {total:.0} requests in {:.0}s", ev.window_s));
            f.commands.push(format!("meshlens routes svc/{service} -n {}", ev.namespace));
            f.commands.push(format!("meshlens top deploy/{workload} -n {}", ev.namespace));
            out.push(Candidate { finding: f, root: true });
        }
    }
}
