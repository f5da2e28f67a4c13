//! Response classification: a route's `responseClasses` compiled, deciding whether a response is a success
//! or a failure (for metrics' `classification`, retries and the breaker).
//!
//! The first class whose condition matches decides (`isFailure`). When none matches, the default applies:
//! the proxy's one failure rule, [`meshlens_api::errors::is_failure`] (HTTP 5xx, or a non-zero gRPC status).
//!
//! Conditions follow Linkerd's controller (`profile_translator.go`, `pkg/profiles` validation): several fields
//! in one match must all match (AND); a match that sets no field is refused; `status.min`/`status.max` must be
//! in 100..=599 with max ≥ min, and 0 counts as unset, as in Go. Where we differ, on purpose: a range with
//! only `min` or only `max` matches that single code, as Linkerd's documentation says (Linkerd's proxy drops
//! such a class without a word), and a `status: {}` or an empty `all: []`/`any: []` is an error (Linkerd's
//! proxy drops those classes silently too).

use meshlens_api::profile::{ResponseClass, ResponseMatch, StatusRange};
use serde::Serialize;

/// A response's classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Counted as a success (`classification="success"`).
    Success,
    /// Counted as a failure (`classification="failure"`).
    Failure,
}

impl Class {
    /// `Class::Failure` when `failure`, else `Class::Success`.
    pub fn from_failure(failure: bool) -> Class {
        if failure { Class::Failure } else { Class::Success }
    }

    /// Whether this is [`Class::Failure`].
    pub fn is_failure(self) -> bool {
        self == Class::Failure
    }

    /// The `classification` label value Linkerd uses: `success` or `failure`.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Success => "success",
            Class::Failure => "failure",
        }
    }
}

/// The compiled `responseClasses` of one route. `Default` has no classes: the default classification only.
#[derive(Clone, Debug, Default)]
pub struct ResponseClassifier {
    classes: Vec<(Node, Class)>,
}

#[derive(Clone, Debug)]
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    /// Inclusive bounds.
    Status(u16, u16),
}

impl ResponseClassifier {
    /// Compiles a route's `responseClasses`, in order. Errors name the class and field
    /// (`responseClasses[1]: status: max 600 is not in 100..=599`).
    pub fn compile(classes: &[ResponseClass]) -> Result<ResponseClassifier, String> {
        let classes = classes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                compile_node(&c.condition)
                    .map(|node| (node, Class::from_failure(c.is_failure)))
                    .map_err(|e| format!("responseClasses[{i}]: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(ResponseClassifier { classes })
    }

    /// Classifies a response from its HTTP status and its `grpc-status`, if any (from the headers of a
    /// trailers-only response, or from the trailers when the caller has them).
    pub fn classify(&self, status: u16, grpc_status: Option<u32>) -> Class {
        self.classes
            .iter()
            .find(|(node, _)| node.matches(status))
            .map_or_else(|| default_class(status, grpc_status), |&(_, class)| class)
    }

    /// How many response classes the route has.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Whether the route has no response classes (only the default classification applies).
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }
}

/// The default classification: [`meshlens_api::errors::is_failure`].
pub fn default_class(status: u16, grpc_status: Option<u32>) -> Class {
    Class::from_failure(meshlens_api::errors::is_failure(status, grpc_status))
}

impl Node {
    fn matches(&self, status: u16) -> bool {
        match self {
            Node::All(ms) => ms.iter().all(|m| m.matches(status)),
            Node::Any(ms) => ms.iter().any(|m| m.matches(status)),
            Node::Not(m) => !m.matches(status),
            Node::Status(min, max) => (*min..=*max).contains(&status),
        }
    }
}

fn compile_node(m: &ResponseMatch) -> Result<Node, String> {
    let mut parts = Vec::new();
    if let Some(all) = &m.all {
        parts.push(Node::All(compile_list(all, "all")?));
    }
    if let Some(any) = &m.any {
        parts.push(Node::Any(compile_list(any, "any")?));
    }
    if let Some(range) = &m.status {
        let (min, max) = status_range(range).map_err(|e| format!("status: {e}"))?;
        parts.push(Node::Status(min, max));
    }
    if let Some(not) = &m.not {
        parts.push(Node::Not(Box::new(compile_node(not).map_err(|e| format!("not: {e}"))?)));
    }
    match parts.len() {
        0 => Err("a response match must set one of status, all, any, not".to_string()),
        1 => Ok(parts.pop().expect("one part")),
        _ => Ok(Node::All(parts)),
    }
}

fn compile_list(ms: &[ResponseMatch], field: &str) -> Result<Vec<Node>, String> {
    if ms.is_empty() {
        return Err(format!("{field} is empty"));
    }
    ms.iter().enumerate().map(|(i, m)| compile_node(m).map_err(|e| format!("{field}[{i}]: {e}"))).collect()
}

/// The inclusive bounds of a status range; a lone bound means that single code.
fn status_range(range: &StatusRange) -> Result<(u16, u16), String> {
    let min = range.min.filter(|&v| v != 0);
    let max = range.max.filter(|&v| v != 0);
    for (name, v) in [("min", min), ("max", max)] {
        if let Some(v) = v.filter(|v| !(100..=599).contains(v)) {
            return Err(format!("{name} {v} is not in 100..=599"));
        }
    }
    match (min, max) {
        (Some(min), Some(max)) if max < min => Err(format!("max {max} is below min {min}")),
        (Some(min), Some(max)) => Ok((min, max)),
        (Some(code), None) | (None, Some(code)) => Ok((code, code)),
        (None, None) => Err("sets neither min nor max".to_string()),
    }
}

#[cfg(test)]
#[path = "tests/classify.rs"]
mod tests;
