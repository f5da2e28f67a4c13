//! A proxy's load balancers as its admin port serves them (`GET /endpoints`): per destination, each
//! endpoint's EWMA latency, requests in flight and in total, and circuit-breaker state.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// A proxy's `GET /endpoints` (admin port): every balancer it routes with, and the live state of its
/// endpoints as this calling workload sees them. The control plane relays it per instance.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProxyBalancers {
    pub destinations: Vec<BalancerState>,
}

/// One balancer: a service, a split's leaf as its apex uses it, or a passthrough destination.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BalancerState {
    /// The authority as counted in metrics (for a split's leaf: the apex the app called).
    pub authority: String,
    /// For a split's leaf: the leaf service's canonical authority (its `dst_service` in metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf: Option<String>,
    pub meshed: bool,
    pub opaque: bool,
    /// No endpoint became ready within the failfast timeout: requests are refused until one is.
    pub failfast: bool,
    /// Requests waiting for a ready endpoint.
    pub queued: u64,
    pub endpoints: Vec<EndpointState>,
}

/// One endpoint of a balancer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointState {
    pub address: SocketAddr,
    /// The endpoint's metadata (exported as `dst_<key>` labels).
    pub labels: BTreeMap<String, String>,
    /// Connectable (not marked down after a failed connect).
    pub ready: bool,
    /// The balancer's peak-EWMA latency estimate, in milliseconds.
    pub ewma_ms: f64,
    /// Requests sent and not yet answered in full.
    pub in_flight: u32,
    /// Requests sent to this endpoint since the proxy started (its `request_total` series).
    pub requests_total: u64,
    pub idle_http1_connections: u64,
    pub http2_connected: bool,
    /// The circuit breaker's state (`closed`, `open`, `probation`), when the service has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<String>,
    /// While the breaker is open: milliseconds until probation.
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
    pub in_flight: u32,
    pub requests_total: u64,
    /// The circuit breaker's state (`closed`, `open`, `probation`), when the service has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_remaining_ms: Option<u64>,
    /// Of the caller's requests to the service in the window, the fraction this endpoint answered (0–1);
    /// absent when the caller sent none in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
}
