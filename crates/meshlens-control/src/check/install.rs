//! Install health: the configuration the control plane serves (last reload with `file:line`), every
//! declared instance's proxy (registered, ready, on the latest snapshot, scraped), and the leases.

use std::time::Duration;

use meshlens_api::check::Check;

use super::Live;
use crate::api_types::{InstanceResource, Resources, Status, WorkloadResource};
use crate::httpget;
use crate::meshdir::MeshConfig;
use crate::metricstore::Source;

/// How long one proxy's admin page may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn configuration(status: &Status, config: &MeshConfig) -> Vec<Check> {
    let mut out = Vec::new();
    let dir = &status.mesh_dir;
    if status.reload.ok {
        out.push(Check::ok(format!(
            "mesh directory {dir} is loaded ({} services, {} profiles, {} splits; loaded {})",
            status.services, status.profiles, status.traffic_splits, status.reload.loaded_at
        )));
    } else {
        out.push(
            Check::failure(
                format!(
                    "the last change of {dir} was rejected (since {}): the configuration loaded {} keeps serving",
                    status.reload.since, status.reload.loaded_at
                ),
                format!("fix each file:line listed (meshlens check --pre {dir} shows them); it reloads by itself"),
            )
            .with_detail(status.reload.errors.clone()),
        );
    }
    let o = &config.mesh.spec.objectives;
    out.push(Check::ok(format!(
        "objectives: success ≥ {}%, p99 ≤ {}× baseline, retries ≤ {}% ({} per-service override(s))",
        o.success_rate,
        o.latency_factor,
        o.retry_rate,
        o.services.len()
    )));
    out
}

/// What one proxy's admin listener said.
struct Probe {
    ready: Result<(), String>,
    version: Result<u64, String>,
    /// How far the proxy's clock is ahead of the control plane's (negative: behind), in seconds, when it
    /// is surely off by more than [`CLOCK_TOLERANCE_S`]; `None` when it agrees or did not say.
    clock_off_s: Option<f64>,
}

/// Clocks this far apart still agree: windows, tap timestamps and leases tolerate it.
const CLOCK_TOLERANCE_S: f64 = 2.0;

/// The proxy's clock offset when it is surely beyond the tolerance: its `Date` header (whole seconds, so
/// its clock read somewhere in `[date, date + 1)`) against the control plane's clock between sending the
/// request (`sent`) and reading the answer (`answered`).
fn clock_offset(
    date: std::time::SystemTime,
    sent: std::time::SystemTime,
    answered: std::time::SystemTime,
) -> Option<f64> {
    let secs = |t: std::time::SystemTime| match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    };
    let (date, sent, answered) = (secs(date), secs(sent), secs(answered));
    // The farthest apart the clocks can be without going beyond the tolerance.
    let ahead = date - answered;
    let behind = sent - (date + 1.0);
    if ahead > CLOCK_TOLERANCE_S {
        Some(ahead)
    } else if behind > CLOCK_TOLERANCE_S {
        Some(-behind)
    } else {
        None
    }
}

async fn probe(i: &InstanceResource) -> Probe {
    let admin = i.admin.to_string();
    let sent = std::time::SystemTime::now();
    let reply = httpget::get(&admin, "/ready", "text/plain", FETCH_TIMEOUT).await;
    let answered = std::time::SystemTime::now();
    let clock_off_s = reply.as_ref().ok().and_then(|r| r.date).and_then(|d| clock_offset(d, sent, answered));
    let ready = match reply {
        Ok(r) if r.status == 200 => Ok(()),
        Ok(r) => Err(format!("/ready answered {}: {}", r.status, r.body.trim())),
        Err(e) => Err(format!("cannot read {admin}/ready: {e}")),
    };
    // `/config` names `discovery` twice (the proxy's setting, then the snapshot in force): the last wins.
    let version = httpget::get_json::<serde_json::Value>(i.admin, "/config", FETCH_TIMEOUT).await.and_then(|c| {
        c["discovery"]["version"].as_u64().ok_or_else(|| format!("{}/config names no discovery version", i.admin))
    });
    Probe { ready, version, clock_off_s }
}

fn pod(w: &WorkloadResource, i: &InstanceResource) -> String {
    format!("po/{} (deploy/{} -n {})", i.instance, w.name, w.namespace)
}

pub(crate) async fn data_plane(l: &Live<'_>, interval_ms: u64) -> Vec<Check> {
    let mut out = Vec::new();
    let res = l.resources;
    let instances: Vec<(&WorkloadResource, &InstanceResource)> =
        res.workloads.iter().flat_map(|w| w.instances.iter().map(move |i| (w, i))).collect();

    let mut missing = 0;
    for w in res.workloads.iter().filter(|w| w.declared) {
        let want = w.replicas.unwrap_or(1) as usize;
        if w.instances.len() < want {
            missing += 1;
            let how = if w.external {
                format!("start them: meshlens proxy --workload {} -n {} --control …", w.name, w.namespace)
            } else {
                format!(
                    "meshlens logs deploy/{} -n {}; the output of meshlens up names what stopped",
                    w.name, w.namespace
                )
            };
            let names: Vec<String> = w.instances.iter().map(|i| i.instance.clone()).collect();
            out.push(
                Check::failure(
                    format!(
                        "deploy/{} -n {}: {} of {want} declared instance(s) have a registered proxy",
                        w.name,
                        w.namespace,
                        w.instances.len()
                    ),
                    how,
                )
                .with_detail(vec![format!(
                    "registered: {}",
                    if names.is_empty() { "none".into() } else { names.join(", ") }
                )]),
            );
        }
    }
    if missing == 0 {
        let declared = res.workloads.iter().filter(|w| w.declared).count();
        out.push(Check::ok(format!(
            "every declared instance has a registered proxy ({declared} workloads, {} proxies)",
            instances.len()
        )));
    }
    for w in res.workloads.iter().filter(|w| !w.declared) {
        out.push(Check::warning(
            format!("deploy/{} -n {} has registered proxies but is not declared in mesh.yaml", w.name, w.namespace),
            "declare the workload in mesh.yaml (or stop its proxies)",
        ));
    }

    let probes = futures_util::future::join_all(instances.iter().map(|(_, i)| probe(i))).await;
    let not_ready: Vec<Check> = instances
        .iter()
        .zip(&probes)
        .filter_map(|((w, i), p)| {
            let why = p.ready.as_ref().err()?;
            Some(
                Check::failure(
                    format!("{} is not ready", pod(w, i)),
                    format!("meshlens logs po/{} -n {}", i.instance, w.namespace),
                )
                .with_detail(vec![why.clone()]),
            )
        })
        .collect();
    if not_ready.is_empty() {
        out.push(Check::ok(format!("every proxy is ready ({})", instances.len())));
    }
    out.extend(not_ready);

    let skewed: Vec<Check> = instances
        .iter()
        .zip(&probes)
        .filter_map(|((w, i), p)| {
            let off = p.clock_off_s?;
            let how = if off > 0.0 { "ahead of" } else { "behind" };
            Some(Check::warning(
                format!("the clock of {} is {:.1}s {how} the control plane's", pod(w, i), off.abs()),
                "synchronise the hosts' clocks (chrony, systemd-timesyncd): windows, tap times and leases assume one clock",
            ))
        })
        .collect();
    if skewed.is_empty() {
        out.push(Check::ok(format!(
            "every proxy's clock agrees with the control plane's (within {CLOCK_TOLERANCE_S:.0}s)"
        )));
    }
    out.extend(skewed);

    let latest = l.status.version;
    let behind: Vec<Check> = instances
        .iter()
        .zip(&probes)
        .filter_map(|((w, i), p)| {
            let detail = match &p.version {
                Ok(v) if *v == latest => return None,
                Ok(v) => format!("its snapshot is version {v}, the control plane serves {latest}"),
                Err(e) => e.clone(),
            };
            Some(
                Check::failure(
                    format!("{} is not on the latest configuration snapshot", pod(w, i)),
                    format!("meshlens logs po/{} -n {} (watch stream reconnects)", i.instance, w.namespace),
                )
                .with_detail(vec![detail]),
            )
        })
        .collect();
    if behind.is_empty() {
        out.push(Check::ok(format!("every proxy is on the latest configuration snapshot (version {latest})")));
    }
    out.extend(behind);

    if l.embedded {
        let scrapes = l.store.last_scrapes();
        let limit = 3 * interval_ms;
        let stale: Vec<Check> = instances
            .iter()
            .filter_map(|(w, i)| {
                let src =
                    Source { namespace: w.namespace.clone(), workload: w.name.clone(), instance: i.instance.clone() };
                let detail = match scrapes.get(&src) {
                    Some(t) if l.end.saturating_sub(*t) <= limit => return None,
                    Some(t) => format!("last scraped {:.1}s ago", l.end.saturating_sub(*t) as f64 / 1000.0),
                    None => "never scraped".to_string(),
                };
                Some(
                    Check::failure(
                        format!("{} was not scraped in the last {:.0}s", pod(w, i), limit as f64 / 1000.0),
                        format!("meshlens diagnostics proxy-metrics po/{} -n {}", i.instance, w.namespace),
                    )
                    .with_detail(vec![detail]),
                )
            })
            .collect();
        if stale.is_empty() {
            out.push(Check::ok(format!("every proxy was scraped in the last {:.0}s", limit as f64 / 1000.0)));
        }
        out.extend(stale);
    } else {
        out.push(Check::ok("proxies are scraped by Prometheus (control --prometheus-url)"));
    }
    out
}

pub(crate) fn leases(status: &Status, res: &Resources) -> Vec<Check> {
    let mut out = Vec::new();
    if status.complete {
        out.push(Check::ok("the control plane is past its restart grace: snapshots are complete"));
    } else {
        out.push(Check::warning(
            "the control plane restarted less than two lease periods ago: endpoint removals are withheld",
            "wait for the proxies to re-register (two lease periods), then check again",
        ));
    }
    let lease = &status.lease;
    let mut late = Vec::new();
    for w in &res.workloads {
        for i in &w.instances {
            if i.lease_expires_in_ms == 0 {
                out.push(
                    Check::failure(
                        format!("the lease of po/{} (deploy/{} -n {}) has lapsed", i.instance, w.name, w.namespace),
                        format!("meshlens logs po/{} -n {}: is its proxy still running?", i.instance, w.namespace),
                    )
                    .with_detail(vec![format!("last renewed {:.1}s ago", i.last_renewal_ms as f64 / 1000.0)]),
                );
            } else if i.last_renewal_ms > 2 * lease.renew_ms {
                late.push(format!(
                    "po/{} -n {}: last renewed {:.1}s ago",
                    i.instance,
                    w.namespace,
                    i.last_renewal_ms as f64 / 1000.0
                ));
            }
        }
    }
    if late.is_empty() {
        out.push(Check::ok(format!(
            "every lease is renewed on time (every {:.0}s, lapses after {:.0}s)",
            lease.renew_ms as f64 / 1000.0,
            lease.ttl_ms as f64 / 1000.0
        )));
    } else {
        out.push(
            Check::warning(
                format!(
                    "{} proxies renew their leases late (due every {:.0}s)",
                    late.len(),
                    lease.renew_ms as f64 / 1000.0
                ),
                "an overloaded host or a stalled proxy: meshlens logs control",
            )
            .with_detail(late),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::clock_offset;

    #[test]
    fn a_clock_is_off_only_when_surely_beyond_the_tolerance() {
        let at = |s: f64| UNIX_EPOCH + Duration::from_secs_f64(s);
        // Same clock: the Date header truncates to the second.
        assert_eq!(clock_offset(at(1000.0), at(1000.7), at(1000.9)), None);
        // A slow answer widens what the proxy's clock may have read.
        assert_eq!(clock_offset(at(1003.0), at(1000.0), at(1003.5)), None);
        let ahead = clock_offset(at(1010.0), at(1000.0), at(1000.1)).unwrap();
        assert!((ahead - 9.9).abs() < 1e-6, "{ahead}");
        let behind = clock_offset(at(990.0), at(1000.0), at(1000.1)).unwrap();
        assert!((behind + 9.0).abs() < 1e-6, "{behind}");
    }
}
