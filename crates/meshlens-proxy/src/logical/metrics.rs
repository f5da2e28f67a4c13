//! Route metrics (Linkerd's `route_*` and `route_actual_*` families) and, beyond Linkerd, the fate of
//! every original request: whether it succeeded at once, after retries, or why it was not retried.

use std::sync::Arc;

use super::linkerd::LinkerdRouteFamilies;
use crate::metrics::{Counter, CounterFamily, HttpMetrics, HttpTargetMetrics, LabelSet, Registry};

/// What became of an original request on a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    SucceededFirst,
    SucceededAfterRetry,
    FailedNoBudget,
    FailedNotRetryable,
    FailedBodyTooLarge,
    FailedTimeout,
    FailedRetriesExhausted,
}

impl Fate {
    pub const ALL: [Fate; 7] = [
        Fate::SucceededFirst,
        Fate::SucceededAfterRetry,
        Fate::FailedNoBudget,
        Fate::FailedNotRetryable,
        Fate::FailedBodyTooLarge,
        Fate::FailedTimeout,
        Fate::FailedRetriesExhausted,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Fate::SucceededFirst => "succeeded_first",
            Fate::SucceededAfterRetry => "succeeded_after_retry",
            Fate::FailedNoBudget => "failed_no_budget",
            Fate::FailedNotRetryable => "failed_not_retryable",
            Fate::FailedBodyTooLarge => "failed_body_too_large",
            Fate::FailedTimeout => "failed_timeout",
            Fate::FailedRetriesExhausted => "failed_retries_exhausted",
        }
    }
}

/// The route metric families of one proxy.
pub struct RouteFamilies {
    /// Linkerd's `outbound_*_route_*` families, for routes compiled from HTTPRoutes/GRPCRoutes.
    pub linkerd: LinkerdRouteFamilies,
    effective: HttpMetrics,
    actual: HttpMetrics,
    retryable: CounterFamily,
    fates: CounterFamily,
}

impl RouteFamilies {
    pub fn register(reg: &Registry) -> RouteFamilies {
        RouteFamilies {
            linkerd: LinkerdRouteFamilies::register(reg),
            effective: HttpMetrics::register_prefixed(reg, "route_", true),
            actual: HttpMetrics::register_prefixed(reg, "route_actual_", false),
            retryable: reg.counter_family(
                "route_retryable_total",
                "Retryable failures on a route; skipped=\"no_budget\" when the retry budget refused the retry.",
            ),
            fates: reg.counter_family(
                "route_retry_fate_total",
                "Original requests on a route by outcome: succeeded at once or after retries, or why not retried.",
            ),
        }
    }

    /// The handles of one route of one service (`dst` is the service's canonical authority).
    pub fn route(&self, dst: &str, route: &str) -> RouteMetrics {
        let labels = LabelSet::new().with("direction", "outbound").with("dst", dst).with("rt_route", route);
        RouteMetrics {
            effective: self.effective.target(labels.clone()),
            actual: self.actual.target(labels.clone()),
            retryable: self.retryable.get_or_create(&labels),
            skipped_no_budget: self.retryable.get_or_create(&labels.clone().with("skipped", "no_budget")),
            fates: Fate::ALL.map(|f| self.fates.get_or_create(&labels.clone().with("fate", f.as_str()))),
        }
    }
}

impl RouteFamilies {
    /// The handle of one route of a service this proxy serves (`direction="inbound"`): requests and
    /// responses as the inbound proxy saw them, in the effective families (no retries inbound).
    pub fn inbound(&self, dst: &str, route: &str) -> Arc<HttpTargetMetrics> {
        let labels = LabelSet::new().with("direction", "inbound").with("dst", dst).with("rt_route", route);
        self.effective.target(labels)
    }
}

/// Counting handles of one route, resolved when its profile is compiled.
#[derive(Clone)]
pub struct RouteMetrics {
    /// What the caller saw: one per original request (above retries and timeouts).
    pub effective: Arc<HttpTargetMetrics>,
    /// One per attempt (below retries).
    pub actual: Arc<HttpTargetMetrics>,
    pub retryable: Arc<Counter>,
    pub skipped_no_budget: Arc<Counter>,
    fates: [Arc<Counter>; 7],
}

impl RouteMetrics {
    pub fn fate(&self, fate: Fate) {
        self.fates[fate as usize].inc();
    }
}
