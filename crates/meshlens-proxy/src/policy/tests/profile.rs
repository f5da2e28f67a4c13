use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, Method};
use meshlens_api::profile::ServiceProfile;

use super::{DEFAULT_MAX_RETRIES, DEFAULT_ROUTE_NAME, MAX_RETRIES_ANNOTATION, Policy, RouteConfig};
use crate::policy::Class;
use crate::policy::route::RequestHead;

fn profile(yaml: &str) -> ServiceProfile {
    let full = format!(
        "apiVersion: linkerd.io/v1alpha2\nkind: ServiceProfile\nmetadata:\n  name: web.prod.svc.cluster.local\n  namespace: prod\n{yaml}"
    );
    serde_json::from_value(serde_saphyr::from_str::<serde_json::Value>(&full).unwrap()).unwrap()
}

/// The route of a request without headers.
fn route<'a>(p: &'a Policy, method: &Method, path_and_query: &str) -> &'a RouteConfig {
    p.route(&RequestHead { method, path_and_query, headers: &HeaderMap::new() })
}

fn compile(yaml: &str) -> Policy {
    Policy::compile(&profile(yaml)).unwrap_or_else(|e| panic!("{e}"))
}

fn error(yaml: &str) -> String {
    Policy::compile(&profile(yaml)).unwrap_err()
}

const ROUTES: &str = r#"
spec:
  routes:
    - name: get-user
      condition: {method: GET, pathRegex: '/users/\d+'}
      isRetryable: true
      timeout: 300ms
      responseClasses:
        - condition: {status: {min: 404}}
          isFailure: true
    - name: users
      condition: {pathRegex: '/users(/.*)?'}
      timeout: 1m30s
    - name: shadowed
      condition: {method: GET, pathRegex: '/users/1'}
      isRetryable: true
"#;

#[test]
fn routes_in_order_first_match_wins_else_default() {
    let p = compile(ROUTES);
    assert_eq!(p.name, "web.prod.svc.cluster.local");
    assert_eq!(p.routes.len(), 3);
    let r = route(&p, &Method::GET, "/users/1");
    assert_eq!(r.name, "get-user", "the first match wins over the later, more specific one");
    assert!(r.retryable && r.retries());
    assert_eq!(r.timeout, Some(Duration::from_millis(300)));
    assert_eq!(r.classifier.classify(404, None), Class::Failure);
    let r = route(&p, &Method::DELETE, "/users/1");
    assert_eq!(r.name, "users");
    assert!(!r.retryable && !r.retries());
    assert_eq!(r.timeout, Some(Duration::from_secs(90)));
    assert_eq!(r.classifier.classify(404, None), Class::Success);
    // Unmatched: the default route.
    let r = route(&p, &Method::GET, "/health");
    assert_eq!(r.name, DEFAULT_ROUTE_NAME);
    assert!(r.is_default() && !r.retryable && !r.retries());
    assert_eq!(r.timeout, None);
    assert_eq!(r.classifier.classify(503, None), Class::Failure);
    assert_eq!(r.classifier.classify(200, Some(2)), Class::Failure);
    // The query is not part of the path.
    assert_eq!(route(&p, &Method::GET, "/users/7?verbose=1").name, "get-user");
}

#[test]
fn default_policy_and_empty_profile() {
    for p in [Policy::default(), compile("spec: {}")] {
        assert!(p.routes.is_empty());
        assert_eq!(route(&p, &Method::POST, "/x").name, "[DEFAULT]");
        let b = p.retry_budget.as_ref().expect("Linkerd's default budget");
        assert_eq!((b.ratio(), b.min_per_sec(), b.ttl()), (0.2, 10, Duration::from_secs(10)));
        assert_eq!(p.max_retries_per_request, DEFAULT_MAX_RETRIES);
        assert!(p.dst_overrides.is_empty() && p.warnings.is_empty());
    }
}

#[test]
fn one_budget_shared_by_the_retryable_routes() {
    let p = compile(
        r#"
spec:
  retryBudget: {retryRatio: 0.5, minRetriesPerSecond: 3, ttl: 20s}
  routes:
    - {name: a, condition: {pathRegex: /a}, isRetryable: true}
    - {name: b, condition: {pathRegex: /b}, isRetryable: true}
    - {name: c, condition: {pathRegex: /c}}
"#,
    );
    let shared = p.retry_budget.as_ref().unwrap();
    assert_eq!((shared.ratio(), shared.min_per_sec(), shared.ttl()), (0.5, 3, Duration::from_secs(20)));
    let a = route(&p, &Method::GET, "/a").retry_budget.as_ref().unwrap();
    let b = route(&p, &Method::GET, "/b").retry_budget.as_ref().unwrap();
    assert!(Arc::ptr_eq(a, shared) && Arc::ptr_eq(b, shared));
    assert!(route(&p, &Method::GET, "/c").retry_budget.is_none());
    // Spending through one route spends the other's.
    while a.withdraw() {}
    assert!(!b.withdraw());
}

#[test]
fn a_budget_linkerd_refuses_disables_retries() {
    for budget in [
        "{retryRatio: 1000.5, minRetriesPerSecond: 10, ttl: 10s}",
        "{retryRatio: -1, minRetriesPerSecond: 10, ttl: 10s}",
        "{retryRatio: 0.2, minRetriesPerSecond: 10, ttl: 500ms}",
        "{retryRatio: 0.2, minRetriesPerSecond: 10, ttl: 61s}",
        "{retryRatio: 0.2, minRetriesPerSecond: 10, ttl: 0s}",
    ] {
        let p = compile(&format!(
            "spec:\n  retryBudget: {budget}\n  routes: [{{name: a, condition: {{method: GET}}, isRetryable: true}}]"
        ));
        assert!(p.retry_budget.is_none(), "{budget}");
        let r = route(&p, &Method::GET, "/");
        assert!(r.retryable && !r.retries(), "{budget}");
        assert_eq!(p.warnings.len(), 1, "{budget}");
        assert!(p.warnings[0].contains("retries are disabled"), "{:?}", p.warnings);
    }
    // Bounds are accepted.
    let p = compile("spec:\n  retryBudget: {retryRatio: 1000, minRetriesPerSecond: 0, ttl: 60s}");
    assert!(p.retry_budget.is_some() && p.warnings.is_empty());
}

#[test]
fn max_retries_annotation() {
    let with = |v: &str| {
        let mut sp = profile("spec: {}");
        sp.metadata.annotations.insert(MAX_RETRIES_ANNOTATION.to_string(), v.to_string());
        Policy::compile(&sp).unwrap()
    };
    assert_eq!(MAX_RETRIES_ANNOTATION, "meshlens.io/max-retries");
    assert_eq!(with("5").max_retries_per_request, 5);
    assert_eq!(with(" 0 ").max_retries_per_request, 0);
    let bad = with("lots");
    assert_eq!(bad.max_retries_per_request, DEFAULT_MAX_RETRIES);
    assert!(bad.warnings[0].contains("meshlens.io/max-retries"), "{:?}", bad.warnings);
    assert_eq!(with("-1").max_retries_per_request, DEFAULT_MAX_RETRIES);
}

#[test]
fn dst_overrides_get_a_port_and_lose_zero_weights() {
    let yaml = r#"
spec:
  dstOverrides:
    - {authority: web-v1.prod.svc.cluster.local, weight: 900m}
    - {authority: 'web-v2.prod.svc.cluster.local:8080', weight: 100m}
    - {authority: web-v3.prod.svc.cluster.local, weight: 0}
    - {authority: web-v4, weight: 1}
"#;
    let p = compile(yaml);
    assert_eq!(
        p.dst_overrides,
        [
            ("web-v1.prod.svc.cluster.local:80".to_string(), 900),
            ("web-v2.prod.svc.cluster.local:8080".to_string(), 100),
            ("web-v4:80".to_string(), 1000),
        ]
    );
    let p = Policy::compile_for_port(&profile(yaml), 7000).unwrap();
    assert_eq!(p.dst_overrides[0].0, "web-v1.prod.svc.cluster.local:7000");
    assert_eq!(p.dst_overrides[1].0, "web-v2.prod.svc.cluster.local:8080");
    // All zero: no overrides at all.
    let p = compile("spec:\n  dstOverrides: [{authority: a, weight: 0}]");
    assert!(p.dst_overrides.is_empty());
}

#[test]
fn timeouts() {
    let route =
        |t: &str| compile(&format!("spec:\n  routes: [{{name: r, condition: {{method: GET}}, timeout: '{t}'}}]"));
    assert_eq!(route("5s").routes[0].timeout, Some(Duration::from_secs(5)));
    assert_eq!(route("1.5s").routes[0].timeout, Some(Duration::from_millis(1500)));
    assert_eq!(route("0s").routes[0].timeout, None, "zero means no timeout, as Linkerd's controller sends none");
    assert_eq!(compile("spec:\n  routes: [{name: r, condition: {method: GET}}]").routes[0].timeout, None);
}

#[test]
fn errors_say_where() {
    assert_eq!(
        error("spec:\n  routes: [{name: r, condition: {method: GET}, timeout: 5 seconds}]"),
        "route 'r': timeout: '5 seconds' is not a duration (e.g. 5s, 300ms)"
    );
    assert_eq!(
        error("spec:\n  routes: [{name: r, condition: {}}]"),
        "route 'r': condition: a request match must set one of pathRegex, method, headers, queryParams, all, any, not"
    );
    let e = error("spec:\n  routes: [{name: r, condition: {pathRegex: '/('}}]");
    assert!(e.starts_with("route 'r': condition: pathRegex '/(': "), "{e}");
    assert_eq!(
        error(
            "spec:\n  routes: [{name: r, condition: {method: GET}, responseClasses: [{condition: {status: {min: 600}}}]}]"
        ),
        "route 'r': responseClasses[0]: status: min 600 is not in 100..=599"
    );
    assert_eq!(
        error("spec:\n  retryBudget: {retryRatio: 0.2, minRetriesPerSecond: 10, ttl: ten}"),
        "retryBudget: ttl: 'ten' is not a duration (e.g. 5s, 300ms)"
    );
    assert_eq!(
        error("spec:\n  dstOverrides: [{authority: 'a b', weight: 1}]"),
        "dstOverrides[0]: invalid authority: a b"
    );
    assert_eq!(
        error("spec:\n  dstOverrides: [{authority: a, weight: much}]"),
        "dstOverrides[0]: a: weight 'much' is not a quantity"
    );
}

#[test]
fn route_retries_compiled_from_an_httproute_name_the_statuses_and_the_limit() {
    let p = compile(
        "spec:\n  routes:\n    - name: web-route\n      condition: {pathRegex: /x}\n      retry: {http: [{min: 502, max: 504}], grpc: [14], limit: 2}\n    - name: plain\n      condition: {method: POST}\n",
    );
    let r = route(&p, &Method::GET, "/x");
    assert!(r.retries() && r.retryable, "retries need no isRetryable nor the profile's budget");
    assert!(r.retries_response(503, None) && r.retries_response(200, Some(14)));
    assert!(!r.retries_response(500, None) && !r.retries_response(200, Some(13)));
    assert_eq!(r.max_retries(DEFAULT_MAX_RETRIES), 2);
    // A budget that never runs out: Linkerd's route retries have none.
    let budget = r.retry_budget.as_ref().unwrap();
    assert!((0..1000).all(|_| budget.withdraw()));
    // A profile route retries every failure, up to the profile's cap.
    let plain = route(&p, &Method::POST, "/y");
    assert!(plain.retries_response(500, None));
    assert_eq!(plain.max_retries(DEFAULT_MAX_RETRIES), DEFAULT_MAX_RETRIES);
}

#[test]
fn routes_chosen_by_header_and_query_param() {
    let p = compile(
        "spec:
  routes:
  - name: beta-users
    condition:
      pathRegex: /users/.*
      headers: [{name: x-canary, value: beta}]
  - name: search-books
    condition:
      queryParams: [{name: kind, type: RegularExpression, value: 'book|ebook'}]
  - name: users
    condition: {pathRegex: /users/.*}
",
    );
    let pick = |uri: &str, canary: Option<&str>| {
        let mut req = http::Request::get(uri);
        if let Some(v) = canary {
            req = req.header("X-Canary", v);
        }
        let req = req.body(()).unwrap();
        p.route(&RequestHead::of(&req)).name.clone()
    };
    assert_eq!(pick("/users/1", Some("beta")), "beta-users");
    assert_eq!(pick("/users/1", Some("stable")), "users");
    assert_eq!(pick("/users/1", None), "users");
    assert_eq!(pick("/users/1?kind=ebook", None), "search-books");
    assert_eq!(pick("/search?kind=ebook&x=1", Some("beta")), "search-books");
    assert_eq!(pick("/search?kind=cd", None), DEFAULT_ROUTE_NAME);
}
