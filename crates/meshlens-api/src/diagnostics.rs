//! The JSON shapes of `/api/v1/proxy-metrics` and `/api/v1/endpoints` (`meshlens diagnostics …`); the
//! balancer state proxies serve is in [`crate::balancer`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One instance's raw `/metrics` page, fetched by the control plane from its proxy's admin listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyMetrics {
    pub namespace: String,
    pub workload: String,
    /// The instance (Linkerd's pod).
    pub pod: String,
    /// The Prometheus text, as the proxy served it (label values hashed with `obfuscate=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<String>,
    /// Why the page could not be fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `/api/v1/endpoints`: per authority as asked, the endpoints discovery resolves it to.
pub type EndpointsResponse = BTreeMap<String, Vec<EndpointRow>>;

/// One endpoint as a proxy resolving the authority would see it (Linkerd's `diagnostics endpoints` keys).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointRow {
    pub namespace: String,
    pub ip: String,
    pub port: u16,
    pub pod: String,
    pub service: String,
    /// Every endpoint weighs the same (Linkerd's default weight).
    pub weight: u32,
    /// The endpoint's metadata, exported by callers as `dst_<key>` metric labels.
    pub labels: BTreeMap<String, String>,
    /// With `balancers=true`: how each calling instance's load balancer sees this endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub callers: Vec<crate::balancer::CallerView>,
}

/// The weight every endpoint has.
pub const DEFAULT_WEIGHT: u32 = 10_000;

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
    pub address: std::net::SocketAddr,
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
