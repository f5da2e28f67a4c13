//! What diagnosis reads, in one pass over the metric store: per workload, instance, edge, refused name and
//! route, the requests, failures by proxy-error reason and latency of one window (and the edges and route
//! latencies of the earlier windows it is compared with).

use std::collections::BTreeMap;

use meshlens_api::mesh::{Objectives, ServiceObjectives};

use super::baseline::{self, Baseline, History, Plan};
use crate::api_types::Resources;
use crate::metricstore::{Family, Key, MetricStore, Totals};

/// Requests of one group in the window.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Counts {
    pub ok: f64,
    pub failed: f64,
    /// Failures the proxy made, by `error` reason (`timeout`, `peer:invalid_response`, …).
    pub errors: BTreeMap<String, f64>,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The share of requests slower than [`SLOW_FACTOR`] × the median.
    pub slow_share: f64,
    /// The latency histogram: `(lower ms, upper ms, requests)` per bucket.
    pub buckets: Vec<(f64, f64, f64)>,
}

/// How many times the median makes a request slow.
pub(crate) const SLOW_FACTOR: f64 = 4.0;

impl Counts {
    pub fn requests(&self) -> f64 {
        self.ok + self.failed
    }

    /// The share of the requests slower than `limit_ms` (interpolated inside its bucket).
    pub fn share_above(&self, limit_ms: f64) -> f64 {
        let total: f64 = self.buckets.iter().map(|b| b.2).sum();
        if total <= 0.0 {
            return 0.0;
        }
        let slow: f64 = self
            .buckets
            .iter()
            .map(|&(lo, hi, n)| {
                if lo >= limit_ms {
                    n
                } else if hi > limit_ms && hi.is_finite() {
                    n * (hi - limit_ms) / (hi - lo)
                } else {
                    0.0
                }
            })
            .sum();
        slow / total
    }

    fn add(&mut self, t: &Totals, error: &str) {
        self.ok += t.success;
        self.failed += t.failure;
        if !error.is_empty() && t.requests() > 0.0 {
            *self.errors.entry(error.to_string()).or_default() += t.requests();
        }
    }
}

/// A caller workload → a callee workload (outbound, per attempt).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Edge {
    pub src: String,
    pub dst: String,
    /// The callee's namespace (the caller's is the one diagnosed).
    pub dst_ns: String,
}

/// A caller of a workload: in the namespace diagnosed, or in another.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Caller<'e> {
    pub name: &'e str,
    /// `None`: the namespace diagnosed.
    pub namespace: Option<&'e str>,
}

impl Caller<'_> {
    /// As a finding's subject: `deploy/NAME`, or `deploy/NAME -n NS` in another namespace.
    pub fn subject(&self) -> String {
        match self.namespace {
            Some(ns) => format!("deploy/{} -n {ns}", self.name),
            None => format!("deploy/{}", self.name),
        }
    }
}

impl std::fmt::Display for Caller<'_> {
    /// `NAME`, or `NAME.NS` in another namespace (as evidence names callees elsewhere).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.namespace {
            Some(ns) => write!(f, "{}.{ns}", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// A route as a caller's proxy sees it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct RouteId {
    pub src: String,
    /// `name.ns.svc.cluster.local:port`
    pub authority: String,
    pub route: String,
}

impl RouteId {
    /// The service the route belongs to.
    pub fn service(&self) -> &str {
        self.authority.split('.').next().unwrap_or_default()
    }
}

/// One route's numbers: effective (as the caller saw requests), actual (every attempt), retry fates.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RouteCounts {
    pub effective: Counts,
    pub actual: Counts,
    pub timeouts: f64,
    pub fates: BTreeMap<String, f64>,
}

/// Everything diagnosis reads about one namespace and window.
pub(crate) struct Evidence<'a> {
    pub res: &'a Resources,
    /// mesh.yaml's `spec.objectives`.
    pub objectives: &'a Objectives,
    pub namespace: String,
    pub window_s: f64,
    /// How much of the window the store holds (less while it is younger than the window); rates are
    /// over this.
    pub covered_s: f64,
    /// Workload → what its own proxies served (inbound).
    pub served: BTreeMap<String, Counts>,
    /// (workload, instance) → what that instance's proxy served.
    pub instances: BTreeMap<(String, String), Counts>,
    /// Caller → callee, per attempt.
    pub edges: BTreeMap<Edge, Counts>,
    /// (caller's namespace, caller, callee) → what callers in other namespaces sent this namespace's
    /// workloads, per attempt.
    pub edges_in: BTreeMap<(String, String, String), Counts>,
    /// (caller, authority asked for) → requests its proxy answered without any endpoint (no such
    /// service, no ready endpoint, shed).
    pub refused: BTreeMap<(String, String), Counts>,
    pub routes: BTreeMap<RouteId, RouteCounts>,
    /// Caller → callee requests in the baseline window (the window before this one, or `offset` ago).
    pub earlier_edges: BTreeMap<Edge, f64>,
    /// How long before this window's end the baseline window ends (s).
    pub baseline_offset_s: f64,
    /// Each route's latency baseline, as its caller saw it (`baseline`).
    pub baselines: BTreeMap<RouteId, Baseline>,
    /// Which earlier windows were asked for, and how many the source held.
    pub history: (Plan, usize),
}

fn quantiles(c: &mut Counts, t: &Totals) {
    c.p50_ms = t.quantile(0.5);
    c.p99_ms = t.quantile(0.99);
    c.buckets = t.buckets.clone();
    if let Some(p50) = c.p50_ms {
        c.slow_share = c.share_above(SLOW_FACTOR * p50);
    }
}

/// Sums per group and reason, then fills in the latency of the group's whole window.
fn grouped<G: Ord + Clone>(
    ms: &MetricStore,
    (now, window): (u64, u64),
    group: impl Fn(&Key) -> Option<G>,
) -> BTreeMap<G, Counts> {
    let by_reason = ms.query(now, window, |k| group(k).map(|g| (g, k.error.clone())));
    let mut out: BTreeMap<G, Counts> = BTreeMap::new();
    for ((g, error), t) in &by_reason {
        out.entry(g.clone()).or_default().add(t, error);
    }
    for (g, t) in ms.query(now, window, group) {
        if let Some(c) = out.get_mut(&g) {
            quantiles(c, &t);
        }
    }
    out
}

impl<'a> Evidence<'a> {
    pub fn gather(
        res: &'a Resources,
        objectives: &'a Objectives,
        ms: &MetricStore,
        namespace: &str,
        now: u64,
        window_ms: u64,
        history: &History<'_>,
    ) -> Evidence<'a> {
        let ns = namespace;
        let at = (now, window_ms);
        let http = |k: &Key| k.family == Family::Http && k.namespace == ns;
        let served = grouped(ms, at, |k| (http(k) && !k.outbound).then(|| k.workload.clone()));
        let instances = grouped(ms, at, |k| (http(k) && !k.outbound).then(|| (k.workload.clone(), k.instance.clone())));
        let edge = |k: &Key| {
            (http(k) && k.outbound && !k.dst_workload.is_empty()).then(|| Edge {
                src: k.workload.clone(),
                dst: k.dst_workload.clone(),
                dst_ns: k.dst_namespace.clone(),
            })
        };
        let edges = grouped(ms, at, edge);
        let edges_in = grouped(ms, at, |k| {
            (k.family == Family::Http
                && k.outbound
                && k.namespace != ns
                && k.dst_namespace == ns
                && !k.dst_workload.is_empty())
            .then(|| (k.namespace.clone(), k.workload.clone(), k.dst_workload.clone()))
        });
        let refused = grouped(ms, at, |k| {
            (http(k) && k.outbound && k.dst_workload.is_empty() && !k.error.is_empty())
                .then(|| (k.workload.clone(), k.authority.clone()))
        });
        let route_id = |k: &Key, family: Family| {
            (k.family == family && k.outbound && k.namespace == ns).then(|| RouteId {
                src: k.workload.clone(),
                authority: k.authority.clone(),
                route: k.route.clone(),
            })
        };
        let mut routes: BTreeMap<RouteId, RouteCounts> = BTreeMap::new();
        for (id, c) in grouped(ms, at, |k| route_id(k, Family::Route)) {
            routes.entry(id).or_default().effective = c;
        }
        for (id, t) in ms.query(now, window_ms, |k| route_id(k, Family::Route)) {
            routes.entry(id).or_default().timeouts = t.timeouts;
        }
        for (id, c) in grouped(ms, at, |k| route_id(k, Family::RouteActual)) {
            routes.entry(id).or_default().actual = c;
        }
        for ((id, fate), t) in ms.query(now, window_ms, |k| route_id(k, Family::RetryFate).map(|r| (r, k.fate.clone())))
        {
            routes.entry(id).or_default().fates.insert(fate, t.success);
        }
        let earlier: Vec<_> = history
            .windows
            .iter()
            .map(|(s, end)| grouped(s, (*end, window_ms), |k| route_id(k, Family::Route)))
            .collect();
        let earlier_edges = history.windows.first().map_or_else(BTreeMap::new, |(s, end)| {
            s.query(*end, window_ms, edge).into_iter().map(|(e, t)| (e, t.requests())).collect()
        });
        Evidence {
            res,
            objectives,
            namespace: ns.to_string(),
            window_s: window_ms as f64 / 1000.0,
            covered_s: ms.covered(now, window_ms) as f64 / 1000.0,
            served,
            instances,
            edges,
            edges_in,
            refused,
            routes,
            earlier_edges,
            baselines: baseline::learn(&earlier, history.plan.asked),
            baseline_offset_s: history.plan.offset_ms as f64 / 1000.0,
            history: (history.plan, history.windows.len()),
        }
    }

    /// The objectives a workload is held to: an override naming it, else one naming a service it backs,
    /// else the mesh-wide ones.
    pub fn objectives_of(&self, workload: &str) -> ServiceObjectives {
        let ns = &self.namespace;
        let services = self.res.services.iter().filter(|s| &s.namespace == ns && s.workload == workload);
        let named = std::iter::once(workload).chain(services.map(|s| s.name.as_str())).find(|name| {
            self.objectives.services.contains_key(&format!("{ns}/{name}"))
                || self.objectives.services.contains_key(*name)
        });
        self.objectives.for_service(ns, named.unwrap_or(workload))
    }

    /// A workload's success objective as a fraction (99.5% → 0.995).
    pub fn success_objective(&self, workload: &str) -> f64 {
        self.objectives_of(workload).success_rate / 100.0
    }

    /// The workload serving a route (its service's, else the service's name).
    pub fn route_workload<'r>(&'r self, id: &'r RouteId) -> &'r str {
        self.workload_of_service(id.service()).unwrap_or(id.service())
    }

    /// Attempts per request on a route beyond which its retries matter: 1 + the callee's retry objective.
    pub fn retry_limit(&self, id: &RouteId) -> f64 {
        1.0 + self.objectives_of(self.route_workload(id)).retry_rate / 100.0
    }

    /// Whether a route's retries surely send more attempts than its callee's retry objective allows: the
    /// Wilson interval of the extra attempts' share of all attempts is above the objective's share (a
    /// handful of retries on a quiet route is chance).
    pub fn retried(&self, id: &RouteId, rc: &RouteCounts) -> bool {
        let (n, attempts) = (rc.effective.requests(), rc.actual.requests());
        let extra = (attempts - n).max(0.0);
        let limit = self.retry_limit(id);
        n > 0.0 && attempts >= n * limit && super::wilson::interval(extra, attempts).0 > (limit - 1.0) / limit
    }

    pub fn rps(&self, n: f64) -> f64 {
        n / self.covered_s.max(1.0)
    }

    /// Failures a workload saw from what it called (per attempt, minus what its retries recovered) and
    /// from names its proxy refused: what explains its own failures.
    pub fn failures_from_callees(&self, workload: &str) -> f64 {
        let attempts: f64 = self.edges.iter().filter(|(e, _)| e.src == workload).map(|(_, c)| c.failed).sum();
        let recovered: f64 = self
            .routes
            .iter()
            .filter(|(r, _)| r.src == workload)
            .map(|(_, r)| (r.actual.failed - r.effective.failed).max(0.0))
            .sum();
        let refused: f64 = self.refused.iter().filter(|((src, _), _)| src == workload).map(|(_, c)| c.failed).sum();
        (attempts - recovered).max(0.0) + refused
    }

    /// Callers of a workload, in this namespace and others, with their per-attempt requests to it.
    pub fn callers_of(&self, workload: &str) -> Vec<(Caller<'_>, &Counts)> {
        let here = self
            .edges
            .iter()
            .filter(|(e, _)| e.dst == workload && e.dst_ns == self.namespace)
            .map(|(e, c)| (Caller { name: &e.src, namespace: None }, c));
        let elsewhere = self
            .edges_in
            .iter()
            .filter(|((_, _, dst), _)| dst == workload)
            .map(|((ns, src, _), c)| (Caller { name: src, namespace: Some(ns.as_str()) }, c));
        here.chain(elsewhere).collect()
    }

    /// The workload behind a service of this namespace.
    pub fn workload_of_service(&self, service: &str) -> Option<&str> {
        self.res
            .services
            .iter()
            .find(|s| s.namespace == self.namespace && s.name == service)
            .map(|s| s.workload.as_str())
    }
}
