//! The discovery snapshot: what a proxy knows about the mesh's services and their endpoints.
//!
//! The same type is read from a static discovery file (`meshlens proxy --discovery FILE`) and streamed by
//! the control plane, so a file written by hand and a control-plane update mean exactly the same thing.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::profile::{ServiceProfile, TrafficSplit};

/// Everything a proxy needs to route: the services it may resolve and their endpoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Snapshot {
    /// Monotonic version; the control plane bumps it on every change. Files may leave it at 0.
    #[serde(default)]
    pub version: u64,
    /// The cluster domain used to make authorities canonical (`svc.cluster.local` by default).
    #[serde(default = "default_cluster_domain")]
    pub cluster_domain: String,
    #[serde(default)]
    pub services: Vec<Service>,
    /// ServiceProfiles (routes, timeouts, retries, dstOverrides), validated by the control plane.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<ServiceProfile>,
    /// TrafficSplits, validated by the control plane.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traffic_splits: Vec<TrafficSplit>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            version: 0,
            cluster_domain: default_cluster_domain(),
            services: Vec::new(),
            profiles: Vec::new(),
            traffic_splits: Vec::new(),
        }
    }
}

pub fn default_cluster_domain() -> String {
    "cluster.local".to_string()
}

/// A mesh service: a name in a namespace, the ports it declares and the endpoints behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Service {
    pub name: String,
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Declared ports. A request to an undeclared port of the service does not match it.
    pub ports: Vec<ServicePort>,
    /// Virtual IPs (ClusterIP-like) that also name this service, for transparent mode.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_ips: Vec<IpAddr>,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Per-endpoint circuit breaking; off when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// The workload whose instances back the service (their endpoints carry it as the `deployment` label).
    /// Lets a proxy tell a peer that has not re-registered yet from an endpoint the configuration removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
}

/// Consecutive-failures circuit breaking for a service's endpoints (Linkerd's defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CircuitBreaker {
    /// Consecutive failures (5xx, or gRPC failures) that trip an endpoint's breaker.
    #[serde(default = "seven")]
    pub consecutive_failures: u32,
    /// First penalty (a duration string, e.g. `1s`); doubles up to `maxPenalty`.
    #[serde(default = "one_second")]
    pub min_penalty: String,
    #[serde(default = "one_minute")]
    pub max_penalty: String,
    /// Random spread of each penalty, 0..=100 (0.5 = ±50%).
    #[serde(default = "half")]
    pub jitter_ratio: f64,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        CircuitBreaker {
            consecutive_failures: seven(),
            min_penalty: one_second(),
            max_penalty: one_minute(),
            jitter_ratio: half(),
        }
    }
}

fn seven() -> u32 {
    7
}
fn one_second() -> String {
    "1s".into()
}
fn one_minute() -> String {
    "1m".into()
}
fn half() -> f64 {
    0.5
}

pub fn default_namespace() -> String {
    "default".to_string()
}

/// One declared port of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServicePort {
    pub port: u16,
    /// The port on the endpoints that this service port maps to; the endpoint's own port when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u16>,
    /// Opaque ports are forwarded as TCP without protocol detection.
    #[serde(default, skip_serializing_if = "is_false")]
    pub opaque: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One endpoint (a workload instance's inbound address) with its metadata labels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoint {
    /// Where peers connect: the instance's proxy inbound address, or the app itself when unmeshed.
    pub address: SocketAddr,
    /// Metadata such as `namespace`, `deployment`, `pod`, `service`; exported as `dst_<key>` metric labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Snapshot {
    /// The declared service port an authority names for a caller in `caller_ns`, as a proxy resolves it: a
    /// virtual IP and port, or a mesh-service-shaped name (`svc`, `svc.ns`, `svc.ns.svc[.<domain>]`) with
    /// a declared port. `None`: a proxy forwards the authority as it is (passthrough, unmeshed).
    pub fn resolve(&self, authority: &crate::Authority, caller_ns: &str) -> Option<(&Service, &ServicePort)> {
        if let Ok(ip) = authority.host.parse::<IpAddr>() {
            return self.services.iter().find_map(|s| {
                let port = s.ports.iter().find(|p| p.port == authority.port)?;
                s.virtual_ips.contains(&ip).then_some((s, port))
            });
        }
        let (name, ns) = authority.service_name(caller_ns, &self.cluster_domain)?;
        let svc = self.services.iter().find(|s| s.name == name && s.namespace == ns)?;
        Some((svc, svc.ports.iter().find(|p| p.port == authority.port)?))
    }

    /// Checks what serde cannot: names, ports and duplicates. Returns `field: message` errors.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        if self.cluster_domain.is_empty() || self.cluster_domain.split('.').any(|l| !is_dns_label(l)) {
            errors.push(format!("clusterDomain: '{}' is not a valid DNS domain", self.cluster_domain));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, svc) in self.services.iter().enumerate() {
            let at = format!("services[{i}]");
            if !is_dns_label(&svc.name) {
                errors.push(format!(
                    "{at}.name: '{}' is not a valid service name (lowercase letters, digits and '-', at most 63)",
                    svc.name
                ));
            }
            if !is_dns_label(&svc.namespace) {
                errors.push(format!("{at}.namespace: '{}' is not a valid namespace name", svc.namespace));
            }
            if !seen.insert((svc.namespace.clone(), svc.name.clone())) {
                errors.push(format!("{at}: service {}.{} is declared twice", svc.name, svc.namespace));
            }
            if svc.ports.is_empty() {
                errors.push(format!("{at}.ports: a service must declare at least one port"));
            }
            let mut ports = std::collections::BTreeSet::new();
            for (j, p) in svc.ports.iter().enumerate() {
                if p.port == 0 {
                    errors.push(format!("{at}.ports[{j}].port: 0 is not a valid port"));
                }
                if p.target_port == Some(0) {
                    errors.push(format!("{at}.ports[{j}].targetPort: 0 is not a valid port"));
                }
                if !ports.insert(p.port) {
                    errors.push(format!("{at}.ports[{j}].port: port {} is declared twice", p.port));
                }
            }
            for (j, ep) in svc.endpoints.iter().enumerate() {
                if ep.address.port() == 0 {
                    errors.push(format!("{at}.endpoints[{j}].address: port 0 is not a valid endpoint port"));
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }
}

/// RFC 1123 label: what Kubernetes accepts as a service or namespace name.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_minimal_json_and_fills_defaults() {
        let snap: Snapshot = serde_json::from_str(
            r#"{"services":[{"name":"users","ports":[{"port":80}],"endpoints":[{"address":"127.0.0.1:9000"}]}]}"#,
        )
        .unwrap();
        assert_eq!(snap.cluster_domain, "cluster.local");
        assert_eq!(snap.services[0].namespace, "default");
        assert!(snap.validate().is_ok());
    }

    #[test]
    fn resolves_like_a_proxy() {
        let snap: Snapshot = serde_json::from_str(
            r#"{"services":[{"name":"users","namespace":"prod","ports":[{"port":80}],"virtualIps":["10.0.0.7"]}]}"#,
        )
        .unwrap();
        let name = |a: &str, ns: &str| {
            snap.resolve(&crate::Authority::parse(a, 80).unwrap(), ns).map(|(s, p)| (s.name.as_str(), p.port))
        };
        assert_eq!(name("users", "prod"), Some(("users", 80)));
        assert_eq!(name("users", "dev"), None, "a short name resolves in the caller's namespace");
        assert_eq!(name("users.prod.svc.cluster.local:80", "dev"), Some(("users", 80)));
        assert_eq!(name("users.prod:8080", "prod"), None, "undeclared port");
        assert_eq!(name("10.0.0.7:80", "dev"), Some(("users", 80)));
        assert_eq!(name("example.com", "prod"), None);
    }

    #[test]
    fn rejects_unknown_fields() {
        let err = serde_json::from_str::<Snapshot>(r#"{"servces":[]}"#).unwrap_err();
        assert!(err.to_string().contains("servces"), "{err}");
    }

    #[test]
    fn validation_names_the_field() {
        let snap: Snapshot =
            serde_json::from_str(r#"{"services":[{"name":"Users","ports":[{"port":80},{"port":80}]}]}"#).unwrap();
        let errs = snap.validate().unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with("services[0].name:")), "{errs:?}");
        assert!(errs.iter().any(|e| e.starts_with("services[0].ports[1].port:")), "{errs:?}");
    }
}
