//! Tap events as they travel from the request path to a subscription (shared `Arc`s, no copies of
//! metadata), and their NDJSON form: exactly the JSON of `meshlens_api::tap::TapEvent`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use meshlens_api::tap::{ProxyDirection, StreamId, TapDuration};
use serde::Serialize;

/// Endpoint metadata (`deployment`, `pod`, `namespace`, `service`, `tls`…), built once and shared.
pub type Meta = Arc<BTreeMap<String, String>>;

/// One side of a request: its address and shared metadata.
#[derive(Clone, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    pub meta: Meta,
}

/// A captured header (sensitive values already redacted).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    pub name: String,
    pub value_str: String,
}

pub type Headers = Arc<Vec<Header>>;

/// What is known about a request when it starts, shared by its attempts and their events.
#[derive(Debug)]
pub struct RequestInfo {
    pub direction: ProxyDirection,
    pub src: Peer,
    pub method: http::Method,
    pub scheme: &'static str,
    pub authority: String,
    pub uri: http::Uri,
    pub version: http::Version,
    pub headers: Option<Headers>,
    /// A gRPC request (`content-type: application/grpc…`): proxy errors reach it as `grpc-status`.
    pub grpc: bool,
    pub user_agent: Option<String>,
    pub trace_id: Option<String>,
    pub request_bytes: Option<u64>,
    /// Wall-clock start, for the access log's timestamp.
    pub started_at: std::time::SystemTime,
}

/// The varying part of an event.
#[derive(Clone, Debug)]
pub enum Kind {
    Req,
    Rsp { since_request_init: Duration, status: u16, headers: Option<Headers> },
    End(End),
}

#[derive(Clone, Debug)]
pub struct End {
    pub since_request_init: Duration,
    pub since_response_init: Option<Duration>,
    pub response_bytes: u64,
    pub trailers: Option<Headers>,
    pub grpc_status: Option<u32>,
    pub reset_error_code: Option<u32>,
}

/// One tap event on its way to a subscription.
#[derive(Clone, Debug)]
pub struct Event {
    pub info: Arc<RequestInfo>,
    pub dst: Peer,
    /// The ServiceProfile route (`None` for `[DEFAULT]` or no profile).
    pub route: Option<Arc<str>>,
    pub id: StreamId,
    pub attempt: Option<u32>,
    pub original_id: Option<StreamId>,
    pub proxy_error: Option<&'static str>,
    pub kind: Kind,
}

impl Event {
    /// Appends the event's JSON line (with its newline) to `out`; headers only when `headers` (the
    /// subscription asked for them).
    pub fn write_json(&self, out: &mut Vec<u8>, headers: bool) {
        let info = &self.info;
        let route_meta = RouteMeta(self.route.as_deref());
        let wire = Wire {
            source: WirePeer::of(&info.src),
            destination: WirePeer::of(&self.dst),
            route_meta,
            proxy_direction: info.direction,
            request_init_event: matches!(self.kind, Kind::Req).then(|| WireReq {
                id: self.id,
                method: info.method.as_str(),
                scheme: info.scheme,
                authority: &info.authority,
                path: info.uri.path(),
                headers: pick(&info.headers, headers),
            }),
            response_init_event: match &self.kind {
                Kind::Rsp { since_request_init, status, headers: h } => Some(WireRsp {
                    id: self.id,
                    since_request_init: (*since_request_init).into(),
                    http_status: *status,
                    headers: pick(h, headers),
                }),
                _ => None,
            },
            response_end_event: match &self.kind {
                Kind::End(e) => Some(WireEnd {
                    id: self.id,
                    since_request_init: e.since_request_init.into(),
                    since_response_init: e.since_response_init.map(Into::into),
                    response_bytes: e.response_bytes,
                    trailers: pick(&e.trailers, headers),
                    grpc_status_code: e.grpc_status,
                    reset_error_code: e.reset_error_code,
                }),
                _ => None,
            },
            proxy_error: if matches!(self.kind, Kind::Req) { None } else { self.proxy_error },
            attempt: self.attempt,
            original_id: self.original_id,
        };
        // Serializing plain strings and numbers into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &wire);
        out.push(b'\n');
    }
}

fn pick(h: &Option<Headers>, wanted: bool) -> &[Header] {
    match h {
        Some(h) if wanted => h.as_slice(),
        _ => &[],
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    source: WirePeer<'a>,
    destination: WirePeer<'a>,
    route_meta: RouteMeta<'a>,
    proxy_direction: ProxyDirection,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_init_event: Option<WireReq<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_init_event: Option<WireRsp<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_end_event: Option<WireEnd<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    proxy_error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    original_id: Option<StreamId>,
}

struct WirePeer<'a> {
    addr: SocketAddr,
    metadata: &'a BTreeMap<String, String>,
}

impl<'a> WirePeer<'a> {
    fn of(p: &'a Peer) -> WirePeer<'a> {
        WirePeer { addr: p.addr, metadata: &p.meta }
    }
}

impl Serialize for WirePeer<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("TapEndpoint", 3)?;
        st.serialize_field("ip", &self.addr.ip())?;
        st.serialize_field("port", &self.addr.port())?;
        st.serialize_field("metadata", self.metadata)?;
        st.end()
    }
}

struct RouteMeta<'a>(Option<&'a str>);

impl Serialize for RouteMeta<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.is_some() as usize))?;
        if let Some(route) = self.0 {
            m.serialize_entry("route", route)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireReq<'a> {
    id: StreamId,
    method: &'a str,
    scheme: &'a str,
    authority: &'a str,
    path: &'a str,
    headers: &'a [Header],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireRsp<'a> {
    id: StreamId,
    since_request_init: TapDuration,
    http_status: u16,
    headers: &'a [Header],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireEnd<'a> {
    id: StreamId,
    since_request_init: TapDuration,
    #[serde(skip_serializing_if = "Option::is_none")]
    since_response_init: Option<TapDuration>,
    response_bytes: u64,
    trailers: &'a [Header],
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc_status_code: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reset_error_code: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlens_api::tap::TapEvent;

    fn event(kind: Kind) -> Event {
        let meta = |pairs: &[(&str, &str)]| {
            Arc::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>())
        };
        Event {
            info: Arc::new(RequestInfo {
                direction: ProxyDirection::Outbound,
                src: Peer { addr: "127.0.0.1:40000".parse().unwrap(), meta: meta(&[("deployment", "web")]) },
                method: http::Method::GET,
                scheme: "http",
                authority: "users.prod:80".into(),
                uri: "/users/7?x=1".parse().unwrap(),
                version: http::Version::HTTP_11,
                headers: Some(Arc::new(vec![Header { name: "x-a".into(), value_str: "b".into() }])),
                grpc: false,
                user_agent: None,
                trace_id: None,
                request_bytes: None,
                started_at: std::time::SystemTime::now(),
            }),
            dst: Peer { addr: "[::1]:8080".parse().unwrap(), meta: meta(&[("pod", "users-0"), ("tls", "disabled")]) },
            route: Some("GET /users/{id}".into()),
            id: StreamId { base: 0, stream: 4 },
            attempt: Some(2),
            original_id: Some(StreamId { base: 0, stream: 3 }),
            proxy_error: Some("timeout"),
            kind,
        }
    }

    fn round_trip(e: &Event) -> (String, TapEvent) {
        let mut out = Vec::new();
        e.write_json(&mut out, true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with('\n') && text.matches('\n').count() == 1, "one line: {text}");
        let parsed: TapEvent = serde_json::from_str(text.trim_end()).unwrap();
        (text, parsed)
    }

    #[test]
    fn the_three_events_read_back_as_the_contract_type() {
        let (text, req) = round_trip(&event(Kind::Req));
        let init = req.request_init_event.unwrap();
        assert_eq!(
            (init.method.as_str(), init.path.as_str(), init.authority.as_str()),
            ("GET", "/users/7", "users.prod:80")
        );
        assert_eq!(init.headers[0].value_str, "b");
        assert_eq!(req.proxy_error, None, "req events carry no proxyError: {text}");
        assert_eq!(req.route_meta["route"], "GET /users/{id}");
        assert_eq!(req.destination.ip, "::1");
        assert_eq!(req.source.metadata["deployment"], "web");
        assert_eq!((req.attempt, req.original_id.map(|i| i.stream)), (Some(2), Some(3)));

        let rsp = Kind::Rsp { since_request_init: Duration::from_millis(5), status: 504, headers: None };
        let (_, rsp) = round_trip(&event(rsp));
        assert_eq!(rsp.response_init_event.unwrap().http_status, 504);
        assert_eq!(rsp.proxy_error.as_deref(), Some("timeout"));

        let end = End {
            since_request_init: Duration::from_millis(7),
            since_response_init: Some(Duration::from_millis(2)),
            response_bytes: 19,
            trailers: None,
            grpc_status: Some(14),
            reset_error_code: None,
        };
        let (text, end) = round_trip(&event(Kind::End(end)));
        let e = end.response_end_event.unwrap();
        assert_eq!((e.response_bytes, e.grpc_status_code, e.reset_error_code), (19, Some(14), None));
        assert!(text.contains(r#""sinceResponseInit":{"seconds":0,"nanos":2000000}"#), "{text}");
    }

    #[test]
    fn default_route_has_no_route_meta() {
        let mut e = event(Kind::Req);
        e.route = None;
        let (text, parsed) = round_trip(&e);
        assert!(parsed.route_meta.is_empty());
        assert!(text.contains(r#""routeMeta":{}"#), "{text}");
    }
}
