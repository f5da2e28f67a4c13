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
