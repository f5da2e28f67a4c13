//! `/api/v1/proxy-metrics` (each selected instance's raw `/metrics`, fetched from its proxy's admin
//! listener, so the CLI needs no proxy address) and `/api/v1/endpoints` (what discovery resolves an
//! authority to, exactly as a proxy in the given namespace would; with `balancers=true`, how every calling
//! proxy's load balancer sees each endpoint).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use meshlens_api::Authority;
use meshlens_api::balancer::{CallerView, ProxyBalancers};
use meshlens_api::diagnostics::{DEFAULT_WEIGHT, EndpointRow, EndpointsResponse, ProxyMetrics};
use meshlens_api::discovery::Snapshot;
use serde::Deserialize;

use crate::api_types::Resources;
use crate::httpget;
use crate::metricstore::{Family, MetricStore};
use crate::scrape::get_metrics;
use crate::statsapi::{self, Kind};
use crate::statsource::{StatsSource, WindowError};
use meshlens_api::promtext;

/// Label values `obfuscate=true` hashes (the ones that name hosts, addresses, namespaces and identities).
const SENSITIVE: [&str; 6] = ["authority", "client_id", "server_id", "target_addr", "dst_service", "dst_namespace"];

/// How long one proxy may take to answer.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a diagnostics query failed: not found (404) or bad input (400).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum QueryError {
    NotFound(String),
    Invalid(String),
}

/// Query parameters of `/api/v1/proxy-metrics`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct ProxyMetricsQuery {
    /// `deploy/NAME`, `po/NAME`, `svc/NAME` or `ns/NAME`.
    pub resource: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub obfuscate: Option<bool>,
}

/// An instance to fetch: (namespace, workload, instance, admin address).
type Instance = (String, String, String, std::net::SocketAddr);

/// The registered instances `resource` names, sorted by name.
pub(crate) fn instances_of(res: &Resources, resource: &str, namespace: &str) -> Result<Vec<Instance>, QueryError> {
    let (kind, name) = resource
        .split_once('/')
        .ok_or_else(|| QueryError::Invalid(format!("'{resource}': expected TYPE/NAME, e.g. deploy/web")))?;
    let kind = Kind::parse(kind).ok_or_else(|| {
        QueryError::Invalid(format!("'{resource}': unknown resource type '{kind}' (deploy, po, svc, ns)"))
    })?;
    let ns = if kind == Kind::Namespace { name } else { namespace };
    let workload_of_service =
        res.services.iter().find(|s| s.namespace == ns && s.name == name).map(|s| s.workload.as_str());
    let mut out = Vec::new();
    for w in res.workloads.iter().filter(|w| w.namespace == ns) {
        let whole = match kind {
            Kind::Namespace => true,
            Kind::Deployment => w.name == name,
            Kind::Service => workload_of_service == Some(w.name.as_str()),
            Kind::Pod => false,
        };
        for i in w.instances.iter().filter(|i| whole || (kind == Kind::Pod && i.instance == name)) {
            out.push((w.namespace.clone(), w.name.clone(), i.instance.clone(), i.admin));
        }
    }
    let known = match kind {
        Kind::Namespace => res.namespaces.iter().any(|n| n == ns) || res.workloads.iter().any(|w| w.namespace == ns),
        Kind::Deployment => res.workloads.iter().any(|w| w.namespace == ns && w.name == name),
        Kind::Service => workload_of_service.is_some(),
        Kind::Pod => !out.is_empty(),
    };
    if !known {
        return Err(QueryError::NotFound(match kind {
            Kind::Namespace => format!("namespace '{name}' not found"),
            Kind::Pod => format!("no instance '{name}' is registered in namespace '{ns}'"),
            _ => format!("{} '{name}' not found in namespace '{ns}'", kind.name()),
        }));
    }
    out.sort_by(|a, b| a.2.cmp(&b.2));
    Ok(out)
}

/// Fetches every instance's page at once, each with its own timeout; a failure is that instance's `error`.
pub(crate) async fn fetch_all(instances: Vec<Instance>, obfuscate: bool) -> Vec<ProxyMetrics> {
    let fetches = instances.into_iter().map(|(namespace, workload, pod, admin)| async move {
        let (metrics, error) = match get_metrics(admin, FETCH_TIMEOUT).await {
            Ok(text) => (Some(if obfuscate { obfuscate_text(&text) } else { text }), None),
            Err(e) => (None, Some(format!("cannot fetch {admin}/metrics: {e}"))),
        };
        ProxyMetrics { namespace, workload, pod, metrics, error }
    });
    futures_util::future::join_all(fetches).await
}

/// Replaces the values of sensitive labels by a short stable hash; every other byte stays as it was.
pub(crate) fn obfuscate_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let rewritten = (!body.starts_with('#'))
            .then(|| promtext::parse_line(body))
            .flatten()
            .filter(|s| s.labels.iter().any(|(k, _)| SENSITIVE.contains(&k.as_str())))
            .and_then(|s| {
                let (open, close) = (body.find('{')?, body.rfind('}')?);
                let labels: Vec<String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| {
                        let v = if SENSITIVE.contains(&k.as_str()) { hash(v) } else { escape(v) };
                        format!("{k}=\"{v}\"")
                    })
                    .collect();
                Some(format!("{}{{{}}}{}", &body[..open], labels.join(","), &body[close + 1..]))
            });
        match rewritten {
            Some(l) => {
                out.push_str(&l);
                out.push_str(&line[body.len()..]);
            }
            None => out.push_str(line),
        }
    }
    out
}

/// FNV-1a, 32 bits, as 8 hex digits: stable across runs, so equal values stay equal.
fn hash(v: &str) -> String {
    let h = v.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    format!("{h:08x}")
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Query parameters of `/api/v1/endpoints`.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct EndpointsQuery {
    /// One or more authorities, comma-separated.
    pub authority: String,
    /// The namespace short names resolve in (the caller's namespace).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Add every calling proxy's balancer state per endpoint (`callers`).
    #[serde(default)]
    pub balancers: Option<bool>,
    /// The window of the callers' request shares (Go-style duration, default `1m`).
    #[serde(default)]
    pub window: Option<String>,
}

/// Resolves each authority against the snapshot proxies are served now.
pub(crate) fn endpoints(snapshot: &Snapshot, q: &EndpointsQuery) -> Result<EndpointsResponse, QueryError> {
    let ns = q.namespace.as_deref().unwrap_or("default");
    let mut out = EndpointsResponse::new();
    let asked: Vec<&str> = q.authority.split(',').map(str::trim).filter(|a| !a.is_empty()).collect();
    if asked.is_empty() {
        return Err(QueryError::Invalid("no authority given (e.g. authority=web.prod.svc.cluster.local:80)".into()));
    }
    for text in asked {
        let authority = Authority::parse(text, 80).map_err(|e| QueryError::Invalid(format!("'{text}': {e}")))?;
        let Some((svc, port)) = snapshot.resolve(&authority, ns) else {
            let why = match authority.service_name(ns, &snapshot.cluster_domain) {
                Some((name, svc_ns)) => {
                    match snapshot.services.iter().find(|s| s.name == name && s.namespace == svc_ns) {
                        Some(s) => format!(
                            "service {name}.{svc_ns} has no port {} (declared: {})",
                            authority.port,
                            s.ports.iter().map(|p| p.port.to_string()).collect::<Vec<_>>().join(", ")
                        ),
                        None => format!("no service '{name}' in namespace '{svc_ns}'"),
                    }
                }
                None => "it is not a mesh service name".to_string(),
            };
            return Err(QueryError::NotFound(format!(
                "'{text}' does not resolve to a mesh service ({why}); a proxy in namespace '{ns}' would forward it as an unmeshed destination"
            )));
        };
        let rows = svc
            .endpoints
            .iter()
            .map(|e| {
                let port_on_endpoint = port.target_port.unwrap_or(e.address.port());
                EndpointRow {
                    namespace: svc.namespace.clone(),
                    ip: e.address.ip().to_string(),
                    port: port_on_endpoint,
                    pod: e.labels.get("pod").cloned().unwrap_or_default(),
                    service: format!("{}.{}", svc.name, svc.namespace),
                    weight: DEFAULT_WEIGHT,
                    labels: e.labels.clone(),
                    callers: Vec::new(),
                }
            })
            .collect();
        out.insert(text.to_string(), rows);
    }
    Ok(out)
}

/// One registered instance's load balancers (its admin `GET /endpoints`), or why they could not be read.
pub(crate) struct CallerBalancers {
    pub namespace: String,
    pub workload: String,
    pub pod: String,
    pub balancers: Result<ProxyBalancers, String>,
}

/// Every registered instance's balancers, read at once.
pub(crate) async fn fetch_balancers(res: &Resources) -> Vec<CallerBalancers> {
    let fetches = res.workloads.iter().flat_map(|w| w.instances.iter().map(move |i| (w, i))).map(|(w, i)| async move {
        CallerBalancers {
            namespace: w.namespace.clone(),
            workload: w.name.clone(),
            pod: i.instance.clone(),
            balancers: httpget::get_json(i.admin, "/endpoints", FETCH_TIMEOUT).await,
        }
    });
    futures_util::future::join_all(fetches).await
}

/// Requests in a window per (caller namespace, caller instance, destination service `name.namespace`,
/// destination instance), as the callers' outbound series counted them.
pub(crate) type RequestCounts = BTreeMap<(String, String, String, String), f64>;

/// Outbound HTTP requests per caller instance and endpoint instance in `(now - window_ms, now]`.
pub(crate) fn request_counts(store: &MetricStore, now: u64, window_ms: u64) -> RequestCounts {
    let counts = store.query(now, window_ms, |k| {
        (k.family == Family::Http && k.outbound && !k.dst_instance.is_empty()).then(|| {
            let service = format!("{}.{}", k.dst_service, k.dst_namespace);
            (k.namespace.clone(), k.instance.clone(), service, k.dst_instance.clone())
        })
    });
    counts.into_iter().map(|(g, t)| (g, t.requests())).collect()
}

/// `balancers=true`: adds to every endpoint how each calling instance's balancer sees it, with the request
/// shares of `window` (none when Prometheus cannot answer); the error is a bad window.
pub(crate) async fn add_balancers(
    stats: &StatsSource,
    resources: &Resources,
    snapshot: &Snapshot,
    resolved: &mut EndpointsResponse,
    window: Option<String>,
) -> Result<(), String> {
    let counts = window_request_counts(stats, resources, window).await?;
    let callers = fetch_balancers(resources).await;
    add_callers(resolved, snapshot, &callers, &counts);
    Ok(())
}

/// [`request_counts`] over `window` of the stat source; empty when Prometheus cannot answer (the balancers'
/// state is still worth showing, without shares); the error is a bad window.
pub(crate) async fn window_request_counts(
    stats: &StatsSource,
    resources: &Resources,
    window: Option<String>,
) -> Result<RequestCounts, String> {
    let q = meshlens_api::stats::StatQuery { window, ..Default::default() };
    match stats.window(&q, resources).await {
        Ok((store, now)) => {
            Ok(request_counts(&store, now, statsapi::window_ms(q.window.as_deref(), store.settings().interval_ms)?))
        }
        Err(WindowError::Invalid(e)) => Err(e),
        Err(WindowError::Prometheus(_)) => Ok(Default::default()),
    }
}

/// Adds to every endpoint the view of each caller whose balancer for the endpoint's service holds it: the
/// balancer targets the service (a split's leaf, else the authority it was built for, resolved in the
/// caller's namespace) and the endpoint's address. Callers whose balancers could not be read are skipped.
pub(crate) fn add_callers(
    resolved: &mut EndpointsResponse,
    snapshot: &Snapshot,
    callers: &[CallerBalancers],
    counts: &RequestCounts,
) {
    for row in resolved.values_mut().flatten() {
        let Ok(ip) = row.ip.parse() else { continue };
        let addr = SocketAddr::new(ip, row.port);
        for caller in callers {
            let Ok(found) = &caller.balancers else { continue };
            for b in &found.destinations {
                let target = b.leaf.as_deref().unwrap_or(&b.authority);
                let serves = Authority::parse(target, 80)
                    .ok()
                    .and_then(|a| snapshot.resolve(&a, &caller.namespace))
                    .is_some_and(|(svc, _)| format!("{}.{}", svc.name, svc.namespace) == row.service);
                if !serves {
                    continue;
                }
                for e in b.endpoints.iter().filter(|e| e.address == addr) {
                    let to = |pod: Option<&str>| {
                        counts
                            .iter()
                            .filter(|((ns, from, svc, dst), _)| {
                                ns == &caller.namespace
                                    && from == &caller.pod
                                    && svc == &row.service
                                    && pod.is_none_or(|p| p == dst)
                            })
                            .map(|(_, n)| n)
                            .sum::<f64>()
                    };
                    let total = to(None);
                    row.callers.push(CallerView {
                        namespace: caller.namespace.clone(),
                        workload: caller.workload.clone(),
                        pod: caller.pod.clone(),
                        ewma_ms: e.ewma_ms,
                        in_flight: e.in_flight,
                        requests_total: e.requests_total,
                        breaker: e.breaker.clone(),
                        breaker_remaining_ms: e.breaker_remaining_ms,
                        share: (total > 0.0).then(|| to(Some(&row.pod)) / total),
                    });
                }
            }
        }
        row.callers.sort_by(|a, b| (&a.namespace, &a.pod).cmp(&(&b.namespace, &b.pod)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obfuscation_hashes_only_sensitive_values() {
        let text = "# HELP x y\nresponse_total{direction=\"outbound\",authority=\"web.prod.svc.cluster.local:80\",dst_namespace=\"prod\",status_code=\"200\"} 7\nprocess_cpu_seconds_total 1.5\n";
        let out = obfuscate_text(text);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "# HELP x y");
        assert_eq!(lines[2], "process_cpu_seconds_total 1.5");
        assert!(!out.contains("web.prod") && !out.contains("\"prod\""), "{out}");
        assert!(lines[1].starts_with("response_total{direction=\"outbound\",authority=\""), "{out}");
        assert!(lines[1].ends_with(",status_code=\"200\"} 7"), "{out}");
        assert_eq!(out, obfuscate_text(text), "stable");
        assert!(out.ends_with('\n'));
        assert_eq!(hash("prod").len(), 8);
        assert_ne!(hash("prod"), hash("dev"));
    }

    #[test]
    fn endpoints_resolve_as_a_proxy_in_the_namespace_would() {
        let snap: Snapshot = serde_json::from_str(
            r#"{"services":[{"name":"web","namespace":"prod","ports":[{"port":80}],"endpoints":[
                {"address":"127.0.0.1:4143","labels":{"pod":"web-0","deployment":"web","namespace":"prod","service":"web"}}]}]}"#,
        )
        .unwrap();
        let q = |a: &str, ns: &str| {
            endpoints(&snap, &EndpointsQuery { authority: a.into(), namespace: Some(ns.into()), ..Default::default() })
        };
        let r = q("web,web.prod.svc.cluster.local:80", "prod").unwrap();
        assert_eq!(r.len(), 2);
        let row = &r["web"][0];
        assert_eq!(
            (row.ip.as_str(), row.port, row.pod.as_str(), row.service.as_str()),
            ("127.0.0.1", 4143, "web-0", "web.prod")
        );
        assert_eq!(row.weight, DEFAULT_WEIGHT);
        let QueryError::NotFound(e) = q("web", "dev").unwrap_err() else { panic!() };
        assert!(e.contains("no service 'web' in namespace 'dev'"), "{e}");
        let QueryError::NotFound(e) = q("web.prod:8080", "dev").unwrap_err() else { panic!() };
        assert!(e.contains("has no port 8080 (declared: 80)"), "{e}");
        let QueryError::NotFound(e) = q("www.example.com:443", "dev").unwrap_err() else { panic!() };
        assert!(e.contains("not a mesh service name"), "{e}");
        assert!(matches!(q("bad host", "prod"), Err(QueryError::Invalid(_))));
        assert!(matches!(q(" , ", "prod"), Err(QueryError::Invalid(_))));
    }
}
