//! JSON shapes of the control plane's CLI/dashboard API (`/api/v1/status`, `/api/v1/resources`, errors).
//!
//! They belong in `meshlens-api` once the CLI uses them; they live here until then.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use meshlens_api::control::Lease;
use meshlens_api::discovery::{Endpoint, ServicePort};
use meshlens_api::mesh::Command;
use meshlens_api::profile::{ServiceProfile, TrafficSplit};
use serde::{Deserialize, Serialize};

/// `GET /api/v1/status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// The version of the snapshot served now.
    pub version: u64,
    /// False during the first two lease periods after a start (endpoint removals are withheld).
    pub complete: bool,
    pub mesh_dir: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub uptime_seconds: f64,
    pub reload: ReloadStatus,
    /// Live registrations.
    pub proxies: usize,
    /// Open watch streams.
    pub watchers: u64,
    pub services: usize,
    pub profiles: usize,
    pub traffic_splits: usize,
    pub lease: Lease,
}

/// The state of the mesh directory source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadStatus {
    /// False while the directory on disk is invalid (the last good configuration keeps serving).
    pub ok: bool,
    /// Every error of the rejected directory, one `file:line: field: message` per line; null while ok.
    pub error: Option<String>,
    /// The same errors as a list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// Since when `ok` has had its value (RFC 3339): the first rejection of a streak, or the load that fixed it.
    pub since: String,
    /// When the configuration serving now was loaded (RFC 3339).
    pub loaded_at: String,
    /// When the directory was last read (RFC 3339).
    pub last_attempt: String,
    /// Reloads accepted and rejected since start (the initial load not counted).
    pub accepted: u64,
    pub rejected: u64,
    /// The documents of the configuration serving now that were skipped (kinds outside the mesh), one
    /// `file:line: skipped Kind 'name' (apiVersion): why` per line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// `GET /api/v1/resources`: what the mesh holds now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resources {
    pub version: u64,
    pub cluster_domain: String,
    /// Declared namespaces (`default` included).
    pub namespaces: Vec<String>,
    pub workloads: Vec<WorkloadResource>,
    pub services: Vec<ServiceResource>,
    pub profiles: Vec<ProfileResource>,
    pub traffic_splits: Vec<TrafficSplitResource>,
}

/// A workload and its live instances.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadResource {
    pub namespace: String,
    pub name: String,
    /// False for a workload that registered proxies but is not in mesh.yaml.
    pub declared: bool,
    /// Declared replicas (null when undeclared).
    pub replicas: Option<u32>,
    /// No command: its instances are started by the user.
    pub external: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
    /// Declared labels (mesh.yaml); every instance has them too.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    pub instances: Vec<InstanceResource>,
}

/// One registered proxy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceResource {
    pub instance: String,
    pub inbound: Option<SocketAddr>,
    pub admin: SocketAddr,
    pub tap: SocketAddr,
    pub app: Option<SocketAddr>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Milliseconds since the last renewal.
    pub last_renewal_ms: u64,
    /// Milliseconds since the first registration.
    pub registered_ms: u64,
    /// Milliseconds until the lease lapses (0 when lapsed but withheld after a restart).
    pub lease_expires_in_ms: u64,
}

/// A service with its endpoints as proxies see them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceResource {
    pub namespace: String,
    pub name: String,
    pub workload: String,
    /// `name.namespace.svc.<clusterDomain>`.
    pub fqdn: String,
    pub ports: Vec<ServicePort>,
    pub endpoints: Vec<Endpoint>,
    /// Declared labels (mesh.yaml).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A ServiceProfile and where it was read (`file:line`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileResource {
    pub source: String,
    pub profile: ServiceProfile,
}

/// A TrafficSplit and where it was read (`file:line`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficSplitResource {
    pub source: String,
    pub traffic_split: TrafficSplit,
}

/// The body of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
}
