use super::*;
use meshlens_api::httproute::{HttpHeader, PathModifier};

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn header_edits_set_add_then_remove() {
    let m = HeaderModifier {
        set: vec![HttpHeader { name: "x-tier".into(), value: "gold".into() }],
        add: vec![HttpHeader { name: "x-seen".into(), value: "mesh".into() }],
        remove: vec!["x-debug".into()],
    };
    let edit = HeaderEdit::compile(&m).unwrap();
    let mut h = headers(&[("x-tier", "bronze"), ("x-tier", "silver"), ("x-seen", "app"), ("x-debug", "1")]);
    edit.apply(&mut h);
    assert_eq!(h.get_all("x-tier").iter().collect::<Vec<_>>(), ["gold"]);
    assert_eq!(h.get_all("x-seen").iter().collect::<Vec<_>>(), ["app", "mesh"]);
    assert!(h.get("x-debug").is_none());
    let bad = HeaderModifier { remove: vec!["bad name".into()], ..Default::default() };
    assert!(HeaderEdit::compile(&bad).is_err());
}

fn redirect(r: RequestRedirect, prefix: Option<&str>, uri: &str, host: &str) -> (u16, String) {
    let r = Redirect::compile(&r, prefix).unwrap();
    (r.status.as_u16(), r.location(&uri.parse().unwrap(), &headers(&[("host", host)])))
}

#[test]
fn redirects_keep_what_they_do_not_set() {
    let plain = RequestRedirect::default();
    assert_eq!(redirect(plain, None, "/a?b=c", "web.prod:8080"), (302, "http://web.prod:8080/a?b=c".into()));
    let https = RequestRedirect { scheme: Some("https".into()), status_code: Some(301), ..Default::default() };
    assert_eq!(redirect(https, None, "/a", "web.prod:8080"), (301, "https://web.prod/a".into()));
    let host = RequestRedirect { hostname: Some("new.prod".into()), port: Some(80), ..Default::default() };
    assert_eq!(redirect(host, None, "/a", "web.prod:8080"), (302, "http://new.prod/a".into()));
    let full = RequestRedirect {
        path: Some(PathModifier {
            kind: "ReplaceFullPath".into(),
            replace_full_path: Some("/x".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(redirect(full, None, "/a/b?q", "web"), (302, "http://web/x?q".into()));
}

#[test]
fn a_prefix_redirect_replaces_the_matched_prefix_only() {
    let prefix = |with: &str| RequestRedirect {
        path: Some(PathModifier {
            kind: "ReplacePrefixMatch".into(),
            replace_prefix_match: Some(with.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_eq!(redirect(prefix("/v2"), Some("/v1"), "/v1/items", "web").1, "http://web/v2/items");
    assert_eq!(redirect(prefix("/v2"), Some("/v1/"), "/v1", "web").1, "http://web/v2");
    assert_eq!(redirect(prefix("/"), Some("/v1"), "/v1/items", "web").1, "http://web/items");
    assert_eq!(redirect(prefix("/"), Some("/v1"), "/v1", "web").1, "http://web/");
    assert!(Redirect::compile(&prefix("/v2"), None).is_err());
}
