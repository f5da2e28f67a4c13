//! The one place where the proxy's errors become responses: status, `l5d-proxy-error`, gRPC status
//! (DESIGN.md §5). Every error that reaches a server edge goes through [`rescue`].

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use meshlens_api::ProxyErrorReason;

use crate::http::body::ProxyBody;

/// The header that marks a response made by the proxy, carrying the reason token.
pub const L5D_PROXY_ERROR: &str = "l5d-proxy-error";

/// Is this a gRPC request (`content-type: application/grpc…`)? gRPC callers get errors as `grpc-status`.
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// Builds the proxy's response for `reason`, logging it once with the context that led to it.
pub fn rescue(reason: ProxyErrorReason, grpc: bool, context: &str) -> Response<ProxyBody> {
    let status = if grpc { 200 } else { reason.http_status() };
    tracing::warn!(reason = reason.as_str(), status, grpc, context, "proxy error response");
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
        let rsp = rescue(ProxyErrorReason::Timeout, false, "test");
        assert_eq!(rsp.status(), 504);
        assert_eq!(rsp.headers()[L5D_PROXY_ERROR], "timeout");
        assert_eq!(rsp.headers()[header::CONTENT_LENGTH], "0");
        let rsp = rescue(ProxyErrorReason::Timeout, true, "test");
        assert_eq!(rsp.status(), 200);
        assert_eq!(rsp.headers()["grpc-status"], "4");
        assert_eq!(rsp.headers()[L5D_PROXY_ERROR], "timeout");
        for r in ProxyErrorReason::ALL {
            assert_eq!(peer_label(r).strip_prefix("peer:"), Some(r.as_str()));
        }
    }
}
