//! A proxy's load balancers as its admin port serves them (`GET /endpoints`): per destination, each
//! endpoint's EWMA latency, requests in flight and in total, and circuit-breaker state.

use serde::{Deserialize, Serialize};

/// The answer of a proxy's `GET /endpoints`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProxyEndpoints {
    pub balancers: Vec<BalancerState>,
}

/// One balancer: the endpoints of one destination the app called.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BalancerState {
    /// The authority the app called (a split's apex).
    pub authority: String,
    /// For a split, the leaf service this balancer serves (`ml-inference-a.prod.svc.cluster.local:80`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<String>,
    pub endpoints: Vec<EndpointState>,
}

/// One endpoint as the balancer sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointState {
    /// `IP:PORT`.
    pub addr: String,
    /// The endpoint's instance (empty when discovery does not name one).
    #[serde(default)]
    pub pod: String,
    /// The exponentially weighted moving average of its response latency, in milliseconds.
    pub ewma_ms: f64,
    /// Requests sent to it that have not completed.
    pub in_flight: u64,
    /// Requests sent to it since the balancer was built.
    pub requests_total: u64,
    /// The circuit breaker: `closed`, `open` or `half-open`.
    pub breaker: String,
    /// While the breaker is open: how long until it lets a probe through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_remaining_ms: Option<u64>,
}

/// One calling instance's view of an endpoint (`/api/v1/endpoints?balancers=true`): its balancer's state
/// for the endpoint and the share of its requests to the service that went there in the window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CallerView {
    pub namespace: String,
    pub workload: String,
    /// The calling instance.
    pub pod: String,
    pub ewma_ms: f64,
    pub in_flight: u64,
    pub requests_total: u64,
    pub breaker: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_remaining_ms: Option<u64>,
    /// Of the caller's requests to the service in the window, the fraction this endpoint answered (0–1);
    /// absent when the caller sent none in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
}
