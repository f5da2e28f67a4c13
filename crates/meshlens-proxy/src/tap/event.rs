//! Tap events as they travel from the request path to a subscription (shared `Arc`s, no copies of
//! metadata), and their NDJSON form: exactly the JSON of `meshlens_api::tap::TapEvent`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::io::Write;

use meshlens_api::tap::{ProxyDirection, StreamId};
use serde::Serialize;

/// Endpoint metadata (`deployment`, `pod`, `namespace`, `service`, `tls`…), built once and shared, with
/// its JSON rendered once too (every event repeats it).
#[derive(Debug, Default)]
pub struct Metadata {
    map: BTreeMap<String, String>,
    json: String,
}

impl Metadata {
    pub fn new(map: BTreeMap<String, String>) -> Meta {
        let json = serde_json::to_string(&map).unwrap_or_else(|_| "{}".to_string());
        Arc::new(Metadata { map, json })
    }

    pub fn from_pairs(pairs: &[(&str, &str)]) -> Meta {
        Metadata::new(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    pub fn map(&self) -> &BTreeMap<String, String> {
        &self.map
    }
}

pub type Meta = Arc<Metadata>;

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
    /// Appends the event's JSON line (with its newline) to `out`: exactly the JSON of
    /// `meshlens_api::tap::TapEvent`, written by hand so shared metadata is copied, not re-encoded.
    /// Headers only when `headers` (the subscription asked for them).
    pub fn write_json(&self, out: &mut Vec<u8>, headers: bool) {
        let info = &self.info;
        out.extend_from_slice(b"{\"source\":");
        peer(out, &info.src);
        out.extend_from_slice(b",\"destination\":");
        peer(out, &self.dst);
        out.extend_from_slice(b",\"routeMeta\":{");
        if let Some(route) = &self.route {
            out.extend_from_slice(b"\"route\":");
            string(out, route);
        }
        let direction = match info.direction {
            ProxyDirection::Inbound => "INBOUND",
            ProxyDirection::Outbound => "OUTBOUND",
        };
        let _ = write!(out, "}},\"proxyDirection\":\"{direction}\"");
        match &self.kind {
            Kind::Req => {
                out.extend_from_slice(b",\"requestInitEvent\":{");
                id(out, "id", self.id);
                out.extend_from_slice(b",\"method\":");
                string(out, info.method.as_str());
                let _ = write!(out, ",\"scheme\":\"{}\",\"authority\":", info.scheme);
                string(out, &info.authority);
                out.extend_from_slice(b",\"path\":");
                string(out, info.uri.path());
                header_list(out, "headers", &info.headers, headers);
            }
            Kind::Rsp { since_request_init, status, headers: h } => {
                out.extend_from_slice(b",\"responseInitEvent\":{");
                id(out, "id", self.id);
                duration(out, "sinceRequestInit", *since_request_init);
                let _ = write!(out, ",\"httpStatus\":{status}");
                header_list(out, "headers", h, headers);
            }
            Kind::End(e) => {
                out.extend_from_slice(b",\"responseEndEvent\":{");
                id(out, "id", self.id);
                duration(out, "sinceRequestInit", e.since_request_init);
                if let Some(d) = e.since_response_init {
                    duration(out, "sinceResponseInit", d);
                }
                let _ = write!(out, ",\"responseBytes\":{}", e.response_bytes);
                header_list(out, "trailers", &e.trailers, headers);
                if let Some(code) = e.grpc_status {
                    let _ = write!(out, ",\"grpcStatusCode\":{code}");
                }
                if let Some(code) = e.reset_error_code {
                    let _ = write!(out, ",\"resetErrorCode\":{code}");
                }
            }
        }
        out.push(b'}');
        if let Some(reason) = self.proxy_error.filter(|_| !matches!(self.kind, Kind::Req)) {
            out.extend_from_slice(b",\"proxyError\":");
            string(out, reason);
        }
        if let Some(a) = self.attempt {
            let _ = write!(out, ",\"attempt\":{a}");
        }
        if let Some(original) = self.original_id {
            out.push(b',');
            id(out, "originalId", original);
        }
        out.extend_from_slice(b"}\n");
    }
}

fn peer(out: &mut Vec<u8>, p: &Peer) {
    let _ = write!(out, "{{\"ip\":\"{}\",\"port\":{},\"metadata\":", p.addr.ip(), p.addr.port());
    out.extend_from_slice(p.meta.json.as_bytes());
    out.push(b'}');
}

/// A JSON string, escaped.
fn string(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

fn id(out: &mut Vec<u8>, key: &str, id: StreamId) {
    let _ = write!(out, "\"{key}\":{{\"base\":{},\"stream\":{}}}", id.base, id.stream);
}

fn duration(out: &mut Vec<u8>, key: &str, d: Duration) {
    let _ = write!(out, ",\"{key}\":{{\"seconds\":{},\"nanos\":{}}}", d.as_secs(), d.subsec_nanos());
}

fn header_list(out: &mut Vec<u8>, key: &str, h: &Option<Headers>, wanted: bool) {
    let _ = write!(out, ",\"{key}\":");
    match h {
        Some(h) if wanted => {
            let _ = serde_json::to_writer(&mut *out, h.as_slice());
        }
        _ => out.extend_from_slice(b"[]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlens_api::tap::TapEvent;

    fn event(kind: Kind) -> Event {
        let meta = Metadata::from_pairs;
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
    fn strings_are_escaped_and_every_optional_field_round_trips() {
        let mut e = event(Kind::End(End {
            since_request_init: Duration::new(5, 7),
            since_response_init: None,
            response_bytes: 0,
            trailers: Some(Arc::new(vec![Header {
                name: "grpc-message".into(),
                value_str: "a \"quoted\"\nline".into(),
            }])),
            grpc_status: None,
            reset_error_code: Some(2),
        }));
        e.route = Some("GET /a\\b \"c\"".into());
        let (text, parsed) = round_trip(&e);
        assert_eq!(parsed.route_meta["route"], "GET /a\\b \"c\"", "{text}");
        let end = parsed.response_end_event.unwrap();
        assert_eq!((end.since_response_init, end.reset_error_code, end.grpc_status_code), (None, Some(2), None));
        assert_eq!(Duration::from(end.since_request_init), Duration::new(5, 7));
        assert_eq!(end.trailers[0].value_str, "a \"quoted\"\nline");
        let mut without = Vec::new();
        e.write_json(&mut without, false);
        let parsed: TapEvent = serde_json::from_slice(&without).unwrap();
        assert!(parsed.response_end_event.unwrap().trailers.is_empty(), "trailers only when asked");
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
