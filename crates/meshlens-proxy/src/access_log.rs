//! The HTTP access log (`--access-log apache|json`, off by default): one line per request (inbound) or
//! per attempt (outbound) on the proxy's stderr, in Linkerd's formats and keys, plus `route`, `attempt`,
//! `proxy_error` and `direction`. Fed by the same per-request record as tap ([`crate::tap::record`]).
//!
//! Lines are handed to a writer thread through a bounded buffer, so a blocked stderr never stalls a
//! request; lines that do not fit are dropped and counted (`access_log_dropped_lines_total`).

use std::io::Write;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime};

use http::HeaderMap;
use serde::Serialize;

use crate::metrics::{Counter, Registry};
use crate::tap::event::RequestInfo;

/// Lines buffered for the writer thread before new ones are dropped.
const BUFFER_LINES: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// Linkerd's Apache common log format line.
    Apache,
    /// One JSON object per line.
    Json,
}

impl std::str::FromStr for AccessLogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "apache" => Ok(AccessLogFormat::Apache),
            "json" => Ok(AccessLogFormat::Json),
            _ => Err(format!("'{s}' is not an access log format: use apache or json")),
        }
    }
}

/// What one access log line says.
pub struct Entry<'a> {
    pub info: &'a RequestInfo,
    /// `None` when the request ended before any response (the client went away).
    pub status: Option<u16>,
    pub response_bytes: u64,
    /// From the request's start to the end of its response.
    pub total: Duration,
    /// From the request's start until the proxy handed it to the endpoint (routing, queueing, connecting).
    pub processing: Duration,
    pub route: Option<&'a str>,
    pub attempt: Option<u32>,
    pub proxy_error: Option<&'static str>,
}

pub struct AccessLog {
    format: AccessLogFormat,
    tx: SyncSender<Vec<u8>>,
    dropped: Arc<Counter>,
}

impl AccessLog {
    /// Starts the writer thread (it ends when the proxy, holding the sender, is gone).
    pub fn start(format: AccessLogFormat, registry: &Registry) -> AccessLog {
        let (tx, rx) = sync_channel(BUFFER_LINES);
        let spawned = std::thread::Builder::new().name("access-log".into()).spawn(move || write_lines(rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the access log writer; access log lines will be dropped");
        }
        let dropped = registry
            .counter("access_log_dropped_lines_total", "Access log lines dropped because stderr did not keep up.");
        AccessLog { format, tx, dropped }
    }

    pub fn write(&self, e: &Entry<'_>) {
        let line = match self.format {
            AccessLogFormat::Apache => apache(e),
            AccessLogFormat::Json => json(e),
        };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(line) {
            self.dropped.inc();
        }
    }
}

fn write_lines(rx: Receiver<Vec<u8>>) {
    let stderr = std::io::stderr();
    while let Ok(line) = rx.recv() {
        let mut out = stderr.lock();
        let mut ok = out.write_all(&line).is_ok();
        while ok && let Ok(line) = rx.try_recv() {
            ok = out.write_all(&line).is_ok();
        }
        let _ = out.flush();
    }
}

fn version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2.0",
        http::Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

/// `client.addr client.id - [timestamp] "METHOD URI VERSION" STATUS`, then ours when known:
/// `route="…" attempt=N proxy_error=…`.
fn apache(e: &Entry<'_>) -> Vec<u8> {
    let i = e.info;
    let status = e.status.map_or("-".to_string(), |s| s.to_string());
    let mut line = format!(
        "{} - - [{}] \"{} {} {}\" {status}",
        i.src.addr,
        rfc3339(i.started_at),
        i.method,
        i.uri,
        version(i.version)
    );
    if let Some(r) = e.route {
        line.push_str(&format!(" route={}", serde_json::Value::from(r)));
    }
    if let Some(a) = e.attempt {
        line.push_str(&format!(" attempt={a}"));
    }
    if let Some(p) = e.proxy_error {
        line.push_str(&format!(" proxy_error={p}"));
    }
    line.push('\n');
    line.into_bytes()
}

fn json(e: &Entry<'_>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Line<'a> {
        #[serde(rename = "client.addr")]
        client_addr: String,
        #[serde(rename = "client.id")]
        client_id: Option<&'a str>,
        host: &'a str,
        method: &'a str,
        processing_ns: u128,
        request_bytes: Option<u64>,
        response_bytes: u64,
        status: Option<u16>,
        timestamp: String,
        total_ns: u128,
        trace_id: Option<&'a str>,
        uri: String,
        user_agent: Option<&'a str>,
        version: &'static str,
        direction: &'static str,
        route: Option<&'a str>,
        attempt: Option<u32>,
        proxy_error: Option<&'static str>,
    }
    let i = e.info;
    let line = Line {
        client_addr: i.src.addr.to_string(),
        client_id: None,
        host: &i.authority,
        method: i.method.as_str(),
        processing_ns: e.processing.as_nanos(),
        request_bytes: i.request_bytes,
        response_bytes: e.response_bytes,
        status: e.status,
        timestamp: rfc3339(i.started_at),
        total_ns: e.total.as_nanos(),
        trace_id: i.trace_id.as_deref(),
        uri: i.uri.to_string(),
        user_agent: i.user_agent.as_deref(),
        version: version(i.version),
        direction: i.direction.as_str(),
        route: e.route,
        attempt: e.attempt,
        proxy_error: e.proxy_error,
    };
    let mut out = serde_json::to_vec(&line).unwrap_or_default();
    out.push(b'\n');
    out
}

/// The trace id of a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`), a B3 single header
/// (`<trace id>-<span id>…`) or `x-b3-traceid`. The headers themselves pass through untouched.
pub fn trace_id(headers: &HeaderMap) -> Option<String> {
    let hex = |s: &str, lens: &[usize]| lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit());
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(tp) = get("traceparent") {
        let mut parts = tp.split('-');
        if let (Some(_version), Some(id)) = (parts.next(), parts.next())
            && hex(id, &[32])
        {
            return Some(id.to_ascii_lowercase());
        }
    }
    if let Some(b3) = get("b3")
        && let Some(id) = b3.split('-').next()
        && hex(id, &[16, 32])
    {
        return Some(id.to_ascii_lowercase());
    }
    get("x-b3-traceid").filter(|id| hex(id, &[16, 32])).map(str::to_ascii_lowercase)
}

/// `2022-08-23T20:28:20.071809491Z`.
pub fn rfc3339(t: SystemTime) -> String {
    meshlens_api::time::rfc3339(t, meshlens_api::time::Precision::Nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tap::event::Peer;
    use meshlens_api::tap::ProxyDirection;
    use std::time::UNIX_EPOCH;

    fn info() -> RequestInfo {
        RequestInfo {
            direction: ProxyDirection::Inbound,
            src: Peer { addr: "10.42.0.1:43682".parse().unwrap(), meta: Default::default() },
            method: http::Method::GET,
            scheme: "http",
            authority: "web:7000".into(),
            uri: "/ping?x=1".parse().unwrap(),
            version: http::Version::HTTP_11,
            headers: None,
            grpc: false,
            user_agent: Some("kube-probe/1.23".into()),
            trace_id: Some("4bf92f3577b34da6a3ce929d0e0e4736".into()),
            request_bytes: Some(3),
            started_at: UNIX_EPOCH + Duration::new(1_661_286_503, 49_685_223),
        }
    }

    #[test]
    fn apache_line_is_linkerds_plus_our_fields() {
        let i = info();
        let mut e = Entry {
            info: &i,
            status: Some(200),
            response_bytes: 2,
            total: Duration::from_micros(300),
            processing: Duration::from_micros(20),
            route: None,
            attempt: None,
            proxy_error: None,
        };
        let line = String::from_utf8(apache(&e)).unwrap();
        assert_eq!(line, "10.42.0.1:43682 - - [2022-08-23T20:28:23.049685223Z] \"GET /ping?x=1 HTTP/1.1\" 200\n");
        e.route = Some("GET /ping");
        e.attempt = Some(2);
        e.proxy_error = Some("timeout");
        e.status = Some(504);
        let line = String::from_utf8(apache(&e)).unwrap();
        assert!(line.ends_with("HTTP/1.1\" 504 route=\"GET /ping\" attempt=2 proxy_error=timeout\n"), "{line}");
    }

    #[test]
    fn json_line_has_linkerds_keys() {
        let i = info();
        let e = Entry {
            info: &i,
            status: Some(200),
            response_bytes: 2,
            total: Duration::from_micros(300),
            processing: Duration::from_micros(20),
            route: None,
            attempt: Some(1),
            proxy_error: None,
        };
        let v: serde_json::Value = serde_json::from_slice(&json(&e)).unwrap();
        for key in [
            "client.addr",
            "client.id",
            "host",
            "method",
            "processing_ns",
            "request_bytes",
            "response_bytes",
            "status",
            "timestamp",
            "total_ns",
            "trace_id",
            "uri",
            "user_agent",
            "version",
            "route",
            "attempt",
            "proxy_error",
        ] {
            assert!(v.get(key).is_some(), "{key} in {v}");
        }
        assert_eq!(v["client.addr"], "10.42.0.1:43682");
        assert_eq!(v["total_ns"], 300_000);
        assert_eq!(v["processing_ns"], 20_000);
        assert_eq!(v["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(v["timestamp"], "2022-08-23T20:28:23.049685223Z");
        assert_eq!(v["attempt"], 1);
    }

    #[test]
    fn trace_ids() {
        let h = |pairs: &[(&'static str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, v.parse().unwrap());
            }
            trace_id(&m)
        };
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(h(&[("traceparent", tp)]).as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert_eq!(h(&[("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1")]).unwrap().len(), 32);
        assert_eq!(h(&[("x-b3-traceid", "463ac35c9f6413ad")]).as_deref(), Some("463ac35c9f6413ad"));
        assert_eq!(h(&[("traceparent", "garbage")]), None);
        assert_eq!(h(&[]), None);
    }
}
