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

/// An `HTTPRoute` or a `GRPCRoute`: `S` is its spec.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route<S> {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: S,
    #[serde(default)]
    pub status: Option<IgnoredAny>,
}

pub type HttpRoute = Route<HttpRouteSpec>;
pub type GrpcRoute = Route<GrpcRouteSpec>;

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteSpec {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub parent_refs: Vec<ParentRef>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub hostnames: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub rules: Vec<HttpRouteRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteSpec {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub parent_refs: Vec<ParentRef>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub hostnames: Vec<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub rules: Vec<GrpcRouteRule>,
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

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpRouteRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub matches: Vec<HttpRouteMatch>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub filters: Vec<IgnoredAny>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub backend_refs: Vec<BackendRef>,
    #[serde(default)]
    pub timeouts: Option<RouteTimeouts>,
}

#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrpcRouteRule {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub matches: Vec<GrpcRouteMatch>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub filters: Vec<IgnoredAny>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub backend_refs: Vec<BackendRef>,
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
    pub filters: Vec<IgnoredAny>,
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
