//! A service's compiled policy: its profile's routes (each with its metric handles), retry budget and
//! retry cap, and the backends of its traffic split. Built once per discovery change, and reused as is when
//! the profile and split did not change (so the retry budget's state carries over).

use std::sync::{Arc, Mutex};

use crate::policy::route::RequestHead;
use meshlens_api::ProxyErrorReason;
use meshlens_api::profile::{ServiceProfile, TrafficSplit};

use crate::balance::Balancer;
use crate::discovery::ServicePortRef;
use crate::logical::linkerd::LinkerdRouteMetrics;
use crate::logical::metrics::{RouteFamilies, RouteMetrics};
use crate::policy::budget::RetryBudget;
use crate::policy::profile::{Policy, RouteConfig, RuleConfig};
use crate::policy::split::{WeightedPicker, split_backends};

/// One route of a service, ready for requests.
pub struct CompiledRoute {
    pub name: String,
    /// The name tap shows in `routeMeta` (`None` for `[DEFAULT]`).
    pub tap_name: Option<Arc<str>>,
    config: RouteConfig,
    /// `isRetryable` as written.
    pub retryable: bool,
    /// The profile's budget when this route may retry (`isRetryable` and a budget in force).
    pub budget: Option<Arc<RetryBudget>>,
    pub timeout: Option<std::time::Duration>,
    pub metrics: RouteMetrics,
    /// Linkerd's route families, for a route compiled from an HTTPRoute/GRPCRoute.
    pub linkerd: Option<LinkerdRouteMetrics>,
    /// The backends of the route's HTTPRoute rule (`None`: the service's own choice).
    backends: Option<WeightedPicker<Backend>>,
}

impl CompiledRoute {
    /// The route's response classes, else the default classification (5xx, non-OK gRPC status).
    pub fn is_failure(&self, status: u16, grpc_status: Option<u32>) -> bool {
        self.config.classifier.classify(status, grpc_status).is_failure()
    }

    /// Whether a failure may be retried (an HTTPRoute's retries name the statuses).
    pub fn retries_response(&self, status: u16, grpc_status: Option<u32>) -> bool {
        self.config.retries_response(status, grpc_status)
    }

    /// The most retries of one request, given the profile's cap.
    pub fn max_retries(&self, profile_cap: u32) -> u32 {
        self.config.max_retries(profile_cap)
    }

    /// Whether this is the `[DEFAULT]` route (no route matched).
    pub fn is_default(&self) -> bool {
        self.config.is_default()
    }

    /// What the route's HTTPRoute rule adds (filters, per-attempt timeout); `None` for a profile route.
    pub fn rule(&self) -> Option<&RuleConfig> {
        self.config.rule.as_deref()
    }
}

/// A weighted picker over backend authorities (none when there are no weights above zero).
fn picker(weighted: Vec<(String, u32)>) -> Option<WeightedPicker<Backend>> {
    (!weighted.is_empty()).then(|| {
        WeightedPicker::new(
            weighted.into_iter().map(|(authority, w)| (Backend { authority, resolved: Mutex::new(None) }, w)),
        )
    })
}

/// A backend service of a split, with the balancer it resolved to (per discovery version; the apex's when
/// it did not resolve).
struct Backend {
    authority: String,
    resolved: Mutex<Option<(u64, Arc<Balancer>)>>,
}

pub struct ServicePolicy {
    /// `None` without a ServiceProfile: no routes, no route metrics, no retries.
    routes: Option<(Vec<Arc<CompiledRoute>>, Arc<CompiledRoute>)>,
    pub max_retries: u32,
    backends: Option<WeightedPicker<Backend>>,
    /// Compiled from HTTPRoutes: a request no route matches is answered 404 (see [`crate::logical::serve`]).
    pub unmatched_not_found: bool,
    /// What it was built from, to reuse it when nothing changed.
    source: (Option<ServiceProfile>, Option<TrafficSplit>),
}

impl ServicePolicy {
    /// The policy of a service port (its routes' metric handles from `routes`), reusing `previous` when its
    /// profile and split are unchanged.
    pub fn build(
        routes: &RouteFamilies,
        cluster_domain: &str,
        sp: &ServicePortRef,
        previous: Option<&Arc<ServicePolicy>>,
    ) -> Option<Arc<ServicePolicy>> {
        if sp.profile.is_none() && sp.split.is_none() {
            return None;
        }
        if let Some(prev) = previous
            && prev.source.0 == sp.profile
            && prev.source.1 == sp.split
        {
            return Some(prev.clone());
        }
        let policy = match sp.profile.as_ref().map(|p| Policy::compile_for_port(p, sp.port)) {
            None => None,
            Some(Ok(p)) => {
                for w in &p.warnings {
                    tracing::warn!(service = %sp.canonical, reason = "profile_caveat", warning = %w, "service profile");
                }
                Some(p)
            }
            Some(Err(e)) => {
                // The control plane validates profiles; one that still fails here is ignored, loudly.
                tracing::error!(service = %sp.canonical, reason = "invalid_profile", error = %e, "ignoring a service profile that does not compile");
                None
            }
        };
        let suffix = format!(".{}.svc.{cluster_domain}:{}", sp.namespace, sp.port);
        let weighted: Vec<(String, u32)> = match (&sp.split, &policy) {
            (Some(split), _) => match split_backends(split) {
                Ok(b) => b.into_iter().map(|(name, w)| (format!("{name}{suffix}"), w)).collect(),
                Err(e) => {
                    tracing::error!(service = %sp.canonical, reason = "invalid_split", error = %e, "ignoring a traffic split");
                    Vec::new()
                }
            },
            (None, Some(p)) => p.dst_overrides.clone(),
            (None, None) => Vec::new(),
        };
        let route = |config: &RouteConfig| {
            Arc::new(CompiledRoute {
                name: config.name.clone(),
                tap_name: (config.name != crate::policy::profile::DEFAULT_ROUTE_NAME)
                    .then(|| config.name.as_str().into()),
                retryable: config.retryable,
                budget: config.retry_budget.clone(),
                timeout: config.timeout,
                metrics: routes.route(&sp.canonical, &config.name),
                linkerd: config.rule.as_ref().filter(|r| !r.route_kind.is_empty()).map(|r| {
                    // Where its attempts may go: the split's leaves, else the rule's backends.
                    let candidates: Vec<&str> = weighted.iter().chain(&r.backends).map(|(a, _)| a.as_str()).collect();
                    routes.linkerd.route(sp, &r.route_kind, &r.route_group, &config.name, &candidates)
                }),
                backends: config.rule.as_ref().and_then(|r| picker(r.backends.clone())),
                config: config.clone(),
            })
        };
        let routes = policy.as_ref().map(|p| (p.routes.iter().map(route).collect(), route(&p.default_route)));
        Some(Arc::new(ServicePolicy {
            routes,
            max_retries: policy.as_ref().map_or(0, |p| p.max_retries_per_request),
            backends: picker(weighted),
            unmatched_not_found: policy.as_ref().is_some_and(|p| p.unmatched_not_found),
            source: (sp.profile.clone(), sp.split.clone()),
        }))
    }

    /// The route a request takes (first match, else `[DEFAULT]`); `None` when the service has no profile.
    pub fn route(&self, head: &RequestHead<'_>) -> Option<&Arc<CompiledRoute>> {
        let (routes, default) = self.routes.as_ref()?;
        Some(routes.iter().find(|r| r.config.matcher.as_ref().is_some_and(|m| m.matches(head))).unwrap_or(default))
    }

    /// Does a split (or `dstOverrides`, or a route's rule) of this policy send traffic to `authority`
    /// (canonical)?
    pub fn has_backend(&self, authority: &str) -> bool {
        let has = |b: &Option<WeightedPicker<Backend>>| {
            b.as_ref().is_some_and(|b| b.iter().any(|(backend, w)| w > 0 && backend.authority == authority))
        };
        has(&self.backends) || self.routes.as_ref().is_some_and(|(routes, _)| routes.iter().any(|r| has(&r.backends)))
    }

    /// The balancer of this attempt's backend on `route`: a split's weighted pick, else the pick among the
    /// route's own backends (an HTTPRoute rule's backendRefs), else the apex service's own balancer; with the
    /// picked authority (`None`: no pick, the apex). A pick
    /// is resolved with `resolve` once per discovery `version` (its leaf counted under the apex's
    /// authority). A backend that does not resolve is warned about once per version; until the next one the
    /// apex serves its share.
    pub fn backend<'a>(
        &'a self,
        route: Option<&'a CompiledRoute>,
        version: impl FnOnce() -> u64,
        apex: (&str, &Arc<Balancer>),
        resolve: impl FnOnce(&str) -> Result<Arc<Balancer>, ProxyErrorReason>,
    ) -> (Arc<Balancer>, Option<&'a str>) {
        let (apex_authority, apex_balancer) = apex;
        let backends = self.backends.as_ref().or_else(|| route.and_then(|r| r.backends.as_ref()));
        let Some(backend) = backends.and_then(|b| b.pick()) else {
            return (apex_balancer.clone(), None);
        };
        let picked = Some(backend.authority.as_str());
        if backend.authority == apex_authority {
            return (apex_balancer.clone(), picked);
        }
        let version = version();
        if let Some((v, b)) = backend.resolved.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
            && *v == version
        {
            return (b.clone(), picked);
        }
        let resolved = resolve(&backend.authority);
        if let Err(reason) = &resolved {
            tracing::warn!(apex = %apex_authority, backend = %backend.authority, reason = reason.as_str(), "split backend does not resolve; using the apex service");
        }
        let balancer = resolved.unwrap_or_else(|_| apex_balancer.clone());
        *backend.resolved.lock().unwrap_or_else(|e| e.into_inner()) = Some((version, balancer.clone()));
        (balancer, picked)
    }
}
