//! Prometheus mode at the API: the service discovery endpoint Prometheus follows, and the answers when
//! Prometheus is unreachable or answers an error (the numbers against a real Prometheus are tested by the
//! whole-binary accuracy test).

use std::net::SocketAddr;

use hyper::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// A server answering every request with `status` and `body`.
async fn fake_prometheus(status: &'static str, body: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = conn.read(&mut buf).await;
                let reply = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn targets_for_service_discovery_and_clear_errors_from_prometheus() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut c = config(&dir);
    c.prometheus_url = Some(format!("http://{closed}"));
    let cp = start(c).await;
    let addr = cp.addr();

    // Every registered proxy's admin address, labelled the way Prometheus mode groups.
    let mut reg = registration("orders", "orders-0", "127.0.0.1:24143");
    reg.admin = "127.0.0.1:24191".parse().unwrap();
    register(addr, &reg).await;
    let (code, targets) = get_json(addr, "/api/v1/prometheus/targets").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        targets,
        json!([{"targets": ["127.0.0.1:24191"], "labels": {"namespace": "prod", "deployment": "orders", "pod": "orders-0"}}])
    );

    // Prometheus down: 503 with the reason.
    let (code, body) = get_json(addr, "/api/v1/stat?resource=deploy&namespace=prod").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(msg.starts_with(&format!("cannot reach Prometheus at http://{closed}: ")), "{msg}");
    // A bad window is the caller's fault, whatever Prometheus does.
    let (code, body) = get_json(addr, "/api/v1/edges?resource=deploy&window=1s").await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().contains("too short"), "{body}");
    // No embedded store in this mode.
    let (code, body) = get_json(addr, "/api/v1/metricstore").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("asks Prometheus at"), "{body}");
    drop(cp);

    // Prometheus answers an error: 502 with Prometheus' own reason.
    let prom = fake_prometheus(
        "422 Unprocessable Entity",
        r#"{"status":"error","errorType":"execution","error":"query processing would load too many samples"}"#,
    )
    .await;
    let mut c = config(&dir);
    c.prometheus_url = Some(format!("http://{prom}"));
    let cp = start(c).await;
    let (code, body) = get_json(cp.addr(), "/api/v1/routes?resource=deploy/orders&namespace=prod").await;
    assert_eq!(code, StatusCode::BAD_GATEWAY, "{body}");
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains("answered 422: execution: query processing would load too many samples"), "{msg}");

    // Something else at that address: 502 saying what came back.
    let other = fake_prometheus("404 Not Found", "404 page not found").await;
    let mut c = config(&dir);
    c.prometheus_url = Some(format!("http://{other}"));
    let cp = start(c).await;
    let (code, body) = get_json(cp.addr(), "/api/v1/stat?resource=deploy&namespace=prod").await;
    assert_eq!(code, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body["error"].as_str().unwrap().contains("404 with a body that is not a query result"), "{body}");

    // An answer with no series: rows without numbers, as the embedded store gives before any traffic (the
    // workloads are external and no proxy registered: listed with `unmeshed`).
    let empty = fake_prometheus("200 OK", r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#).await;
    let mut c = config(&dir);
    c.prometheus_url = Some(format!("http://{empty}"));
    let cp = start(c).await;
    let (code, rows) = get_json(cp.addr(), "/api/v1/stat?resource=deploy&namespace=prod&unmeshed=true").await;
    assert_eq!(code, StatusCode::OK, "{rows}");
    let names: Vec<&Value> = rows.as_array().unwrap().iter().map(|r| &r["name"]).collect();
    assert_eq!(names, [&json!("orders"), &json!("web")]);
    assert!(rows.as_array().unwrap().iter().all(|r| r["rps"].is_null()), "{rows}");

    // A URL that is not http:// does not start.
    let mut c = config(&dir);
    c.prometheus_url = Some("https://prometheus:9090".into());
    let e = meshlens_control::start(c).await.err().expect("refused");
    assert!(e.to_string().contains("invalid Prometheus URL 'https://prometheus:9090'"), "{e}");
}
