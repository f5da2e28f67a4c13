//! `/api/v1/proxy-metrics` relays each selected proxy's admin `/metrics` (an instance that does not
//! answer is an error of its own), `/api/v1/endpoints` resolves authorities as a proxy would and, with
//! `balancers=true`, adds each caller's balancer state and request share per endpoint.

use std::net::SocketAddr;
use std::time::Duration;

use meshlens_api::balancer::{BalancerState, EndpointState, ProxyBalancers};
use meshlens_testkit::assert_eventually;
use serde_json::Value;

use crate::logs::{FakeProxy, register_all};
use crate::stats::{FakeAdmin, until_scraped};
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

/// web-0's outbound requests to orders: `to0` answered by orders-0, `to1` by orders-1.
fn web_metrics(to0: u64, to1: u64) -> String {
    let series = |pod: &str, n: u64| {
        format!(
            "response_total{{direction=\"outbound\",authority=\"orders.prod.svc.cluster.local:80\",dst_deployment=\"orders\",\
             dst_namespace=\"prod\",dst_pod=\"{pod}\",dst_service=\"orders\",status_code=\"200\",classification=\"success\",\
             grpc_status=\"\",error=\"\"}} {n}\n"
        )
    };
    format!("# TYPE response_total counter\n{}{}", series("orders-0", to0), series("orders-1", to1))
}

fn endpoint(addr: &str, pod: &str, ewma_ms: f64, breaker: &str, remaining: Option<u64>) -> EndpointState {
    EndpointState {
        address: addr.parse().unwrap(),
        labels: [("pod".to_string(), pod.to_string())].into(),
        ready: true,
        ewma_ms,
        in_flight: 2,
        requests_total: 40,
        idle_http1_connections: 1,
        http2_connected: false,
        breaker: Some(breaker.into()),
        breaker_remaining_ms: remaining,
    }
}

#[tokio::test]
async fn endpoints_with_balancers_show_how_each_caller_sees_them() {
    let dir = MeshDir::new(&[("mesh.yaml", MESH)]);
    let mut c = config(&dir);
    c.scrape_interval = Duration::from_millis(200);
    let cp = start(c).await;
    let addr = cp.addr();
    let (web, orders0, orders1) = (FakeProxy::start().await, FakeProxy::start().await, FakeProxy::start().await);
    web.set("/metrics", web_metrics(0, 0));
    let balancers = ProxyBalancers {
        destinations: vec![BalancerState {
            authority: "orders.prod.svc.cluster.local:80".into(),
            leaf: None,
            meshed: true,
            opaque: false,
            failfast: false,
            queued: 0,
            endpoints: vec![
                endpoint("127.0.0.1:24143", "orders-0", 12.5, "closed", None),
                endpoint("127.0.0.1:34143", "orders-1", 250.0, "open", Some(800)),
            ],
        }],
    };
    web.set("/endpoints", serde_json::to_string(&balancers).unwrap());
    // orders-0 calls nothing; orders-1's admin listener does not answer (it is left out).
    orders0.set("/endpoints", serde_json::to_string(&ProxyBalancers::default()).unwrap());
    for p in [&orders0, &orders1] {
        p.set("/metrics", "# nothing\n".into());
    }
    register_all(
        addr,
        &[
            ("web", "web-0", web.addr, "127.0.0.1:14143"),
            ("orders", "orders-0", orders0.addr, "127.0.0.1:24143"),
            ("orders", "orders-1", orders1.addr, "127.0.0.1:34143"),
        ],
    )
    .await;
    until_scraped(addr, 3).await;
    // After the baseline: 30 requests to orders-0, 10 to orders-1.
    web.set("/metrics", web_metrics(30, 10));
    drop(orders1);

    let q = "/api/v1/endpoints?authority=orders&namespace=prod&balancers=true&window=1m";
    let share = |eps: &Value| eps["orders"][0]["callers"][0]["share"].as_f64();
    assert_eventually!(share(&get_json(addr, q).await.1).is_some_and(|s| (s - 0.75).abs() < 1e-9));
    let (code, eps) = get_json(addr, q).await;
    assert_eq!(code, 200, "{eps}");
    let rows = eps["orders"].as_array().unwrap();
    let view = &rows[0]["callers"][0];
    assert_eq!((view["namespace"].as_str(), view["workload"].as_str()), (Some("prod"), Some("web")));
    assert_eq!((view["pod"].as_str(), view["ewma_ms"].as_f64()), (Some("web-0"), Some(12.5)));
    assert_eq!((view["in_flight"].as_u64(), view["requests_total"].as_u64()), (Some(2), Some(40)));
    assert_eq!((view["breaker"].as_str(), view.get("breaker_remaining_ms")), (Some("closed"), None));
    let open = &rows[1]["callers"][0];
    assert_eq!((rows[1]["pod"].as_str(), open["breaker"].as_str()), (Some("orders-1"), Some("open")));
    assert_eq!((open["breaker_remaining_ms"].as_u64(), open["share"].as_f64()), (Some(800), Some(0.25)));
    assert_eq!(rows[0]["callers"].as_array().unwrap().len(), 1, "only web calls orders: {eps}");

    let (_, plain) = get_json(addr, "/api/v1/endpoints?authority=orders&namespace=prod").await;
    assert!(plain["orders"][0].get("callers").is_none(), "callers only when asked: {plain}");
    let (code, e) = get_json(addr, "/api/v1/endpoints?authority=orders&namespace=prod&balancers=true&window=x").await;
    assert_eq!(code, 400, "{e}");
}
