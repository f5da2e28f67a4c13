//! The queries behind `/api/v1/stat`, `/api/v1/routes` and `/api/v1/edges`: resources from the store,
//! numbers from the metric store, rows in the CLI's `-o json` shapes (`meshlens_api::stats`).
//!
//! Views (reference/linkerd.md §1.1): without `to`/`from`, a resource's numbers are what its own proxies
//! served (inbound). `to=X`: the resource's outbound traffic to X (per attempt). `from=X`: X's outbound
//! traffic to the resource. Services are seen from their meshed clients (outbound). Authorities: see
//! [`authority`].

use std::collections::{BTreeMap, BTreeSet};

use meshlens_api::labels::ERROR_CANCELLED;
use meshlens_api::selector::Selector;
use meshlens_api::stats::{Coverage, EdgeRow, RouteNumbers, RouteRow, StatQuery, StatRow};

use crate::api_types::{Resources, WorkloadResource};
use crate::diagnostics::QueryError;
use crate::metricstore::{Family, Key, MetricStore, Totals, split_fqdn};

mod authority;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Namespace,
    Deployment,
    Pod,
    Service,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "ns" | "namespace" | "namespaces" => Kind::Namespace,
            "deploy" | "deployment" | "deployments" | "workload" | "workloads" => Kind::Deployment,
            "po" | "pod" | "pods" | "instance" | "instances" => Kind::Pod,
            "svc" | "service" | "services" => Kind::Service,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Namespace => "namespace",
            Kind::Deployment => "deployment",
            Kind::Pod => "pod",
            Kind::Service => "service",
        }
    }

    fn short(self) -> &'static str {
        match self {
            Kind::Namespace => "ns",
            Kind::Deployment => "deploy",
            Kind::Pod => "po",
            Kind::Service => "svc",
        }
    }
}

/// A resource: what rows are and what `to`/`from` select.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Res {
    kind: Kind,
    namespace: String,
    name: String,
    /// The workload behind a service.
    workload: String,
}

impl Res {
    /// Is the proxy that reported `k` this resource (the source side)?
    fn is_source(&self, k: &Key) -> bool {
        match self.kind {
            Kind::Namespace => k.namespace == self.name,
            Kind::Deployment => k.namespace == self.namespace && k.workload == self.name,
            Kind::Pod => k.namespace == self.namespace && k.instance == self.name,
            Kind::Service => k.namespace == self.namespace && k.workload == self.workload,
        }
    }

    /// Is the destination of outbound `k` this resource? A service is the one the app called (the
    /// `authority`: a split's apex has its leaves' traffic) or the one that served (`dst_service`: a leaf).
    fn is_destination(&self, k: &Key) -> bool {
        match self.kind {
            Kind::Namespace => k.dst_namespace == self.name,
            Kind::Deployment => k.dst_namespace == self.namespace && k.dst_workload == self.name,
            Kind::Pod => k.dst_namespace == self.namespace && k.dst_instance == self.name,
            Kind::Service => match k.family {
                Family::Tcp => k.dst_namespace == self.namespace && k.dst_workload == self.workload,
                _ => {
                    (k.dst_namespace == self.namespace && k.dst_service == self.name)
                        || split_fqdn(&k.authority) == (self.name.clone(), self.namespace.clone())
                }
            },
        }
    }
}

/// The time a query reads, `(end - window, end]`, and how much of it the store holds: rates are over
/// the covered seconds, so a young store does not dilute them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    pub end: u64,
    pub window: u64,
    covered: u64,
}

impl Span {
    pub fn new(ms: &MetricStore, q: &StatQuery, end: u64) -> Result<Span, QueryError> {
        let window = window_ms(q.window.as_deref(), ms.settings().interval_ms).map_err(QueryError::Invalid)?;
        Ok(Span { end, window, covered: ms.covered(end, window) })
    }

    fn rate(&self, v: f64) -> f64 {
        (v / (self.covered.max(1) as f64 / 1000.0) * 1e6).round() / 1e6
    }

    fn coverage(&self) -> Coverage {
        Coverage { window_s: self.window as f64 / 1000.0, covered_s: self.covered as f64 / 1000.0 }
    }

    fn query<G: Ord + Clone>(&self, ms: &MetricStore, group: impl FnMut(&Key) -> Option<G>) -> BTreeMap<G, Totals> {
        ms.query(self.end, self.window, group)
    }
}

pub(crate) fn window_ms(window: Option<&str>, interval_ms: u64) -> Result<u64, String> {
    let text = window.unwrap_or("1m");
    let d = meshlens_api::duration::parse(text).map_err(|e| format!("invalid time window '{text}': {e}"))?;
    let ms = d.as_millis() as u64;
    if ms < 2 * interval_ms {
        return Err(format!(
            "time window '{text}' is too short: it must be at least two scrape intervals ({}ms)",
            2 * interval_ms
        ));
    }
    Ok(ms)
}

/// The `offset` parameter (ms): the window ends this much before now.
pub(crate) fn offset_ms(offset: Option<&str>) -> Result<u64, String> {
    offset.map_or(Ok(0), |text| {
        meshlens_api::duration::parse(text)
            .map(|d| d.as_millis() as u64)
            .map_err(|e| format!("invalid offset '{text}': {e}"))
    })
}

/// The instances a workload should have: its declared replicas, else those registered (at least one).
fn wanted(w: &WorkloadResource) -> usize {
    w.replicas.map_or(w.instances.len().max(1), |r| r as usize)
}

/// Every resource of `kind` in scope (namespace `ns`, or all).
fn resources_of(res: &Resources, kind: Kind, ns: Option<&str>) -> Vec<(Res, String)> {
    let in_ns = |n: &str| ns.is_none_or(|ns| ns == n);
    let mut out = Vec::new();
    match kind {
        Kind::Namespace => {
            let mut names: BTreeSet<&str> = res.namespaces.iter().map(String::as_str).collect();
            names.extend(res.workloads.iter().map(|w| w.namespace.as_str()));
            for n in names.into_iter().filter(|n| in_ns(n)) {
                let ws = res.workloads.iter().filter(|w| w.namespace == n);
                let (meshed, want) = ws.fold((0, 0), |(m, t), w| (m + w.instances.len(), t + wanted(w)));
                let r = Res { kind, namespace: n.to_string(), name: n.to_string(), workload: String::new() };
                out.push((r, format!("{meshed}/{}", want.max(meshed))));
            }
        }
        Kind::Deployment => {
            for w in res.workloads.iter().filter(|w| in_ns(&w.namespace)) {
                let meshed = w.instances.len();
                let want = wanted(w);
                let r = Res { kind, namespace: w.namespace.clone(), name: w.name.clone(), workload: w.name.clone() };
                out.push((r, format!("{meshed}/{}", want.max(meshed))));
            }
        }
        Kind::Pod => {
            for w in res.workloads.iter().filter(|w| in_ns(&w.namespace)) {
                for i in &w.instances {
                    let r = Res {
                        kind,
                        namespace: w.namespace.clone(),
                        name: i.instance.clone(),
                        workload: w.name.clone(),
                    };
                    out.push((r, "1/1".into()));
                }
            }
        }
        Kind::Service => {
            for s in res.services.iter().filter(|s| in_ns(&s.namespace)) {
                let r =
                    Res { kind, namespace: s.namespace.clone(), name: s.name.clone(), workload: s.workload.clone() };
                out.push((r, "-".into()));
            }
        }
    }
    out.sort();
    out
}

/// A workload declared without a proxy: external (no command) and no instance registered. Listed only
/// with `unmeshed` (Linkerd's `--unmeshed`), or when named.
fn unmeshed(res: &Resources, r: &Res) -> bool {
    r.kind == Kind::Deployment
        && res
            .workloads
            .iter()
            .any(|w| w.namespace == r.namespace && w.name == r.name && w.external && w.instances.is_empty())
}

/// `TYPE/NAME` (+ its namespace) → the one resource it names; 404 when there is none.
fn target(res: &Resources, spec: &str, ns: &str) -> Result<Res, QueryError> {
    let (kind, name) = spec
        .split_once('/')
        .ok_or_else(|| QueryError::Invalid(format!("'{spec}': expected TYPE/NAME, e.g. deploy/web")))?;
    if is_authority(kind) {
        return Err(QueryError::Invalid(format!(
            "'{spec}': authorities are not supported in --to or --from (list them: resource=au, with to or from)"
        )));
    }
    let kind =
        Kind::parse(kind).ok_or_else(|| QueryError::Invalid(format!("'{spec}': unknown resource type '{kind}'")))?;
    find(res, kind, name, ns)
}

fn is_authority(kind: &str) -> bool {
    matches!(kind, "au" | "authority" | "authorities")
}

/// The resource of `kind` named `name` in `ns`; 404 naming it when there is none.
fn find(res: &Resources, kind: Kind, name: &str, ns: &str) -> Result<Res, QueryError> {
    let ns = if kind == Kind::Namespace { None } else { Some(ns) };
    resources_of(res, kind, ns).into_iter().map(|r| r.0).find(|r| r.name == name).ok_or_else(|| {
        QueryError::NotFound(match ns {
            Some(ns) => format!("{} '{name}' not found in namespace '{ns}'", kind.name()),
            None => format!("namespace '{name}' not found"),
        })
    })
}

/// The `selector` parameter, parsed once per query (none: everything matches).
fn selector(text: Option<&str>) -> Result<Selector, QueryError> {
    text.map_or_else(|| Ok(Selector::default()), |t| Selector::parse(t).map_err(|e| QueryError::Invalid(e.to_string())))
}

/// The labels a resource has: a workload's declared labels (its instances have them too, plus what
/// their proxies registered), a service's declared labels; namespaces have none.
fn labels_of(res: &Resources, r: &Res) -> BTreeMap<String, String> {
    let workload = || res.workloads.iter().find(|w| w.namespace == r.namespace && w.name == r.workload);
    match r.kind {
        Kind::Namespace => BTreeMap::new(),
        Kind::Deployment => workload().map(|w| w.labels.clone()).unwrap_or_default(),
        Kind::Pod => workload()
            .map(|w| {
                let mut labels = w.labels.clone();
                if let Some(i) = w.instances.iter().find(|i| i.instance == r.name) {
                    labels.extend(i.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                labels
            })
            .unwrap_or_default(),
        Kind::Service => res
            .services
            .iter()
            .find(|s| s.namespace == r.namespace && s.name == r.name)
            .map(|s| s.labels.clone())
            .unwrap_or_default(),
    }
}

fn round(v: Option<f64>) -> Option<u64> {
    v.map(|v| v.round().max(0.0) as u64)
}

/// The cancellations of HTTP totals, as a count.
fn cancelled(http: Option<&Totals>) -> Option<u64> {
    http.map(|t| t.cancelled.round().max(0.0) as u64)
}

fn row(r: &Res, meshed: String, http: Option<&Totals>, tcp: Option<&Totals>, span: &Span) -> StatRow {
    let tcp = if r.kind == Kind::Service { None } else { tcp };
    numbers(r.kind.name(), &r.namespace, &r.name, meshed, http, tcp, span)
}

/// A stat row of these totals (HTTP numbers only from HTTP data, TCP numbers when `tcp` is given).
fn numbers(
    kind: &str,
    namespace: &str,
    name: &str,
    meshed: String,
    http: Option<&Totals>,
    tcp: Option<&Totals>,
    span: &Span,
) -> StatRow {
    let http = http.filter(|t| t.http);
    StatRow {
        namespace: namespace.to_string(),
        kind: kind.to_string(),
        name: name.to_string(),
        meshed,
        success: http.and_then(Totals::success_rate),
        rps: http.map(|t| span.rate(t.requests())),
        latency_ms_p50: round(http.and_then(|t| t.quantile(0.5))),
        latency_ms_p95: round(http.and_then(|t| t.quantile(0.95))),
        latency_ms_p99: round(http.and_then(|t| t.quantile(0.99))),
        tcp_open_connections: tcp.map(|t| t.open_connections.max(0.0) as u64),
        tcp_read_bytes_rate: tcp.map(|t| span.rate(t.read_bytes)),
        tcp_write_bytes_rate: tcp.map(|t| span.rate(t.write_bytes)),
        cancelled: cancelled(http),
        proxy_errors: None,
        apex: None,
        leaf: None,
        weight: None,
        share: None,
        unmeshed: false,
        coverage: span.coverage(),
    }
}

/// `ts`: one row per TrafficSplit leaf, from the clients' requests to the apex (`authority`) that went to
/// that leaf (`dst_service`); `share` is the leaf's part of its split's requests. 404 for a split named
/// but not found.
fn split_rows(
    res: &Resources,
    ms: &MetricStore,
    (scope, names): (Option<&str>, &[String]),
    selector: &Selector,
    from: Option<&Res>,
    span: &Span,
) -> Result<Vec<StatRow>, QueryError> {
    struct Leaf {
        ns: String,
        split: String,
        apex: String,
        leaf: String,
        weight: Option<f64>,
    }
    let short = |s: &str| s.split('.').next().unwrap_or_default().to_string();
    let mut leaves = Vec::new();
    for ts in &res.traffic_splits {
        let split = &ts.traffic_split;
        let ns = split.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        if scope.is_some_and(|s| s != ns)
            || (!names.is_empty() && !names.contains(&split.metadata.name))
            || !selector.matches(&split.metadata.labels)
        {
            continue;
        }
        for b in &split.spec.backends {
            leaves.push(Leaf {
                ns: ns.clone(),
                split: split.metadata.name.clone(),
                apex: short(&split.spec.service),
                leaf: short(&b.service),
                weight: b.weight.milli_value().map(|m| m as f64 / 1000.0),
            });
        }
    }
    if let Some(missing) = names.iter().find(|n| !leaves.iter().any(|l| &l.split == *n)) {
        let ns = scope.map_or_else(|| "any namespace".to_string(), |s| format!("namespace '{s}'"));
        return Err(QueryError::NotFound(format!("trafficsplit '{missing}' not found in {ns}")));
    }
    let totals = span.query(ms, |k| {
        if k.family != Family::Http || !k.outbound || from.is_some_and(|f| !f.is_source(k)) {
            return None;
        }
        let (apex, ns) = split_fqdn(&k.authority);
        leaves.iter().position(|l| k.dst_namespace == l.ns && k.dst_service == l.leaf && apex == l.apex && ns == l.ns)
    });
    let sent = |split: &str, ns: &str| -> f64 {
        let of_split = leaves.iter().enumerate().filter(|(_, l)| l.split == split && l.ns == ns);
        of_split.filter_map(|(i, _)| totals.get(&i)).map(Totals::requests).sum()
    };
    Ok(leaves
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let r =
                Res { kind: Kind::Service, namespace: l.ns.clone(), name: l.split.clone(), workload: String::new() };
            let http = totals.get(&i).filter(|t| t.http);
            let mut row = row(&r, "-".into(), http, None, span);
            row.kind = "trafficsplit".into();
            row.apex = Some(l.apex.clone());
            row.leaf = Some(l.leaf.clone());
            row.weight = l.weight;
            let all = sent(&l.split, &l.ns);
            row.share = (all > 0.0).then(|| http.map_or(0.0, Totals::requests) / all);
            row
        })
        .collect())
}

/// `/api/v1/stat`.
pub(crate) fn stat(res: &Resources, ms: &MetricStore, q: &StatQuery, end: u64) -> Result<Vec<StatRow>, QueryError> {
    let span = Span::new(ms, q, end)?;
    if q.to.is_some() && q.from.is_some() {
        return Err(QueryError::Invalid("--to and --from cannot be used together".into()));
    }
    let ns = q.namespace.clone().unwrap_or_else(|| "default".into());
    let scope = if q.all_namespaces.unwrap_or(false) { None } else { Some(ns.as_str()) };
    let to = q.to.as_deref().map(|t| target(res, t, q.to_namespace.as_deref().unwrap_or(&ns))).transpose()?;
    let from = q.from.as_deref().map(|t| target(res, t, q.from_namespace.as_deref().unwrap_or(&ns))).transpose()?;
    let names: Vec<&str> =
        q.names.as_deref().map(|n| n.split(',').filter(|s| !s.is_empty()).collect()).unwrap_or_default();
    let selector = selector(q.selector.as_deref())?;

    let mut kinds = Vec::new();
    let mut wanted: Vec<(Kind, String)> = Vec::new();
    let (mut splits, mut split_names) = (false, Vec::new());
    let (mut authorities, mut authority_names) = (false, Vec::new());
    for spec in q.resource.split(',').filter(|s| !s.is_empty()) {
        let (kind, name) = match spec.split_once('/') {
            Some((k, n)) => (k, Some(n)),
            None => (spec, None),
        };
        if matches!(kind, "ts" | "trafficsplit" | "trafficsplits") {
            split_names.extend(name.map(str::to_string));
            split_names.extend(names.iter().map(|n| n.to_string()));
            splits = true;
            continue;
        }
        if is_authority(kind) {
            authority_names.extend(name.map(str::to_string));
            authority_names.extend(names.iter().map(|n| n.to_string()));
            authorities = true;
            continue;
        }
        let ks: Vec<Kind> = if kind == "all" {
            vec![Kind::Deployment, Kind::Pod, Kind::Service]
        } else {
            vec![Kind::parse(kind).ok_or_else(|| QueryError::Invalid(format!("unknown resource type '{kind}'")))?]
        };
        for k in ks {
            if !kinds.contains(&k) {
                kinds.push(k);
            }
            if let Some(n) = name {
                wanted.push((k, n.to_string()));
            }
            for n in &names {
                wanted.push((k, n.to_string()));
            }
        }
    }
    if kinds.is_empty() && !splits && !authorities {
        return Err(QueryError::Invalid("no resource type given (e.g. resource=deploy)".into()));
    }
    if splits && to.is_some() {
        return Err(QueryError::Invalid("trafficsplits cannot be used with --to".into()));
    }
    // A resource named but not there is a mistake to answer (`all/NAME`: not there as any kind).
    let every = q.resource.split(',').any(|s| s == "all" || s.starts_with("all/"));
    // Namespaces are listed and found whatever `namespace` says (`stat ns` lists every namespace, as
    // Linkerd's does; `stat ns/prod`).
    let scope_of = |k: Kind| if k == Kind::Namespace { None } else { scope };
    for (kind, name) in &wanted {
        let there = |k: Kind| resources_of(res, k, scope_of(k)).iter().any(|r| &r.0.name == name);
        if !there(*kind) && (!every || ![Kind::Deployment, Kind::Pod, Kind::Service].into_iter().any(there)) {
            return Err(QueryError::NotFound(match scope_of(*kind) {
                Some(ns) => format!("{} '{name}' not found in namespace '{ns}'", kind.name()),
                None => format!("{} '{name}' not found", kind.name()),
            }));
        }
    }

    let mut rows = Vec::new();
    for kind in kinds {
        let named: Vec<&String> = wanted.iter().filter(|w| w.0 == kind).map(|w| &w.1).collect();
        let mut list = resources_of(res, kind, scope_of(kind));
        if !named.is_empty() {
            list.retain(|r| named.contains(&&r.0.name));
        } else if !q.unmeshed.unwrap_or(false) {
            list.retain(|r| !unmeshed(res, &r.0));
        }
        list.retain(|r| selector.matches(&labels_of(res, &r.0)));
        let matches = |r: &Res, k: &Key| -> bool {
            match (&to, &from) {
                (Some(t), _) => k.outbound && r.is_source(k) && t.is_destination(k),
                (_, Some(f)) => k.outbound && f.is_source(k) && r.is_destination(k),
                _ if r.kind == Kind::Service => k.outbound && r.is_destination(k),
                _ => !k.outbound && r.is_source(k),
            }
        };
        // A workload's (or pod's) own refusals: requests its proxy answered before choosing an endpoint.
        let refused_by = |r: &Res, k: &Key| {
            to.is_none()
                && from.is_none()
                && matches!(r.kind, Kind::Deployment | Kind::Pod)
                && k.unrouted
                && r.is_source(k)
        };
        let http = span
            .query(ms, |k| (k.family == Family::Http).then(|| list.iter().position(|r| matches(&r.0, k))).flatten());
        let tcp =
            span.query(ms, |k| (k.family == Family::Tcp).then(|| list.iter().position(|r| matches(&r.0, k))).flatten());
        let errors = span.query(ms, |k| {
            (k.family == Family::Http && !k.error.is_empty() && k.error != ERROR_CANCELLED)
                .then(|| {
                    list.iter().position(|r| matches(&r.0, k) || refused_by(&r.0, k)).map(|i| (i, k.error.clone()))
                })
                .flatten()
        });
        for (i, (r, meshed)) in list.iter().enumerate() {
            let seen = http.get(&i).is_some_and(|t| t.http) || tcp.get(&i).is_some_and(|t| t.tcp);
            if from.is_some() && !seen {
                continue;
            }
            let mut row = row(r, meshed.clone(), http.get(&i), tcp.get(&i), &span);
            let errs: BTreeMap<String, u64> = errors
                .iter()
                .filter(|((j, _), t)| *j == i && t.failure + t.success > 0.0)
                .map(|((_, e), t)| (e.clone(), (t.failure + t.success).round() as u64))
                .collect();
            row.proxy_errors = (!errs.is_empty()).then_some(errs);
            rows.push(row);
        }
        if let Some(t) = to.as_ref().filter(|_| named.is_empty()) {
            rows.extend(unmeshed_callers(ms, kind, t, &span));
        }
    }
    if authorities {
        let view = match (&to, &from) {
            (Some(t), _) => authority::View::To(t),
            (_, Some(f)) => authority::View::From(f),
            _ => authority::View::Served,
        };
        if selector.matches(&BTreeMap::new()) {
            rows.extend(authority::rows(res, ms, scope, &authority_names, view, &span));
        }
    }
    if splits {
        rows.extend(split_rows(res, ms, (scope, &split_names), &selector, from.as_ref(), &span)?);
    }
    Ok(rows)
}

/// With `to` a workload or pod: the row of what it served (inbound) beyond what every meshed client,
/// in any namespace, sent it (outbound), when that is more than scrape skew: requests from callers
/// without a proxy, so the callers' rows add up to what it served. Its success is the difference's;
/// latencies are unknown (client and server histograms do not subtract).
fn unmeshed_callers(ms: &MetricStore, kind: Kind, to: &Res, span: &Span) -> Option<StatRow> {
    if !matches!(to.kind, Kind::Deployment | Kind::Pod) {
        return None;
    }
    let served = span.query(ms, |k| (k.family == Family::Http && !k.outbound && to.is_source(k)).then_some(()));
    let sent = span.query(ms, |k| (k.family == Family::Http && k.outbound && to.is_destination(k)).then_some(()));
    let (served, sent) = (served.get(&()).cloned().unwrap_or_default(), sent.get(&()).cloned().unwrap_or_default());
    let requests = unmeshed_share(served.requests(), sent.requests())?;
    let success = (served.success - sent.success).clamp(0.0, requests);
    let rest = Totals {
        success,
        failure: requests - success,
        cancelled: (served.cancelled - sent.cancelled).clamp(0.0, requests - success),
        http: true,
        ..Totals::default()
    };
    let mut row = numbers(kind.name(), &to.namespace, "", "-".into(), Some(&rest), None, span);
    row.unmeshed = true;
    Some(row)
}

/// `/api/v1/routes`: the profiled routes of the services behind the target (the resource itself, or
/// `to`), every declared route plus `[DEFAULT]`, `-` when a route saw nothing. Without `to`, what the
/// resource's own proxies served (inbound route series: every caller, meshed or not); with `to`, the
/// resource's requests to it (outbound).
pub(crate) fn routes(
    res: &Resources,
    ms: &MetricStore,
    q: &StatQuery,
    end: u64,
) -> Result<BTreeMap<String, Vec<RouteRow>>, QueryError> {
    let span = Span::new(ms, q, end)?;
    let ns = q.namespace.clone().unwrap_or_else(|| "default".into());
    let source = target(res, &q.resource, &ns)?;
    if !selector(q.selector.as_deref())?.matches(&labels_of(res, &source)) {
        return Ok(BTreeMap::new());
    }
    let to = q.to.as_deref().map(|t| target(res, t, q.to_namespace.as_deref().unwrap_or(&ns))).transpose()?;
    let dst = to.as_ref().unwrap_or(&source);
    // The services behind the destination, and their profiles' routes.
    let services: Vec<_> = res
        .services
        .iter()
        .filter(|s| {
            s.namespace == dst.namespace
                && match dst.kind {
                    Kind::Service => s.name == dst.name,
                    _ => s.workload == dst.workload,
                }
        })
        .collect();
    let mut declared: BTreeSet<(String, String)> = BTreeSet::new();
    for s in &services {
        let Some(p) = res.profiles.iter().find(|p| p.profile.metadata.name == s.fqdn) else { continue };
        let port = s.ports.first().map_or(80, |p| p.port);
        let authority = format!("{}:{port}", s.fqdn);
        for r in &p.profile.spec.routes {
            declared.insert((authority.clone(), r.name.clone()));
        }
        declared.insert((authority, "[DEFAULT]".into()));
    }
    let want = |k: &Key| {
        k.outbound == to.is_some()
            && services.iter().any(|s| s.name == k.dst_service && s.namespace == k.dst_namespace)
            && source.is_source(k)
    };
    let effective =
        span.query(ms, |k| (k.family == Family::Route && want(k)).then(|| (k.authority.clone(), k.route.clone())));
    let actual = span
        .query(ms, |k| (k.family == Family::RouteActual && want(k)).then(|| (k.authority.clone(), k.route.clone())));
    let fates = span.query(ms, |k| {
        (k.family == Family::RetryFate && to.is_some() && want(k))
            .then(|| (k.authority.clone(), k.route.clone(), k.fate.clone()))
    });
    let mut all: BTreeSet<(String, String)> = declared;
    all.extend(effective.keys().cloned());
    let mut rows: Vec<RouteRow> = Vec::new();
    for key in all {
        let e = effective.get(&key).filter(|t| t.http);
        let a = actual.get(&key).filter(|t| t.http);
        let numbers = if to.is_some() {
            RouteNumbers::ToTarget {
                effective_success: e.and_then(Totals::success_rate),
                effective_rps: e.map(|t| span.rate(t.requests())),
                actual_success: a.and_then(Totals::success_rate),
                actual_rps: a.map(|t| span.rate(t.requests())),
            }
        } else {
            RouteNumbers::Plain { success: e.and_then(Totals::success_rate), rps: e.map(|t| span.rate(t.requests())) }
        };
        rows.push(RouteRow {
            route: key.1.clone(),
            authority: key.0.clone(),
            numbers,
            latency_ms_p50: round(e.and_then(|t| t.quantile(0.5))),
            latency_ms_p95: round(e.and_then(|t| t.quantile(0.95))),
            latency_ms_p99: round(e.and_then(|t| t.quantile(0.99))),
            cancelled: cancelled(e),
            timeouts: to.is_some().then(|| effective.get(&key).map_or(0, |t| t.timeouts.round() as u64)),
            retry_fates: to.is_some().then(|| {
                fates
                    .iter()
                    .filter(|((a, r, _), t)| (a, r) == (&key.0, &key.1) && t.success > 0.0)
                    .map(|((_, _, f), t)| (f.clone(), t.success.round() as u64))
                    .collect()
            }),
            coverage: span.coverage(),
        });
    }
    let mut out = BTreeMap::new();
    out.insert(format!("{}/{}", source.kind.short(), source.name), rows);
    Ok(out)
}

/// Requests a destination served beyond what meshed clients sent it count as an unmeshed source only
/// above this share of what it served (and at least [`UNMESHED_MIN_REQUESTS`]): the two counts come from
/// different proxies' scrapes, a few milliseconds apart, so a handful of requests can straddle a slot.
const UNMESHED_MIN_SHARE: f64 = 0.01;
const UNMESHED_MIN_REQUESTS: f64 = 2.0;

/// The requests a destination served that no meshed client sent, when they are more than scrape skew.
fn unmeshed_share(served: f64, sent_by_meshed: f64) -> Option<f64> {
    let unmeshed = served - sent_by_meshed;
    (unmeshed >= UNMESHED_MIN_REQUESTS && unmeshed > UNMESHED_MIN_SHARE * served).then_some(unmeshed)
}

/// `/api/v1/edges`: every source → destination pair with traffic (HTTP or TCP) in the window, or a
/// connection open now. `resource` is `deploy` or `po`, or `deploy/NAME`/`po/NAME` for the edges from or
/// to that one resource (404 when it does not exist).
///
/// Unmeshed and unknown peers, as far as the metrics can tell:
/// - an unmeshed destination is outbound traffic without `dst_*` labels whose address is no meshed
///   instance (passthrough): named by its authority (HTTP) or address (TCP);
/// - an unknown destination is a name no service has, which the source's proxy refused before choosing an
///   endpoint (`no_route`, …): named by what the app asked for, `dst_unknown: true`;
/// - an unmeshed source is inferred, per destination, from HTTP requests it served (inbound) beyond the
///   attempts meshed clients sent it (outbound, per attempt) in the same window. Inbound metrics carry
///   no client identity, so unmeshed clients are one edge per destination, and opaque TCP from unmeshed
///   clients is not shown.
pub(crate) fn edges(res: &Resources, ms: &MetricStore, q: &StatQuery, end: u64) -> Result<Vec<EdgeRow>, QueryError> {
    let span = Span::new(ms, q, end)?;
    let (kind_text, named) = match q.resource.split_once('/') {
        Some((k, n)) => (k, Some(n)),
        None => (q.resource.as_str(), None),
    };
    let kind =
        Kind::parse(kind_text).ok_or_else(|| QueryError::Invalid(format!("unknown resource type '{}'", q.resource)))?;
    if !matches!(kind, Kind::Deployment | Kind::Pod) {
        return Err(QueryError::Invalid(format!("edges works on deploy or po, not '{}'", q.resource)));
    }
    let ns = q.namespace.clone().unwrap_or_else(|| "default".into());
    if let Some(name) = named {
        find(res, kind, name, &ns)?;
    }
    let all = q.all_namespaces.unwrap_or(false);
    let in_scope = |a: &str, b: &str| all || a == ns || b == ns;
    let name = |workload: &str, instance: &str| if kind == Kind::Pod { instance } else { workload }.to_string();
    let coverage = span.coverage();
    let edge = |src_ns: String, src: String, dst_ns: String, dst: String, t: Option<&Totals>| EdgeRow {
        src_meshed: !src_ns.is_empty(),
        dst_meshed: !dst_ns.is_empty(),
        no_tls_reason: match (src_ns.is_empty(), dst_ns.is_empty()) {
            (true, _) => "not_provided_by_remote",
            (_, true) => "not_provided_by_service_discovery",
            _ => "disabled",
        }
        .into(),
        src,
        src_namespace: src_ns,
        dst,
        dst_namespace: dst_ns,
        client_id: String::new(),
        server_id: String::new(),
        protocol: if t.is_none_or(|t| t.http) { "http" } else { "tcp" }.into(),
        cancelled: cancelled(t.filter(|t| t.http)),
        dst_unknown: false,
        coverage,
    };

    // (src namespace, src, dst namespace, dst, unknown destination)
    let outbound = span.query(ms, |k| {
        if !k.outbound || !matches!(k.family, Family::Http | Family::Tcp) || !in_scope(&k.namespace, &k.dst_namespace) {
            return None;
        }
        let src = name(&k.workload, &k.instance);
        if k.unrouted {
            // Refused before choosing an endpoint: the service asked for, when there is one (its workload;
            // no pod was chosen), else the name as asked.
            let (svc, svc_ns) = split_fqdn(&k.authority);
            let svc_ns = if svc_ns.is_empty() { k.namespace.clone() } else { svc_ns };
            return match res.services.iter().find(|s| s.name == svc && s.namespace == svc_ns) {
                Some(s) if kind == Kind::Deployment => {
                    Some((k.namespace.clone(), src, s.namespace.clone(), s.workload.clone(), false))
                }
                Some(_) => None,
                None => Some((k.namespace.clone(), src, String::new(), k.authority.clone(), true)),
            };
        }
        if k.dst_namespace.is_empty() {
            let dst = if k.authority.is_empty() { "_other".to_string() } else { k.authority.clone() };
            return Some((k.namespace.clone(), src, String::new(), dst, false));
        }
        let dst = name(&k.dst_workload, &k.dst_instance);
        (!dst.is_empty()).then(|| (k.namespace.clone(), src, k.dst_namespace.clone(), dst, false))
    });
    let mut rows: Vec<EdgeRow> = outbound
        .into_iter()
        .filter(|(_, t)| t.http || t.tcp)
        .map(|((src_ns, src, dst_ns, dst, unknown), t)| EdgeRow {
            dst_unknown: unknown,
            ..edge(src_ns, src, dst_ns, dst, Some(&t))
        })
        .collect();

    let served = span.query(ms, |k| {
        (k.family == Family::Http && !k.outbound && (all || k.namespace == ns))
            .then(|| (k.namespace.clone(), name(&k.workload, &k.instance)))
    });
    let sent_by_meshed = span.query(ms, |k| {
        (k.family == Family::Http && k.outbound && !k.dst_namespace.is_empty())
            .then(|| (k.dst_namespace.clone(), name(&k.dst_workload, &k.dst_instance)))
    });
    for ((dst_ns, dst), t) in served {
        let meshed = sent_by_meshed.get(&(dst_ns.clone(), dst.clone())).map_or(0.0, Totals::requests);
        if unmeshed_share(t.requests(), meshed).is_some() {
            rows.push(EdgeRow { cancelled: None, ..edge(String::new(), String::new(), dst_ns, dst, None) });
        }
    }
    if let Some(n) = named {
        rows.retain(|r| (r.src_namespace == ns && r.src == n) || (r.dst_namespace == ns && r.dst == n));
    }
    rows.sort_by(|a, b| {
        (&a.src_namespace, &a.src, &a.dst_namespace, &a.dst).cmp(&(&b.src_namespace, &b.src, &b.dst_namespace, &b.dst))
    });
    Ok(rows)
}

#[cfg(test)]
#[path = "statsapi_tests.rs"]
pub(crate) mod tests;
