use http::Method;
use meshlens_api::profile::RequestMatch;

use super::RequestMatcher;

fn path(re: &str) -> RequestMatch {
    RequestMatch { path_regex: Some(re.into()), ..Default::default() }
}

fn method(m: &str) -> RequestMatch {
    RequestMatch { method: Some(m.into()), ..Default::default() }
}

fn compile(m: &RequestMatch) -> RequestMatcher {
    RequestMatcher::compile(m).unwrap_or_else(|e| panic!("{e}"))
}

fn yaml(s: &str) -> RequestMatch {
    serde_json::from_value(serde_saphyr::from_str::<serde_json::Value>(s).unwrap()).unwrap()
}

#[test]
fn path_regex_is_anchored_on_the_whole_path() {
    let m = compile(&path("/api/users/\\d+"));
    assert!(m.matches(&Method::GET, "/api/users/42"));
    assert!(!m.matches(&Method::GET, "/api/users/42/orders"));
    assert!(!m.matches(&Method::GET, "/v2/api/users/42"));
    assert!(!m.matches(&Method::GET, "/api/users/"));
    // Already-anchored regexes keep working.
    let m = compile(&path("^/books/[^/]+$"));
    assert!(m.matches(&Method::GET, "/books/dune"));
    assert!(!m.matches(&Method::GET, "/books/dune/1"));
}

#[test]
fn alternation_is_anchored_as_a_whole() {
    let m = compile(&path("/a|/b"));
    assert!(m.matches(&Method::GET, "/a"));
    assert!(m.matches(&Method::GET, "/b"));
    assert!(!m.matches(&Method::GET, "/a/x"));
    assert!(!m.matches(&Method::GET, "/x/b"));
}

#[test]
fn path_regex_ignores_the_query() {
    let m = compile(&path("/search"));
    assert!(m.matches(&Method::GET, "/search?q=x"));
    assert!(m.matches(&Method::GET, "/search"));
    let m = compile(&path("/search\\?q=x"));
    assert!(!m.matches(&Method::GET, "/search?q=x"));
}

#[test]
fn path_regex_whitespace_is_trimmed_like_linkerd() {
    let m = compile(&path("  /x  "));
    assert!(m.matches(&Method::GET, "/x"));
}

#[test]
fn method_is_exact_on_the_request_and_normalised_in_config() {
    let m = compile(&method("GET"));
    assert!(m.matches(&Method::GET, "/"));
    assert!(!m.matches(&Method::POST, "/"));
    assert!(!m.matches(&Method::HEAD, "/"));
    let lower_req = Method::from_bytes(b"get").unwrap();
    assert!(!m.matches(&lower_req, "/"), "request methods are case-sensitive");
    // Linkerd's controller upper-cases the configured method.
    assert!(compile(&method("post")).matches(&Method::POST, "/"));
    assert!(compile(&method(" PUT ")).matches(&Method::PUT, "/"));
    // Extension methods.
    let purge = Method::from_bytes(b"PURGE").unwrap();
    assert!(compile(&method("PURGE")).matches(&purge, "/"));
}

#[test]
fn several_fields_are_anded() {
    let m = compile(&RequestMatch {
        method: Some("POST".into()),
        path_regex: Some("/orders".into()),
        ..Default::default()
    });
    assert!(m.matches(&Method::POST, "/orders"));
    assert!(!m.matches(&Method::GET, "/orders"));
    assert!(!m.matches(&Method::POST, "/order"));
}

#[test]
fn all_any_not() {
    let m = compile(&yaml(
        r#"
all:
  - pathRegex: /api/.*
  - any:
      - method: GET
      - method: HEAD
  - not:
      pathRegex: /api/internal/.*
"#,
    ));
    assert!(m.matches(&Method::GET, "/api/users"));
    assert!(m.matches(&Method::HEAD, "/api/users"));
    assert!(!m.matches(&Method::POST, "/api/users"));
    assert!(!m.matches(&Method::GET, "/api/internal/x"));
    assert!(!m.matches(&Method::GET, "/other"));

    let not_get = compile(&RequestMatch { not: Some(Box::new(method("GET"))), ..Default::default() });
    assert!(!not_get.matches(&Method::GET, "/"));
    assert!(not_get.matches(&Method::DELETE, "/"));

    let any = compile(&yaml("any: [{pathRegex: /a}, {pathRegex: /b}]"));
    assert!(any.matches(&Method::GET, "/a") && any.matches(&Method::GET, "/b"));
    assert!(!any.matches(&Method::GET, "/c"));
}

#[test]
fn empty_lists_follow_linkerd() {
    let all = compile(&yaml("all: []"));
    assert!(all.matches(&Method::GET, "/anything"));
    let any = compile(&yaml("any: []"));
    assert!(!any.matches(&Method::GET, "/anything"));
    let not_any = compile(&yaml("not: {any: []}"));
    assert!(not_any.matches(&Method::GET, "/anything"));
}

#[test]
fn a_match_without_fields_is_refused() {
    let e = RequestMatcher::compile(&RequestMatch::default()).unwrap_err();
    assert!(e.contains("must set one of"), "{e}");
    // Empty strings count as unset, as in Go.
    assert!(RequestMatcher::compile(&path("")).is_err());
    assert!(RequestMatcher::compile(&method("")).is_err());
    // At any depth, with the place named.
    let e = RequestMatcher::compile(&yaml("all: [{method: GET}, {}]")).unwrap_err();
    assert!(e.starts_with("all[1]: "), "{e}");
    let e = RequestMatcher::compile(&yaml("not: {}")).unwrap_err();
    assert!(e.starts_with("not: "), "{e}");
}

#[test]
fn invalid_regex_and_method_are_errors() {
    let e = RequestMatcher::compile(&path("/users/(")).unwrap_err();
    assert!(e.starts_with("pathRegex '/users/(': "), "{e}");
    assert!(!e.contains('\n'), "{e}");
    let e = RequestMatcher::compile(&method("GE T")).unwrap_err();
    assert_eq!(e, "method 'GE T' is not an HTTP method");
    let e = RequestMatcher::compile(&yaml("any: [{pathRegex: /ok}, {pathRegex: '['}]")).unwrap_err();
    assert!(e.starts_with("any[1]: pathRegex '[': "), "{e}");
}

#[test]
fn perl_classes_work() {
    let m = compile(&path("/v\\d/\\w+/\\S*"));
    assert!(m.matches(&Method::GET, "/v1/users/"));
    assert!(m.matches(&Method::GET, "/v2/items/a-b"));
    assert!(!m.matches(&Method::GET, "/vx/users/"));
}

#[test]
fn case_insensitive_paths_work_as_in_linkerd() {
    assert!(compile(&path("(?i)/users")).matches(&Method::GET, "/USERS"));
    assert!(compile(&path("(?i-u)/users")).matches(&Method::GET, "/Users"));
}
