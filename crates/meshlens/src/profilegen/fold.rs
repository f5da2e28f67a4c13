//! Folds observed requests into ServiceProfile routes: segments that look like ids (digits, UUIDs, long hex,
//! or a position with many distinct values under one prefix) become `{id}`, so `/users/123` and `/users/456`
//! are one route `GET /users/{id}` whose regex (`/users/[^/]+`) matches both.

use std::collections::BTreeMap;

use meshlens_api::profile::{RequestMatch, RouteSpec};

use super::quote_meta;

/// A position holding at least this many distinct values under the same prefix is a parameter, whatever the
/// values look like (`/users/alice`, `/users/bob`, … → `/users/{id}`).
pub const MANY_DISTINCT: usize = 10;

/// The name of a folded segment in route names.
pub const PLACEHOLDER: &str = "{id}";

/// What a folded segment matches: one non-empty path segment.
pub const PLACEHOLDER_REGEX: &str = "[^/]+";

/// Hex strings at least this long are ids (object ids, hashes).
const LONG_HEX: usize = 12;

/// One segment of a route template.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    Literal(String),
    Id,
}

/// A route made of the requests it folds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldedRoute {
    /// Upper-case, as requests carry it.
    pub method: String,
    segments: Vec<Segment>,
    /// How many observed requests the route covers.
    pub requests: u64,
}

impl FoldedRoute {
    /// `/users/{id}/orders`.
    pub fn template(&self) -> String {
        self.join(|s| match s {
            Segment::Literal(text) => text.clone(),
            Segment::Id => PLACEHOLDER.to_string(),
        })
    }

    /// `GET /users/{id}/orders`: Linkerd's route naming, `METHOD PATH`.
    pub fn name(&self) -> String {
        format!("{} {}", self.method, self.template())
    }

    /// A regex matching every path the route folds (the proxy anchors it: `^(?:…)$`).
    pub fn path_regex(&self) -> String {
        self.join(|s| match s {
            Segment::Literal(text) => quote_meta(text),
            Segment::Id => PLACEHOLDER_REGEX.to_string(),
        })
    }

    /// The route as a ServiceProfile route: name and condition (method and path), nothing else.
    pub fn to_route_spec(&self) -> RouteSpec {
        RouteSpec {
            name: self.name(),
            condition: RequestMatch {
                method: Some(self.method.clone()),
                path_regex: Some(self.path_regex()),
                ..Default::default()
            },
            response_classes: Vec::new(),
            is_retryable: false,
            timeout: None,
            retry: None,
            rule: None,
        }
    }

    /// The order routes are listed in: by name, except that `{id}` sorts after every literal text, so a
    /// literal route (`/users/me`) always comes before the template that would also match it
    /// (`/users/{id}`): the proxy takes the first route that matches.
    fn sort_key(&self) -> String {
        let path = self.join(|s| match s {
            Segment::Literal(text) => text.clone(),
            Segment::Id => char::MAX.to_string(),
        });
        format!("{} {path}", self.method)
    }

    fn join(&self, each: impl Fn(&Segment) -> String) -> String {
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            out.push_str(&each(s));
        }
        out
    }
}

/// Folds `(method, path)` requests into at most `limit` routes, sorted by name (see
/// [`FoldedRoute::sort_key`]). Query strings and fragments are ignored; `/` and paths that do not start with
/// `/` are skipped. With more routes than `limit`, the routes covering the most requests are kept.
pub fn fold<M: AsRef<str>, P: AsRef<str>>(
    requests: impl IntoIterator<Item = (M, P)>,
    limit: usize,
) -> Vec<FoldedRoute> {
    // Every distinct request, counted.
    let mut seen: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (method, path) in requests {
        let Some(path) = route_path(path.as_ref()) else { continue };
        *seen.entry((method.as_ref().trim().to_ascii_uppercase(), path.to_string())).or_default() += 1;
    }

    // One tree of segments for all methods decides which positions are parameters.
    let mut tree = Node::default();
    for (_, path) in seen.keys() {
        tree.insert(path_segments(path));
    }
    tree.collapse();

    let mut routes: BTreeMap<(String, Vec<Segment>), u64> = BTreeMap::new();
    for ((method, path), count) in seen {
        let template = tree.template(path_segments(&path));
        *routes.entry((method, template)).or_default() += count;
    }
    let mut routes: Vec<FoldedRoute> =
        routes.into_iter().map(|((method, segments), requests)| FoldedRoute { method, segments, requests }).collect();
    if routes.len() > limit {
        routes.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.sort_key().cmp(&b.sort_key())));
        routes.truncate(limit);
    }
    routes.sort_by_cached_key(FoldedRoute::sort_key);
    routes
}

/// The path a route matches: without query or fragment; `None` for `/` and anything not starting with `/`.
fn route_path(path: &str) -> Option<&str> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    (path.starts_with('/') && path != "/").then_some(path)
}

/// `/users/123/` → `users`, `{id}`, `` (an empty segment stays: it is part of the path).
fn path_segments(path: &str) -> Vec<Segment> {
    path[1..].split('/').map(|s| if looks_like_id(s) { Segment::Id } else { Segment::Literal(s.to_string()) }).collect()
}

/// All digits, a UUID, or a long hex string with a digit in it.
pub fn looks_like_id(segment: &str) -> bool {
    let b = segment.as_bytes();
    let all_digits = !b.is_empty() && b.iter().all(u8::is_ascii_digit);
    let uuid = b.len() == 36
        && b.iter()
            .enumerate()
            .all(|(i, c)| if matches!(i, 8 | 13 | 18 | 23) { *c == b'-' } else { c.is_ascii_hexdigit() });
    let long_hex = b.len() >= LONG_HEX && b.iter().all(u8::is_ascii_hexdigit) && b.iter().any(u8::is_ascii_digit);
    all_digits || uuid || long_hex
}

/// A tree of path segments: one node per distinct prefix.
#[derive(Debug, Default)]
struct Node {
    children: BTreeMap<Segment, Node>,
}

impl Node {
    fn insert(&mut self, segments: Vec<Segment>) {
        let mut node = self;
        for s in segments {
            node = node.children.entry(s).or_default();
        }
    }

    /// Turns every position with [`MANY_DISTINCT`] or more non-empty literal values into `{id}`, merging
    /// what follows them (`/users/alice/posts` and `/users/bob/posts` → `/users/{id}/posts`).
    fn collapse(&mut self) {
        let literals = self.children.keys().filter(|s| matches!(s, Segment::Literal(t) if !t.is_empty())).count();
        if literals >= MANY_DISTINCT {
            let folded: Vec<Segment> =
                self.children.keys().filter(|s| matches!(s, Segment::Literal(t) if !t.is_empty())).cloned().collect();
            let mut merged = self.children.remove(&Segment::Id).unwrap_or_default();
            for key in folded {
                if let Some(child) = self.children.remove(&key) {
                    merged.merge(child);
                }
            }
            self.children.insert(Segment::Id, merged);
        }
        for child in self.children.values_mut() {
            child.collapse();
        }
    }

    fn merge(&mut self, other: Node) {
        for (key, child) in other.children {
            self.children.entry(key).or_default().merge(child);
        }
    }

    /// The template of an inserted path after [`Node::collapse`]: its literal segments where they survived,
    /// `{id}` where they were folded.
    fn template(&self, segments: Vec<Segment>) -> Vec<Segment> {
        let mut node = self;
        let mut out = Vec::with_capacity(segments.len());
        for s in segments {
            let key = if node.children.contains_key(&s) { s } else { Segment::Id };
            node = node.children.get(&key).expect("an inserted path has a node at every position");
            out.push(key);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profilegen::{ProfileTarget, testutil};

    fn names(routes: &[FoldedRoute]) -> Vec<String> {
        routes.iter().map(FoldedRoute::name).collect()
    }

    /// Folds, then checks what the mesh would do with the result: the control plane accepts the profile,
    /// and the proxy sends every observed request to the route folded from it.
    fn fold_and_check(requests: &[(&str, &str)], limit: usize) -> Vec<FoldedRoute> {
        let routes = fold(requests.iter().copied(), limit);
        let target =
            ProfileTarget { service: "web".into(), namespace: "prod".into(), cluster_domain: "cluster.local".into() };
        let profile = target.profile(routes.iter().map(FoldedRoute::to_route_spec).collect());
        let yaml = crate::profilegen::to_yaml(&profile).unwrap();
        let loaded = testutil::control_plane_accepts("web", "prod", &yaml);
        assert_eq!(loaded, profile);
        if routes.len() < limit {
            for (method, path) in requests {
                let Some(path) = route_path(path) else { continue };
                let method = method.to_ascii_uppercase();
                let got = testutil::route_of(&loaded, &method, path);
                assert!(got.starts_with(&format!("{method} /")), "{method} {path} went to {got}: {yaml}");
            }
        }
        routes
    }

    #[test]
    fn ids_fold_into_one_route_whose_regex_matches_them_all() {
        let reqs = [("GET", "/users/123"), ("GET", "/users/456"), ("GET", "/users/7"), ("get", "/users/123")];
        let routes = fold_and_check(&reqs, 20);
        assert_eq!(names(&routes), ["GET /users/{id}"]);
        assert_eq!(routes[0].path_regex(), "/users/[^/]+");
        assert_eq!(routes[0].requests, 4);
        let profile = ProfileTarget { service: "w".into(), namespace: "n".into(), cluster_domain: "d".into() }
            .profile(routes.iter().map(FoldedRoute::to_route_spec).collect());
        for (_, p) in reqs {
            assert_eq!(testutil::route_of(&profile, "GET", p), "GET /users/{id}");
        }
        assert_eq!(testutil::route_of(&profile, "GET", "/users/1/x"), "[DEFAULT]");
        assert_eq!(testutil::route_of(&profile, "GET", "/users/"), "[DEFAULT]");
        assert_eq!(testutil::route_of(&profile, "POST", "/users/1"), "[DEFAULT]");
    }

    #[test]
    fn uuids_and_long_hex_are_ids_short_words_are_not() {
        assert!(looks_like_id("0"));
        assert!(looks_like_id("123e4567-e89b-12d3-a456-426614174000"));
        assert!(looks_like_id("123E4567-E89B-12D3-A456-426614174000"));
        assert!(looks_like_id("507f1f77bcf86cd799439011"));
        assert!(!looks_like_id("deadbeefcafe"), "hex letters only: a word");
        assert!(!looks_like_id("abc123"), "short");
        assert!(!looks_like_id("123e4567-e89b-12d3-a456-42661417400g"));
        assert!(!looks_like_id("v1"));
        assert!(!looks_like_id(""));

        let reqs = [
            ("GET", "/orders/123e4567-e89b-12d3-a456-426614174000"),
            ("GET", "/orders/9b2f3c4d-0000-4000-8000-000000000001/items/3"),
            ("GET", "/blobs/507f1f77bcf86cd799439011"),
            ("GET", "/blobs/e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ];
        let routes = fold_and_check(&reqs, 20);
        assert_eq!(names(&routes), ["GET /blobs/{id}", "GET /orders/{id}", "GET /orders/{id}/items/{id}"]);
    }

    #[test]
    fn static_and_dynamic_segments_mix() {
        let reqs = [
            ("GET", "/api/v1/users/1/orders"),
            ("GET", "/api/v1/users/2/orders"),
            ("GET", "/api/v1/users/2/orders/77"),
            ("GET", "/api/v1/users/me"),
            ("POST", "/api/v1/users/3/orders"),
            ("GET", "/api/v2/users/9/orders"),
            ("GET", "/health"),
            ("GET", "/users/"),
        ];
        let routes = fold_and_check(&reqs, 20);
        assert_eq!(
            names(&routes),
            [
                "GET /api/v1/users/me",
                "GET /api/v1/users/{id}/orders",
                "GET /api/v1/users/{id}/orders/{id}",
                "GET /api/v2/users/{id}/orders",
                "GET /health",
                "GET /users/",
                "POST /api/v1/users/{id}/orders",
            ]
        );
        let profile = ProfileTarget { service: "w".into(), namespace: "n".into(), cluster_domain: "d".into() }
            .profile(routes.iter().map(FoldedRoute::to_route_spec).collect());
        assert_eq!(testutil::route_of(&profile, "GET", "/api/v1/users/me"), "GET /api/v1/users/me");
        assert_eq!(testutil::route_of(&profile, "GET", "/api/v1/users/5/orders"), "GET /api/v1/users/{id}/orders");
        assert_eq!(testutil::route_of(&profile, "GET", "/api/v1/users/5"), "[DEFAULT]");
        let by_name: BTreeMap<String, &FoldedRoute> = routes.iter().map(|r| (r.name(), r)).collect();
        assert_eq!(by_name["GET /api/v1/users/{id}/orders"].requests, 2);
        assert_eq!(by_name["GET /api/v1/users/{id}/orders"].path_regex(), "/api/v1/users/[^/]+/orders");
    }

    #[test]
    fn many_distinct_values_under_one_prefix_fold_few_do_not() {
        let mut reqs: Vec<(String, String)> =
            ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
                .iter()
                .map(|u| ("GET".to_string(), format!("/profiles/{u}/avatar")))
                .collect();
        reqs.extend(["cart", "catalog", "search"].iter().map(|p| ("GET".to_string(), format!("/{p}"))));
        let refs: Vec<(&str, &str)> = reqs.iter().map(|(m, p)| (m.as_str(), p.as_str())).collect();
        let routes = fold_and_check(&refs, 20);
        assert_eq!(names(&routes), ["GET /cart", "GET /catalog", "GET /profiles/{id}/avatar", "GET /search"]);
        assert_eq!(routes[2].requests, 10);

        // Nine are still names.
        let routes = fold(refs.iter().skip(1).copied(), 20);
        assert_eq!(routes.len(), 12, "{:?}", names(&routes));
    }

    #[test]
    fn query_strings_and_fragments_are_stripped_and_root_is_skipped() {
        let reqs = [
            ("GET", "/search?q=shoes"),
            ("GET", "/search?q=hats&page=2"),
            ("GET", "/search#top"),
            ("GET", "/"),
            ("GET", "/?utm=x"),
            ("OPTIONS", "*"),
        ];
        let routes = fold_and_check(&reqs, 20);
        assert_eq!(names(&routes), ["GET /search"]);
        assert_eq!(routes[0].requests, 3);
        assert_eq!(routes[0].path_regex(), "/search");
    }

    #[test]
    fn the_route_limit_keeps_the_busiest_routes() {
        let mut reqs: Vec<(&str, &str)> = Vec::new();
        for (path, n) in [("/a", 1), ("/b", 5), ("/c", 3), ("/d", 5), ("/e", 2)] {
            reqs.extend(std::iter::repeat_n(("GET", path), n));
        }
        let routes = fold_and_check(&reqs, 3);
        assert_eq!(names(&routes), ["GET /b", "GET /c", "GET /d"]);
        assert!(fold(reqs.iter().copied(), 0).is_empty());
    }

    #[test]
    fn special_characters_are_escaped_in_regexes_not_in_names() {
        let reqs = [("GET", "/files/report.v2+final(1).pdf"), ("GET", "/a$b/c^d")];
        let routes = fold_and_check(&reqs, 20);
        assert_eq!(names(&routes), ["GET /a$b/c^d", "GET /files/report.v2+final(1).pdf"]);
        assert_eq!(routes[1].path_regex(), r"/files/report\.v2\+final\(1\)\.pdf");
    }
}
