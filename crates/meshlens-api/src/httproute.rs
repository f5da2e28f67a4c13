//! Gateway API routes as Linkerd reads them: `HTTPRoute` (`policy.linkerd.io/v1beta2`, `v1beta3`,
//! `gateway.networking.k8s.io/v1`, `v1beta1`) and `GRPCRoute` (`gateway.networking.k8s.io/v1`, `v1alpha2`),
//! accepted as written for Linkerd (reference: the CRD schemas). `status` (what `kubectl get -o yaml`
//! writes) is read and ignored. The control plane compiles them into the policy proxies get.

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

use crate::meta::{ObjectMeta, null_as_empty};
pub use crate::profile::ValueMatch;

pub const HTTP_ROUTE_API_VERSIONS: [&str; 4] = [
    "policy.linkerd.io/v1beta2",
    "policy.linkerd.io/v1beta3",
    "gateway.networking.k8s.io/v1",
    "gateway.networking.k8s.io/v1beta1",
];
pub const GRPC_ROUTE_API_VERSIONS: [&str; 2] = ["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1alpha2"];

/// An `HTTPRoute` or a `GRPCRoute`: `M` is the kind's match.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, bound(deserialize = "M: Deserialize<'de>"))]
pub struct Route<M> {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: Spec<M>,
    #[serde(default)]
    pub status: Option<IgnoredAny>,
}

pub type HttpRoute = Route<HttpRouteMatch>;
pub type GrpcRoute = Route<GrpcRouteMatch>;

/// The spec of either kind: they differ only in their matches.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, bound(deserialize = "M: Deserialize<'de>"))]
pub struct Spec<M> {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub parent_refs: Vec<ParentRef>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub hostnames: Vec<String>,
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    pub rules: Vec<Rule<M>>,
}

/// What a route attaches to. Only a Service (group `core` or empty) routes outbound traffic; the CRD's
/// default kind is `Gateway`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParentRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub section_name: Option<String>,
}

impl ParentRef {
    /// A Service parent: kind `Service` in the core group (`core` or empty).
    pub fn is_service(&self) -> bool {
        self.kind.as_deref() == Some("Service") && matches!(self.group.as_deref(), Some("core" | "") | None)
    }
}

/// A rule of either kind. A GRPCRoute has no `timeouts` (the control plane refuses them there).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, bound(deserialize = "M: Deserialize<'de>"))]
pub struct Rule<M> {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    pub matches: Vec<M>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub filters: Vec<Filter>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub backend_refs: Vec<BackendRef>,
    #[serde(default)]
    pub timeouts: Option<RouteTimeouts>,
}

pub type HttpRouteRule = Rule<HttpRouteMatch>;
pub type GrpcRouteRule = Rule<GrpcRouteMatch>;

/// A rule's or a backend's filter: `type` names the one field set. Linkerd applies `RequestHeaderModifier`,
/// `ResponseHeaderModifier` and `RequestRedirect`; the other Gateway API filters are read so the control
/// plane can refuse them by name.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Filter {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub request_header_modifier: Option<HeaderModifier>,
    #[serde(default)]
    pub response_header_modifier: Option<HeaderModifier>,
    #[serde(default)]
    pub request_redirect: Option<RequestRedirect>,
    #[serde(default)]
    pub url_rewrite: Option<IgnoredAny>,
    #[serde(default)]
    pub request_mirror: Option<IgnoredAny>,
    #[serde(default)]
    pub extension_ref: Option<IgnoredAny>,
}

/// `RequestHeaderModifier` / `ResponseHeaderModifier`: headers set (replacing), added (appended) and removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderModifier {
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    pub set: Vec<HttpHeader>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    pub add: Vec<HttpHeader>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", deserialize_with = "null_as_empty")]
    pub remove: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpHeader {
    pub name: String,
    pub value: String,
}

/// `RequestRedirect`: the proxy answers with a redirect (302 unless `statusCode` says otherwise) built
/// from the request, with the parts set here replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestRedirect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
}

/// `type: ReplaceFullPath` with `replaceFullPath`, or `type: ReplacePrefixMatch` with `replacePrefixMatch`
/// (the match's `PathPrefix` replaced).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathModifier {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_full_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replace_prefix_match: Option<String>,
}

/// Conditions of one match, all of which must hold (the matches of a rule are alternatives).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteMatch {
    #[serde(default)]
    pub path: Option<PathMatch>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub headers: Vec<ValueMatch>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub query_params: Vec<ValueMatch>,
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteMatch {
    #[serde(default)]
    pub method: Option<GrpcMethodMatch>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub headers: Vec<ValueMatch>,
}

/// `type` is `Exact`, `PathPrefix` (the default, with value `/`) or `RegularExpression`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PathMatch {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

/// `type` is `Exact` (the default); Linkerd refuses `RegularExpression`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcMethodMatch {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendRef {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    /// Relative, 0..=1,000,000; 1 when left out.
    #[serde(default)]
    pub weight: Option<u32>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub filters: Vec<Filter>,
}

/// Gateway API durations (`10s`, `500ms`, `0s`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteTimeouts {
    #[serde(default)]
    pub request: Option<String>,
    #[serde(default)]
    pub backend_request: Option<String>,
}
