//! A tap subscription's filter, compiled once from the `GET /tap` query (TapFilter's camelCase keys):
//! request-side matching, the response filters (`status`, `failed`) and the `maxRps` token bucket.

use std::sync::Mutex;
use std::time::Instant;

use http::Method;
use meshlens_api::tap::{ProxyDirection, StatusFilter};

/// A bad query: the parameter at fault and what is wrong with it (answered as 400).
#[derive(Debug, PartialEq, Eq)]
pub struct FilterError {
    pub parameter: String,
    pub message: String,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "parameter {}: {}", self.parameter, self.message)
    }
}

/// What one subscription wants to see.
#[derive(Debug, Default)]
pub struct Filter {
    pub direction: Option<ProxyDirection>,
    pub authority: Option<String>,
    pub path: Option<String>,
    pub method: Option<Method>,
    /// `http` or `https`, lower-cased.
    pub scheme: Option<&'static str>,
    pub route: Option<String>,
    /// Destination metadata that must match: (`deployment`, `x`), (`pod`, `y`)…
    pub dst: Vec<(&'static str, String)>,
    pub status: Option<StatusFilter>,
    pub failed: bool,
    pub max_rps: Option<f64>,
    pub headers: bool,
}

/// The request-side facts a filter looks at.
pub struct RequestFacts<'a> {
    pub direction: ProxyDirection,
    pub authority: &'a str,
    pub path: &'a str,
    pub method: &'a Method,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The route name; `[DEFAULT]` when no ServiceProfile route matched.
    pub route: &'a str,
    pub dst: &'a std::collections::BTreeMap<String, String>,
}

/// The response-side facts the response filters look at.
pub struct ResponseFacts {
    pub status: Option<u16>,
    pub grpc_status: Option<u32>,
    pub reset: bool,
    pub proxy_error: Option<meshlens_api::ProxyErrorReason>,
}

impl Filter {
    /// Parses a URL query (`direction=outbound&status=5xx&maxRps=10`). Unknown keys are refused.
    pub fn parse(query: &str) -> Result<Filter, FilterError> {
        let mut f = Filter::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key).map_err(|m| bad(key, m))?;
            let value = decode(value).map_err(|m| bad(&key, m))?;
            let text = || (!value.is_empty()).then(|| value.clone());
            match key.as_str() {
                "direction" => {
                    f.direction = match value.as_str() {
                        "inbound" | "INBOUND" => Some(ProxyDirection::Inbound),
                        "outbound" | "OUTBOUND" => Some(ProxyDirection::Outbound),
                        "" => None,
                        _ => return Err(bad(&key, format!("{value:?} is neither inbound nor outbound"))),
                    }
                }
                "authority" => f.authority = text(),
                "path" => f.path = text(),
                "method" => {
                    f.method = match value.as_str() {
                        "" => None,
                        m => Some(
                            Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                                .map_err(|_| bad(&key, format!("{value:?} is not an HTTP method")))?,
                        ),
                    }
                }
                "scheme" => {
                    f.scheme = match value.to_ascii_lowercase().as_str() {
                        "" => None,
                        "http" => Some("http"),
                        "https" => Some("https"),
                        _ => return Err(bad(&key, format!("{value:?} is neither http nor https"))),
                    }
                }
                "route" => f.route = text(),
                "dstWorkload" => push_dst(&mut f.dst, "deployment", text()),
                "dstPod" => push_dst(&mut f.dst, "pod", text()),
                "dstNamespace" => push_dst(&mut f.dst, "namespace", text()),
                "dstService" => push_dst(&mut f.dst, "service", text()),
                "status" => f.status = Some(StatusFilter::parse(&value).map_err(|m| bad(&key, m))?),
                "failed" => f.failed = parse_bool(&key, &value)?,
                "headers" => f.headers = parse_bool(&key, &value)?,
                "maxRps" => {
                    let rps: f64 = value.parse().map_err(|_| bad(&key, format!("{value:?} is not a number")))?;
                    if !rps.is_finite() || rps <= 0.0 {
                        return Err(bad(&key, format!("{value:?} must be a positive number of requests per second")));
                    }
                    f.max_rps = Some(rps);
                }
                _ => return Err(bad(&key, "unknown parameter".to_string())),
            }
        }
        Ok(f)
    }

    /// Whether the response filters apply: the request's events are then held until its end.
    pub fn filters_responses(&self) -> bool {
        self.status.is_some() || self.failed
    }

    pub fn matches_request(&self, r: &RequestFacts<'_>) -> bool {
        self.direction.is_none_or(|d| d == r.direction)
            && self.authority.as_deref().is_none_or(|a| a == r.authority)
            && self.path.as_deref().is_none_or(|p| r.path.starts_with(p))
            && self.method.as_ref().is_none_or(|m| m == r.method)
            && self.scheme.is_none_or(|s| s == r.scheme)
            && self.route.as_deref().is_none_or(|n| n == r.route)
            && self.dst.iter().all(|(k, v)| r.dst.get(*k).is_some_and(|have| have == v))
    }

    pub fn matches_response(&self, r: &ResponseFacts) -> bool {
        let status_ok = match &self.status {
            None => true,
            Some(s) => r.status.is_some_and(|code| s.matches(code)),
        };
        let classified =
            r.status.is_some_and(|s| meshlens_api::errors::response_failed(s, r.grpc_status, r.proxy_error));
        let failed_ok = !self.failed || classified || r.reset;
        status_ok && failed_ok
    }
}

fn push_dst(dst: &mut Vec<(&'static str, String)>, key: &'static str, value: Option<String>) {
    if let Some(v) = value {
        dst.push((key, v));
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, FilterError> {
    match value {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(key, format!("{value:?} is not true or false"))),
    }
}

fn bad(parameter: &str, message: impl Into<String>) -> FilterError {
    FilterError { parameter: parameter.to_string(), message: message.into() }
}

/// Percent-decoding of a query component (`+` is a space, as form encoding writes it).
fn decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or("invalid percent-encoding")?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after percent-decoding".to_string())
}

/// `maxRps` as a token bucket: refills at the rate, holds at most one second's worth (at least one).
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimit {
    pub fn new(rate: f64) -> RateLimit {
        RateLimit { rate, state: Mutex::new((rate.max(1.0), Instant::now())) }
    }

    /// Takes a token if one is there.
    pub fn take(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.saturating_duration_since(s.1).as_secs_f64() * self.rate;
        s.0 = (s.0 + refill).min(self.rate.max(1.0));
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlens_api::ProxyErrorReason;
    use meshlens_api::tap::TapFilter;

    #[test]
    fn parses_every_key_of_the_contract() {
        let f = Filter::parse(
            "direction=outbound&authority=users.prod%3A80&path=%2Fusers&method=get&route=GET+%2Fusers%2F%7Bid%7D\
             &dstWorkload=users&dstPod=users-0&dstNamespace=prod&dstService=users&status=5xx%2C429&failed=true\
             &maxRps=2.5&headers=true&scheme=HTTP",
        )
        .unwrap();
        assert_eq!(f.direction, Some(ProxyDirection::Outbound));
        assert_eq!(f.authority.as_deref(), Some("users.prod:80"));
        assert_eq!(f.path.as_deref(), Some("/users"));
        assert_eq!(f.method, Some(Method::GET));
        assert_eq!(f.scheme, Some("http"));
        assert_eq!(f.route.as_deref(), Some("GET /users/{id}"));
        assert_eq!(f.dst.len(), 4);
        assert!(f.status.as_ref().unwrap().matches(429) && f.failed && f.headers);
        assert_eq!(f.max_rps, Some(2.5));
    }

    #[test]
    fn reads_what_the_contract_type_serializes() {
        // The control plane writes TapFilter with serde's field names; every one must be accepted.
        let keys = meshlens_api::tap::TAP_FILTER_KEYS;
        let full = TapFilter {
            direction: Some("inbound".into()),
            authority: Some("a".into()),
            path: Some("/".into()),
            method: Some("POST".into()),
            scheme: Some("https".into()),
            route: Some("[DEFAULT]".into()),
            dst_workload: Some("w".into()),
            dst_pod: Some("p".into()),
            dst_namespace: Some("n".into()),
            dst_service: Some("s".into()),
            status: Some("504".into()),
            failed: true,
            max_rps: Some(100.0),
            headers: true,
        };
        let value = serde_json::to_value(&full).unwrap();
        let mut query = Vec::new();
        for (k, v) in value.as_object().unwrap() {
            assert!(keys.contains(&k.as_str()), "{k} is handled");
            let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            query.push(format!("{k}={}", v.replace('/', "%2F").replace(' ', "+")));
        }
        assert_eq!(query.len(), keys.len());
        let f = Filter::parse(&query.join("&")).unwrap();
        assert_eq!(f.route.as_deref(), Some("[DEFAULT]"));
        assert_eq!(f.max_rps, Some(100.0));
    }

    #[test]
    fn bad_parameters_are_named() {
        for (query, param) in [
            ("direction=sideways", "direction"),
            ("status=6xx", "status"),
            ("maxRps=fast", "maxRps"),
            ("maxRps=0", "maxRps"),
            ("maxRps=-3", "maxRps"),
            ("failed=maybe", "failed"),
            ("scheme=ftp", "scheme"),
            ("colour=blue", "colour"),
            ("path=%zz", "path"),
        ] {
            assert_eq!(Filter::parse(query).unwrap_err().parameter, param, "{query}");
        }
    }

    #[test]
    fn scheme_matches_the_request_scheme() {
        let f = Filter::parse("scheme=HTTPS").unwrap();
        let dst = std::collections::BTreeMap::new();
        let facts = |scheme| RequestFacts {
            direction: ProxyDirection::Inbound,
            authority: "a:80",
            path: "/",
            method: &Method::GET,
            scheme,
            route: "[DEFAULT]",
            dst: &dst,
        };
        assert!(f.matches_request(&facts("https")));
        assert!(!f.matches_request(&facts("http")), "origin-form requests are http");
        assert!(Filter::parse("").unwrap().matches_request(&facts("http")));
    }

    #[test]
    fn response_filters() {
        let f = Filter::parse("failed=true").unwrap();
        let rsp = |status, grpc, reset, proxy_error| ResponseFacts { status, grpc_status: grpc, reset, proxy_error };
        assert!(f.matches_response(&rsp(Some(503), None, false, None)));
        assert!(f.matches_response(&rsp(Some(200), Some(14), false, None)));
        assert!(
            f.matches_response(&rsp(Some(200), Some(5), false, None)),
            "a non-zero grpc-status, as metrics count it"
        );
        assert!(f.matches_response(&rsp(Some(503), Some(0), false, None)), "a 5xx whatever its grpc-status");
        assert!(f.matches_response(&rsp(Some(200), None, true, None)));
        assert!(f.matches_response(&rsp(Some(404), None, false, Some(ProxyErrorReason::NoRoute))));
        assert!(!f.matches_response(&rsp(Some(400), None, false, Some(ProxyErrorReason::BadRequest))), "the client's");
        assert!(!f.matches_response(&rsp(Some(404), None, false, None)));
        let f = Filter::parse("status=504").unwrap();
        assert!(f.matches_response(&rsp(Some(504), None, false, Some(ProxyErrorReason::Timeout))));
        assert!(!f.matches_response(&rsp(Some(503), None, false, None)));
        assert!(!f.matches_response(&rsp(None, None, true, None)), "no response, no status");
    }

    #[test]
    fn rate_limit_allows_a_second_worth_then_refills() {
        let r = RateLimit::new(3.0);
        assert!(r.take() && r.take() && r.take());
        assert!(!r.take());
        let slow = RateLimit::new(0.5);
        assert!(slow.take(), "at least one token");
        assert!(!slow.take());
    }
}
