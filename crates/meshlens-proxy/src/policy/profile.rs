//! A ServiceProfile compiled into the policy the request path applies: ordered routes with their matcher,
//! response classes, retryability and timeout, a `[DEFAULT]` route for the rest, the profile's shared retry
//! budget, the per-request retry cap and the `dstOverrides`.
//!
//! What is an error and what only a warning follows Linkerd: what its controller refuses (a condition or
//! response match with no field, a status out of range, a `ttl` that is not a duration) fails the whole
//! compilation — the caller keeps the previous policy, as Linkerd's proxy keeps its previous profile; a
//! retry budget that its proxy refuses (ratio ∉ [0, 1000], ttl ∉ [1 s, 60 s]) only disables retries, with a
//! warning in [`Policy::warnings`]. Beyond Linkerd, an invalid `pathRegex`, `method` or route `timeout` is
//! an error too (Linkerd drops the route or the timeout silently).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meshlens_api::authority::Authority;
use meshlens_api::duration;
use meshlens_api::profile::{RouteRetry, RouteRule, RouteSpec, ServiceProfile, ServiceProfileSpec, WeightedDst};

use super::budget::RetryBudget;
use super::classify::ResponseClassifier;
use super::filters::{HeaderEdit, Redirect};
use super::route::{RequestHead, RequestMatcher};
use super::split::quantity_weight;

/// The name of the route unmatched requests take (the `rt_route` label value).
pub const DEFAULT_ROUTE_NAME: &str = "[DEFAULT]";

/// The ServiceProfile annotation that sets the most retries one request may make (a non-negative integer;
/// 0 disables retries for the profile): `meshlens.io/max-retries: "5"`.
pub const MAX_RETRIES_ANNOTATION: &str = "meshlens.io/max-retries";

/// Retries per request when the profile does not say (beyond Linkerd, which has no per-request cap).
pub const DEFAULT_MAX_RETRIES: u32 = 3;

/// Linkerd's default retry budget when a profile has no `retryBudget`: ratio 0.2, 10/s, ttl 10 s.
pub const DEFAULT_RETRY_RATIO: f64 = 0.2;
/// See [`DEFAULT_RETRY_RATIO`].
pub const DEFAULT_MIN_RETRIES_PER_SECOND: u32 = 10;
/// See [`DEFAULT_RETRY_RATIO`].
pub const DEFAULT_RETRY_TTL: Duration = Duration::from_secs(10);

/// One route of a profile, compiled.
#[derive(Clone, Debug)]
pub struct RouteConfig {
    /// The route's name (`rt_route`), [`DEFAULT_ROUTE_NAME`] for the default route.
    pub name: String,
    /// The route's condition; `None` for the default route, which takes whatever no route matched.
    pub matcher: Option<RequestMatcher>,
    /// The route's `responseClasses` (none for the default route: default classification).
    pub classifier: ResponseClassifier,
    /// `isRetryable` as written. Retries also need the profile's budget: see [`RouteConfig::retry_budget`].
    pub retryable: bool,
    /// The route's `timeout`, covering the request with all its retries; `None` for no timeout (also when
    /// written as zero: Linkerd's controller sends no timeout then).
    pub timeout: Option<Duration>,
    /// The profile's shared budget when this route may retry: `isRetryable` and a budget in force. A route
    /// compiled from an HTTPRoute's retry annotations has a budget that never runs out (Linkerd's have none).
    pub retry_budget: Option<Arc<RetryBudget>>,
    /// A route compiled from an HTTPRoute/GRPCRoute: only these failures are retried, at most this many
    /// times per request; `None` for a ServiceProfile route (every failure, the profile's cap).
    pub retry: Option<RouteRetry>,
    /// What an HTTPRoute/GRPCRoute rule adds; `None` for a ServiceProfile route.
    pub rule: Option<Arc<RuleConfig>>,
}

/// An HTTPRoute/GRPCRoute rule's backends, filters and per-attempt timeout, compiled.
#[derive(Clone, Debug, Default)]
pub struct RuleConfig {
    /// The route's kind (`HTTPRoute`, `GRPCRoute`) and API group, for Linkerd's route families.
    pub route_kind: String,
    pub route_group: String,
    /// `(authority with port, weight)`, zero weights left out; empty: the parent Service.
    pub backends: Vec<(String, u32)>,
    pub request_headers: Option<HeaderEdit>,
    pub response_headers: Option<HeaderEdit>,
    /// Set: the route answers with this redirect and forwards nothing.
    pub redirect: Option<Redirect>,
    /// Bounds each attempt; an attempt it cuts may be retried (Linkerd's `retry.linkerd.io/timeout`).
    pub attempt_timeout: Option<Duration>,
}

impl RuleConfig {
    fn compile(r: &RouteRule) -> Result<RuleConfig, String> {
        let backends = r
            .backends
            .iter()
            .enumerate()
            .map(|(i, d)| dst_override(d, 80).map_err(|e| format!("rule.backends[{i}]: {e}")))
            .filter(|r| !matches!(r, Ok((_, 0))))
            .collect::<Result<Vec<_>, _>>()?;
        let edit = |m: &Option<_>, field: &str| {
            m.as_ref().map(HeaderEdit::compile).transpose().map_err(|e| format!("rule.{field}: {e}"))
        };
        Ok(RuleConfig {
            route_kind: r.route_kind.clone(),
            route_group: r.route_group.clone(),
            backends,
            request_headers: edit(&r.request_headers, "requestHeaders")?,
            response_headers: edit(&r.response_headers, "responseHeaders")?,
            redirect: r
                .redirect
                .as_ref()
                .map(|d| Redirect::compile(d, r.path_prefix.as_deref()))
                .transpose()
                .map_err(|e| format!("rule.redirect: {e}"))?,
            attempt_timeout: match &r.attempt_timeout {
                None => None,
                Some(t) => duration::parse(t).map_err(|e| format!("rule.attemptTimeout: {e}"))?.into(),
            }
            .filter(|d: &Duration| !d.is_zero()),
        })
    }
}

impl RouteConfig {
    /// The `[DEFAULT]` route: no timeout, not retryable, default classification.
    pub fn default_route() -> RouteConfig {
        RouteConfig {
            name: DEFAULT_ROUTE_NAME.to_string(),
            matcher: None,
            classifier: ResponseClassifier::default(),
            retryable: false,
            timeout: None,
            retry_budget: None,
            retry: None,
            rule: None,
        }
    }

    /// Whether the route may retry at all (retryable, with a budget in force).
    pub fn retries(&self) -> bool {
        self.retry_budget.is_some()
    }

    /// Whether a failed response may be retried on this route (HTTPRoute retries name the statuses).
    pub fn retries_response(&self, status: u16, grpc_status: Option<u32>) -> bool {
        let Some(retry) = &self.retry else { return true };
        let http = retry.http.iter().any(|r| {
            let (min, max) = (r.min.or(r.max).unwrap_or(0), r.max.or(r.min).unwrap_or(0));
            (min..=max).contains(&status)
        });
        http || grpc_status.is_some_and(|c| retry.grpc.contains(&c))
    }

    /// The most retries of one request on this route, given the profile's cap.
    pub fn max_retries(&self, profile_cap: u32) -> u32 {
        self.retry.as_ref().map_or(profile_cap, |r| r.limit)
    }

    /// Whether this is the `[DEFAULT]` route.
    pub fn is_default(&self) -> bool {
        self.matcher.is_none()
    }
}

/// A compiled ServiceProfile. `Default` is the policy of a service without a profile: only the default
/// route (Linkerd's default budget in force, though no route can retry).
#[derive(Clone, Debug)]
pub struct Policy {
    /// The profile's name (the service's FQDN), empty for the default policy.
    pub name: String,
    /// The routes, in order: the first that matches a request wins.
    pub routes: Vec<RouteConfig>,
    /// The route of requests no route matched.
    pub default_route: RouteConfig,
    /// The budget shared by all retryable routes of the profile; `None` when the profile's `retryBudget`
    /// was refused (then nothing retries; see [`Policy::warnings`]).
    pub retry_budget: Option<Arc<RetryBudget>>,
    /// The most retries one request may make ([`MAX_RETRIES_ANNOTATION`], default [`DEFAULT_MAX_RETRIES`]).
    pub max_retries_per_request: u32,
    /// `dstOverrides`: `(authority with port, relative weight)`, weights from the quantity in thousandths,
    /// zero weights dropped (as Linkerd's proxy does). Empty: the service itself gets the traffic.
    pub dst_overrides: Vec<(String, u32)>,
    /// What was accepted with a caveat (budget disabled, annotation ignored), for logs and the admin view.
    pub warnings: Vec<String>,
    /// Compiled from HTTPRoutes: a request no route matches gets a 404 instead of the `[DEFAULT]` route.
    pub unmatched_not_found: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            name: String::new(),
            routes: Vec::new(),
            default_route: RouteConfig::default_route(),
            retry_budget: Some(Arc::new(RetryBudget::default())),
            max_retries_per_request: DEFAULT_MAX_RETRIES,
            dst_overrides: Vec::new(),
            warnings: Vec::new(),
            unmatched_not_found: false,
        }
    }
}

impl Policy {
    /// Compiles a profile; `dstOverrides` authorities without a port get `:80`. Prefer
    /// [`Policy::compile_for_port`] with the port the profile was looked up for, as Linkerd does (the SMI
    /// adaptor writes authorities without a port).
    pub fn compile(profile: &ServiceProfile) -> Result<Policy, String> {
        Policy::compile_for_port(profile, 80)
    }

    /// Compiles a profile looked up for a service port: `dstOverrides` authorities without a port get
    /// `port`. Errors are prefixed with where they are (`route 'get-user': condition: ...`).
    pub fn compile_for_port(profile: &ServiceProfile, port: u16) -> Result<Policy, String> {
        let spec: &ServiceProfileSpec = &profile.spec;
        let mut warnings = Vec::new();

        let retry_budget = match &spec.retry_budget {
            None => {
                Some(Arc::new(RetryBudget::new(DEFAULT_RETRY_RATIO, DEFAULT_MIN_RETRIES_PER_SECOND, DEFAULT_RETRY_TTL)))
            }
            Some(b) => {
                let ttl = duration::parse(&b.ttl).map_err(|e| format!("retryBudget: ttl: {e}"))?;
                match RetryBudget::try_new(b.retry_ratio, b.min_retries_per_second, ttl) {
                    Ok(budget) => Some(Arc::new(budget)),
                    Err(e) => {
                        warnings.push(format!("retryBudget: {e}: retries are disabled for this profile"));
                        None
                    }
                }
            }
        };

        let routes = spec
            .routes
            .iter()
            .map(|r| compile_route(r, retry_budget.as_ref()).map_err(|e| format!("route '{}': {e}", r.name)))
            .collect::<Result<Vec<_>, _>>()?;

        let max_retries_per_request = max_retries(&profile.metadata.annotations, &mut warnings);

        let dst_overrides = spec
            .dst_overrides
            .iter()
            .enumerate()
            .map(|(i, d)| dst_override(d, port).map_err(|e| format!("dstOverrides[{i}]: {e}")))
            .filter(|r| !matches!(r, Ok((_, 0))))
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Policy {
            name: profile.metadata.name.clone(),
            routes,
            default_route: RouteConfig::default_route(),
            retry_budget,
            max_retries_per_request,
            dst_overrides,
            warnings,
            unmatched_not_found: spec.unmatched_not_found,
        })
    }

    /// The route a request takes: the first whose condition matches, else the default route.
    pub fn route(&self, head: &RequestHead<'_>) -> &RouteConfig {
        self.routes.iter().find(|r| r.matcher.as_ref().is_some_and(|m| m.matches(head))).unwrap_or(&self.default_route)
    }
}

fn compile_route(spec: &RouteSpec, budget: Option<&Arc<RetryBudget>>) -> Result<RouteConfig, String> {
    let matcher = RequestMatcher::compile(&spec.condition).map_err(|e| format!("condition: {e}"))?;
    let classifier = ResponseClassifier::compile(&spec.response_classes)?;
    let rule = spec.rule.as_ref().map(RuleConfig::compile).transpose()?.map(Arc::new);
    if let Some(retry) = &spec.retry {
        // Linkerd's route retries have no budget: only the per-request limit bounds them.
        let unbounded = Arc::new(RetryBudget::new(1000.0, 1_000_000_000, Duration::from_secs(1)));
        return Ok(RouteConfig {
            name: spec.name.clone(),
            matcher: Some(matcher),
            classifier,
            retryable: true,
            timeout: route_timeout(spec)?,
            retry_budget: Some(unbounded),
            retry: Some(retry.clone()),
            rule,
        });
    }
    Ok(RouteConfig {
        name: spec.name.clone(),
        matcher: Some(matcher),
        classifier,
        retryable: spec.is_retryable,
        timeout: route_timeout(spec)?,
        retry_budget: budget.filter(|_| spec.is_retryable).cloned(),
        retry: None,
        rule,
    })
}

/// A route's `timeout`; zero is none.
fn route_timeout(spec: &RouteSpec) -> Result<Option<Duration>, String> {
    match &spec.timeout {
        None => Ok(None),
        Some(t) => Ok(Some(duration::parse(t).map_err(|e| format!("timeout: {e}"))?).filter(|d| !d.is_zero())),
    }
}

fn max_retries(annotations: &BTreeMap<String, String>, warnings: &mut Vec<String>) -> u32 {
    match annotations.get(MAX_RETRIES_ANNOTATION) {
        None => DEFAULT_MAX_RETRIES,
        Some(v) => v.trim().parse::<u32>().unwrap_or_else(|_| {
            warnings.push(format!(
                "annotation {MAX_RETRIES_ANNOTATION}: '{v}' is not a non-negative integer: using {DEFAULT_MAX_RETRIES}"
            ));
            DEFAULT_MAX_RETRIES
        }),
    }
}

fn dst_override(d: &WeightedDst, port: u16) -> Result<(String, u32), String> {
    let authority = Authority::parse(d.authority.trim(), port).map_err(|e| e.to_string())?;
    let weight = quantity_weight(&d.weight).map_err(|e| format!("{}: {e}", d.authority))?;
    Ok((authority.to_string(), weight))
}

#[cfg(test)]
#[path = "tests/profile.rs"]
mod tests;
