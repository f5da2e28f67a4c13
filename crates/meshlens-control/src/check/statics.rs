//! Audits of the configuration alone (`--pre` and live): split weights that do not add to 100% (with the
//! shares observed when there is traffic), workloads of a split's app that the split leaves out, and the
//! references validation guarantees.

use std::collections::BTreeMap;

use meshlens_api::check::Check;

use crate::diagnose::misweighted;
use crate::meshdir::MeshConfig;

/// Requests each (namespace, workload) served in the window (empty without traffic data).
pub(crate) type Served = BTreeMap<(String, String), f64>;

fn ns_of(meta: &meshlens_api::meta::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

/// The workload behind service `name` (or `name.ns…`) of namespace `ns`.
fn workload_of<'c>(config: &'c MeshConfig, ns: &str, service: &str) -> Option<&'c str> {
    let name = service.split('.').next().unwrap_or(service);
    config.mesh.spec.services.iter().find(|s| s.namespace == ns && s.name == name).map(|s| s.workload.as_str())
}

pub(crate) fn audits(config: &MeshConfig, served: &Served) -> Vec<Check> {
    let mut out = Vec::new();
    let mut bad = 0;
    for ts in &config.traffic_splits {
        let split = &ts.value;
        let Some(sum) = misweighted(split) else { continue };
        bad += 1;
        let ns = ns_of(&split.metadata);
        let name = &split.metadata.name;
        let total: f64 = split
            .spec
            .backends
            .iter()
            .filter_map(|b| workload_of(config, ns, &b.service))
            .filter_map(|w| served.get(&(ns.to_string(), w.to_string())))
            .sum();
        let mut detail = Vec::new();
        for b in &split.spec.backends {
            let w = b.weight.milli_value().unwrap_or(0) as f64;
            let mut line = format!(
                "{}: weight {} → share {:.1}% (not {:.0}%)",
                b.service,
                b.weight,
                100.0 * w / (sum * 1000) as f64,
                w / 1000.0
            );
            if total > 0.0 {
                let seen =
                    workload_of(config, ns, &b.service).and_then(|w| served.get(&(ns.to_string(), w.to_string())));
                line.push_str(&format!(", observed {:.1}%", 100.0 * seen.copied().unwrap_or(0.0) / total));
            }
            detail.push(line);
        }
        detail.push(format!("declared at {}", ts.origin()));
        out.push(
            Check::failure(
                format!("ts/{name} -n {ns}: the weights add up to {}%, not 100%", sum),
                format!("make the weights of {} add up to 100", ts.origin()),
            )
            .with_detail(detail),
        );
    }
    if bad == 0 {
        out.push(Check::ok(format!("every TrafficSplit's weights add up ({} splits)", config.traffic_splits.len())));
    }
    out.push(Check::ok(format!(
        "every ServiceProfile and TrafficSplit names a declared service ({} profiles, {} splits)",
        config.profiles.len(),
        config.traffic_splits.len()
    )));
    out
}

/// Workloads sharing the `app` label of a split's backends that the split does not list (`--pre`; live,
/// diagnose's rule judges the same with traffic).
pub(crate) fn families(config: &MeshConfig) -> Vec<Check> {
    let mut out = Vec::new();
    let workloads = &config.mesh.spec.workloads;
    for ts in &config.traffic_splits {
        let split = &ts.value;
        let ns = ns_of(&split.metadata);
        let listed: Vec<&str> =
            split.spec.backends.iter().filter_map(|b| workload_of(config, ns, &b.service)).collect();
        let apps: Vec<&String> = workloads
            .iter()
            .filter(|w| w.namespace == ns && listed.contains(&w.name.as_str()))
            .filter_map(|w| w.labels.get("app"))
            .collect();
        for w in workloads {
            if w.namespace != ns
                || listed.contains(&w.name.as_str())
                || !w.labels.get("app").is_some_and(|a| apps.contains(&a))
            {
                continue;
            }
            out.push(
                Check::warning(
                    format!(
                        "ts/{} -n {ns}: workload {} (app {}) is not among its backends",
                        split.metadata.name,
                        w.name,
                        w.labels.get("app").map_or("", String::as_str)
                    ),
                    format!("add its service to the backends at {}, or give it another app label", ts.origin()),
                )
                .with_detail(vec![format!(
                    "backends: {}",
                    split.spec.backends.iter().map(|b| b.service.as_str()).collect::<Vec<_>>().join(", ")
                )]),
            );
        }
    }
    if out.is_empty() {
        out.push(Check::ok("every TrafficSplit lists every workload of its backends' app"));
    }
    out
}
