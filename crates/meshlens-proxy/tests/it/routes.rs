//! Routes compiled from HTTPRoutes, end to end through a real proxy: each rule's weighted backends, a 404
//! for requests no rule matches, header modifiers and redirects, query parameters compared decoded, and a
//! per-attempt timeout under the request's.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use meshlens_api::Snapshot;
use meshlens_api::profile::ServiceProfile;
use meshlens_testkit::backend::{echo, full};
use meshlens_testkit::{HttpBackend, assert_eventually};

use crate::support::*;

/// `items.prod` (its own endpoint `apex`) with the leaf services `items-a.prod` and `items-b.prod`, and the
/// profile the control plane compiles from HTTPRoutes (`spec` after `spec:`).
fn routed(apex: &HttpBackend, a: &HttpBackend, b: &HttpBackend, spec: &str) -> Snapshot {
    let yaml = format!(
        "apiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata: {{name: items.prod.svc.cluster.local, namespace: prod}}\nspec:\n{spec}"
    );
    let profile: ServiceProfile = serde_saphyr::from_str(&yaml).unwrap();
    Snapshot {
        services: vec![
            service("items", "prod", &[apex.addr()]),
            service("items-a", "prod", &[a.addr()]),
            service("items-b", "prod", &[b.addr()]),
        ],
        profiles: vec![profile],
        ..Snapshot::default()
    }
}

async fn metric(proxy: &meshlens_proxy::Proxy, name: &str, labels: &[(&str, &str)]) -> f64 {
    meshlens_testkit::prom::sum(&metrics(proxy).await, name, labels).unwrap_or(0.0)
}

const WEIGHTED: &str = "  unmatchedNotFound: true
  routes:
  - name: items-route
    condition: {pathRegex: '/shop(?:/.*)?'}
    rule:
      routeKind: HTTPRoute
      routeGroup: gateway.networking.k8s.io
      backends:
      - {authority: 'items-a.prod.svc.cluster.local:80', weight: 3}
      - {authority: 'items-b.prod.svc.cluster.local:80', weight: 1}
  - name: items-route
    condition: {pathRegex: '/search', queryParams: [{name: q, value: 'blue shoes'}]}
    rule:
      routeKind: HTTPRoute
      routeGroup: gateway.networking.k8s.io
      backends:
      - {authority: 'items-b.prod.svc.cluster.local:80', weight: 1}
  - name: items-route
    condition: {pathRegex: '/own'}
    rule: {routeKind: HTTPRoute, routeGroup: gateway.networking.k8s.io}
";

#[tokio::test]
async fn each_rule_sends_its_requests_to_its_own_backends_and_unmatched_ones_get_404() {
    let (apex, a, b) = (HttpBackend::start(echo("apex")), HttpBackend::start(echo("a")), HttpBackend::start(echo("b")));
    let (proxy, _d) = start(config(), &routed(&apex, &a, &b, WEIGHTED)).await;
    let mut c = h1(proxy.listen().outbound).await;
    let n = 800;
    for i in 0..n {
        let (rsp, _) = collect(c.send_request(get(&format!("/shop/{i}"), "items.prod")).await.unwrap()).await;
        assert_eq!(rsp.status(), 200);
    }
    let share_a = a.requests() as f64 / n as f64;
    eprintln!("rule weights 3:1 over {n} requests: a {}, b {}, apex {}", a.requests(), b.requests(), apex.requests());
    // 3:1 is a 0.75 share; 800 draws put it within ±0.07 but for 1 run in about 10^5.
    assert!((share_a - 0.75).abs() <= 0.07, "a got {share_a}");
    assert_eq!((a.requests() + b.requests(), apex.requests()), (n, 0), "only the rule's backends");

    let before = b.requests();
    for query in ["q=blue%20shoes", "q=blue+shoes"] {
        let (rsp, _) = collect(c.send_request(get(&format!("/search?{query}"), "items.prod")).await.unwrap()).await;
        assert_eq!(
            (rsp.status().as_u16(), rsp.headers()["x-backend"].to_str().unwrap()),
            (200, "b"),
            "{query} is q=blue shoes"
        );
    }
    assert_eq!(b.requests(), before + 2);
    let (rsp, _) = collect(c.send_request(get("/own", "items.prod")).await.unwrap()).await;
    assert_eq!(&rsp.headers()["x-backend"], "apex", "a rule without backendRefs: the Service itself");

    for path in ["/elsewhere", "/search?q=red", "/shopping"] {
        let (rsp, _) = collect(c.send_request(get(path, "items.prod")).await.unwrap()).await;
        assert_eq!(rsp.status(), 404, "{path}");
        assert_eq!(rsp.headers()["l5d-proxy-error"], "no_route", "{path}");
    }
    assert_eq!(apex.requests(), 1, "nothing unmatched reached a backend");
    let unmatched = [("rt_route", "[DEFAULT]"), ("status_code", "404"), ("error", "no_route")];
    assert_eventually!(metric(&proxy, "route_response_total", &unmatched).await == 3.0, "404s counted on [DEFAULT]");

    // Linkerd's route families, labelled as Linkerd labels them.
    let route = [
        ("parent_group", "core"),
        ("parent_kind", "Service"),
        ("parent_namespace", "prod"),
        ("parent_name", "items"),
        ("parent_port", "80"),
        ("route_group", "gateway.networking.k8s.io"),
        ("route_kind", "HTTPRoute"),
        ("route_namespace", "prod"),
        ("route_name", "items-route"),
        ("hostname", ""),
    ];
    let ok = [&route[..], &[("http_status", "200"), ("error", "")]].concat();
    let total = (n + 3) as f64; // /shop, /search twice, /own
    assert_eventually!(
        metric(&proxy, "outbound_http_route_request_statuses_total", &ok).await == total,
        "every completed request of the route counted by status"
    );
    let count = metric(&proxy, "outbound_http_route_request_duration_seconds_count", &route).await;
    let fast =
        metric(&proxy, "outbound_http_route_request_duration_seconds_bucket", &[&route[..], &[("le", "10")]].concat())
            .await;
    assert_eq!((count, fast), (total, total), "durations in seconds, Linkerd's buckets");
    let backend = |name: &'static str| {
        let labels = [
            &route[..],
            &[
                ("backend_kind", "Service"),
                ("backend_namespace", "prod"),
                ("backend_name", name),
                ("backend_port", "80"),
            ],
        ]
        .concat();
        let proxy = &proxy;
        async move {
            let sent = metric(proxy, "outbound_http_route_backend_requests_total", &labels).await;
            let ok = [&labels[..], &[("http_status", "200"), ("error", "")]].concat();
            let answered = metric(proxy, "outbound_http_route_backend_response_statuses_total", &ok).await;
            let timed = metric(proxy, "outbound_http_route_backend_response_duration_seconds_count", &labels).await;
            (sent, answered, timed)
        }
    };
    let (a_n, b_n) = (a.requests() as f64, b.requests() as f64);
    assert_eq!(backend("items-a").await, (a_n, a_n, a_n), "each attempt counted on the backend it went to");
    assert_eq!(backend("items-b").await, (b_n, b_n, b_n));
    assert_eq!(backend("items").await, (1.0, 1.0, 1.0), "a rule without backendRefs: the parent as backend");
}

#[tokio::test]
async fn rule_filters_edit_headers_and_redirect() {
    let app = HttpBackend::start(|req: Request<Incoming>| {
        let seen = |name: &str| req.headers().get(name).map_or("-".to_string(), |v| v.to_str().unwrap().to_string());
        let body = format!("tier={} debug={}", seen("x-tier"), seen("x-debug"));
        async move {
            let mut rsp = Response::new(full(body));
            rsp.headers_mut().insert("x-internal", "1".parse().unwrap());
            rsp
        }
    });
    let spec = "  unmatchedNotFound: true
  routes:
  - name: old
    condition: {pathRegex: '/old(?:/.*)?'}
    rule:
      redirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
      pathPrefix: /old
  - name: items
    condition: {pathRegex: '/.*'}
    rule:
      requestHeaders: {set: [{name: x-tier, value: gold}], remove: [x-debug]}
      responseHeaders: {add: [{name: x-route, value: items}], remove: [x-internal]}
";
    let (proxy, _d) = start(config(), &routed(&app, &app, &app, spec)).await;
    let mut c = h1(proxy.listen().outbound).await;
    let mut req = get("/x", "items.prod");
    req.headers_mut().insert("x-tier", "bronze".parse().unwrap());
    req.headers_mut().insert("x-debug", "1".parse().unwrap());
    let (rsp, body) = collect(c.send_request(req).await.unwrap()).await;
    assert_eq!(body, "tier=gold debug=-", "the app sees the request as the rule edits it");
    assert_eq!(&rsp.headers()["x-route"], "items");
    assert!(rsp.headers().get("x-internal").is_none(), "the caller sees the response as the rule edits it");

    let (rsp, _) = collect(c.send_request(get("/old/a/b?page=2", "items.prod")).await.unwrap()).await;
    assert_eq!(rsp.status(), 302);
    assert_eq!(&rsp.headers()["location"], "http://items.prod/new/a/b?page=2");
    assert_eq!(app.requests(), 1, "a redirect forwards nothing");
}

#[tokio::test]
async fn an_attempt_timeout_cuts_each_attempt_and_a_cut_attempt_is_retried() {
    // The first request the app sees hangs for 5 s, later ones answer at once.
    let seen = Arc::new(AtomicUsize::new(0));
    let s = seen.clone();
    let app = HttpBackend::start(move |_req: Request<Incoming>| {
        let n = s.fetch_add(1, Ordering::SeqCst);
        async move {
            if n == 0 || n >= 10 {
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            Response::new(full("ok"))
        }
    });
    let spec = "  unmatchedNotFound: true
  routes:
  - name: retried
    condition: {pathRegex: /retried}
    timeout: 4s
    retry: {http: [{min: 500, max: 599}], limit: 1}
    rule: {attemptTimeout: 300ms}
  - name: once
    condition: {pathRegex: /once}
    rule: {attemptTimeout: 300ms, routeKind: HTTPRoute, routeGroup: policy.linkerd.io}
";
    let (proxy, _d) = start(config(), &routed(&app, &app, &app, spec)).await;
    let mut c = h1(proxy.listen().outbound).await;
    let started = std::time::Instant::now();
    let (rsp, body) = collect(c.send_request(get("/retried", "items.prod")).await.unwrap()).await;
    eprintln!("attempt timeout 300 ms, first attempt hanging: {} after {:?}", rsp.status(), started.elapsed());
    assert_eq!((rsp.status().as_u16(), body.as_ref()), (200, &b"ok"[..]), "the second attempt answers");
    assert!(started.elapsed() < Duration::from_secs(4), "well before the hanging attempt would have");
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    let cut = [("rt_route", "retried"), ("error", "timeout")];
    assert_eventually!(metric(&proxy, "route_actual_response_total", &cut).await == 1.0, "the cut attempt counted");

    seen.store(10, Ordering::SeqCst); // every request hangs from now on
    let (rsp, _) = collect(c.send_request(get("/once", "items.prod")).await.unwrap()).await;
    assert_eq!(
        (rsp.status().as_u16(), rsp.headers()["l5d-proxy-error"].to_str().unwrap()),
        (504, "timeout"),
        "no retries: 504"
    );
    assert_eq!(seen.load(Ordering::SeqCst), 11, "one attempt");
    let timed_out = [
        ("route_name", "once"),
        ("route_group", "policy.linkerd.io"),
        ("http_status", ""),
        ("error", "REQUEST_TIMEOUT"),
    ];
    assert_eventually!(
        metric(&proxy, "outbound_http_route_request_statuses_total", &timed_out).await == 1.0,
        "a proxy-made timeout is an error with no status"
    );
    let (rsp, _) = collect(c.send_request(get("/retried", "items.prod")).await.unwrap()).await;
    assert_eq!(rsp.status(), 504, "both attempts cut");
    assert_eq!(seen.load(Ordering::SeqCst), 13, "the attempt and its one retry");
}
