//! The store: snapshots from config + registrations, versions, leases (paused clock), the restart rule.

use std::time::Duration;

use super::*;
use crate::meshdir::tests::MESH;
use meshlens_testkit::{TempDir, registration as reg};

const TTL: Duration = Duration::from_secs(10);

fn config() -> MeshConfig {
    let dir = TempDir::new("store");
    dir.write("mesh.yaml", MESH);
    crate::meshdir::load(dir.path()).unwrap()
}

fn store(grace: Duration) -> Store {
    let timing = LeaseTiming { ttl: TTL, renew: Duration::from_secs(3), grace };
    Store::new(config(), timing, Arc::new(Metrics::new()))
}

fn endpoints(s: &Store, service: &str) -> Vec<String> {
    let p = s.current();
    let svc = p.snapshot.services.iter().find(|x| x.name == service).unwrap();
    svc.endpoints.iter().map(|e| e.address.to_string()).collect()
}

#[tokio::test(start_paused = true)]
async fn snapshot_lists_services_with_the_inbound_addresses_of_their_instances() {
    let s = store(Duration::ZERO);
    let first = s.current();
    assert!(first.complete);
    assert_eq!(first.snapshot.services.len(), 3);
    assert!(first.snapshot.services.iter().all(|x| x.endpoints.is_empty()));

    let mut r = reg("orders", "orders-1", "0.0.0.0:4143");
    r.labels.insert("zone".into(), "a".into());
    r.labels.insert("pod".into(), "spoofed".into());
    let lease = s.register(r).unwrap();
    assert_eq!(lease, Lease { ttl_ms: 10_000, renew_ms: 3_000, tap_token: Some(s.tap_token("prod", "orders-1")) });
    assert_ne!(
        s.tap_token("prod", "orders-1"),
        s.tap_token("prod", "orders-0"),
        "every instance has its own tap token"
    );
    s.register(reg("orders", "orders-0", "127.0.0.2:4143")).unwrap();
    s.register(reg("web", "web-0", "127.0.0.3:4143")).unwrap();
    let mut outbound_only = reg("orders", "orders-9", "127.0.0.9:1");
    outbound_only.inbound = None;
    s.register(outbound_only).unwrap();

    assert_eq!(endpoints(&s, "orders"), ["127.0.0.2:4143", "127.0.0.1:4143"]);
    assert_eq!(endpoints(&s, "web"), ["127.0.0.3:4143"]);
    assert!(endpoints(&s, "orders-v2").is_empty());
    let p = s.current();
    let orders = p.snapshot.services.iter().find(|x| x.name == "orders").unwrap();
    assert_eq!(orders.namespace, "prod");
    assert_eq!(orders.ports, [ServicePort { port: 80, target_port: None, opaque: false }]);
    let labels: Vec<_> = orders.endpoints[1].labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    assert_eq!(labels, ["deployment=orders", "namespace=prod", "pod=orders-1", "service=orders", "zone=a"]);

    // The line is the serialized watch event of exactly this version.
    let ev: WatchEvent = serde_json::from_slice(&p.line).unwrap();
    assert_eq!(ev, WatchEvent::Snapshot { complete: true, snapshot: (*p.snapshot).clone() });
    assert!(p.line.ends_with(b"\n") && !p.line[..p.line.len() - 1].contains(&b'\n'));
}

#[tokio::test(start_paused = true)]
async fn versions_bump_on_changes_only_and_are_shared() {
    let s = store(Duration::ZERO);
    let v0 = s.current().version;
    assert!(v0 > 1_600_000_000_000, "the first version is the start time in ms: {v0}");
    let mut rx1 = s.subscribe();
    let mut rx2 = s.subscribe();
    s.register(reg("orders", "orders-0", "127.0.0.1:4143")).unwrap();
    assert_eq!(s.current().version, v0 + 1);
    // A renewal with the same data changes nothing.
    s.register(reg("orders", "orders-0", "127.0.0.1:4143")).unwrap();
    s.sweep();
    assert_eq!(s.current().version, v0 + 1);
    // A workload mesh.yaml does not declare cannot register, and changes nothing.
    let refused = s.register(reg("batch", "batch-0", "127.0.0.1:4999")).unwrap_err();
    assert_eq!(refused, "workload 'batch' is not declared in namespace 'prod' (mesh.yaml)");
    assert_eq!(s.current().version, v0 + 1);
    assert!(rx1.has_changed().unwrap());
    let a = rx1.borrow_and_update().clone();
    let b = rx2.borrow_and_update().clone();
    assert!(Arc::ptr_eq(&a, &b), "every watcher shares one serialized version");
    assert_eq!(a.snapshot.version, v0 + 1);
    assert!(s.deregister("prod", "orders-0"));
    assert!(!s.deregister("prod", "orders-0"));
    assert_eq!(s.current().version, v0 + 2);
    assert!(endpoints(&s, "orders").is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_lapsed_lease_removes_the_endpoint() {
    let s = store(Duration::ZERO);
    s.register(reg("orders", "orders-0", "127.0.0.1:4143")).unwrap();
    s.register(reg("orders", "orders-1", "127.0.0.1:4144")).unwrap();
    tokio::time::advance(Duration::from_secs(6)).await;
    s.register(reg("orders", "orders-1", "127.0.0.1:4144")).unwrap(); // renewed
    tokio::time::advance(Duration::from_millis(3_900)).await;
    s.sweep();
    assert_eq!(endpoints(&s, "orders").len(), 2, "9.9 s after its last renewal the lease still holds");
    let before = s.current().version;
    tokio::time::advance(Duration::from_millis(100)).await;
    s.sweep();
    assert_eq!(endpoints(&s, "orders"), ["127.0.0.1:4144"]);
    assert_eq!(s.current().version, before + 1);
    assert_eq!(s.status().proxies, 1);
    assert_eq!(s.metrics.lease_expirations.load(std::sync::atomic::Ordering::Relaxed), 1);
    tokio::time::advance(Duration::from_secs(6)).await;
    s.sweep();
    assert!(endpoints(&s, "orders").is_empty());
}

#[tokio::test(start_paused = true)]
async fn after_a_restart_removals_are_withheld_for_two_lease_periods() {
    let s = store(2 * TTL);
    assert!(!s.current().complete);
    s.register(reg("orders", "orders-0", "127.0.0.1:4143")).unwrap();
    let p = s.current();
    assert!(!p.complete);
    assert!(std::str::from_utf8(&p.line).unwrap().starts_with(r#"{"type":"snapshot","complete":false,"#));
    tokio::time::advance(Duration::from_secs(15)).await;
    s.sweep();
    assert_eq!(endpoints(&s, "orders"), ["127.0.0.1:4143"], "lapsed, but withheld during the grace period");
    assert!(!s.current().complete);
    let before = s.current().version;
    tokio::time::advance(Duration::from_secs(5)).await;
    s.sweep();
    let p = s.current();
    assert!(p.complete);
    assert!(endpoints(&s, "orders").is_empty(), "removed once the grace period is over");
    assert_eq!(p.version, before + 1);
}

#[tokio::test(start_paused = true)]
async fn the_grace_period_ending_alone_publishes_a_complete_version() {
    let s = store(2 * TTL);
    let before = s.current().version;
    tokio::time::advance(2 * TTL).await;
    s.sweep();
    assert!(s.current().complete);
    assert_eq!(s.current().version, before + 1);
}

#[tokio::test(start_paused = true)]
async fn rejected_configs_keep_the_last_good_state_and_say_so() {
    let s = store(Duration::ZERO);
    let v0 = s.current().version;
    let dir = TempDir::new("store-bad");
    dir.write("mesh.yaml", &MESH.replace("      workload: web\n", "      workload: nope\n"));
    let errors = crate::meshdir::load(dir.path()).unwrap_err();
    s.config_loaded(Err(errors));
    let st = s.status();
    assert!(!st.reload.ok);
    assert_eq!(
        st.reload.error.as_deref(),
        Some("mesh.yaml:19: spec.services[0].workload: no workload 'nope' is declared in namespace 'prod'")
    );
    assert_eq!(st.reload.rejected, 1);
    assert_eq!(st.version, v0);
    assert!(!s.metrics.config_valid.load(std::sync::atomic::Ordering::Relaxed));

    // Fixed: a valid config with one service less.
    dir.write(
        "mesh.yaml",
        &MESH.replace("    - name: orders-v2\n      namespace: prod\n      workload: orders-v2\n", ""),
    );
    let mut configs = s.configs();
    s.config_loaded(crate::meshdir::load(dir.path()));
    let st = s.status();
    assert!(st.reload.ok && st.reload.error.is_none() && st.reload.errors.is_empty());
    assert_eq!(st.reload.accepted, 1);
    assert_eq!(st.version, v0 + 1);
    assert_eq!(st.services, 2);
    assert!(configs.has_changed().unwrap());
    assert_eq!(configs.borrow_and_update().mesh.spec.services.len(), 2);
    // The same config again: no new version.
    s.config_loaded(crate::meshdir::load(dir.path()));
    assert_eq!(s.current().version, v0 + 1);
}

#[test]
fn registrations_are_checked() {
    let bad = |f: &dyn Fn(&mut Registration)| {
        let mut r = reg("orders", "orders-0", "127.0.0.1:4143");
        f(&mut r);
        check_registration(&r, false).unwrap_err()
    };
    assert_eq!(bad(&|r| r.workload = "Orders".into()), "workload: 'Orders' is not a valid workload name");
    assert_eq!(bad(&|r| r.namespace = String::new()), "namespace: '' is not a valid namespace name");
    assert_eq!(
        bad(&|r| r.instance = "a b".into()),
        "instance: 'a b' is not a valid instance name (lowercase letters, digits, '-' and '.')"
    );
    assert_eq!(
        bad(&|r| r.inbound = Some("0.0.0.0:0".parse().unwrap())),
        "inbound: 0.0.0.0:0 has port 0 (register the bound address)"
    );
    assert_eq!(
        bad(&|r| {
            r.labels.insert("a-b".into(), "x".into());
        }),
        "labels.a-b: not a valid label name (letters, digits and '_')"
    );
    assert_eq!(
        bad(&|r| r.admin = "10.1.2.3:4191".parse().unwrap()),
        "admin: 10.1.2.3:4191 is not a loopback address (local mode serves this host only; \
         mesh.yaml's spec.remoteEndpoints: true allows others)"
    );
    // A mesh that declares instances on other hosts accepts their addresses.
    let mut remote = reg("orders", "orders-0", "10.1.2.3:4143");
    remote.admin = "10.1.2.3:4191".parse().unwrap();
    assert_eq!(check_registration(&remote, true), Ok(()));
    assert_eq!(
        bad(&|r| r.labels = (0..33).map(|i| (format!("l{i}"), String::new())).collect()),
        "labels: 33 labels, at most 32 are allowed"
    );
    assert_eq!(
        bad(&|r| {
            r.labels.insert("big".into(), "x".repeat(257));
        }),
        "labels.big: names and values are at most 256 bytes"
    );
}

#[tokio::test(start_paused = true)]
async fn resources_list_workloads_with_instances() {
    let s = store(Duration::ZERO);
    s.register(reg("orders", "orders-0", "0.0.0.0:4143")).unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    let r = s.resources();
    assert_eq!(r.namespaces, ["default", "prod"]);
    let orders = r.workloads.iter().find(|w| w.name == "orders").unwrap();
    assert!(orders.declared && orders.external);
    assert_eq!(orders.replicas, Some(2));
    assert_eq!(orders.instances.len(), 1);
    assert_eq!(orders.instances[0].last_renewal_ms, 2000);
    assert_eq!(orders.instances[0].lease_expires_in_ms, 8000);
    let svc = r.services.iter().find(|x| x.name == "orders").unwrap();
    assert_eq!(svc.fqdn, "orders.prod.svc.cluster.local");
    assert_eq!(svc.workload, "orders");
    assert_eq!(svc.endpoints[0].address.to_string(), "127.0.0.1:4143");
}
