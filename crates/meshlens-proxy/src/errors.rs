//! The one path of every response the proxy makes (DESIGN.md §5): [`respond`] builds it ([`rescue`]:
//! status, `l5d-proxy-error`, gRPC status), counts it with `error=<reason>`, taps it and logs it once at
//! WARN naming the authority, the peer and the reason. The HTTP/1 request guard writes the same response
//! as raw bytes ([`rescue_http1`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use meshlens_api::ProxyErrorReason;

use crate::http::body::ProxyBody;
use crate::metrics::HttpTargetMetrics;
use crate::tap::record::Record;
use crate::unanswered::Unanswered;

/// The header that marks a response made by the proxy, carrying the reason token.
pub const L5D_PROXY_ERROR: &str = "l5d-proxy-error";

/// Is this a gRPC request (`content-type: application/grpc…`)? gRPC callers get errors as `grpc-status`.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Who sent the request and when it arrived: how a proxy-made response is shaped (gRPC or not), whom its
/// log line names, and where every elapsed time of the request starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caller {
    pub peer: SocketAddr,
    pub grpc: bool,
    pub received: Instant,
}

impl Caller {
    /// A request from `peer` received now.
    pub(crate) fn new(peer: SocketAddr, grpc: bool) -> Caller {
        Caller { peer, grpc, received: Instant::now() }
    }
}

/// Where a proxy-made response is counted.
pub(crate) enum Count<'a> {
    /// On a series that already counted the request (its guard settles it).
    Settle(Unanswered),
    /// On a series that has not seen the request yet: request and response together.
    New(&'a Arc<HttpTargetMetrics>),
    /// Counted elsewhere (by the tier above, when the response ends).
    Above,
}

/// Builds, counts, taps and logs the proxy's response for `reason`. `authority` is what the request asked
/// for (or the destination it resolved to); `detail` says what happened.
pub(crate) fn respond(
    reason: ProxyErrorReason,
    caller: &Caller,
    authority: &str,
    detail: &str,
    count: Count<'_>,
    record: Option<Record>,
) -> Response<ProxyBody> {
    let rsp = rescue(reason, caller.grpc);
    let status = rsp.status().as_u16();
    tracing::warn!(reason = reason.as_str(), authority, peer = %caller.peer, status, detail, "proxy error response");
    let grpc_status = caller.grpc.then_some(reason.grpc_status());
    let failure = reason.is_failure(status, grpc_status);
    let settle = |guard: Unanswered| {
        let elapsed = guard.elapsed();
        guard.settle(status, grpc_status, failure, Some(reason.as_str()), Some(elapsed));
    };
    match count {
        Count::Settle(guard) => settle(guard),
        Count::New(metrics) => settle(Unanswered::start(metrics, caller)),
        Count::Above => {}
    }
    if let Some(r) = record {
        r.respond(&rsp, reason);
    }
    rsp
}

/// The proxy's response for `reason` (not counted, not logged: see [`respond`]).
pub fn rescue(reason: ProxyErrorReason, grpc: bool) -> Response<ProxyBody> {
    let status = if grpc { 200 } else { reason.http_status() };
    let mut rsp = Response::new(ProxyBody::empty());
    *rsp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let h = rsp.headers_mut();
    h.insert(L5D_PROXY_ERROR, HeaderValue::from_static(reason.as_str()));
    if grpc {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        h.insert("grpc-status", HeaderValue::from(reason.grpc_status()));
        h.insert("grpc-message", HeaderValue::from_static(grpc_message(reason)));
    } else {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    }
    if matches!(reason, ProxyErrorReason::BadRequest | ProxyErrorReason::HeadersTooLarge) {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    rsp
}

/// [`rescue`] as HTTP/1.1 bytes, for the request guard that answers before hyper parses a request.
pub(crate) fn rescue_http1(reason: ProxyErrorReason) -> Vec<u8> {
    let rsp = rescue(reason, false);
    let status = rsp.status();
    let mut out =
        format!("HTTP/1.1 {} {}\r\n", status.as_u16(), status.canonical_reason().unwrap_or("Error")).into_bytes();
    for (name, value) in rsp.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn grpc_message(reason: ProxyErrorReason) -> &'static str {
    use ProxyErrorReason::*;
    match reason {
        ConnectError => "proxy could not connect to the destination",
        ConnectTimeout => "proxy timed out connecting to the destination",
        Failfast => "no endpoint of the service became ready in time (failfast)",
        LoadShed => "proxy is shedding load: no endpoint is ready",
        Timeout => "request timed out in the proxy",
        InvalidResponse => "the destination sent an invalid response",
        NoRoute => "no such service or route",
        Loop => "request would loop back into the proxy",
        Forbidden => "request denied by policy",
        BadRequest => "malformed request",
        HeadersTooLarge => "request headers too large",
    }
}

/// The `error` metric label for a reason reported by a peer proxy: `peer:<reason>`.
pub fn peer_label(reason: ProxyErrorReason) -> &'static str {
    use ProxyErrorReason::*;
    match reason {
        ConnectError => "peer:connect_error",
        ConnectTimeout => "peer:connect_timeout",
        Failfast => "peer:failfast",
        LoadShed => "peer:load_shed",
        Timeout => "peer:timeout",
        InvalidResponse => "peer:invalid_response",
        NoRoute => "peer:no_route",
        Loop => "peer:loop",
        Forbidden => "peer:forbidden",
        BadRequest => "peer:bad_request",
        HeadersTooLarge => "peer:headers_too_large",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_and_grpc_shapes() {
        let rsp = rescue(ProxyErrorReason::Timeout, false);
        assert_eq!(rsp.status(), 504);
        assert_eq!(rsp.headers()[L5D_PROXY_ERROR], "timeout");
        assert_eq!(rsp.headers()[header::CONTENT_LENGTH], "0");
        let rsp = rescue(ProxyErrorReason::Timeout, true);
        assert_eq!(rsp.status(), 200);
        assert_eq!(rsp.headers()["grpc-status"], "4");
        assert_eq!(rsp.headers()[L5D_PROXY_ERROR], "timeout");
        for r in ProxyErrorReason::ALL {
            assert_eq!(peer_label(r).strip_prefix("peer:"), Some(r.as_str()));
        }
        let raw = String::from_utf8(rescue_http1(ProxyErrorReason::HeadersTooLarge)).unwrap();
        assert!(raw.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{raw}");
        assert!(raw.contains("l5d-proxy-error: headers_too_large\r\n") && raw.contains("connection: close\r\n"));
        assert!(raw.ends_with("\r\n\r\n"), "{raw}");
    }
}
