//! The embedded metric store end to end: fake proxies serve `/metrics` pages the test controls, the
//! control plane scrapes them (every 200 ms) and `/api/v1/stat`, `/routes` and `/edges` answer from what
//! it saw.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use meshlens_testkit::assert_eventually;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// An admin listener serving whatever page is set.
pub(crate) struct FakeAdmin {
    pub addr: SocketAddr,
    page: Arc<Mutex<String>>,
}

impl FakeAdmin {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let page = Arc::new(Mutex::new(String::new()));
        let served = page.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let body = served.lock().unwrap().clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = conn.write_all(head.as_bytes()).await;
                    let _ = conn.write_all(body.as_bytes()).await;
                });
            }
        });
        FakeAdmin { addr, page }
    }

    pub fn set(&self, page: String) {
        *self.page.lock().unwrap() = page;
    }
}

fn orders_page(ok: u64, fail: u64) -> String {
    format!(
        "# TYPE response_total counter\n\
         response_total{{direction=\"inbound\",target_addr=\"127.0.0.1:8080\",tls=\"disabled\",status_code=\"200\",classification=\"success\",grpc_status=\"\",error=\"\"}} {ok}\n\
         response_total{{direction=\"inbound\",target_addr=\"127.0.0.1:8080\",tls=\"disabled\",status_code=\"500\",classification=\"failure\",grpc_status=\"\",error=\"\"}} {fail}\n\
         response_total{{direction=\"inbound\",target_addr=\"127.0.0.1:8080\",tls=\"disabled\",status_code=\"502\",classification=\"failure\",grpc_status=\"\",error=\"connect_error\"}} {fail}\n\
         response_latency_ms_bucket{{direction=\"inbound\",status_code=\"200\",le=\"10\"}} {ok}\n\
         response_latency_ms_bucket{{direction=\"inbound\",status_code=\"200\",le=\"20\"}} {ok}\n\
         response_latency_ms_bucket{{direction=\"inbound\",status_code=\"200\",le=\"+Inf\"}} {ok}\n\
         tcp_open_connections{{direction=\"inbound\",peer=\"src\",target_addr=\"127.0.0.1:4143\"}} 3\n\
         route_response_total{{direction=\"inbound\",dst=\"orders.prod.svc.cluster.local:80\",rt_route=\"GET /api/orders\",status_code=\"200\",classification=\"success\"}} {ok}\n"
    )
}

fn web_page(ok: u64, fail: u64, timeouts: u64, orders0: SocketAddr) -> String {
    let dst = "dst_deployment=\"orders\",dst_namespace=\"prod\",dst_pod=\"orders-0\",dst_service=\"orders\"";
    let route = "direction=\"outbound\",dst=\"orders.prod.svc.cluster.local:80\",rt_route=\"GET /api/orders\"";
    format!(
        "response_total{{direction=\"outbound\",authority=\"orders.prod.svc.cluster.local:80\",{dst},status_code=\"200\",classification=\"success\",grpc_status=\"\",error=\"\"}} {ok}\n\
         response_total{{direction=\"outbound\",authority=\"orders.prod.svc.cluster.local:80\",{dst},status_code=\"500\",classification=\"failure\",grpc_status=\"\",error=\"\"}} {fail}\n\
         route_response_total{{{route},status_code=\"200\",classification=\"success\",grpc_status=\"\",error=\"\"}} {ok}\n\
         route_actual_response_total{{{route},status_code=\"200\",classification=\"success\",grpc_status=\"\",error=\"\"}} {ok}\n\
         route_actual_response_total{{{route},status_code=\"500\",classification=\"failure\",grpc_status=\"\",error=\"\"}} {fail}\n\
         route_response_total{{{route},status_code=\"504\",classification=\"failure\",grpc_status=\"\",error=\"timeout\"}} {timeouts}\n\
         route_retry_fate_total{{{route},fate=\"succeeded_first\"}} {ok}\n\
         route_retry_fate_total{{{route},fate=\"failed_no_budget\"}} {timeouts}\n\
         route_retry_fate_total{{{route},fate=\"failed_timeout\"}} 0\n\
         tcp_write_bytes_total{{direction=\"outbound\",peer=\"dst\",target_addr=\"{orders0}\"}} {ok}\n"
    )
}

pub(crate) async fn until_scraped(addr: SocketAddr, instances: u64) {
    // An instance is counted once its first scrape (its baseline) is in.
    assert_eventually!(get_json(addr, "/api/v1/metricstore").await.1["instances"] == instances);
}

fn row<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name}: {rows}"))
}

#[tokio::test]
async fn stat_routes_and_edges_from_scraped_proxies() {
    let split = "apiVersion: split.smi-spec.io/v1alpha2\nkind: TrafficSplit\nmetadata:\n  name: orders-split\n  \
        namespace: prod\nspec:\n  service: orders\n  backends:\n    - service: orders\n      weight: 900m\n    \
        - service: web\n      weight: 100m\n";
    let dir = MeshDir::new(&[("mesh.yaml", MESH), ("profiles/orders.yaml", PROFILE), ("split.yaml", split)]);
    let mut c = config(&dir);
    c.scrape_interval = Duration::from_millis(200);
    let cp = start(c).await;
    let addr = cp.addr();

    let (web, orders0, orders1) = (FakeAdmin::start().await, FakeAdmin::start().await, FakeAdmin::start().await);
    let orders0_inbound: SocketAddr = "127.0.0.1:24143".parse().unwrap();
    web.set(web_page(0, 0, 0, orders0_inbound));
    orders0.set(orders_page(1000, 0));
    orders1.set(orders_page(0, 0));
    for (w, i, admin, inbound) in [
        ("web", "web-0", &web, "127.0.0.1:14143"),
        ("orders", "orders-0", &orders0, "127.0.0.1:24143"),
        ("orders", "orders-1", &orders1, "127.0.0.1:34143"),
    ] {
        let mut reg = registration(w, i, inbound);
        reg.admin = admin.addr;
        register(addr, &reg).await;
    }
    until_scraped(addr, 3).await;

    // Traffic after the first scrape: 90 ok + 10 failed served by orders-0, 50 ok by orders-1; web sent
    // 80 (+ 20 failed attempts) to orders.
    orders0.set(orders_page(1090, 10));
    orders1.set(orders_page(50, 0));
    web.set(web_page(80, 20, 4, orders0_inbound));

    let q = "/api/v1/stat?resource=deploy&namespace=prod&window=1m";
    assert_eventually!(
        get_json(addr, q).await.1.as_array().is_some_and(|rows| rows.iter().any(|r| r["name"] == "orders"
            && r["rps"].as_f64().is_some_and(|rps| (rps * r["covered_s"].as_f64().unwrap() - 160.0).abs() < 1.0))),
        "orders served 160 requests (10 of them proxy-made)"
    );
    let (_, rows) = get_json(addr, q).await;
    let orders = row(&rows, "orders");
    assert_eq!(orders["kind"], "deployment");
    assert_eq!(orders["namespace"], "prod");
    assert_eq!(orders["meshed"], "2/2");
    let covered = orders["covered_s"].as_f64().unwrap();
    assert!(covered > 0.0 && covered < 60.0 && orders["window_s"] == 60.0, "a young store covers part of 1m: {orders}");
    assert!((orders["success"].as_f64().unwrap() - 140.0 / 160.0).abs() < 1e-9, "{orders}");
    assert_eq!(orders["proxy_errors"], serde_json::json!({"connect_error": 10}), "{orders}");
    assert_eq!(orders["latency_ms_p50"], 5);
    assert_eq!(orders["latency_ms_p99"], 10);
    assert_eq!(orders["tcp_open_connections"], 6);
    let web_row = row(&rows, "web");
    assert_eq!(web_row["meshed"], "1/1");
    assert_eq!(web_row["success"], Value::Null, "web served nothing: {web_row}");
    assert_eq!(web_row["rps"], Value::Null);

    // Pods, services, --to and --from.
    let (_, pods) = get_json(addr, "/api/v1/stat?resource=po&namespace=prod&window=1m").await;
    assert_eq!(row(&pods, "orders-1")["success"], 1.0);
    let (_, to) = get_json(addr, "/api/v1/stat?resource=deploy&namespace=prod&window=1m&to=deploy/orders").await;
    let web_to = row(&to, "web");
    assert!((web_to["success"].as_f64().unwrap() - 0.8).abs() < 1e-9, "{web_to}");
    assert_eq!(row(&to, "orders")["success"], Value::Null);
    let (_, from) = get_json(addr, "/api/v1/stat?resource=deploy&namespace=prod&window=1m&from=deploy/web").await;
    assert_eq!(from.as_array().unwrap().len(), 1, "{from}");
    assert_eq!(from[0]["name"], "orders");
    let (_, svc) = get_json(addr, "/api/v1/stat?resource=svc/orders&namespace=prod&window=1m").await;
    assert_eq!(svc[0]["meshed"], "-");
    assert!((svc[0]["success"].as_f64().unwrap() - 0.8).abs() < 1e-9, "{svc}");

    // TrafficSplit leaves.
    let (code, ts) = get_json(addr, "/api/v1/stat?resource=ts&namespace=prod&window=1m").await;
    assert_eq!(code, 200, "{ts}");
    assert_eq!(ts.as_array().unwrap().len(), 2, "{ts}");
    assert_eq!(
        (ts[0]["apex"].as_str(), ts[0]["leaf"].as_str(), ts[0]["weight"].as_f64()),
        (Some("orders"), Some("orders"), Some(0.9))
    );
    assert!((ts[0]["success"].as_f64().unwrap() - 0.8).abs() < 1e-9, "{ts}");
    assert_eq!(ts[1]["rps"], Value::Null);

    // Routes: effective vs actual with --to; every profiled route plus [DEFAULT].
    let (code, routes) =
        get_json(addr, "/api/v1/routes?resource=deploy/web&namespace=prod&window=1m&to=svc/orders").await;
    assert_eq!(code, 200, "{routes}");
    let rows = routes["deploy/web"].as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["route"].as_str().unwrap()).collect();
    assert_eq!(names, ["GET /api/orders", "[DEFAULT]"]);
    assert!((rows[0]["effective_success"].as_f64().unwrap() - 80.0 / 84.0).abs() < 1e-9, "{routes}");
    assert_eq!(rows[0]["timeouts"], 4);
    assert_eq!(rows[0]["retry_fates"], serde_json::json!({"succeeded_first": 80, "failed_no_budget": 4}));
    assert!((rows[0]["actual_success"].as_f64().unwrap() - 0.8).abs() < 1e-9);
    assert_eq!(rows[0]["authority"], "orders.prod.svc.cluster.local:80");
    assert_eq!(rows[1]["effective_rps"], Value::Null);
    // Without --to: what orders' own proxies served, from their inbound route series.
    let (_, plain) = get_json(addr, "/api/v1/routes?resource=deploy/orders&namespace=prod&window=1m").await;
    let served = &plain["deploy/orders"][0];
    assert_eq!(served["success"], 1.0, "{plain}");
    let n = served["rps"].as_f64().unwrap() * served["covered_s"].as_f64().unwrap();
    assert!((n - 140.0).abs() < 1.0, "{plain}");
    assert!(plain["deploy/orders"][0].get("retry_fates").is_none(), "{plain}");

    // Edges from the window: orders served 160 requests, web sent 100 of them; the other 60 came from
    // clients that are not meshed.
    let (_, mut edges) = get_json(addr, "/api/v1/edges?resource=deploy&namespace=prod&window=1m").await;
    for e in edges.as_array_mut().unwrap() {
        let e = e.as_object_mut().unwrap();
        assert_eq!(e.remove("window_s"), Some(60.0.into()), "{e:?}");
        assert!(e.remove("covered_s").is_some_and(|c| c.as_f64().is_some_and(|c| c > 0.0 && c <= 60.0)), "{e:?}");
    }
    assert_eq!(
        edges,
        serde_json::json!([
            {"src": "", "src_namespace": "", "dst": "orders", "dst_namespace": "prod", "client_id": "",
             "server_id": "", "no_tls_reason": "not_provided_by_remote", "protocol": "http", "src_meshed": false,
             "dst_meshed": true, "cancelled": null},
            {"src": "web", "src_namespace": "prod", "dst": "orders", "dst_namespace": "prod", "client_id": "",
             "server_id": "", "no_tls_reason": "disabled", "protocol": "http", "src_meshed": true,
             "dst_meshed": true, "cancelled": 0}])
    );

    // Errors.
    let (code, e) = get_json(addr, "/api/v1/stat?resource=deploy&window=100ms").await;
    assert_eq!(code, 400);
    assert!(e["error"].as_str().unwrap().contains("too short"), "{e}");
    let (code, _) = get_json(addr, "/api/v1/stat?resource=bogus").await;
    assert_eq!(code, 400);
    let (code, e) = get_json(addr, "/api/v1/stat?resource=deploy&offset=soon").await;
    assert_eq!(code, 400, "{e}");
    let (code, e) = get_json(addr, "/api/v1/stat?resource=deploy/nope&namespace=prod").await;
    assert_eq!((code.as_u16(), e["error"].as_str()), (404, Some("deployment 'nope' not found in namespace 'prod'")));
    let (code, e) = get_json(addr, "/api/v1/routes?resource=deploy/nope&namespace=prod").await;
    assert_eq!(code, 404, "{e}");
    let (code, e) = get_json(addr, "/api/v1/edges?resource=deploy/nope&namespace=prod").await;
    assert_eq!(code, 404, "{e}");
    // An hour earlier the store held nothing: no numbers, nothing covered.
    let (code, earlier) = get_json(addr, "/api/v1/stat?resource=deploy/orders&namespace=prod&offset=1h").await;
    assert_eq!(
        (code.as_u16(), earlier[0]["rps"].clone(), earlier[0]["covered_s"].as_f64()),
        (200, Value::Null, Some(0.0))
    );

    let mem = get_json(addr, "/api/v1/metricstore").await.1;
    assert!(mem["bytes"].as_u64().unwrap() < 1_000_000, "{mem}");
}

const LABELLED: &str = "\
apiVersion: meshlens.io/v1alpha1
kind: Mesh
metadata:
  name: shop
spec:
  namespaces: [prod]
  workloads:
    - name: web
      namespace: prod
      labels: {app: web, tier: front}
    - name: orders
      namespace: prod
      labels: {app: orders}
  services:
    - name: orders
      namespace: prod
      workload: orders
      labels: {team: shop}
";

fn names(rows: &Value) -> Vec<&str> {
    rows.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect()
}

/// A passthrough destination (HTTP by authority, TCP by address), a passthrough call to a meshed instance's
/// address (meshed: no unmeshed edge on either side), and `selector=` on every resource kind.
#[tokio::test]
async fn unmeshed_destinations_and_label_selectors() {
    let dir = MeshDir::new(&[("mesh.yaml", LABELLED)]);
    let mut c = config(&dir);
    c.scrape_interval = Duration::from_millis(200);
    let cp = start(c).await;
    let addr = cp.addr();
    let (web, orders) = (FakeAdmin::start().await, FakeAdmin::start().await);
    let web_page = |n: u64| {
        format!(
            "response_total{{direction=\"outbound\",authority=\"api.example.com:443\",target_addr=\"127.0.0.9:443\",tls=\"disabled\",status_code=\"200\",classification=\"success\"}} {n}\n\
             response_total{{direction=\"outbound\",authority=\"127.0.0.1:24143\",target_addr=\"127.0.0.1:24143\",tls=\"disabled\",status_code=\"200\",classification=\"success\"}} {n}\n\
             tcp_write_bytes_total{{direction=\"outbound\",peer=\"dst\",target_addr=\"127.0.0.9:5432\"}} {}\n",
            n * 10
        )
    };
    let orders_page = |n: u64| {
        format!("response_total{{direction=\"inbound\",status_code=\"200\",classification=\"success\"}} {n}\n")
    };
    web.set(web_page(0));
    orders.set(orders_page(0));
    let mut w = registration("web", "web-0", "127.0.0.1:14143");
    w.admin = web.addr;
    register(addr, &w).await;
    let mut o = registration("orders", "orders-0", "127.0.0.1:24143");
    o.admin = orders.addr;
    o.labels.insert("version".into(), "v2".into());
    register(addr, &o).await;
    until_scraped(addr, 2).await;
    web.set(web_page(40));
    orders.set(orders_page(40));

    let q = "/api/v1/edges?resource=deploy&namespace=prod&window=1m";
    assert_eventually!(
        get_json(addr, q).await.1.as_array().is_some_and(|rows| rows.len() == 3),
        "three edges: to orders, to the HTTP passthrough, to the TCP passthrough"
    );
    let (_, edges) = get_json(addr, q).await;
    let edge = |dst: &str| -> Value {
        edges.as_array().unwrap().iter().find(|e| e["dst"] == dst).cloned().unwrap_or_else(|| panic!("{dst}: {edges}"))
    };
    let http = edge("api.example.com:443");
    assert_eq!((http["src"].as_str(), http["dst_namespace"].as_str()), (Some("web"), Some("")), "{http}");
    assert_eq!((http["dst_meshed"].as_bool(), http["src_meshed"].as_bool()), (Some(false), Some(true)));
    assert_eq!(http["no_tls_reason"], "not_provided_by_service_discovery");
    assert_eq!(http["protocol"], "http");
    let tcp = edge("127.0.0.9:5432");
    assert_eq!((tcp["protocol"].as_str(), tcp["dst_meshed"].as_bool()), (Some("tcp"), Some(false)), "{tcp}");
    let meshed = edge("orders");
    assert_eq!((meshed["src"].as_str(), meshed["no_tls_reason"].as_str()), (Some("web"), Some("disabled")));
    assert!(edges.as_array().unwrap().iter().all(|e| e["src_meshed"] == true), "every client is meshed: {edges}");
    let (_, pods) = get_json(addr, "/api/v1/edges?resource=po&namespace=prod&window=1m").await;
    assert!(pods.as_array().unwrap().iter().any(|e| e["src"] == "web-0" && e["dst"] == "orders-0"), "{pods}");

    // Selectors.
    let stat = |query: &'static str| async move {
        get_json(addr, &format!("/api/v1/stat?namespace=prod&window=1m&{query}")).await
    };
    assert_eq!(names(&stat("resource=deploy&selector=app%3Dweb").await.1), ["web"]);
    assert_eq!(names(&stat("resource=deploy&selector=tier").await.1), ["web"]);
    assert_eq!(names(&stat("resource=deploy&selector=app%20notin%20(web)").await.1), ["orders"]);
    assert_eq!(names(&stat("resource=deploy&selector=app%20in%20(web,orders),!tier").await.1), ["orders"]);
    assert_eq!(names(&stat("resource=po&selector=version%3Dv2").await.1), ["orders-0"]);
    assert_eq!(
        names(&stat("resource=po&selector=app%3Dweb").await.1),
        ["web-0"],
        "instances have their workload's labels"
    );
    assert_eq!(names(&stat("resource=svc&selector=team%3Dshop").await.1), ["orders"]);
    assert!(names(&stat("resource=ns&selector=team").await.1).is_empty());
    let (code, e) = stat("resource=deploy&selector=app%20in%20(web").await;
    assert_eq!(code, 400);
    assert!(e["error"].as_str().unwrap().contains("invalid selector 'app in (web': missing ')'"), "{e}");
    let (code, routes) =
        get_json(addr, "/api/v1/routes?resource=deploy/web&namespace=prod&selector=app%3Dorders").await;
    assert_eq!((code.as_u16(), routes), (200, serde_json::json!({})), "deploy/web does not match app=orders");
}
