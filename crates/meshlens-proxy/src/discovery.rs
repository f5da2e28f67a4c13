//! Discovery: the last snapshot the proxy received (from a file now, the control plane later) and the
//! lookup from a request's authority to a mesh service port.
//!
//! The proxy never waits on discovery to serve a request it can already route: lookups read the current
//! snapshot from an [`ArcSwap`], and a new snapshot replaces it whole only once it is valid.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use meshlens_api::{Authority, Endpoint, Snapshot, authority::canonical};

/// A service port that a request resolved to.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePortRef {
    pub name: String,
    pub namespace: String,
    pub port: u16,
    /// `name.namespace.svc.<domain>:port`, used in metrics, tap and logs.
    pub canonical: String,
    pub opaque: bool,
    pub endpoints: Vec<Endpoint>,
    /// The service's ServiceProfile (named by its FQDN), if any.
    pub profile: Option<meshlens_api::profile::ServiceProfile>,
    /// The TrafficSplit whose apex this service is, if any.
    pub split: Option<meshlens_api::profile::TrafficSplit>,
    pub circuit_breaker: Option<meshlens_api::discovery::CircuitBreaker>,
    /// The workload the service selects, if it names one.
    pub workload: Option<String>,
}

/// The current snapshot, indexed for lookups.
#[derive(Debug, Default)]
pub struct Index {
    pub snapshot: Snapshot,
    by_name: HashMap<(String, String), usize>,
    by_vip: HashMap<SocketAddr, (usize, u16)>,
}

impl Index {
    pub fn new(snapshot: Snapshot) -> Index {
        let mut by_name = HashMap::new();
        let mut by_vip = HashMap::new();
        for (i, svc) in snapshot.services.iter().enumerate() {
            by_name.insert((svc.name.clone(), svc.namespace.clone()), i);
            for ip in &svc.virtual_ips {
                for p in &svc.ports {
                    by_vip.insert(SocketAddr::new(*ip, p.port), (i, p.port));
                }
            }
        }
        Index { snapshot, by_name, by_vip }
    }

    /// Resolves an authority (in the caller's namespace) to a declared service port, if it names one.
    pub fn resolve(&self, authority: &Authority, caller_ns: &str) -> Option<ServicePortRef> {
        if let Ok(ip) = authority.host.parse::<std::net::IpAddr>() {
            let (i, port) = *self.by_vip.get(&SocketAddr::new(ip, authority.port))?;
            return self.port_ref(i, port);
        }
        let (name, ns) = authority.service_name(caller_ns, &self.snapshot.cluster_domain)?;
        let i = *self.by_name.get(&(name.to_string(), ns.to_string()))?;
        self.port_ref(i, authority.port)
    }

    fn port_ref(&self, i: usize, port: u16) -> Option<ServicePortRef> {
        let svc = &self.snapshot.services[i];
        let sp = svc.ports.iter().find(|p| p.port == port)?;
        let endpoints = svc
            .endpoints
            .iter()
            .map(|e| {
                let mut e = e.clone();
                if let Some(tp) = sp.target_port {
                    e.address.set_port(tp);
                }
                e
            })
            .collect();
        let fqdn = format!("{}.{}.svc.{}", svc.name, svc.namespace, self.snapshot.cluster_domain);
        let profile = self.snapshot.profiles.iter().find(|p| p.metadata.name == fqdn).cloned();
        let split = self
            .snapshot
            .traffic_splits
            .iter()
            .find(|t| {
                t.metadata.namespace.as_deref().unwrap_or("default") == svc.namespace
                    && apex_name(&t.spec.service) == svc.name
            })
            .cloned();
        Some(ServicePortRef {
            name: svc.name.clone(),
            namespace: svc.namespace.clone(),
            port,
            canonical: canonical(&svc.name, &svc.namespace, &self.snapshot.cluster_domain, port),
            opaque: sp.opaque,
            endpoints,
            profile,
            split,
            circuit_breaker: svc.circuit_breaker.clone(),
            workload: svc.workload.clone(),
        })
    }
}

/// A TrafficSplit names its apex and backends by service name (`users`, or `users.prod.svc.cluster.local`).
pub fn apex_name(service: &str) -> &str {
    service.split('.').next().unwrap_or(service)
}

/// The proxy's view of the mesh, swapped atomically as a whole.
pub struct Discovery {
    current: ArcSwap<Index>,
    /// Bumped on every replacement, so targets can follow new endpoint sets.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Discovery {
    pub fn new(snapshot: Snapshot) -> Discovery {
        Discovery { current: ArcSwap::from_pointee(Index::new(snapshot)), changed: tokio::sync::watch::channel(0).0 }
    }

    /// Notified after every replacement.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub fn load(&self) -> arc_swap::Guard<Arc<Index>> {
        self.current.load()
    }

    pub fn version(&self) -> u64 {
        self.current.load().snapshot.version
    }

    /// Replaces the snapshot; callers validate first (an invalid snapshot never replaces a valid one).
    pub fn replace(&self, snapshot: Snapshot) {
        self.current.store(Arc::new(Index::new(snapshot)));
        self.changed.send_modify(|n| *n += 1);
    }
}

/// Why a discovery file was refused; the message names the file, and the line or field.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FileError(pub String);

/// Reads and validates a discovery file (YAML or JSON): the serialized [`Snapshot`].
pub fn read_file(path: &Path) -> Result<Snapshot, FileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| FileError(format!("{}: cannot read discovery file: {e}", path.display())))?;
    parse(&text, &path.display().to_string())
}

/// Parses discovery text; `origin` names the source in error messages.
pub fn parse(text: &str, origin: &str) -> Result<Snapshot, FileError> {
    let snapshot: Snapshot = if text.trim().is_empty() {
        Snapshot::default()
    } else {
        serde_saphyr::from_str(text).map_err(|e| {
            let line = e.location().map(|l| format!(":{}:{}", l.line(), l.column())).unwrap_or_default();
            let msg = e.to_string();
            let msg = msg.lines().next().unwrap_or_default();
            FileError(format!("{origin}{line}: {msg}"))
        })?
    };
    snapshot
        .validate()
        .map_err(|errs| FileError(errs.iter().map(|e| format!("{origin}: {e}")).collect::<Vec<_>>().join("\n")))?;
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "services:
  - name: users
    namespace: prod
    ports: [{port: 80}, {port: 9090, opaque: true}]
    virtualIps: [10.96.0.10]
    endpoints:
      - address: 127.0.0.1:9000
        labels: {deployment: users, pod: users-0}
";

    #[test]
    fn resolves_short_and_canonical_names_on_declared_ports_only() {
        let idx = Index::new(parse(FILE, "t.yaml").unwrap());
        let a = |s: &str| Authority::parse(s, 80).unwrap();
        let r = idx.resolve(&a("users"), "prod").unwrap();
        assert_eq!(r.canonical, "users.prod.svc.cluster.local:80");
        assert!(idx.resolve(&a("users"), "dev").is_none(), "short names resolve in the caller's namespace");
        assert!(idx.resolve(&a("users.prod.svc.cluster.local:80"), "dev").is_some());
        assert!(idx.resolve(&a("users.prod:8080"), "dev").is_none(), "undeclared port");
        assert!(idx.resolve(&a("users.prod:9090"), "dev").unwrap().opaque);
        assert_eq!(idx.resolve(&a("10.96.0.10:80"), "x").unwrap().name, "users");
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = parse("services:\n  - name: users\n    prts: []\n", "d.yaml").unwrap_err().0;
        assert!(err.starts_with("d.yaml:3:"), "{err}");
        assert!(err.contains("prts"), "{err}");
        let err = parse("services:\n  - name: Users\n    ports: [{port: 80}]\n", "d.yaml").unwrap_err().0;
        assert!(err.contains("d.yaml: services[0].name"), "{err}");
        let err = parse("services:\n  - name: users\n    ports: [{port: eighty}]\n", "d.yaml").unwrap_err().0;
        assert!(err.starts_with("d.yaml:3:"), "{err}");
    }
}
