//! `/api/v1/proxy-metrics` relays each selected proxy's admin `/metrics` (an instance that does not
//! answer is an error of its own), `/api/v1/endpoints` resolves authorities as a proxy would.

use std::net::SocketAddr;

use serde_json::Value;

use crate::stats::FakeAdmin;
use crate::support::*;

const PAGE: &str = "# TYPE response_total counter\n\
    response_total{direction=\"outbound\",authority=\"orders.prod.svc.cluster.local:80\",dst_namespace=\"prod\",status_code=\"200\",classification=\"success\"} 7\n";

#[tokio::test]
async fn proxy_metrics_are_relayed_and_endpoints_resolved() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let cp = start(config(&dir)).await;
    let addr = cp.addr();
    let (orders0, web) = (FakeAdmin::start().await, FakeAdmin::start().await);
    orders0.set(PAGE.to_string());
    web.set(PAGE.to_string());
    // orders-1's admin listener is gone (bound, then closed): its fetch fails.
    let dead: SocketAddr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    for (w, i, admin, inbound) in [
        ("orders", "orders-0", orders0.addr, "127.0.0.1:24143"),
        ("orders", "orders-1", dead, "127.0.0.1:34143"),
        ("web", "web-0", web.addr, "127.0.0.1:14143"),
    ] {
        let mut reg = registration(w, i, inbound);
        reg.admin = admin;
        register(addr, &reg).await;
    }

    let (code, pages) = get_json(addr, "/api/v1/proxy-metrics?resource=deploy/orders&namespace=prod").await;
    assert_eq!(code, 200, "{pages}");
    let pages = pages.as_array().unwrap();
    assert_eq!(pages.len(), 2);
    assert_eq!((pages[0]["pod"].as_str(), pages[0]["metrics"].as_str()), (Some("orders-0"), Some(PAGE)));
    assert_eq!(pages[1]["pod"], "orders-1");
    assert_eq!(pages[1].get("metrics"), None);
    assert!(pages[1]["error"].as_str().unwrap().contains(&dead.to_string()), "{}", pages[1]);
    let (_, one) = get_json(addr, "/api/v1/proxy-metrics?resource=po/web-0&namespace=prod&obfuscate=true").await;
    let text = one[0]["metrics"].as_str().unwrap();
    assert!(text.starts_with("# TYPE response_total counter\nresponse_total{direction=\"outbound\",authority=\""));
    assert!(!text.contains("orders.prod") && !text.contains("\"prod\"") && text.ends_with("} 7\n"), "{text}");
    let (_, ns) = get_json(addr, "/api/v1/proxy-metrics?resource=ns/prod").await;
    assert_eq!(ns.as_array().unwrap().len(), 3);
    let (_, svc) = get_json(addr, "/api/v1/proxy-metrics?resource=svc/web&namespace=prod").await;
    assert_eq!(svc[0]["pod"], "web-0");
    for (q, code, says) in [
        ("resource=deploy/nope&namespace=prod", 404, "deployment 'nope' not found in namespace 'prod'"),
        ("resource=po/web-9&namespace=prod", 404, "no instance 'web-9' is registered in namespace 'prod'"),
        ("resource=deploy", 400, "expected TYPE/NAME"),
        ("resource=job/x", 400, "unknown resource type 'job'"),
    ] {
        let (c, e) = get_json(addr, &format!("/api/v1/proxy-metrics?{q}")).await;
        assert_eq!(c.as_u16(), code, "{q}: {e}");
        assert!(e["error"].as_str().unwrap().contains(says), "{q}: {e}");
    }

    // Endpoints: short names resolve in the caller's namespace, the canonical name anywhere.
    let (code, eps) =
        get_json(addr, "/api/v1/endpoints?authority=orders,web.prod.svc.cluster.local:80&namespace=prod").await;
    assert_eq!(code, 200, "{eps}");
    let orders = eps["orders"].as_array().unwrap();
    let pods: Vec<&str> = orders.iter().map(|e| e["pod"].as_str().unwrap()).collect();
    assert_eq!(pods, ["orders-0", "orders-1"]);
    assert_eq!(orders[0]["ip"], "127.0.0.1");
    assert_eq!(orders[0]["port"], 24143);
    assert_eq!(orders[0]["service"], "orders.prod");
    assert_eq!(orders[0]["labels"]["deployment"], "orders");
    assert_eq!(eps["web.prod.svc.cluster.local:80"][0]["pod"], "web-0");
    let (code, e) = get_json(addr, "/api/v1/endpoints?authority=orders&namespace=default").await;
    assert_eq!(code, 404);
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("no service 'orders' in namespace 'default'") && msg.contains("unmeshed"), "{msg}");
    let (code, e): (_, Value) = get_json(addr, "/api/v1/endpoints?authority=orders.prod:8080").await;
    assert_eq!(code, 404);
    assert!(e["error"].as_str().unwrap().contains("has no port 8080 (declared: 80)"), "{e}");
}
