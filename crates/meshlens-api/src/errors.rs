//! The one vocabulary of proxy-made responses: reason token, HTTP status and gRPC status (DESIGN.md §5).
//!
//! The same token appears in the `l5d-proxy-error` header, the `error` metric label, tap's `proxyError`
//! and the log line's `reason`.

use serde::{Deserialize, Serialize};

/// Why the proxy, not the application, produced a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyErrorReason {
    ConnectError,
    ConnectTimeout,
    Failfast,
    LoadShed,
    Timeout,
    InvalidResponse,
    NoRoute,
    Loop,
    Forbidden,
    BadRequest,
    HeadersTooLarge,
}

impl ProxyErrorReason {
    pub const ALL: [ProxyErrorReason; 11] = [
        Self::ConnectError,
        Self::ConnectTimeout,
        Self::Failfast,
        Self::LoadShed,
        Self::Timeout,
        Self::InvalidResponse,
        Self::NoRoute,
        Self::Loop,
        Self::Forbidden,
        Self::BadRequest,
        Self::HeadersTooLarge,
    ];

    /// The token used in headers, metric labels, tap and logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ConnectError => "connect_error",
            Self::ConnectTimeout => "connect_timeout",
            Self::Failfast => "failfast",
            Self::LoadShed => "load_shed",
            Self::Timeout => "timeout",
            Self::InvalidResponse => "invalid_response",
            Self::NoRoute => "no_route",
            Self::Loop => "loop",
            Self::Forbidden => "forbidden",
            Self::BadRequest => "bad_request",
            Self::HeadersTooLarge => "headers_too_large",
        }
    }

    pub fn from_token(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// A response made for this reason is the caller's own failure (its request was malformed): it is
    /// classified by [`is_failure`] like any response, and never counted against the destination or fed
    /// to its breaker. Every other proxy-made response is a failure.
    pub const fn is_callers(self) -> bool {
        matches!(self, Self::BadRequest | Self::HeadersTooLarge)
    }

    /// Whether a response the proxy made for this reason (with this status) is a failure.
    pub fn is_failure(self, status: u16, grpc_status: Option<u32>) -> bool {
        !self.is_callers() || is_failure(status, grpc_status)
    }

    /// The HTTP status of a plain HTTP response.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::ConnectError | Self::InvalidResponse => 502,
            Self::ConnectTimeout | Self::Failfast | Self::Timeout => 504,
            Self::LoadShed => 503,
            Self::NoRoute => 404,
            Self::Loop => 508,
            Self::Forbidden => 403,
            Self::BadRequest => 400,
            Self::HeadersTooLarge => 431,
        }
    }

    /// The gRPC status code sent (with HTTP 200) to gRPC callers.
    pub const fn grpc_status(self) -> u32 {
        match self {
            Self::ConnectError | Self::ConnectTimeout | Self::Failfast | Self::LoadShed => 14,
            Self::Timeout => 4,
            Self::InvalidResponse => 13,
            Self::NoRoute => 12,
            Self::Loop => 10,
            Self::Forbidden => 7,
            Self::BadRequest | Self::HeadersTooLarge => 3,
        }
    }
}

/// The one failure rule (DESIGN.md §5), used by endpoint metrics, the default classification of route
/// metrics, the circuit breaker and tap's `--failed`: an HTTP 5xx, or a gRPC status other than 0 (OK), is a
/// failure — a 5xx stays a failure whatever `grpc-status` it carries. A route's `responseClasses` may
/// override it for that route's metrics; a response cut short, a cancellation and a proxy-made error
/// ([`ProxyErrorReason::is_failure`]: all but the caller's own malformed requests) are failures whatever
/// their status.
pub fn is_failure(status: u16, grpc_status: Option<u32>) -> bool {
    (500..=599).contains(&status) || grpc_status.is_some_and(|code| code != 0)
}

/// Whether a response failed, as tap's `--failed`, `top` and the proxy's metrics all judge it:
/// [`ProxyErrorReason::is_failure`] when the proxy made it, else [`is_failure`].
pub fn response_failed(status: u16, grpc_status: Option<u32>, proxy_error: Option<ProxyErrorReason>) -> bool {
    match proxy_error {
        Some(reason) => reason.is_failure(status, grpc_status),
        None => is_failure(status, grpc_status),
    }
}

impl std::fmt::Display for ProxyErrorReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_match_the_table() {
        for r in ProxyErrorReason::ALL {
            assert_eq!(ProxyErrorReason::from_token(r.as_str()), Some(r));
        }
        assert_eq!(ProxyErrorReason::Timeout.http_status(), 504);
        assert_eq!(ProxyErrorReason::Timeout.grpc_status(), 4);
        assert_eq!(ProxyErrorReason::Loop.http_status(), 508);
        assert_eq!(ProxyErrorReason::LoadShed.http_status(), 503);
    }

    #[test]
    fn one_failure_rule() {
        assert!(is_failure(500, None) && is_failure(503, Some(0)), "a 5xx fails whatever its grpc-status");
        assert!(!is_failure(200, None) && !is_failure(404, None) && !is_failure(200, Some(0)));
        for code in 1..=16 {
            assert!(is_failure(200, Some(code)), "grpc-status {code}");
        }
        assert!(response_failed(404, None, Some(ProxyErrorReason::NoRoute)), "a proxy-made error fails");
        assert!(!response_failed(400, None, Some(ProxyErrorReason::BadRequest)), "the caller's own mistake");
        assert!(!response_failed(404, None, None), "an app's 404 does not");
    }
}
