//! The `Mesh` document (`mesh.yaml` of a mesh directory): namespaces, workloads and services of a local mesh.
//!
//! ```yaml
//! apiVersion: meshlens.io/v1alpha1
//! kind: Mesh
//! metadata: {name: shop}
//! spec:
//!   namespaces: [prod]
//!   workloads:
//!     - name: checkout
//!       namespace: prod
//!       replicas: 2
//!       command: ["meshlens", "demo-app", "--config", "checkout.yaml"]   # or one string, run by `sh -c`
//!       env: {LOG: info}
//!       calls: [payment]           # services it calls: MESHLENS_UPSTREAM_PAYMENT=<sidecar upstream address>
//!       labels: {app: checkout}    # what `-l/--selector` matches (Kubernetes label syntax)
//!   services:
//!     - name: checkout
//!       namespace: prod
//!       workload: checkout         # the workload whose instances are its endpoints
//!       port: 80
//!       opaquePorts: []
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::meta::ObjectMeta;

pub const MESH_API_VERSION: &str = "meshlens.io/v1alpha1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mesh {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: MeshSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshSpec {
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default = "crate::discovery::default_cluster_domain")]
    pub cluster_domain: String,
    #[serde(default)]
    pub workloads: Vec<Workload>,
    #[serde(default)]
    pub services: Vec<MeshService>,
    /// Proxies may register addresses other than loopback (instances on other hosts). Off by default:
    /// local mode serves one host, and without mTLS traffic between hosts is not protected
    /// (docs/security.md).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remote_endpoints: bool,
    /// What traffic is held to: `diagnose`, `check` and alerts measure against these.
    #[serde(default, skip_serializing_if = "Objectives::is_default")]
    pub objectives: Objectives,
    /// Alert rules evaluated on the control plane's store, and where notifications go (`crate::alerts`).
    #[serde(default, skip_serializing_if = "crate::alerts::AlertsSpec::is_default")]
    pub alerts: crate::alerts::AlertsSpec,
}

/// Service-level objectives of the mesh, with per-service overrides.
///
/// ```yaml
/// objectives:
///   successRate: 99.5          # percent of requests that must succeed (default 99.5)
///   latencyFactor: 2           # p99 may be at most this many times its own baseline (default 2)
///   retryRate: 5               # percent of extra attempts (ACTUAL/EFFECTIVE - 1) still healthy (default 5)
///   services:
///     prod/payment-service: {successRate: 99.9}   # key: NAMESPACE/NAME, or NAME in any namespace
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Objectives {
    #[serde(default = "default_success_rate")]
    pub success_rate: f64,
    #[serde(default = "default_latency_factor")]
    pub latency_factor: f64,
    #[serde(default = "default_retry_rate")]
    pub retry_rate: f64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub services: BTreeMap<String, ObjectiveOverride>,
}

/// A service's own objectives; what it leaves out comes from the mesh-wide ones.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectiveOverride {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_rate: Option<f64>,
}

/// The objectives that apply to one service, all fields resolved.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServiceObjectives {
    /// Percent, e.g. 99.5.
    pub success_rate: f64,
    pub latency_factor: f64,
    /// Percent, e.g. 5.
    pub retry_rate: f64,
}

fn default_success_rate() -> f64 {
    99.5
}
fn default_latency_factor() -> f64 {
    2.0
}
fn default_retry_rate() -> f64 {
    5.0
}

impl Default for Objectives {
    fn default() -> Self {
        Objectives {
            success_rate: default_success_rate(),
            latency_factor: default_latency_factor(),
            retry_rate: default_retry_rate(),
            services: BTreeMap::new(),
        }
    }
}

impl Objectives {
    fn is_default(&self) -> bool {
        *self == Objectives::default()
    }

    /// The objectives of service (or workload) `name` in `namespace`: its own override keyed
    /// `namespace/name`, else one keyed `name`, else the mesh-wide values.
    pub fn for_service(&self, namespace: &str, name: &str) -> ServiceObjectives {
        let own = self.services.get(&format!("{namespace}/{name}")).or_else(|| self.services.get(name));
        let own = own.cloned().unwrap_or_default();
        ServiceObjectives {
            success_rate: own.success_rate.unwrap_or(self.success_rate),
            latency_factor: own.latency_factor.unwrap_or(self.latency_factor),
            retry_rate: own.retry_rate.unwrap_or(self.retry_rate),
        }
    }

    /// What is wrong with these objectives: (field path under `spec`, message) per value out of range.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut check = |at: &str, success: Option<f64>, factor: Option<f64>, retry: Option<f64>| {
            if let Some(v) = success.filter(|v| !(v.is_finite() && *v > 0.0 && *v <= 100.0)) {
                out.push((format!("{at}.successRate"), format!("{v} must be a percent in (0, 100]")));
            }
            if let Some(v) = factor.filter(|v| !(v.is_finite() && *v >= 1.0)) {
                out.push((format!("{at}.latencyFactor"), format!("{v} must be at least 1")));
            }
            if let Some(v) = retry.filter(|v| !(v.is_finite() && *v >= 0.0)) {
                out.push((format!("{at}.retryRate"), format!("{v} must be a percent >= 0")));
            }
        };
        check("objectives", Some(self.success_rate), Some(self.latency_factor), Some(self.retry_rate));
        for (key, o) in &self.services {
            check(&format!("objectives.services.{key}"), o.success_rate, o.latency_factor, o.retry_rate);
        }
        out
    }
}

/// A workload: instances of one program. Without a `command` it is external: its instances are started
/// by the user (`meshlens proxy --workload … --control …` registers them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workload {
    pub name: String,
    #[serde(default = "crate::discovery::default_namespace")]
    pub namespace: String,
    #[serde(default = "one")]
    pub replicas: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    /// The app's port; absent or 0: `up` picks a free port per instance and passes it as `PORT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Services this workload calls (`name` or `name.namespace`, optional `:port`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
    /// Labels of the workload and its instances (as pod labels), matched by `-l/--selector`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

/// How an instance is started: an argv list, or one string run by `sh -c`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Command {
    Argv(Vec<String>),
    Shell(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshService {
    pub name: String,
    #[serde(default = "crate::discovery::default_namespace")]
    pub namespace: String,
    /// The workload (in the same namespace) whose instances back this service.
    pub workload: String,
    #[serde(default = "eighty")]
    pub port: u16,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opaque_ports: Vec<u16>,
    /// Per-endpoint circuit breaking for this service (off when absent; `{}` takes the defaults).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<crate::discovery::CircuitBreaker>,
    /// Labels of the service, matched by `-l/--selector`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn eighty() -> u16 {
    80
}
