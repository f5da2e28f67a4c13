//! Targets: what a request's authority resolves to (a mesh service port or an unmeshed passthrough
//! address) and the balancer that serves it. Built once per destination and cached, so the per-request
//! path only looks up a ready balancer.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use meshlens_api::{Authority, ProxyErrorReason};

use crate::balance::{Balancer, BalancerSettings, Breaker, Endpoint};
use crate::client::EndpointClient;
use crate::discovery::ServicePortRef;
use crate::logical::service::ServicePolicy;
use crate::metrics::LabelSet;
use crate::policy::breaker::BreakerParams;
use crate::shared::{Shared, dst_label_name, with_target};
use crate::tap::event::{Metadata, Peer};

/// A resolved destination.
pub struct Target {
    /// The authority as shown in metrics: canonical for mesh services (a split leaf's apex for a leaf),
    /// as written for passthrough.
    pub authority: String,
    /// For a split's leaf: the leaf service's canonical authority (its `dst_service` in metrics).
    pub leaf: Option<String>,
    pub balancer: Arc<Balancer>,
    pub opaque: bool,
    pub meshed: bool,
    /// Some endpoint is one of this proxy's own outbound listeners: requests would loop.
    pub loops: bool,
    /// The service's profile and split, compiled; `None` when it has neither.
    pub policy: Option<Arc<ServicePolicy>>,
    /// The destination tap shows before (or without) an endpoint: the service's name, namespace, port.
    pub tap_dst: Peer,
    /// Discovery version this target was built from (mesh services are rebuilt when it changes).
    version: u64,
    expires: Option<Instant>,
}

#[derive(Default)]
pub struct Targets {
    /// Mesh service targets by (authority counted under, service canonical): equal unless a split's leaf.
    services: Mutex<HashMap<(String, String), Arc<Target>>>,
    passthrough: Mutex<HashMap<String, Arc<Target>>>,
}

impl Targets {
    /// Resolves `authority` as the app wrote it (`users`, `users.prod:8080`, `10.0.0.1:80`, `example.com`).
    pub async fn resolve(&self, ctx: &Shared, authority: &str) -> Result<Arc<Target>, ProxyErrorReason> {
        let auth = Authority::parse(authority, 80).map_err(|_| ProxyErrorReason::BadRequest)?;
        let index = ctx.discovery.load();
        if let Some(sp) = index.resolve(&auth, &ctx.config.namespace) {
            return Ok(self.service(ctx, sp, index.snapshot.version));
        }
        drop(index);
        self.passthrough(ctx, &auth).await
    }

    fn service(&self, ctx: &Shared, sp: ServicePortRef, version: u64) -> Arc<Target> {
        self.service_as(ctx, sp, version, None)
    }

    /// A split's leaf (`leaf`, canonical) as its apex (`apex`, canonical) uses it: the leaf's endpoints,
    /// with their own balancer state, counted under the apex's `authority` and the leaf's `dst_service`.
    pub fn leaf(&self, ctx: &Shared, apex: &str, leaf: &str) -> Result<Arc<Target>, ProxyErrorReason> {
        let auth = Authority::parse(leaf, 80).map_err(|_| ProxyErrorReason::BadRequest)?;
        let index = ctx.discovery.load();
        let sp = index.resolve(&auth, &ctx.config.namespace).ok_or(ProxyErrorReason::NoRoute)?;
        Ok(self.service_as(ctx, sp, index.snapshot.version, Some(apex)))
    }

    /// The target of `sp` counted under `apex` (a split's leaf) or under its own authority. Label sets and
    /// endpoints are built here, once per discovery version.
    fn service_as(&self, ctx: &Shared, sp: ServicePortRef, version: u64, apex: Option<&str>) -> Arc<Target> {
        let authority = apex.unwrap_or(&sp.canonical).to_string();
        let key = (authority.clone(), sp.canonical.clone());
        let leaf = apex.map(|_| sp.canonical.clone());
        let mut services = self.services.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = services.get(&key) {
            if t.version == version {
                return t.clone();
            }
            // A new snapshot: keep the balancer (its queue) and every endpoint that stayed (EWMA, pool).
            let old = t.balancer.endpoints();
            t.balancer.set_endpoints(service_endpoints(ctx, &sp, &authority, &old));
            let policy = match apex {
                None => policy(ctx, &sp, t.policy.as_ref()),
                Some(_) => None,
            };
            let target = Arc::new(Target {
                authority,
                leaf,
                balancer: t.balancer.clone(),
                policy,
                tap_dst: service_tap_dst(&sp),
                opaque: sp.opaque,
                meshed: true,
                loops: t.balancer.endpoints().iter().any(|e| ctx.is_local_listener(e.addr)),
                version,
                expires: None,
            });
            services.insert(key, target.clone());
            return target;
        }
        let svc_labels = base_labels(ctx, "outbound", &authority)
            .with("dst_namespace", &sp.namespace)
            .with(meshlens_api::labels::DST_SERVICE, &sp.name);
        let endpoints = service_endpoints(ctx, &sp, &authority, &[]);
        let policy = match apex {
            None => policy(ctx, &sp, None),
            Some(_) => None,
        };
        let tap_dst = service_tap_dst(&sp);
        let name = match apex {
            None => sp.canonical.clone(),
            Some(apex) => format!("{} (split of {apex})", sp.canonical),
        };
        let balancer = new_balancer(ctx, name, endpoints, svc_labels, ctx.config.timeouts.failfast);
        let loops = balancer.endpoints().iter().any(|e| ctx.is_local_listener(e.addr));
        let target = Arc::new(Target {
            authority,
            leaf,
            balancer,
            policy,
            tap_dst,
            opaque: sp.opaque,
            meshed: true,
            loops,
            version,
            expires: None,
        });
        services.insert(key, target.clone());
        target
    }

    /// Follows a new discovery snapshot: every service target already in use gets its new endpoint set
    /// now (so requests queued for a service without endpoints are served as soon as one appears).
    pub fn refresh(&self, ctx: &Shared) {
        let index = ctx.discovery.load();
        let version = index.snapshot.version;
        let mut known: Vec<(String, String)> =
            self.services.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        // Services first, then split leaves: a leaf stays only while its apex's new policy still uses it.
        known.sort_by_key(|(authority, canonical)| authority != canonical);
        for (authority, canonical) in known {
            let resolved = Authority::parse(&canonical, 80).ok().and_then(|a| index.resolve(&a, &ctx.config.namespace));
            let leaf = authority != canonical;
            let used = !leaf || {
                let services = self.services.lock().unwrap_or_else(|e| e.into_inner());
                let apex = services.get(&(authority.clone(), authority.clone()));
                apex.and_then(|t| t.policy.as_ref()).is_some_and(|p| p.has_backend(&canonical))
            };
            match resolved {
                Some(sp) if used => {
                    self.service_as(ctx, sp, version, leaf.then_some(authority.as_str()));
                }
                _ => {
                    self.services.lock().unwrap_or_else(|e| e.into_inner()).remove(&(authority, canonical));
                }
            }
        }
    }

    async fn passthrough(&self, ctx: &Shared, auth: &Authority) -> Result<Arc<Target>, ProxyErrorReason> {
        let key = auth.to_string();
        let now = Instant::now();
        if let Some(t) = self.passthrough.lock().unwrap_or_else(|e| e.into_inner()).get(&key)
            && t.expires.is_none_or(|e| e > now)
        {
            return Ok(t.clone());
        }
        let (addrs, expires) = match auth.host.parse::<std::net::IpAddr>() {
            Ok(ip) => (vec![SocketAddr::new(ip, auth.port)], None),
            Err(_) => {
                // Resolution runs on tokio's blocking pool: it never blocks a runtime thread.
                let found = tokio::net::lookup_host((auth.host.as_str(), auth.port)).await.map_err(|e| {
                    tracing::info!(authority = %key, error = %e, "passthrough host does not resolve");
                    ProxyErrorReason::NoRoute
                })?;
                let mut addrs: Vec<SocketAddr> = found.collect();
                addrs.sort();
                addrs.dedup();
                (addrs, Some(now + ctx.config.timeouts.dns_ttl))
            }
        };
        if addrs.is_empty() {
            return Err(ProxyErrorReason::NoRoute);
        }
        let mut cache = self.passthrough.lock().unwrap_or_else(|e| e.into_inner());
        cache.retain(|_, t| t.expires.is_none_or(|e| e > now));
        // Unmeshed destinations are unbounded; past the cap they share one metric series.
        let capped = cache.len() >= ctx.config.limits.max_passthrough_series;
        let label_authority = if capped { "_other" } else { key.as_str() };
        let endpoints = addrs
            .iter()
            .map(|a| {
                let ep_addr = if capped { None } else { Some(*a) };
                endpoint_with(ctx, "outbound", label_authority, *a, ep_addr, BTreeMap::new(), None)
            })
            .collect();
        let labels =
            with_target(LabelSet::new().with("direction", "outbound").with("authority", label_authority), None)
                .with("tls", "disabled");
        let tap_dst = Peer {
            addr: addrs
                .first()
                .copied()
                .filter(|_| addrs.len() == 1)
                .unwrap_or(SocketAddr::from(([0, 0, 0, 0], auth.port))),
            meta: Metadata::from_pairs(&[("tls", "disabled")]),
        };
        let balancer = new_balancer(ctx, key.clone(), endpoints, labels, ctx.config.timeouts.failfast);
        let loops = balancer.endpoints().iter().any(|e| ctx.is_local_listener(e.addr));
        let target = Arc::new(Target {
            authority: key.clone(),
            leaf: None,
            balancer,
            policy: None,
            tap_dst,
            opaque: false,
            meshed: false,
            loops,
            version: 0,
            expires,
        });
        if !capped {
            cache.insert(key, target.clone());
        }
        Ok(target)
    }
}

/// The compiled profile and split of a service port (`None` without either).
fn policy(ctx: &Shared, sp: &ServicePortRef, previous: Option<&Arc<ServicePolicy>>) -> Option<Arc<ServicePolicy>> {
    let domain = &ctx.discovery.load().snapshot.cluster_domain;
    ServicePolicy::build(&ctx.routes, domain, sp, previous)
}

/// The endpoints of a service port counted under `authority`, reusing those of `old` that did not change.
fn service_endpoints(ctx: &Shared, sp: &ServicePortRef, authority: &str, old: &[Arc<Endpoint>]) -> Vec<Arc<Endpoint>> {
    let breaker = sp.circuit_breaker.as_ref().map(|cb| breaker_params(&sp.canonical, cb));
    sp.endpoints
        .iter()
        .map(|e| {
            let mut meta = e.labels.clone();
            meta.entry("namespace".into()).or_insert_with(|| sp.namespace.clone());
            meta.entry("service".into()).or_insert_with(|| sp.name.clone());
            match old
                .iter()
                .find(|o| o.addr == e.address && o.labels == meta && o.breaker.is_some() == breaker.is_some())
            {
                Some(kept) => kept.clone(),
                None => endpoint_with(ctx, "outbound", authority, e.address, Some(e.address), meta, breaker),
            }
        })
        .collect()
}

fn base_labels(_ctx: &Shared, direction: &str, authority: &str) -> LabelSet {
    with_target(LabelSet::new().with("direction", direction).with("authority", authority), None).with("tls", "disabled")
}

/// A balancer over `endpoints`; `service_labels` count what it answers before choosing an endpoint.
fn new_balancer(
    ctx: &Shared,
    name: String,
    endpoints: Vec<Arc<Endpoint>>,
    service_labels: LabelSet,
    failfast: std::time::Duration,
) -> Arc<Balancer> {
    Balancer::new(
        name,
        endpoints,
        balancer_settings(ctx, failfast),
        crate::balance::LazyTarget::new(ctx.http_metrics.clone(), service_labels),
    )
}

pub fn balancer_settings(ctx: &Shared, failfast: std::time::Duration) -> BalancerSettings {
    BalancerSettings { decay: ctx.config.balancer.decay, failfast, queue_capacity: ctx.config.limits.queue_capacity }
}

/// An endpoint with its metric handles: `direction`, `authority`, `target_*`, `tls`, then `dst_*` labels.
pub fn endpoint(
    ctx: &Shared,
    direction: &str,
    authority: &str,
    addr: SocketAddr,
    meta: BTreeMap<String, String>,
) -> Arc<Endpoint> {
    endpoint_with(ctx, direction, authority, addr, Some(addr), meta, None)
}

/// The breaker settings of a service; invalid values fall back to the defaults, loudly.
fn breaker_params(service: &str, cb: &meshlens_api::discovery::CircuitBreaker) -> BreakerParams {
    let duration = |s: &str, default| {
        meshlens_api::duration::parse(s).unwrap_or_else(|e| {
            tracing::warn!(service, reason = "invalid_circuit_breaker", error = %e, "circuit breaker: invalid penalty; using the default");
            default
        })
    };
    let defaults = BreakerParams::default();
    let params = BreakerParams {
        max_failures: cb.consecutive_failures,
        min_penalty: duration(&cb.min_penalty, defaults.min_penalty),
        max_penalty: duration(&cb.max_penalty, defaults.max_penalty),
        jitter: cb.jitter_ratio,
        ..defaults
    };
    match params.validate() {
        Ok(()) => params,
        Err(e) => {
            tracing::warn!(service, reason = "invalid_circuit_breaker", error = %e, "circuit breaker: invalid settings; using the defaults");
            defaults
        }
    }
}

fn endpoint_with(
    ctx: &Shared,
    direction: &str,
    authority: &str,
    addr: SocketAddr,
    label_addr: Option<SocketAddr>,
    meta: BTreeMap<String, String>,
    breaker: Option<BreakerParams>,
) -> Arc<Endpoint> {
    // The endpoint's labels (authority, target, tls, dst_*), rendered once per endpoint and shared by its
    // HTTP series and its connections' `tcp_*` series (`peer="dst"`), as Linkerd labels both.
    let mut endpoint_labels = LabelSet::new();
    if !authority.is_empty() {
        endpoint_labels = endpoint_labels.with("authority", authority);
    }
    let mut endpoint_labels = with_target(endpoint_labels, label_addr).with("tls", "disabled");
    for (k, v) in &meta {
        endpoint_labels = endpoint_labels.with(&dst_label_name(k), v);
    }
    let direction_labels = LabelSet::new().with("direction", direction);
    let labels = direction_labels.clone().extend(&endpoint_labels);
    let tcp = direction_labels.with("peer", "dst").extend(&endpoint_labels);
    let resend_labels = with_target(LabelSet::new().with("direction", direction), label_addr);
    let client = EndpointClient::new(addr, ctx.client.clone(), ctx.tcp_metrics.target(tcp), resend_labels);
    let breaker = breaker.map(|params| {
        let counter = |state| ctx.breaker_transitions.get_or_create(&labels.clone().with("state", state));
        Breaker::new(params, [counter("open"), counter("probation"), counter("closed")])
    });
    let http = ctx.http_metrics.target(labels);
    Arc::new(Endpoint::new(addr, meta, http, client, ctx.config.balancer.default_rtt, breaker))
}

impl Targets {
    /// Every balancer built so far, for the admin `/endpoints` view.
    pub fn all(&self) -> Vec<Arc<Target>> {
        let mut all: Vec<Arc<Target>> =
            self.services.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        all.extend(self.passthrough.lock().unwrap_or_else(|e| e.into_inner()).values().cloned());
        all.sort_by(|a, b| (&a.authority, &a.leaf).cmp(&(&b.authority, &b.leaf)));
        all
    }
}

impl Target {
    /// Passthrough targets expire with their DNS answer; mesh service targets with the discovery version.
    pub fn is_current(&self) -> bool {
        self.expires.is_none_or(|e| e > Instant::now())
    }
}

/// The inbound destination: the local app, with Linkerd's shorter inbound failfast (1 s).
pub fn app_target(ctx: &Shared, app: SocketAddr) -> Arc<Target> {
    let ep = endpoint(ctx, "inbound", "", app, BTreeMap::new());
    let labels = with_target(LabelSet::new().with("direction", "inbound"), None).with("tls", "disabled");
    let failfast = std::time::Duration::from_secs(1).min(ctx.config.timeouts.failfast);
    let balancer = new_balancer(ctx, format!("app {app}"), vec![ep], labels, failfast);
    Arc::new(Target {
        authority: app.to_string(),
        leaf: None,
        balancer,
        policy: None,
        tap_dst: ctx.observers.own.inbound_dst.clone(),
        opaque: false,
        meshed: true,
        loops: false,
        version: 0,
        expires: None,
    })
}

/// The destination tap shows for a request to a service before (or without) an endpoint: failfast, no
/// route, load shed. It names the service and the workload it selects, so `--to deploy/NAME` also matches
/// the responses the proxy made because that workload had no ready instance. Built per configuration change.
fn service_tap_dst(sp: &ServicePortRef) -> Peer {
    let mut meta = vec![("service", sp.name.as_str()), ("namespace", sp.namespace.as_str()), ("tls", "disabled")];
    if let Some(w) = &sp.workload {
        meta.push(("deployment", w.as_str()));
    }
    Peer { addr: SocketAddr::from(([0, 0, 0, 0], sp.port)), meta: Metadata::from_pairs(&meta) }
}
