//! Linkerd's ServiceProfile (`linkerd.io/v1alpha2`, and `v1alpha1`, which Linkerd's CRD still serves with
//! the same schema) and SMI TrafficSplit (`split.smi-spec.io/v1alpha1`,
//! `v1alpha2`) documents, accepted as written for Linkerd (reference: Linkerd's CRD schemas).
//!
//! Durations stay strings here (`"300ms"`, `"5s"`): the control plane validates them with file and line.

use serde::{Deserialize, Serialize};

use crate::httproute::{HeaderModifier, RequestRedirect};
use crate::meta::ObjectMeta;

pub const SERVICE_PROFILE_API_VERSION: &str = "linkerd.io/v1alpha2";
/// Every apiVersion a ServiceProfile may have, the current one first.
pub const SERVICE_PROFILE_API_VERSIONS: [&str; 2] = [SERVICE_PROFILE_API_VERSION, "linkerd.io/v1alpha1"];
pub const TRAFFIC_SPLIT_API_VERSIONS: [&str; 2] = ["split.smi-spec.io/v1alpha1", "split.smi-spec.io/v1alpha2"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceProfile {
    pub api_version: String,
    pub kind: String,
    /// `name` is the service's FQDN: `svc.ns.svc.cluster.local`.
    pub metadata: ObjectMeta,
    pub spec: ServiceProfileSpec,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceProfileSpec {
    #[serde(default, deserialize_with = "crate::meta::null_as_empty")]
    pub routes: Vec<RouteSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_budget: Option<RetryBudget>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dst_overrides: Vec<WeightedDst>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opaque_ports: Vec<u16>,
    /// Compiled from HTTPRoutes/GRPCRoutes only (a ServiceProfile document may not set it): a request no
    /// route matches is answered 404 by the proxy, as Linkerd's outbound router does, instead of taking the
    /// `[DEFAULT]` route.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unmatched_not_found: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteSpec {
    pub name: String,
    pub condition: RequestMatch,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_classes: Vec<ResponseClass>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_retryable: bool,
    /// A Go-style duration (`300ms`, `5s`, `1m30s`) covering the request including retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Compiled from an HTTPRoute/GRPCRoute only (a ServiceProfile document may not set it): the responses
    /// retried, at most this many times per request, without a budget (Linkerd's `retry.linkerd.io/*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RouteRetry>,
    /// Compiled from an HTTPRoute/GRPCRoute rule only (a ServiceProfile document may not set it): its
    /// backends, filters and per-attempt timeout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RouteRule>,
}

/// What an HTTPRoute/GRPCRoute rule adds to a route.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteRule {
    /// The route's kind (`HTTPRoute`, `GRPCRoute`) and API group, for Linkerd's `route_kind`/`route_group`
    /// metric labels.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub route_kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub route_group: String,
    /// The rule's backendRefs as `name.ns.svc.domain:port` with their weights (zero weights left out);
    /// empty: the parent Service itself.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<WeightedDst>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_headers: Option<HeaderModifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_headers: Option<HeaderModifier>,
    /// Answer with a redirect instead of forwarding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RequestRedirect>,
    /// The match's `PathPrefix` (what a redirect's `ReplacePrefixMatch` replaces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_prefix: Option<String>,
    /// A Go-style duration bounding each attempt (`retry.linkerd.io/timeout`, else the rule's
    /// `timeouts.backendRequest`); an attempt cut by it may be retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt_timeout: Option<String>,
}

/// Linkerd's route retry annotations, compiled: which responses are retried and how many times.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteRetry {
    /// HTTP statuses retried (`retry.linkerd.io/http`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<StatusRange>,
    /// gRPC status codes retried (`retry.linkerd.io/grpc`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grpc: Vec<u32>,
    /// Retries per request (`retry.linkerd.io/limit`, default 1).
    pub limit: u32,
}

/// Several fields set at once all must match (AND).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<RequestMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<RequestMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<RequestMatch>>,
    /// Matched against the whole path (anchored `^…$`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_regex: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Request headers that all must match (names case-insensitive); compiled from an HTTPRoute's
    /// `matches[].headers`, and a meshlens extension in a ServiceProfile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<ValueMatch>,
    /// Query parameters that all must match (names case-sensitive, the first occurrence counts); compiled
    /// from an HTTPRoute's `matches[].queryParams`, and a meshlens extension in a ServiceProfile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query_params: Vec<ValueMatch>,
}

/// A header or query parameter match, as the Gateway API writes it: `type` `Exact` (the default) or
/// `RegularExpression` (matching the whole value).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ValueMatch {
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    pub value: String,
}

/// `x-user=alice` (`Exact`), `page~[0-9]+` (`RegularExpression`).
impl std::fmt::Display for ValueMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = if self.kind.as_deref() == Some("RegularExpression") { "~" } else { "=" };
        write!(f, "{}{op}{}", self.name, self.value)
    }
}

/// `method POST, pathRegex /charge, header x-user=alice, query page~[0-9]+, not(method GET)`: every part of a
/// condition as written (`=` exact, `~` regular expression), its `all`/`any`/`not` spelled out.
impl std::fmt::Display for RequestMatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(method) = &self.method {
            parts.push(format!("method {method}"));
        }
        if let Some(path) = &self.path_regex {
            parts.push(format!("pathRegex {path}"));
        }
        for (word, list) in [("header", &self.headers), ("query", &self.query_params)] {
            parts.extend(list.iter().map(|v| format!("{word} {v}")));
        }
        for (word, list) in [("all", &self.all), ("any", &self.any)] {
            if let Some(list) = list {
                let inner: Vec<String> = list.iter().map(ToString::to_string).collect();
                parts.push(format!("{word}({})", inner.join("; ")));
            }
        }
        if let Some(not) = &self.not {
            parts.push(format!("not({not})"));
        }
        f.write_str(&parts.join(", "))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseClass {
    pub condition: ResponseMatch,
    #[serde(default)]
    pub is_failure: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResponseMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<ResponseMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<ResponseMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not: Option<Box<ResponseMatch>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusRange>,
}

/// A status range; only `min` or only `max` matches that single code (as Linkerd's docs say).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryBudget {
    pub retry_ratio: f64,
    pub min_retries_per_second: u32,
    /// A duration string, 1s..60s.
    pub ttl: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightedDst {
    pub authority: String,
    pub weight: Quantity,
}

/// A Kubernetes quantity as TrafficSplit and dstOverrides weights use it: `500`, `"500m"`, `"1"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Quantity {
    Int(i64),
    Str(String),
}

impl Quantity {
    /// The value in thousandths (`"500m"` → 500, `1` → 1000), or `None` when it is not a quantity.
    pub fn milli_value(&self) -> Option<i64> {
        match self {
            Quantity::Int(i) => i.checked_mul(1000),
            Quantity::Str(s) => {
                let s = s.trim();
                if let Some(m) = s.strip_suffix('m') {
                    m.parse::<i64>().ok()
                } else if let Some(k) = s.strip_suffix('k') {
                    k.parse::<i64>().ok().and_then(|v| v.checked_mul(1_000_000))
                } else if let Ok(i) = s.parse::<i64>() {
                    i.checked_mul(1000)
                } else {
                    let f = s.parse::<f64>().ok()?;
                    (f.is_finite() && f >= 0.0).then(|| (f * 1000.0).round() as i64)
                }
            }
        }
    }
}

impl std::fmt::Display for Quantity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Quantity::Int(i) => write!(f, "{i}"),
            Quantity::Str(s) => f.write_str(s),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSplit {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: TrafficSplitSpec,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSplitSpec {
    /// The apex service clients call.
    pub service: String,
    pub backends: Vec<TrafficSplitBackend>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrafficSplitBackend {
    /// May be left out (empty) on a zero-weight backend.
    #[serde(default)]
    pub service: String,
    pub weight: Quantity,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(Quantity::Str("500m".into()).milli_value(), Some(500));
        assert_eq!(Quantity::Int(60).milli_value(), Some(60_000));
        assert_eq!(Quantity::Str("1".into()).milli_value(), Some(1000));
        assert_eq!(Quantity::Str("0.5".into()).milli_value(), Some(500));
        assert_eq!(Quantity::Str("lots".into()).milli_value(), None);
    }

    #[test]
    fn a_condition_reads_as_written() {
        let m = RequestMatch {
            method: Some("POST".into()),
            path_regex: Some("/charge".into()),
            not: Some(Box::new(RequestMatch { method: Some("GET".into()), ..RequestMatch::default() })),
            headers: vec![ValueMatch { kind: None, name: "x-user".into(), value: "alice".into() }],
            query_params: vec![ValueMatch {
                kind: Some("RegularExpression".into()),
                name: "page".into(),
                value: "[0-9]+".into(),
            }],
            ..RequestMatch::default()
        };
        assert_eq!(
            m.to_string(),
            "method POST, pathRegex /charge, header x-user=alice, query page~[0-9]+, not(method GET)"
        );
    }
}
