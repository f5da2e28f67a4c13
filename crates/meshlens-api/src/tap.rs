//! The tap wire contract (DESIGN.md §4, §10): the filter a tap client sends, and the NDJSON events it gets.
//!
//! - Proxy: `GET /tap?<TapFilter as query>` on the tap listener, header `Authorization: Bearer <token>` (the
//!   token the control plane hands out in its [`Lease`](crate::control::Lease)) → NDJSON [`TapEvent`]s.
//! - Control plane: `GET /api/v1/tap?<TapRequest as query>` → the merged NDJSON [`TapEvent`]s of every
//!   proxy of the resource.
//!
//! A request produces up to three events, each carrying one of `requestInitEvent`, `responseInitEvent`,
//! `responseEndEvent` (Linkerd's keys and shapes, so `meshlens tap -o json` prints them as Linkerd does),
//! plus, beyond Linkerd, `proxyError` (the reason token when the proxy made the response), `attempt`
//! (outbound: 1 for the first try) and `originalId` (outbound retries: the id of the first attempt).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which side of the proxy saw the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProxyDirection {
    Inbound,
    Outbound,
}

impl ProxyDirection {
    /// The query-string / text form: `inbound`, `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyDirection::Inbound => "inbound",
            ProxyDirection::Outbound => "outbound",
        }
    }
}

/// `id=base:stream` in tap lines. The proxy numbers requests per tap stream (`base` 0); the control plane
/// rewrites `base` to the index of the proxy in its fan-out so ids stay unique in the merged stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamId {
    pub base: u32,
    pub stream: u64,
}

/// A protobuf-style duration, as Linkerd's tap JSON prints it: `{"seconds":0,"nanos":267000}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapDuration {
    pub seconds: i64,
    pub nanos: i32,
}

impl From<Duration> for TapDuration {
    fn from(d: Duration) -> Self {
        TapDuration { seconds: d.as_secs() as i64, nanos: d.subsec_nanos() as i32 }
    }
}

impl From<TapDuration> for Duration {
    fn from(d: TapDuration) -> Self {
        Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32)
    }
}

/// One side of the request: address and metadata (`pod`, `namespace`, `deployment`, `service`, `tls`…).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TapEndpoint {
    pub ip: String,
    pub port: u16,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// A captured header or trailer. Redacted values read `[redacted]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapHeader {
    pub name: String,
    pub value_str: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestInit {
    pub id: StreamId,
    pub method: String,
    pub scheme: String,
    pub authority: String,
    pub path: String,
    #[serde(default)]
    pub headers: Vec<TapHeader>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseInit {
    pub id: StreamId,
    /// Time to response headers.
    pub since_request_init: TapDuration,
    pub http_status: u16,
    #[serde(default)]
    pub headers: Vec<TapHeader>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseEnd {
    pub id: StreamId,
    pub since_request_init: TapDuration,
    /// Body streaming time (Linkerd's `duration=`): from response headers to the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_response_init: Option<TapDuration>,
    pub response_bytes: u64,
    #[serde(default)]
    pub trailers: Vec<TapHeader>,
    /// From trailers, or from the headers of a trailers-only response; absent for plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_status_code: Option<u32>,
    /// HTTP/2 reset reason when the stream ended with a reset (or an I/O error: 2, INTERNAL_ERROR).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset_error_code: Option<u32>,
}

/// One NDJSON line of a tap stream: exactly one of the three event fields is set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TapEvent {
    pub source: TapEndpoint,
    pub destination: TapEndpoint,
    /// ServiceProfile route labels: `route` is the route name (absent for `[DEFAULT]`).
    #[serde(default)]
    pub route_meta: BTreeMap<String, String>,
    pub proxy_direction: ProxyDirection,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_init_event: Option<RequestInit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_init_event: Option<ResponseInit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_end_event: Option<ResponseEnd>,
    /// The `l5d-proxy-error` reason token when the proxy made the response (on rsp and end events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_error: Option<String>,
    /// Outbound: which attempt of the request this is (1 = first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// Outbound retries: the id of the first attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_id: Option<StreamId>,
}

impl TapEvent {
    /// An event of a request from `source` to `destination` seen on the `proxy_direction` side, with no
    /// route and none of the three event fields set yet (the caller sets one).
    pub fn new(proxy_direction: ProxyDirection, source: TapEndpoint, destination: TapEndpoint) -> TapEvent {
        TapEvent {
            source,
            destination,
            route_meta: BTreeMap::new(),
            proxy_direction,
            request_init_event: None,
            response_init_event: None,
            response_end_event: None,
            proxy_error: None,
            attempt: None,
            original_id: None,
        }
    }
}

/// What a tap stream matches. Request-side fields are ANDed and decided when the request starts;
/// `status` / `failed` are response filters: the proxy holds a matching request's `req` event until the
/// response is known and emits req+rsp+end only for matches. Serialized as a URL query (camelCase keys).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TapFilter {
    /// `inbound` or `outbound`; both when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    /// Exact `:authority` (as the request carries it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Path prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// `http` or `https` (any case): the request's scheme, as Linkerd's `--scheme`. A request in origin
    /// form (`GET /path`, what apps send through the mesh) is `http`; `https` only in absolute form.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// ServiceProfile route name (`[DEFAULT]` for requests no route matched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Destination metadata: the destination workload (deployment), pod, namespace, service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_workload: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_pod: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dst_service: Option<String>,
    /// Response filter on the HTTP status: a comma-separated list of `504`, `5xx`, `500-503`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Response filter: only failures ([`crate::errors::is_failure`], a reset, a proxy-made error).
    #[serde(skip_serializing_if = "is_false")]
    pub failed: bool,
    /// Matching requests per second this stream may emit (counted after the response filters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_rps: Option<f64>,
    /// Capture request/response headers and trailers (sensitive ones redacted).
    #[serde(skip_serializing_if = "is_false")]
    pub headers: bool,
}

/// Every query key of [`TapFilter`] (its serde names): what a tap listener and the control plane accept.
pub const TAP_FILTER_KEYS: [&str; 14] = [
    "direction",
    "authority",
    "path",
    "method",
    "scheme",
    "route",
    "dstWorkload",
    "dstPod",
    "dstNamespace",
    "dstService",
    "status",
    "failed",
    "maxRps",
    "headers",
];

fn is_false(b: &bool) -> bool {
    !*b
}

/// What `meshlens tap` asks the control plane for: the resource to tap. The same query string carries the
/// [`TapFilter`] keys too (parse it twice; no `serde(flatten)`, which breaks numbers and booleans in
/// URL queries).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TapRequest {
    /// `deploy/NAME`, `po/NAME`, `ns/NAME`, `deploy` (all of the namespace)…
    pub resource: String,
    pub namespace: String,
    /// `deploy/NAME`, `po/NAME`, `svc/NAME`: becomes the destination part of the filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_namespace: Option<String>,
    /// Only the instances whose labels match this label selector (`app=web`, `tier!=db`, …; the syntax of
    /// [`crate::selector`]): a workload's declared labels plus what its instance registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
}

/// A parsed `status` response filter: `504`, `5xx`, `500-503`, comma-separated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusFilter(Vec<(u16, u16)>);

impl StatusFilter {
    pub fn parse(text: &str) -> Result<StatusFilter, String> {
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let bad =
                || format!("invalid status filter {part:?}: expected a code (504), a class (5xx) or a range (500-503)");
            let range = if let Some(class) = part.strip_suffix("xx").or_else(|| part.strip_suffix("XX")) {
                let c: u16 = class.parse().map_err(|_| bad())?;
                if !(1..=5).contains(&c) {
                    return Err(bad());
                }
                (c * 100, c * 100 + 99)
            } else if let Some((lo, hi)) = part.split_once('-') {
                let lo: u16 = lo.trim().parse().map_err(|_| bad())?;
                let hi: u16 = hi.trim().parse().map_err(|_| bad())?;
                (lo, hi)
            } else {
                let c: u16 = part.parse().map_err(|_| bad())?;
                (c, c)
            };
            if range.0 < 100 || range.1 > 599 || range.0 > range.1 {
                return Err(bad());
            }
            ranges.push(range);
        }
        if ranges.is_empty() {
            return Err("empty status filter".to_string());
        }
        Ok(StatusFilter(ranges))
    }

    pub fn matches(&self, status: u16) -> bool {
        self.0.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

/// Go's `codes.Code.String()`, as Linkerd prints `grpc-status=` in tap lines.
pub fn grpc_code_name(code: u32) -> String {
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    NAMES.get(code as usize).map(|s| s.to_string()).unwrap_or_else(|| format!("Code({code})"))
}

/// Headers redacted by default when headers are captured.
pub const REDACTED_HEADERS: [&str; 6] =
    ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters() {
        let f = StatusFilter::parse("5xx").unwrap();
        assert!(f.matches(500) && f.matches(599) && !f.matches(499));
        let f = StatusFilter::parse("504, 429").unwrap();
        assert!(f.matches(504) && f.matches(429) && !f.matches(503));
        let f = StatusFilter::parse("500-503").unwrap();
        assert!(f.matches(502) && !f.matches(504));
        for bad in ["", "6xx", "abc", "503-500", "42"] {
            assert!(StatusFilter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn event_json_uses_linkerd_keys() {
        let ev = TapEvent {
            source: TapEndpoint { ip: "127.0.0.1".into(), port: 40000, metadata: BTreeMap::new() },
            destination: TapEndpoint { ip: "127.0.0.1".into(), port: 8080, metadata: BTreeMap::new() },
            route_meta: BTreeMap::new(),
            proxy_direction: ProxyDirection::Outbound,
            request_init_event: None,
            response_init_event: Some(ResponseInit {
                id: StreamId { base: 0, stream: 3 },
                since_request_init: Duration::from_micros(5_000_267).into(),
                http_status: 504,
                headers: vec![],
            }),
            response_end_event: None,
            proxy_error: Some("timeout".into()),
            attempt: Some(2),
            original_id: Some(StreamId { base: 0, stream: 2 }),
        };
        let text = serde_json::to_string(&ev).unwrap();
        assert!(text.contains(r#""proxyDirection":"OUTBOUND""#), "{text}");
        assert!(text.contains(r#""responseInitEvent":{"id":{"base":0,"stream":3},"sinceRequestInit":{"seconds":5,"nanos":267000},"httpStatus":504"#), "{text}");
        assert!(text.contains(r#""proxyError":"timeout","attempt":2,"originalId":{"base":0,"stream":2}"#), "{text}");
        assert_eq!(serde_json::from_str::<TapEvent>(&text).unwrap(), ev);
    }

    #[test]
    fn filter_keys_are_the_serialized_names() {
        let full = TapFilter {
            direction: Some("inbound".into()),
            authority: Some("a".into()),
            path: Some("/".into()),
            method: Some("GET".into()),
            scheme: Some("https".into()),
            route: Some("r".into()),
            dst_workload: Some("w".into()),
            dst_pod: Some("p".into()),
            dst_namespace: Some("n".into()),
            dst_service: Some("s".into()),
            status: Some("5xx".into()),
            failed: true,
            max_rps: Some(1.0),
            headers: true,
        };
        let value = serde_json::to_value(&full).unwrap();
        let mut keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = TAP_FILTER_KEYS.to_vec();
        keys.sort_unstable();
        expected.sort_unstable();
        assert_eq!(keys, expected);
    }

    #[test]
    fn grpc_names() {
        assert_eq!(grpc_code_name(0), "OK");
        assert_eq!(grpc_code_name(14), "Unavailable");
        assert_eq!(grpc_code_name(666), "Code(666)");
    }
}
