//! The CLI/dashboard API and error handling: status, resources, metrics, JSON errors.

use hyper::{Method, StatusCode};
use meshlens_control::StartError;

use crate::support::*;

#[tokio::test]
async fn status_resources_and_metrics() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH), ("profiles/orders.yaml", PROFILE)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    let mut reg = registration("orders", "orders-0", "0.0.0.0:4143");
    reg.labels.insert("zone".into(), "a".into());
    register(addr, &reg).await;

    let st = status(addr).await;
    assert_eq!(st["reload"]["ok"], true);
    assert_eq!(st["reload"]["error"], serde_json::Value::Null);
    assert_eq!(st["proxies"], 1);
    assert_eq!(st["services"], 2);
    assert_eq!(st["profiles"], 1);
    assert_eq!(st["complete"], true);
    assert_eq!(st["meshDir"], dir.path().display().to_string());
    assert!(st["uptimeSeconds"].as_f64().unwrap() >= 0.0);
    assert!(st["startedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(st["version"], cp.status().version);

    let (code, r) = get_json(addr, "/api/v1/resources").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(r["namespaces"], serde_json::json!(["default", "prod"]));
    let orders = r["workloads"].as_array().unwrap().iter().find(|w| w["name"] == "orders").unwrap();
    assert_eq!(orders["replicas"], 2);
    assert_eq!(orders["instances"][0]["instance"], "orders-0");
    assert_eq!(orders["instances"][0]["inbound"], "0.0.0.0:4143");
    assert_eq!(orders["instances"][0]["labels"]["zone"], "a");
    assert!(orders["instances"][0]["lastRenewalMs"].as_u64().unwrap() < 10_000);
    let svc = r["services"].as_array().unwrap().iter().find(|s| s["name"] == "orders").unwrap();
    assert_eq!(svc["fqdn"], "orders.prod.svc.cluster.local");
    assert_eq!(svc["endpoints"][0]["address"], "127.0.0.1:4143");
    assert_eq!(r["profiles"][0]["source"], "profiles/orders.yaml:1");
    assert_eq!(r["profiles"][0]["profile"]["spec"]["routes"][0]["timeout"], "300ms");

    let text = metrics(addr).await;
    for line in [
        "meshlens_control_config_valid 1",
        "meshlens_control_proxies 1",
        "meshlens_control_registrations_total{result=\"ok\"} 1",
        "meshlens_control_config_reloads_total{result=\"rejected\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    cp.shutdown().await;
}

#[tokio::test]
async fn errors_are_json_with_proper_status_codes() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    let error_of = |body: bytes::Bytes| serde_json::from_slice::<serde_json::Value>(&body).unwrap()["error"].clone();

    let (code, body) = request(addr, Method::GET, "/nope", b"").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(error_of(body), "no such endpoint: GET /nope");

    let (code, body) = request(addr, Method::GET, "/v1/proxies", b"").await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_of(body), "method GET is not allowed on /v1/proxies");

    let (code, body) = request(addr, Method::POST, "/v1/proxies", b"{\"workload\":").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(error_of(body).as_str().unwrap().starts_with("invalid registration: EOF while parsing"));

    let (code, body) = request(addr, Method::POST, "/v1/proxies", b"{\"workload\":\"orders\"}").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(body), "invalid registration: missing field `namespace` at line 1 column 21");

    let mut bad = registration("orders", "orders-0", "127.0.0.1:4143");
    bad.namespace = "Prod".into();
    let (code, body) = register(addr, &bad).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid registration: namespace: 'Prod' is not a valid namespace name");

    assert!(metrics(addr).await.lines().any(|l| l == "meshlens_control_registrations_total{result=\"rejected\"} 3"));
    cp.shutdown().await;
}

#[tokio::test]
async fn an_invalid_directory_does_not_start() {
    let dir = MeshDir::new(&[("mesh.yaml", &MESH.replace("workload: orders\n", "workload: payments\n"))]);
    match meshlens_control::start(config(&dir)).await {
        Err(StartError::InvalidConfig(errors)) => assert_eq!(
            errors.lines(),
            ["mesh.yaml:20: spec.services[1].workload: no workload 'payments' is declared in namespace 'prod'"]
        ),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("started with an invalid directory"),
    }
    let empty = MeshDir::new(&[]);
    assert!(matches!(meshlens_control::start(config(&empty)).await, Err(StartError::InvalidConfig(_))));
}

#[tokio::test]
async fn a_busy_port_is_a_bind_error() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let mut c = config(&dir);
    c.listen = cp.addr();
    match meshlens_control::start(c).await {
        Err(StartError::Bind { addr, .. }) => assert_eq!(addr, cp.addr()),
        other => panic!("expected a bind error, got {:?}", other.err()),
    }
    cp.shutdown().await;
}
