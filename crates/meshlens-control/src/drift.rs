//! Drift: every difference between two meshes' configurations — services, ServiceProfiles and their
//! routes, timeouts and retry budgets, TrafficSplits and their weights — one [`Difference`] per changed
//! value, from mesh directories ([`MeshView::from_config`]) or live control planes
//! ([`MeshView::from_resources`]).

use std::collections::{BTreeMap, BTreeSet};

use meshlens_api::check::{Change, Difference};
use meshlens_api::profile::{RetryBudget, RouteSpec, ServiceProfile, TrafficSplit};

use crate::api_types::Resources;
use crate::meshdir::MeshConfig;

/// What drift compares of one mesh.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MeshView {
    /// (namespace, name) → `workload W, port P[, opaque]`.
    pub services: BTreeMap<(String, String), String>,
    pub profiles: Vec<ServiceProfile>,
    pub splits: Vec<TrafficSplit>,
}

impl MeshView {
    /// A mesh directory's configuration.
    pub fn from_config(c: &MeshConfig) -> MeshView {
        let services = c
            .mesh
            .spec
            .services
            .iter()
            .map(|s| {
                let ports = std::iter::once(s.port).chain(s.opaque_ports.iter().copied().filter(|p| *p != s.port));
                let ports: Vec<(u16, bool)> = ports.map(|p| (p, s.opaque_ports.contains(&p))).collect();
                ((s.namespace.clone(), s.name.clone()), describe(&s.workload, &ports))
            })
            .collect();
        MeshView {
            services,
            profiles: c.profiles.iter().map(|p| p.value.clone()).collect(),
            splits: c.traffic_splits.iter().map(|t| t.value.clone()).collect(),
        }
    }

    /// A control plane's `/api/v1/resources`.
    pub fn from_resources(r: &Resources) -> MeshView {
        let services = r
            .services
            .iter()
            .map(|s| {
                let ports: Vec<(u16, bool)> = s.ports.iter().map(|p| (p.port, p.opaque)).collect();
                ((s.namespace.clone(), s.name.clone()), describe(&s.workload, &ports))
            })
            .collect();
        MeshView {
            services,
            profiles: r.profiles.iter().map(|p| p.profile.clone()).collect(),
            splits: r.traffic_splits.iter().map(|t| t.traffic_split.clone()).collect(),
        }
    }
}

fn describe(workload: &str, ports: &[(u16, bool)]) -> String {
    let ports: Vec<String> =
        ports.iter().map(|(p, opaque)| if *opaque { format!("{p} (opaque)") } else { p.to_string() }).collect();
    format!("workload {workload}, port {}", ports.join(", "))
}

fn ns(meta: &meshlens_api::meta::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("default")
}

/// Pushes the difference of one value present on either side.
fn diff(out: &mut Vec<Difference>, kind: &str, subject: &str, this: Option<String>, other: Option<String>) {
    let change = match (&this, &other) {
        (Some(a), Some(b)) if a == b => return,
        (None, None) => return,
        (Some(_), Some(_)) => Change::Changed,
        (Some(_), None) => Change::Removed,
        (None, Some(_)) => Change::Added,
    };
    out.push(Difference { kind: kind.into(), subject: subject.into(), change, this, other });
}

/// Keys of both maps, in order.
fn keys<'a, K: Ord + Clone, V>(a: &'a BTreeMap<K, V>, b: &'a BTreeMap<K, V>) -> BTreeSet<K> {
    a.keys().chain(b.keys()).cloned().collect()
}

fn condition(r: &RouteSpec) -> String {
    serde_json::to_string(&r.condition).unwrap_or_default()
}

fn budget(b: Option<&RetryBudget>) -> String {
    match b {
        Some(b) => {
            format!("retryRatio {}, minRetriesPerSecond {}, ttl {}", b.retry_ratio, b.min_retries_per_second, b.ttl)
        }
        None => "default (retryRatio 0.2, minRetriesPerSecond 10, ttl 10s)".into(),
    }
}

/// Every difference from `this` to `other`, grouped by kind of resource and sorted by subject.
pub fn compare(this: &MeshView, other: &MeshView) -> Vec<Difference> {
    let mut out = Vec::new();
    for key in keys(&this.services, &other.services) {
        let subject = format!("svc/{}/{}", key.0, key.1);
        diff(&mut out, "service", &subject, this.services.get(&key).cloned(), other.services.get(&key).cloned());
    }
    let profiles = |v: &MeshView| -> BTreeMap<(String, String), ServiceProfile> {
        v.profiles.iter().map(|p| ((ns(&p.metadata).to_string(), p.metadata.name.clone()), p.clone())).collect()
    };
    let (pa, pb) = (profiles(this), profiles(other));
    for key in keys(&pa, &pb) {
        let subject = format!("sp/{}/{}", key.0, key.1);
        let (a, b) = match (pa.get(&key), pb.get(&key)) {
            (Some(a), Some(b)) => (a, b),
            (a, b) => {
                let routes = |p: &ServiceProfile| format!("{} route(s)", p.spec.routes.len());
                diff(&mut out, "profile", &subject, a.map(routes), b.map(routes));
                continue;
            }
        };
        diff(
            &mut out,
            "retry-budget",
            &subject,
            Some(budget(a.spec.retry_budget.as_ref())),
            Some(budget(b.spec.retry_budget.as_ref())),
        );
        let routes = |p: &ServiceProfile| -> BTreeMap<String, RouteSpec> {
            p.spec.routes.iter().map(|r| (r.name.clone(), r.clone())).collect()
        };
        let (ra, rb) = (routes(a), routes(b));
        for name in keys(&ra, &rb) {
            let at = format!("route {subject} {name}");
            let (x, y) = match (ra.get(&name), rb.get(&name)) {
                (Some(x), Some(y)) => (x, y),
                (x, y) => {
                    diff(&mut out, "route", &at, x.map(condition), y.map(condition));
                    continue;
                }
            };
            diff(&mut out, "route", &format!("{at} condition"), Some(condition(x)), Some(condition(y)));
            let timeout = |r: &RouteSpec| r.timeout.clone().unwrap_or_else(|| "none".into());
            diff(&mut out, "timeout", &at, Some(timeout(x)), Some(timeout(y)));
            diff(
                &mut out,
                "route",
                &format!("{at} isRetryable"),
                Some(x.is_retryable.to_string()),
                Some(y.is_retryable.to_string()),
            );
            let classes = |r: &RouteSpec| serde_json::to_string(&r.response_classes).unwrap_or_default();
            diff(&mut out, "route", &format!("{at} responseClasses"), Some(classes(x)), Some(classes(y)));
        }
    }
    let splits = |v: &MeshView| -> BTreeMap<(String, String), TrafficSplit> {
        v.splits.iter().map(|t| ((ns(&t.metadata).to_string(), t.metadata.name.clone()), t.clone())).collect()
    };
    let (sa, sb) = (splits(this), splits(other));
    for key in keys(&sa, &sb) {
        let subject = format!("ts/{}/{}", key.0, key.1);
        let (a, b) = match (sa.get(&key), sb.get(&key)) {
            (Some(a), Some(b)) => (a, b),
            (a, b) => {
                let apex = |t: &TrafficSplit| format!("apex {}, {} backend(s)", t.spec.service, t.spec.backends.len());
                diff(&mut out, "split", &subject, a.map(apex), b.map(apex));
                continue;
            }
        };
        diff(&mut out, "split", &format!("{subject} apex"), Some(a.spec.service.clone()), Some(b.spec.service.clone()));
        let weights = |t: &TrafficSplit| -> BTreeMap<String, String> {
            t.spec.backends.iter().map(|b| (b.service.clone(), b.weight.to_string())).collect()
        };
        let (wa, wb) = (weights(a), weights(b));
        for backend in keys(&wa, &wb) {
            diff(
                &mut out,
                "weight",
                &format!("{subject} {backend}"),
                wa.get(&backend).cloned(),
                wb.get(&backend).cloned(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(timeout: &str) -> ServiceProfile {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "linkerd.io/v1alpha2", "kind": "ServiceProfile",
            "metadata": {"name": "users.prod.svc.cluster.local", "namespace": "prod"},
            "spec": {"routes": [
                {"name": "GET /users/{id}", "condition": {"method": "GET", "pathRegex": "/users/[^/]+"}, "timeout": timeout},
                {"name": "POST /users", "condition": {"method": "POST", "pathRegex": "/users"}}
            ]}
        }))
        .unwrap()
    }

    fn split(weights: [i64; 2]) -> TrafficSplit {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
            "metadata": {"name": "users", "namespace": "prod"},
            "spec": {"service": "users", "backends": [
                {"service": "users-a", "weight": weights[0]}, {"service": "users-b", "weight": weights[1]}
            ]}
        }))
        .unwrap()
    }

    fn view(timeout: &str, weights: [i64; 2]) -> MeshView {
        let mut services = BTreeMap::new();
        services.insert(("prod".into(), "users".into()), "workload users, port 80".into());
        MeshView { services, profiles: vec![profile(timeout)], splits: vec![split(weights)] }
    }

    #[test]
    fn the_same_mesh_has_no_differences() {
        assert_eq!(compare(&view("2s", [50, 50]), &view("2s", [50, 50])), vec![]);
    }

    #[test]
    fn one_timeout_and_one_weight_are_two_differences() {
        let d = compare(&view("2s", [50, 50]), &view("5s", [50, 40]));
        type Row<'a> = (&'a str, &'a str, Change, Option<&'a str>, Option<&'a str>);
        let got: Vec<Row<'_>> = d
            .iter()
            .map(|d| (d.kind.as_str(), d.subject.as_str(), d.change, d.this.as_deref(), d.other.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "timeout",
                    "route sp/prod/users.prod.svc.cluster.local GET /users/{id}",
                    Change::Changed,
                    Some("2s"),
                    Some("5s")
                ),
                ("weight", "ts/prod/users users-b", Change::Changed, Some("50"), Some("40")),
            ]
        );
    }

    #[test]
    fn added_and_removed_resources_are_one_difference_each() {
        let mut other = view("2s", [50, 50]);
        other.profiles[0].spec.routes.pop();
        other.splits.clear();
        other.services.insert(("prod".into(), "orders".into()), "workload orders, port 80".into());
        let d = compare(&view("2s", [50, 50]), &other);
        let got: Vec<(&str, Change)> = d.iter().map(|d| (d.subject.as_str(), d.change)).collect();
        assert_eq!(
            got,
            vec![
                ("svc/prod/orders", Change::Added),
                ("route sp/prod/users.prod.svc.cluster.local POST /users", Change::Removed),
                ("ts/prod/users", Change::Removed),
            ]
        );
    }
}
