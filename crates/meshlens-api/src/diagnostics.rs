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
