use http::{HeaderMap, Method, Request};
use meshlens_api::profile::RequestMatch;

use super::{RequestHead, RequestMatcher};

trait MatchesPath {
    /// Whether a request without headers matches.
    fn matches_path(&self, method: &Method, path_and_query: &str) -> bool;
}

impl MatchesPath for RequestMatcher {
    fn matches_path(&self, method: &Method, path_and_query: &str) -> bool {
        self.matches(&RequestHead { method, path_and_query, headers: &HeaderMap::new() })
    }
}

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
    assert!(m.matches_path(&Method::GET, "/api/users/42"));
    assert!(!m.matches_path(&Method::GET, "/api/users/42/orders"));
    assert!(!m.matches_path(&Method::GET, "/v2/api/users/42"));
    assert!(!m.matches_path(&Method::GET, "/api/users/"));
    // Already-anchored regexes keep working.
    let m = compile(&path("^/books/[^/]+$"));
    assert!(m.matches_path(&Method::GET, "/books/dune"));
    assert!(!m.matches_path(&Method::GET, "/books/dune/1"));
}

#[test]
fn alternation_is_anchored_as_a_whole() {
    let m = compile(&path("/a|/b"));
    assert!(m.matches_path(&Method::GET, "/a"));
    assert!(m.matches_path(&Method::GET, "/b"));
    assert!(!m.matches_path(&Method::GET, "/a/x"));
    assert!(!m.matches_path(&Method::GET, "/x/b"));
}

#[test]
fn path_regex_ignores_the_query() {
    let m = compile(&path("/search"));
    assert!(m.matches_path(&Method::GET, "/search?q=x"));
    assert!(m.matches_path(&Method::GET, "/search"));
    let m = compile(&path("/search\\?q=x"));
    assert!(!m.matches_path(&Method::GET, "/search?q=x"));
}

#[test]
fn path_regex_whitespace_is_trimmed_like_linkerd() {
    let m = compile(&path("  /x  "));
    assert!(m.matches_path(&Method::GET, "/x"));
}

#[test]
fn method_is_exact_on_the_request_and_normalised_in_config() {
    let m = compile(&method("GET"));
    assert!(m.matches_path(&Method::GET, "/"));
    assert!(!m.matches_path(&Method::POST, "/"));
    assert!(!m.matches_path(&Method::HEAD, "/"));
    let lower_req = Method::from_bytes(b"get").unwrap();
    assert!(!m.matches_path(&lower_req, "/"), "request methods are case-sensitive");
    // Linkerd's controller upper-cases the configured method.
    assert!(compile(&method("post")).matches_path(&Method::POST, "/"));
    assert!(compile(&method(" PUT ")).matches_path(&Method::PUT, "/"));
    // Extension methods.
    let purge = Method::from_bytes(b"PURGE").unwrap();
    assert!(compile(&method("PURGE")).matches_path(&purge, "/"));
}

#[test]
fn several_fields_are_anded() {
    let m = compile(&RequestMatch {
        method: Some("POST".into()),
        path_regex: Some("/orders".into()),
        ..Default::default()
    });
    assert!(m.matches_path(&Method::POST, "/orders"));
    assert!(!m.matches_path(&Method::GET, "/orders"));
    assert!(!m.matches_path(&Method::POST, "/order"));
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
    assert!(m.matches_path(&Method::GET, "/api/users"));
    assert!(m.matches_path(&Method::HEAD, "/api/users"));
    assert!(!m.matches_path(&Method::POST, "/api/users"));
    assert!(!m.matches_path(&Method::GET, "/api/internal/x"));
    assert!(!m.matches_path(&Method::GET, "/other"));

    let not_get = compile(&RequestMatch { not: Some(Box::new(method("GET"))), ..Default::default() });
    assert!(!not_get.matches_path(&Method::GET, "/"));
    assert!(not_get.matches_path(&Method::DELETE, "/"));

    let any = compile(&yaml("any: [{pathRegex: /a}, {pathRegex: /b}]"));
    assert!(any.matches_path(&Method::GET, "/a") && any.matches_path(&Method::GET, "/b"));
    assert!(!any.matches_path(&Method::GET, "/c"));
}

#[test]
fn empty_lists_follow_linkerd() {
    let all = compile(&yaml("all: []"));
    assert!(all.matches_path(&Method::GET, "/anything"));
    let any = compile(&yaml("any: []"));
    assert!(!any.matches_path(&Method::GET, "/anything"));
    let not_any = compile(&yaml("not: {any: []}"));
    assert!(not_any.matches_path(&Method::GET, "/anything"));
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
    assert!(m.matches_path(&Method::GET, "/v1/users/"));
    assert!(m.matches_path(&Method::GET, "/v2/items/a-b"));
    assert!(!m.matches_path(&Method::GET, "/vx/users/"));
}

#[test]
fn case_insensitive_paths_work_as_in_linkerd() {
    assert!(compile(&path("(?i)/users")).matches_path(&Method::GET, "/USERS"));
    assert!(compile(&path("(?i-u)/users")).matches_path(&Method::GET, "/Users"));
}

#[test]
fn headers_match_by_name_case_insensitively_exact_or_by_whole_value_regex() {
    let m = compile(&yaml(
        "headers: [{name: X-User, value: alice}, {name: x-tier, type: RegularExpression, value: 'gold|plat.*'}]",
    ));
    let req = |headers: &[(&str, &str)]| {
        let mut b = Request::get("/anything");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    };
    assert!(m.matches(&RequestHead::of(&req(&[("x-user", "alice"), ("X-TIER", "platinum")]))));
    assert!(m.matches(&RequestHead::of(&req(&[("x-user", "alice"), ("x-tier", "silver"), ("x-tier", "gold")]))));
    assert!(!m.matches(&RequestHead::of(&req(&[("x-user", "Alice"), ("x-tier", "gold")]))), "values are exact");
    assert!(!m.matches(&RequestHead::of(&req(&[("x-user", "alice"), ("x-tier", "golden")]))), "regex is anchored");
    assert!(!m.matches(&RequestHead::of(&req(&[("x-user", "alice")]))), "every header must match");
}

#[test]
fn query_params_match_the_first_occurrence_and_combine_with_the_path() {
    let m = compile(&yaml(
        "pathRegex: /search\nqueryParams: [{name: q, value: books}, {name: page, type: RegularExpression, value: '[0-9]+'}]",
    ));
    assert!(m.matches_path(&Method::GET, "/search?q=books&page=2"));
    assert!(m.matches_path(&Method::GET, "/search?page=10&x&q=books"));
    assert!(!m.matches_path(&Method::GET, "/search?q=books&page=two"));
    assert!(!m.matches_path(&Method::GET, "/search?q=Books&page=2"), "values are exact");
    assert!(!m.matches_path(&Method::GET, "/search?Q=books&page=2"), "names are case-sensitive");
    assert!(!m.matches_path(&Method::GET, "/search?q=music&q=books&page=2"), "the first occurrence counts");
    assert!(!m.matches_path(&Method::GET, "/search"));
    assert!(!m.matches_path(&Method::GET, "/other?q=books&page=2"));
    let req = Request::get("/search?q=books&page=3").body(()).unwrap();
    assert!(m.matches(&RequestHead::of(&req)));
}

#[test]
fn query_params_compare_percent_decoded() {
    let m = compile(&yaml("queryParams: [{name: user name, value: 'ann & bob/1'}]"));
    assert!(m.matches_path(&Method::GET, "/?user%20name=ann%20%26%20bob%2F1"));
    assert!(m.matches_path(&Method::GET, "/?user+name=ann+%26+bob/1"), "+ is a space");
    assert!(m.matches_path(&Method::GET, "/?user%20name=ann%20%26%20bob%2f1"), "hex digits in either case");
    assert!(!m.matches_path(&Method::GET, "/?user%20name=ann%20&%20bob/1"), "a raw & ends the value");
    let raw = compile(&yaml("queryParams: [{name: p, value: '100%'}]"));
    assert!(raw.matches_path(&Method::GET, "/?p=100%"), "a lone % stays as written");
    assert!(raw.matches_path(&Method::GET, "/?p=100%25"));
    let re = compile(&yaml("queryParams: [{name: tag, type: RegularExpression, value: 'a b|c'}]"));
    assert!(re.matches_path(&Method::GET, "/?tag=a%20b"));
}

#[test]
fn invalid_header_and_query_matches_are_errors() {
    let e = RequestMatcher::compile(&yaml("headers: [{name: 'x user', value: a}]")).unwrap_err();
    assert!(e.contains("headers[0].name 'x user' is not a header name"), "{e}");
    let e =
        RequestMatcher::compile(&yaml("queryParams: [{name: q, type: RegularExpression, value: '('}]")).unwrap_err();
    assert!(e.starts_with("queryParams[0]: value '('"), "{e}");
    let e = RequestMatcher::compile(&yaml("headers: [{name: x, type: Prefix, value: a}]")).unwrap_err();
    assert!(e.contains("type 'Prefix' is not Exact or RegularExpression"), "{e}");
}

/// What matching costs per request with query parameters, plain and percent-encoded, against comparing the
/// raw bytes (the matcher before values were decoded). `cargo test --release -p meshlens-proxy --lib
/// route_matcher_cost -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, run by hand in release"]
fn route_matcher_cost() {
    use std::hint::black_box;
    use std::time::Instant;
    let m = compile(&yaml("pathRegex: /search\nqueryParams: [{name: q, value: blue shoes}, {name: page, value: '2'}]"));
    let raw = |query: &str, name: &str, want: &[u8]| {
        query
            .split('&')
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(n, _)| *n == name)
            .is_some_and(|(_, v)| v.as_bytes() == want)
    };
    let n = 2_000_000;
    let time = |f: &dyn Fn() -> bool| {
        let t = Instant::now();
        for _ in 0..n {
            black_box(f());
        }
        t.elapsed().as_nanos() as f64 / n as f64
    };
    for query in ["/search?q=blue-shoes&page=2&x=1", "/search?q=blue%20shoes&page=2&x=1"] {
        let matcher = time(&|| m.matches_path(&Method::GET, black_box(query)));
        let q = query.split_once('?').unwrap().1;
        let decoded = time(&|| !super::decode(black_box(q).split('&').next().unwrap()).is_empty());
        let bytes = time(&|| raw(black_box(q), "q", b"blue shoes") && raw(black_box(q), "page", b"2"));
        eprintln!(
            "{query}: whole match {matcher:.0} ns; raw query compare {bytes:.0} ns; decoding one pair {decoded:.0} ns"
        );
    }
}
