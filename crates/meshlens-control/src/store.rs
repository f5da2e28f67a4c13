//! The store: the last good mesh configuration plus live registrations, turned into versioned discovery
//! snapshots. Each version is serialized once (as its NDJSON watch line) and shared by every watcher
//! through a `tokio::sync::watch` channel, so a slow reader gets the latest version, never a queue.
//!
//! Restart rule: for `grace` (two lease periods) after start, snapshots say `complete: false` and lapsed
//! leases are not removed, so no proxy sees an endpoint set shrink only because peers have not
//! re-registered yet.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use meshlens_api::control::{Lease, Registration, WatchEvent};
use meshlens_api::discovery::{Endpoint, Service, ServicePort, Snapshot, is_dns_label};
use meshlens_api::profile::TrafficSplit;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::api_types::{
    InstanceResource, ProfileResource, ReloadStatus, Resources, ServiceResource, Status, TrafficSplitResource,
    WorkloadResource,
};
use crate::auth::TapKey;
use crate::clock;
use crate::meshdir::{ConfigErrors, MeshConfig};
use crate::metrics::{Gauges, Metrics};
use crate::validate::DEFAULT_NAMESPACE;

/// One version of the discovery state, ready to send.
#[derive(Debug)]
pub struct Published {
    pub version: u64,
    /// False while a (re)started control plane withholds endpoint removals.
    pub complete: bool,
    pub snapshot: Arc<Snapshot>,
    /// `{"type":"snapshot","complete":…,"snapshot":{…}}\n`, serialized once for all watchers.
    pub line: Bytes,
}

/// Lease and restart timing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LeaseTiming {
    pub ttl: Duration,
    pub renew: Duration,
    /// How long after start removals are withheld.
    pub grace: Duration,
}

/// A live registration.
#[derive(Clone, Debug)]
struct Proxy {
    reg: Registration,
    registered: Instant,
    renewed: Instant,
}

/// The mesh directory source's state.
#[derive(Clone, Debug)]
struct ReloadState {
    ok: bool,
    errors: Vec<String>,
    since: SystemTime,
    loaded_at: SystemTime,
    last_attempt: SystemTime,
    accepted: u64,
    rejected: u64,
}

struct State {
    config: Arc<MeshConfig>,
    /// (namespace, instance) → proxy
    proxies: BTreeMap<(String, String), Proxy>,
    reload: ReloadState,
    last: Arc<Published>,
}

/// Desired state + registrations → snapshots. Shared by the API, the lease sweeper and the reloader.
pub(crate) struct Store {
    state: Mutex<State>,
    published: watch::Sender<Arc<Published>>,
    configs: watch::Sender<Arc<MeshConfig>>,
    timing: LeaseTiming,
    started: Instant,
    started_wall: SystemTime,
    metrics: Arc<Metrics>,
    /// Derives the bearer token each proxy's tap listener accepts (handed out in its lease); new at every start.
    tap_key: TapKey,
}

impl Store {
    /// A store serving `config`. The first version is the start time in Unix milliseconds, so versions
    /// keep increasing across control-plane restarts.
    pub fn new(config: MeshConfig, timing: LeaseTiming, metrics: Arc<Metrics>) -> Self {
        let now = SystemTime::now();
        let started = Instant::now();
        let config = Arc::new(config);
        let complete = timing.grace.is_zero();
        let snapshot = build_snapshot(&config, &BTreeMap::new(), clock::unix_ms(now).max(1));
        let last = Arc::new(publish(snapshot, complete));
        let state = State {
            config: config.clone(),
            proxies: BTreeMap::new(),
            reload: ReloadState {
                ok: true,
                errors: Vec::new(),
                since: now,
                loaded_at: now,
                last_attempt: now,
                accepted: 0,
                rejected: 0,
            },
            last: last.clone(),
        };
        metrics.config_valid.store(true, std::sync::atomic::Ordering::Relaxed);
        Store {
            state: Mutex::new(state),
            published: watch::Sender::new(last),
            configs: watch::Sender::new(config),
            timing,
            started,
            started_wall: now,
            metrics,
            tap_key: TapKey::generate(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watches published versions (the receiver starts at the current one).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Published>> {
        self.published.subscribe()
    }

    /// The version served now.
    pub fn current(&self) -> Arc<Published> {
        self.lock().last.clone()
    }

    /// Watches the configuration serving now (changes only on accepted reloads).
    pub fn configs(&self) -> watch::Receiver<Arc<MeshConfig>> {
        self.configs.subscribe()
    }

    /// The lease timing (without a tap token).
    pub fn lease(&self) -> Lease {
        Lease {
            ttl_ms: self.timing.ttl.as_millis() as u64,
            renew_ms: self.timing.renew.as_millis() as u64,
            tap_token: None,
        }
    }

    /// The token this control plane presents to one proxy's tap listener (and hands it in its lease).
    pub fn tap_token(&self, namespace: &str, instance: &str) -> String {
        self.tap_key.token(namespace, instance)
    }

    fn complete(&self, now: Instant) -> bool {
        now >= self.started + self.timing.grace
    }

    /// Builds the snapshot of the current state and publishes it as a new version if anything changed.
    fn republish(&self, st: &mut State, now: Instant) {
        let complete = self.complete(now);
        let snapshot = build_snapshot(&st.config, &st.proxies, st.last.version);
        if complete == st.last.complete && snapshot == *st.last.snapshot {
            return;
        }
        let snapshot = Snapshot { version: st.last.version + 1, ..snapshot };
        let published = Arc::new(publish(snapshot, complete));
        tracing::debug!(version = published.version, complete, "publishing a new snapshot");
        st.last = published.clone();
        self.published.send_replace(published);
    }

    /// Registers or renews a proxy; the reason when the registration is invalid or its workload is not
    /// declared in mesh.yaml. The lease carries the instance's tap token.
    pub fn register(&self, reg: Registration) -> Result<Lease, String> {
        let now = Instant::now();
        let mut st = self.lock();
        let remote_ok = st.config.mesh.spec.remote_endpoints;
        let checked = check_registration(&reg, remote_ok).and_then(|()| {
            let declared =
                st.config.mesh.spec.workloads.iter().any(|w| w.name == reg.workload && w.namespace == reg.namespace);
            match declared {
                true => Ok(()),
                false => Err(format!(
                    "workload '{}' is not declared in namespace '{}' (mesh.yaml)",
                    reg.workload, reg.namespace
                )),
            }
        });
        if let Err(e) = checked {
            Metrics::inc(&self.metrics.registrations_rejected);
            return Err(e);
        }
        Metrics::inc(&self.metrics.registrations_ok);
        let lease = Lease { tap_token: Some(self.tap_token(&reg.namespace, &reg.instance)), ..self.lease() };
        let key = (reg.namespace.clone(), reg.instance.clone());
        match st.proxies.get_mut(&key) {
            Some(p) => {
                if p.reg != reg {
                    tracing::info!(namespace = %reg.namespace, instance = %reg.instance, workload = %reg.workload, "proxy re-registered with changes");
                }
                p.reg = reg;
                p.renewed = now;
            }
            None => {
                tracing::info!(
                    namespace = %reg.namespace,
                    instance = %reg.instance,
                    workload = %reg.workload,
                    inbound = %reg.inbound.map_or_else(|| "none".to_string(), |a| a.to_string()),
                    "proxy registered"
                );
                st.proxies.insert(key, Proxy { reg, registered: now, renewed: now });
            }
        }
        self.republish(&mut st, now);
        Ok(lease)
    }

    /// Removes a proxy at once (a clean exit). False if it was not registered.
    pub fn deregister(&self, namespace: &str, instance: &str) -> bool {
        let now = Instant::now();
        let mut st = self.lock();
        let removed = st.proxies.remove(&(namespace.to_string(), instance.to_string())).is_some();
        if removed {
            Metrics::inc(&self.metrics.deregistrations);
            tracing::info!(%namespace, %instance, "proxy deregistered");
            self.republish(&mut st, now);
        }
        removed
    }

    /// Removes lapsed registrations (not while removals are withheld after start) and ends the restart
    /// grace period. Called every second.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut st = self.lock();
        if self.complete(now) {
            let ttl = self.timing.ttl;
            let lapsed: Vec<_> =
                st.proxies.iter().filter(|(_, p)| now >= p.renewed + ttl).map(|(k, _)| k.clone()).collect();
            for key in lapsed {
                if let Some(p) = st.proxies.remove(&key) {
                    Metrics::inc(&self.metrics.lease_expirations);
                    tracing::warn!(
                        namespace = %key.0,
                        instance = %key.1,
                        workload = %p.reg.workload,
                        since_renewal_ms = (now - p.renewed).as_millis() as u64,
                        "lease lapsed: proxy removed"
                    );
                }
            }
        }
        self.republish(&mut st, now);
    }

    /// Applies the result of reading the mesh directory: a valid one replaces the configuration, an invalid
    /// one is rejected as a whole and the last good configuration keeps serving.
    pub fn config_loaded(&self, result: Result<MeshConfig, ConfigErrors>) {
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut st = self.lock();
        st.reload.last_attempt = wall;
        match result {
            Ok(config) => {
                Metrics::inc(&self.metrics.reloads_ok);
                self.metrics.config_valid.store(true, std::sync::atomic::Ordering::Relaxed);
                if !st.reload.ok {
                    st.reload.since = wall;
                    tracing::info!("mesh directory is valid again: the rejected change is fixed");
                }
                st.reload.ok = true;
                st.reload.errors.clear();
                st.reload.accepted += 1;
                st.reload.loaded_at = wall;
                if *st.config != config {
                    let config = Arc::new(config);
                    st.config = config.clone();
                    self.configs.send_replace(config);
                    self.republish(&mut st, now);
                    tracing::info!(version = st.last.version, "mesh directory reloaded");
                } else {
                    tracing::debug!("mesh directory read again: no change");
                }
            }
            Err(errors) => {
                Metrics::inc(&self.metrics.reloads_rejected);
                self.metrics.config_valid.store(false, std::sync::atomic::Ordering::Relaxed);
                if st.reload.ok {
                    st.reload.since = wall;
                }
                st.reload.ok = false;
                st.reload.errors = errors.lines();
                st.reload.rejected += 1;
                tracing::error!(
                    errors = %errors,
                    count = errors.0.len(),
                    version = st.last.version,
                    "mesh directory change rejected: keeping the last good configuration"
                );
            }
        }
    }

    pub fn gauges(&self) -> Gauges {
        let st = self.lock();
        Gauges {
            version: st.last.version,
            complete: st.last.complete,
            proxies: st.proxies.len(),
            uptime_seconds: self.started.elapsed().as_secs_f64(),
        }
    }

    pub fn status(&self) -> Status {
        let st = self.lock();
        let r = &st.reload;
        Status {
            version: st.last.version,
            complete: st.last.complete,
            mesh_dir: st.config.dir.display().to_string(),
            started_at: clock::rfc3339(self.started_wall),
            uptime_seconds: (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
            reload: ReloadStatus {
                ok: r.ok,
                error: (!r.ok).then(|| r.errors.join("\n")),
                errors: r.errors.clone(),
                since: clock::rfc3339(r.since),
                loaded_at: clock::rfc3339(r.loaded_at),
                last_attempt: clock::rfc3339(r.last_attempt),
                accepted: r.accepted,
                rejected: r.rejected,
                skipped: st.config.skipped.clone(),
            },
            proxies: st.proxies.len(),
            watchers: self.metrics.watchers.load(std::sync::atomic::Ordering::Relaxed),
            services: st.last.snapshot.services.len(),
            profiles: st.config.profiles.len(),
            traffic_splits: st.config.traffic_splits.len(),
            lease: self.lease(),
        }
    }

    pub fn resources(&self) -> Resources {
        let now = Instant::now();
        let st = self.lock();
        let spec = &st.config.mesh.spec;
        let instance = |p: &Proxy| InstanceResource {
            instance: p.reg.instance.clone(),
            inbound: p.reg.inbound,
            admin: p.reg.admin,
            tap: p.reg.tap,
            app: p.reg.app,
            labels: p.reg.labels.clone(),
            last_renewal_ms: (now - p.renewed).as_millis() as u64,
            registered_ms: (now - p.registered).as_millis() as u64,
            lease_expires_in_ms: (p.renewed + self.timing.ttl).saturating_duration_since(now).as_millis() as u64,
        };
        let mut workloads: Vec<WorkloadResource> = spec
            .workloads
            .iter()
            .map(|w| WorkloadResource {
                namespace: w.namespace.clone(),
                name: w.name.clone(),
                declared: true,
                replicas: Some(w.replicas),
                external: w.command.is_none(),
                command: w.command.clone(),
                port: w.port,
                calls: w.calls.clone(),
                labels: w.labels.clone(),
                instances: st
                    .proxies
                    .values()
                    .filter(|p| p.reg.namespace == w.namespace && p.reg.workload == w.name)
                    .map(instance)
                    .collect(),
            })
            .collect();
        for p in st.proxies.values() {
            let declared = spec.workloads.iter().any(|w| w.namespace == p.reg.namespace && w.name == p.reg.workload);
            if declared {
                continue;
            }
            match workloads
                .iter_mut()
                .find(|w| !w.declared && w.namespace == p.reg.namespace && w.name == p.reg.workload)
            {
                Some(w) => w.instances.push(instance(p)),
                None => workloads.push(WorkloadResource {
                    namespace: p.reg.namespace.clone(),
                    name: p.reg.workload.clone(),
                    declared: false,
                    replicas: None,
                    external: true,
                    command: None,
                    port: None,
                    calls: Vec::new(),
                    labels: BTreeMap::new(),
                    instances: vec![instance(p)],
                }),
            }
        }
        let mut namespaces = spec.namespaces.clone();
        if !namespaces.iter().any(|n| n == DEFAULT_NAMESPACE) {
            namespaces.insert(0, DEFAULT_NAMESPACE.to_string());
        }
        let domain = &st.last.snapshot.cluster_domain;
        Resources {
            version: st.last.version,
            cluster_domain: domain.clone(),
            namespaces,
            workloads,
            services: spec
                .services
                .iter()
                .zip(st.last.snapshot.services.iter())
                .map(|(m, s)| ServiceResource {
                    namespace: s.namespace.clone(),
                    name: s.name.clone(),
                    workload: m.workload.clone(),
                    fqdn: format!("{}.{}.svc.{domain}", s.name, s.namespace),
                    ports: s.ports.clone(),
                    endpoints: s.endpoints.clone(),
                    labels: m.labels.clone(),
                })
                .collect(),
            profiles: st
                .config
                .profiles
                .iter()
                .map(|p| ProfileResource { source: p.origin(), profile: p.value.clone() })
                .collect(),
            traffic_splits: st
                .config
                .traffic_splits
                .iter()
                .map(|t| TrafficSplitResource { source: t.origin(), traffic_split: t.value.clone() })
                .collect(),
        }
    }
}

fn publish(snapshot: Snapshot, complete: bool) -> Published {
    let version = snapshot.version;
    let event = WatchEvent::Snapshot { complete, snapshot };
    let mut line = serde_json::to_vec(&event).expect("a snapshot always serializes");
    line.push(b'\n');
    let WatchEvent::Snapshot { snapshot, .. } = event else { unreachable!() };
    Published { version, complete, snapshot: Arc::new(snapshot), line: Bytes::from(line) }
}

/// The discovery snapshot of a configuration and a set of live registrations.
fn build_snapshot(config: &MeshConfig, proxies: &BTreeMap<(String, String), Proxy>, version: u64) -> Snapshot {
    let spec = &config.mesh.spec;
    let services = spec
        .services
        .iter()
        .map(|s| Service {
            name: s.name.clone(),
            namespace: s.namespace.clone(),
            ports: vec![ServicePort { port: s.port, target_port: None, opaque: s.opaque_ports.contains(&s.port) }],
            virtual_ips: Vec::new(),
            endpoints: proxies
                .values()
                .filter(|p| p.reg.namespace == s.namespace && p.reg.workload == s.workload)
                .filter_map(|p| {
                    let address = reachable(p.reg.inbound?);
                    let mut labels = p.reg.labels.clone();
                    labels.insert("namespace".into(), p.reg.namespace.clone());
                    labels.insert("deployment".into(), p.reg.workload.clone());
                    labels.insert("pod".into(), p.reg.instance.clone());
                    labels.insert("service".into(), s.name.clone());
                    Some(Endpoint { address, labels })
                })
                .collect(),
            circuit_breaker: s.circuit_breaker.clone(),
            workload: Some(s.workload.clone()),
        })
        .collect();
    Snapshot {
        version,
        cluster_domain: spec.cluster_domain.clone(),
        services,
        profiles: config.profiles.iter().map(|p| p.value.clone()).collect(),
        traffic_splits: config.traffic_splits.iter().map(|t| without_zero_weights(&t.value)).collect(),
    }
}

/// A split as proxies get it: zero-weight backends (which may name no service) left out, as Linkerd's
/// proxy drops them.
fn without_zero_weights(split: &TrafficSplit) -> TrafficSplit {
    let mut split = split.clone();
    split.spec.backends.retain(|b| b.weight.milli_value() != Some(0));
    split
}

/// A listener bound to the unspecified address is reached on loopback.
pub(crate) fn reachable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port()),
        _ => addr,
    }
}

/// What a registration must satisfy; the message names the field.
/// How many labels a registration may carry, and how long each name and value may be.
const MAX_LABELS: usize = 32;
const MAX_LABEL_BYTES: usize = 256;

fn check_registration(reg: &Registration, remote_ok: bool) -> Result<(), String> {
    if !is_dns_label(&reg.workload) {
        return Err(format!("workload: '{}' is not a valid workload name", reg.workload));
    }
    if !is_dns_label(&reg.namespace) {
        return Err(format!("namespace: '{}' is not a valid namespace name", reg.namespace));
    }
    let instance_ok =
        !reg.instance.is_empty() && reg.instance.len() <= 253 && reg.instance.split('.').all(is_dns_label);
    if !instance_ok {
        return Err(format!(
            "instance: '{}' is not a valid instance name (lowercase letters, digits, '-' and '.')",
            reg.instance
        ));
    }
    let ports = [("inbound", reg.inbound), ("admin", Some(reg.admin)), ("tap", Some(reg.tap)), ("app", reg.app)];
    for (field, addr) in ports {
        if let Some(addr) = addr
            && addr.port() == 0
        {
            return Err(format!("{field}: {addr} has port 0 (register the bound address)"));
        }
        // Local mode: every process of the mesh runs on this host (docs/security.md) unless mesh.yaml sets
        // `spec.remoteEndpoints`; a wildcard bind address is reached on loopback.
        if let Some(addr) = addr
            && !(remote_ok || addr.ip().is_loopback() || addr.ip().is_unspecified())
        {
            return Err(format!(
                "{field}: {addr} is not a loopback address (local mode serves this host only; \
                 mesh.yaml's spec.remoteEndpoints: true allows others)"
            ));
        }
    }
    if reg.labels.len() > MAX_LABELS {
        return Err(format!("labels: {} labels, at most {MAX_LABELS} are allowed", reg.labels.len()));
    }
    for (key, value) in &reg.labels {
        if key.len() > MAX_LABEL_BYTES || value.len() > MAX_LABEL_BYTES {
            return Err(format!("labels.{key:.64}: names and values are at most {MAX_LABEL_BYTES} bytes"));
        }
        let mut b = key.bytes();
        let ok = matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
            && b.all(|c| c.is_ascii_alphanumeric() || c == b'_');
        if !ok {
            return Err(format!("labels.{key}: not a valid label name (letters, digits and '_')"));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
