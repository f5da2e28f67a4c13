//! Hot reload: a valid edit reaches watchers within 1 s; invalid edits are rejected as a whole, named by
//! file and line, while watchers keep the last good version.

use std::time::{Duration, Instant};

use meshlens_testkit::assert_eventually;

use crate::support::*;

const WITH_PAYMENTS: &str = "    - name: payments\n      namespace: prod\n      workload: orders\n";

#[tokio::test]
async fn a_file_edit_reaches_a_watcher_within_a_second() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let w = Watcher::start(cp.addr()).await;
    assert_eventually!(w.snapshots().len() == 1);

    for round in 0..3 {
        let before = w.snapshots().len();
        let edited = Instant::now();
        match round {
            0 => dir.replace("mesh.yaml", &format!("{MESH}{WITH_PAYMENTS}")),
            1 => dir.replace("profiles/orders.yaml", PROFILE),
            _ => dir.replace("profiles/orders.yaml", &PROFILE.replace("300ms", "2s")),
        }
        assert_eventually!(
            w.snapshots().len() == before + 1,
            "round {round}: no new snapshot; status {}",
            status(cp.addr()).await
        );
        let (arrived, _, snap) = w.snapshots().pop().unwrap();
        let took = arrived - edited;
        assert!(took < Duration::from_secs(1), "round {round}: the edit took {took:?} to reach the watcher");
        match round {
            0 => assert!(snap.services.iter().any(|s| s.name == "payments")),
            1 => assert_eq!(snap.profiles[0].spec.routes[0].timeout.as_deref(), Some("300ms")),
            _ => assert_eq!(snap.profiles[0].spec.routes[0].timeout.as_deref(), Some("2s")),
        }
    }
    assert_eq!(status(cp.addr()).await["reload"]["accepted"], 3);
    cp.shutdown().await;
}

/// (file, content, what the error must name)
fn invalid_edits() -> Vec<(&'static str, String, &'static str)> {
    let truncated =
        MESH[..MESH.find("    - name: orders\n      namespace: prod\n      workload").unwrap() + 17].to_string();
    vec![
        ("mesh.yaml", truncated, "mesh.yaml:18: spec.services[1]: missing field `workload`"),
        ("mesh.yaml", String::new(), "mesh.yaml:1: the file is empty"),
        ("mesh.yaml", "# nothing here\n".into(), "mesh.yaml:1: the file is empty"),
        ("mesh.yaml", format!("{MESH}  bad: [\n"), "mesh.yaml:21: invalid YAML"),
        ("mesh.yaml", MESH.replace("  namespaces: [prod]\n", "  namespaces: [prod\n"), "mesh.yaml:"),
        ("mesh.yaml", MESH.replace("kind: Mesh", "kind: Mash"), "mesh.yaml:2: kind: unknown kind 'Mash'"),
        ("mesh.yaml", MESH.replace("workload: orders\n", "workload: order\n"), "mesh.yaml:20: spec.services[1].workload"),
        ("mesh.yaml", MESH.replace("  namespaces: [prod]\n", "  namespaces: []\n"), "mesh.yaml:9: spec.workloads[0].namespace"),
        ("mesh.yaml", MESH.replace("replicas: 2", "replicas: -2"), "mesh.yaml:13: spec.workloads[1].replicas: invalid value"),
        ("mesh.yaml", MESH.replace("calls: [orders]", "calls: [payments]"), "mesh.yaml:10: spec.workloads[0].calls[0]"),
        ("mesh.yaml", MESH.replace("    - name: web\n      namespace: prod\n      calls", "    - name: Web\n      namespace: prod\n      calls"), "mesh.yaml:8: spec.workloads[0].name"),
        ("mesh.yaml", MESH.replace("meshlens.io/v1alpha1", "meshlens.io/v9"), "mesh.yaml:1: apiVersion"),
        ("p.yaml", PROFILE.replace("300ms", "5 seconds"), "p.yaml:12: spec.routes[0].timeout: '5 seconds' is not a duration (e.g. 5s, 300ms)"),
        ("p.yaml", PROFILE.replace("pathRegex: /api/orders", "pathRegex: /api/(orders"), "p.yaml:11: spec.routes[0].condition.pathRegex"),
        ("p.yaml", PROFILE.replace("orders.prod.svc", "payments.prod.svc"), "p.yaml:4: metadata.name: no service 'payments'"),
        ("p.yaml", format!("{PROFILE}  - name: GET /api/orders\n    condition: {{method: GET}}\n"), "p.yaml:13: spec.routes[1].name: duplicate route name"),
        (
            "p.yaml",
            PROFILE[..PROFILE.find("pathRegex").unwrap() + 6].to_string(),
            "p.yaml:11: invalid YAML: simple key expected ':'",
        ),
        ("p.yaml", "apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata: {name: s, namespace: prod}\nspec:\n  service: orders\n  backends:\n  - service: orders-v3\n    weight: 1\n".into(), "p.yaml:7: spec.backends[0].service: no service 'orders-v3'"),
        ("p.yaml", "kind: Deployment\napiVersion: linkerd.io/v1alpha2\n".into(), "p.yaml:1: kind: unknown kind 'Deployment' in linkerd.io"),
        ("p.yaml", "\t{{\n".into(), "p.yaml:1: invalid YAML"),
    ]
}

#[tokio::test]
async fn invalid_edits_are_rejected_and_the_last_good_state_keeps_serving() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    let w = Watcher::start(addr).await;
    // The proxy keeps renewing its lease while the edits go on.
    let renew = tokio::spawn(async move {
        loop {
            register(addr, &registration("orders", "orders-0", "127.0.0.1:4143")).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    assert_eventually!(w.endpoints("orders").len() == 1);
    let good = w.latest().unwrap();
    let lines_before = w.snapshots().len();

    let edits = invalid_edits();
    assert_eq!(edits.len(), 20);
    for (i, (file, text, names)) in edits.iter().enumerate() {
        if *file != "mesh.yaml" {
            // The previous edit's file is restored so that each edit is judged alone.
            dir.replace("mesh.yaml", MESH);
        }
        dir.replace(file, text);
        assert_eventually!(
            status(addr).await["reload"]["rejected"] == i as u64 + 1,
            "edit {i} ({names}) not rejected: {}",
            status(addr).await
        );
        let st = status(addr).await;
        assert_eq!(st["reload"]["ok"], false, "edit {i}");
        let error = st["reload"]["error"].as_str().unwrap();
        assert!(error.contains(names), "edit {i}: {error:?} does not name {names:?}");
        assert_eq!(st["version"], good.version, "edit {i} changed the version");
        assert!(metrics(addr).await.lines().any(|l| l == "meshlens_control_config_valid 0"), "edit {i}");
        if *file != "mesh.yaml" {
            dir.remove(file);
        }
    }
    assert_eq!(w.snapshots().len(), lines_before, "no snapshot was sent for a rejected edit");
    assert_eq!(w.latest().unwrap(), good);
    assert_eq!(status(addr).await["proxies"], 1);
    assert!(metrics(addr).await.lines().any(|l| l == "meshlens_control_config_reloads_total{result=\"rejected\"} 20"));

    // Fixed: the next valid edit is served, and the status says so.
    dir.replace("mesh.yaml", &format!("{MESH}{WITH_PAYMENTS}"));
    assert_eventually!(w.latest().unwrap().services.len() == 3);
    let st = status(addr).await;
    assert_eq!(st["reload"]["ok"], true);
    assert_eq!(st["reload"]["error"], serde_json::Value::Null);
    assert!(metrics(addr).await.lines().any(|l| l == "meshlens_control_config_valid 1"));
    assert_eq!(w.endpoints("orders"), ["127.0.0.1:4143"], "registrations survive reloads");
    renew.abort();
    cp.shutdown().await;
}

#[tokio::test]
async fn deleting_mesh_yaml_is_rejected() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let v = status(cp.addr()).await["version"].clone();
    dir.remove("mesh.yaml");
    assert_eventually!(status(cp.addr()).await["reload"]["ok"] == false);
    let st = status(cp.addr()).await;
    assert_eq!(st["reload"]["error"], "mesh.yaml: not found: a mesh directory needs mesh.yaml with a Mesh document");
    assert_eq!(st["version"], v);
    cp.shutdown().await;
}
