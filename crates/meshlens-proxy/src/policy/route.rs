//! A ServiceProfile route `condition` (`RequestMatch`) compiled for matching request heads: method, path,
//! headers and query parameters.
//!
//! Semantics follow Linkerd (controller `profile_translator.go` + `pkg/profiles` validation, proxy
//! `service-profiles` `proto.rs`/`http.rs`):
//! - `pathRegex` matches the whole path, without the query; `method` compares the request method exactly
//!   (case-sensitive) against the configured one, which is trimmed and upper-cased first as Linkerd's
//!   controller does (`method: get` matches `GET` requests, not a request whose method is literally `get`).
//! - Several fields in one match must all match (AND), in Linkerd's order: `all`, `any`, `method`, `not`,
//!   `pathRegex`.
//! - `headers` and `queryParams` (from HTTPRoute matches, as the Gateway API defines them): each listed
//!   one must match. A header name is case-insensitive; a request header with several values matches when
//!   one of them does. A query parameter name is case-sensitive and its first occurrence counts; name and
//!   value are compared percent-decoded, `+` read as a space (the query string's form encoding, as
//!   Linkerd's proxy parses it), so `?q=a%20b` and `?q=a+b` match `a b`. `RegularExpression` matches the
//!   whole value (anchored like `pathRegex`), `Exact` compares bytes.
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

use std::borrow::Cow;

use http::header::{HeaderMap, HeaderName};
use http::{Method, Request};
use meshlens_api::profile::{RequestMatch, ValueMatch};
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
    Header(HeaderName, Value),
    Query(String, Value),
}

#[derive(Clone, Debug)]
enum Value {
    Exact(String),
    Regex(Regex),
}

impl Value {
    fn matches(&self, v: &[u8]) -> bool {
        match self {
            Value::Exact(want) => want.as_bytes() == v,
            Value::Regex(re) => std::str::from_utf8(v).is_ok_and(|v| re.is_match(v)),
        }
    }
}

/// What a condition looks at: the request head.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    pub method: &'a Method,
    /// The URI path, with its query string if any (`/a?b=c`).
    pub path_and_query: &'a str,
    pub headers: &'a HeaderMap,
}

impl<'a> RequestHead<'a> {
    /// The head of a request, borrowed (nothing copied).
    pub fn of<B>(req: &'a Request<B>) -> RequestHead<'a> {
        let path_and_query = req.uri().path_and_query().map_or("/", |p| p.as_str());
        RequestHead { method: req.method(), path_and_query, headers: req.headers() }
    }
}

/// The request head split once for matching: path and query apart.
struct Split<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a str,
    headers: &'a HeaderMap,
}

impl RequestMatcher {
    /// Compiles a `condition`. Errors name the offending field: an invalid `pathRegex` or `method`, or a
    /// match (at any depth) that sets no field.
    pub fn compile(m: &RequestMatch) -> Result<RequestMatcher, String> {
        Ok(RequestMatcher { node: compile_node(m)? })
    }

    /// Whether a request matches.
    pub fn matches(&self, head: &RequestHead<'_>) -> bool {
        let (path, query) = head.path_and_query.split_once('?').unwrap_or((head.path_and_query, ""));
        self.node.matches(&Split { method: head.method, path, query, headers: head.headers })
    }
}

impl Node {
    fn matches(&self, req: &Split<'_>) -> bool {
        match self {
            Node::All(ms) => ms.iter().all(|m| m.matches(req)),
            Node::Any(ms) => ms.iter().any(|m| m.matches(req)),
            Node::Not(m) => !m.matches(req),
            Node::Path(re) => re.is_match(req.path),
            Node::Method(m) => m == req.method,
            Node::Header(name, v) => req.headers.get_all(name).iter().any(|h| v.matches(h.as_bytes())),
            Node::Query(name, v) => req
                .query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
                .find(|(n, _)| decode(n) == name.as_bytes())
                .is_some_and(|(_, value)| v.matches(&decode(value))),
        }
    }
}

/// A query string component percent-decoded, `+` as a space; borrowed when there is nothing to decode
/// (no allocation for plain names and values). A `%` not followed by two hex digits stays as written.
fn decode(s: &str) -> Cow<'_, [u8]> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s.as_bytes());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(out)
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
    for (i, h) in m.headers.iter().enumerate() {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| format!("headers[{i}].name '{}' is not a header name", h.name))?;
        parts.push(Node::Header(name, compile_value(h).map_err(|e| format!("headers[{i}]: {e}"))?));
    }
    for (i, q) in m.query_params.iter().enumerate() {
        if q.name.is_empty() {
            return Err(format!("queryParams[{i}].name is empty"));
        }
        parts.push(Node::Query(q.name.clone(), compile_value(q).map_err(|e| format!("queryParams[{i}]: {e}"))?));
    }
    match parts.len() {
        0 => Err("a request match must set one of pathRegex, method, headers, queryParams, all, any, not".to_string()),
        1 => Ok(parts.pop().expect("one part")),
        _ => Ok(Node::All(parts)),
    }
}

fn compile_value(m: &ValueMatch) -> Result<Value, String> {
    match m.kind.as_deref() {
        None | Some("Exact") => Ok(Value::Exact(m.value.clone())),
        Some("RegularExpression") => Regex::new(&format!("^(?:{})$", m.value))
            .map(Value::Regex)
            .map_err(|e| format!("value '{}': {}", m.value, one_line(&e))),
        Some(other) => Err(format!("type '{other}' is not Exact or RegularExpression")),
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
