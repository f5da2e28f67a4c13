//! A ServiceProfile route `condition` (`RequestMatch`) compiled for matching requests by method and path.
//!
//! Semantics follow Linkerd (controller `profile_translator.go` + `pkg/profiles` validation, proxy
//! `service-profiles` `proto.rs`/`http.rs`):
//! - `pathRegex` matches the whole path, without the query; `method` compares the request method exactly
//!   (case-sensitive) against the configured one, which is trimmed and upper-cased first as Linkerd's
//!   controller does (`method: get` matches `GET` requests, not a request whose method is literally `get`).
//! - Several fields in one match must all match (AND), in Linkerd's order: `all`, `any`, `method`, `not`,
//!   `pathRegex`.
//! - An empty string (`pathRegex: ""`, `method: ""`) counts as unset, as in Go.
//! - A match that sets no field is refused ("A request match must have a field set" in Linkerd's
//!   controller, which then sends no profile at all): [`RequestMatcher::compile`] returns an error.
//! - `all: []` matches every request and `any: []` none (the proxy's `iter().all()` / `iter().any()` over an
//!   empty list).
//!
//! Where we differ, on purpose: the regex is anchored as `^(?:re)$`, so an alternation such as `/a|/b` is
//! anchored as a whole (Linkerd pastes `^`/`$` around the text, which leaves `^/a|/b$` half-anchored); and a
//! regex or method that does not compile is an error, where Linkerd's proxy silently drops the match (and
//! with it the route, or the branch of an `all`/`any`). The regex crate is built without Unicode case
//! folding: `(?i)` is refused (use `(?i-u)`, ASCII folding, which is what paths need).

use http::Method;
use meshlens_api::profile::RequestMatch;
use regex::Regex;

/// A compiled request condition. Cheap to evaluate: no allocation per request.
#[derive(Clone, Debug)]
pub struct RequestMatcher {
    node: Node,
}

#[derive(Clone, Debug)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Path(Regex),
    Method(Method),
}

impl RequestMatcher {
    /// Compiles a `condition`. Errors name the offending field: an invalid `pathRegex` or `method`, or a
    /// match (at any depth) that sets no field.
    pub fn compile(m: &RequestMatch) -> Result<RequestMatcher, String> {
        Ok(RequestMatcher { node: compile_node(m)? })
    }

    /// Whether a request matches. `path` is the URI path (`uri.path()`); a query string, if passed along
    /// (`/a?b=c`), is ignored.
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        let path = path.split_once('?').map_or(path, |(p, _)| p);
        self.node.matches(method, path)
    }
}

impl Node {
    fn matches(&self, method: &Method, path: &str) -> bool {
        match self {
            Node::All(ms) => ms.iter().all(|m| m.matches(method, path)),
            Node::Any(ms) => ms.iter().any(|m| m.matches(method, path)),
            Node::Not(m) => !m.matches(method, path),
            Node::Path(re) => re.is_match(path),
            Node::Method(m) => m == method,
        }
    }
}

fn compile_node(m: &RequestMatch) -> Result<Node, String> {
    let mut parts = Vec::new();
    if let Some(all) = &m.all {
        parts.push(Node::All(compile_list(all, "all")?));
    }
    if let Some(any) = &m.any {
        parts.push(Node::Any(compile_list(any, "any")?));
    }
    if let Some(method) = m.method.as_deref().filter(|s| !s.is_empty()) {
        let upper = method.trim().to_ascii_uppercase();
        let parsed =
            Method::from_bytes(upper.as_bytes()).map_err(|_| format!("method '{method}' is not an HTTP method"))?;
        parts.push(Node::Method(parsed));
    }
    if let Some(not) = &m.not {
        parts.push(Node::Not(Box::new(compile_node(not).map_err(|e| format!("not: {e}"))?)));
    }
    if let Some(re) = m.path_regex.as_deref().filter(|s| !s.is_empty()) {
        let anchored = format!("^(?:{})$", re.trim());
        let compiled = Regex::new(&anchored).map_err(|e| format!("pathRegex '{re}': {}", one_line(&e)))?;
        parts.push(Node::Path(compiled));
    }
    match parts.len() {
        0 => Err("a request match must set one of pathRegex, method, all, any, not".to_string()),
        1 => Ok(parts.pop().expect("one part")),
        _ => Ok(Node::All(parts)),
    }
}

fn compile_list(ms: &[RequestMatch], field: &str) -> Result<Vec<Node>, String> {
    ms.iter().enumerate().map(|(i, m)| compile_node(m).map_err(|e| format!("{field}[{i}]: {e}"))).collect()
}

/// The regex crate's errors draw a caret diagram over several lines; keep the last, explaining line.
fn one_line(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid regex").trim().to_string()
}

#[cfg(test)]
#[path = "tests/route.rs"]
mod tests;
