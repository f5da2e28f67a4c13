//! The logical tier of the outbound path: a request to a service, before a backend and an endpoint are
//! chosen. ServiceProfile routes apply here (classification, a timeout covering every attempt, retries
//! within the profile's budget), and traffic splits choose the backend service of each attempt. Without a
//! profile or split the request goes straight to the service's balancer, paying nothing for policy.

pub(crate) mod linkerd;
pub(crate) mod metrics;
pub(crate) mod service;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use http::{HeaderValue, Method, Request, Response, header};
use hyper::body::Incoming;
use meshlens_api::ProxyErrorReason;

use crate::ctx::Ctx;
use crate::errors::{Caller, Count, respond};
use crate::forward::{Answer, forward, forward_attempt};
use crate::http::body::{BodyEnd, OnEnd, ProxyBody, grpc_status};
use crate::http::request_body::{Buffered, RequestBody};
use crate::policy::filters::Redirect;
use crate::policy::route::RequestHead;
use crate::shutdown::Drain;
use crate::tap::record::{Record, RetryChain, Tapped};
use crate::targets::Target;
use crate::unanswered::Unanswered;
use linkerd::Outcome;
use metrics::Fate;
use service::{CompiledRoute, ServicePolicy};

/// Serves one request to `target` (`tapped` when someone observes requests).
pub(crate) async fn serve(
    ctx: &Ctx,
    target: &Arc<Target>,
    req: Request<Incoming>,
    caller: &Caller,
    drain: &Drain,
    tapped: Option<Tapped>,
) -> Response<ProxyBody> {
    let single_attempt = |t: Tapped| t.record(target.tap_dst.clone()).attempt(None, 1, None, None);
    let Some(policy) = target.policy.as_ref() else {
        let record = tapped.map(single_attempt);
        return forward(&target.balancer, req.map(RequestBody::Stream), caller, drain, record).await;
    };
    let Some(route) = policy.route(&RequestHead::of(&req)) else {
        // A split without a profile: pick the backend, no route metrics.
        let record = tapped.map(single_attempt);
        let (balancer, _) = backend(ctx, policy, None, target);
        return forward(&balancer, req.map(RequestBody::Stream), caller, drain, record).await;
    };
    let mut effective = Unanswered::start(&route.metrics.effective, caller);
    let rule = route.rule();
    let (mut rsp, fate, error) = if policy.unmatched_not_found && route.is_default() {
        // Linkerd's outbound router answers 404 when a Service has HTTPRoutes and none matches the request
        // (linkerd2-proxy `app/outbound/src/http/server.rs`, and its integration test
        // `returns_404_if_no_http_route_matches`; reference/linkerd-routes.md §1.5): the caller gets a
        // proxy-made 404 with `l5d-proxy-error: no_route`, counted on the `[DEFAULT]` route.
        let reason = ProxyErrorReason::NoRoute;
        let context = "no route of the service's HTTPRoutes matches the request";
        let rsp = respond(reason, caller, &target.authority, context, Count::Above, tapped.map(single_attempt));
        (rsp, None, Some(reason))
    } else if let Some(redirect) = rule.and_then(|r| r.redirect.as_ref()) {
        (redirect_response(redirect, &req), None, None)
    } else {
        let mut req = req;
        if let Some(edit) = rule.and_then(|r| r.request_headers.as_ref()) {
            edit.apply(req.headers_mut());
        }
        let call = Routed { ctx, target, policy, route, caller, drain, tapped: tapped.as_ref() };
        let (rsp, fate, error) = route_attempts(call, req).await;
        (rsp, Some(fate), error)
    };
    if let (Some(edit), Some(_)) = (rule.and_then(|r| r.response_headers.as_ref()), fate) {
        edit.apply(rsp.headers_mut());
    }
    if let Some(fate) = fate {
        route.metrics.fate(fate);
    }
    effective.head(rsp.status().as_u16());
    let end = RouteEnd {
        route: route.clone(),
        effective,
        status: rsp.status().as_u16(),
        grpc_status: grpc_status(rsp.headers()),
        error,
        ttfb: caller.received.elapsed(),
        received: caller.received,
    };
    rsp.map(|b| b.on_end(Box::new(end)))
}

/// What the tiers of a request on a route read.
#[derive(Clone, Copy)]
struct Routed<'a> {
    ctx: &'a Ctx,
    target: &'a Arc<Target>,
    policy: &'a ServicePolicy,
    route: &'a CompiledRoute,
    caller: &'a Caller,
    drain: &'a Drain,
    tapped: Option<&'a Tapped>,
}

/// A request on a route: its attempts under the route's timeout (the shorter of it and a gRPC deadline).
async fn route_attempts(
    call: Routed<'_>,
    req: Request<Incoming>,
) -> (Response<ProxyBody>, Fate, Option<ProxyErrorReason>) {
    let Routed { route, caller, target, .. } = call;
    let timeout = match (route.timeout, grpc_timeout(req.headers())) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let timed_out = Arc::new(AtomicBool::new(false));
    let work = attempts(call, req, &timed_out);
    match within(work, timeout, &timed_out).await {
        Some(r) => r,
        None => {
            let context = format!("route '{}' timed out after {:?}", route.name, timeout.unwrap_or_default());
            let reason = ProxyErrorReason::Timeout;
            let rsp = respond(reason, caller, &target.authority, &context, Count::Above, None);
            (rsp, Fate::FailedTimeout, Some(reason))
        }
    }
}

/// Runs `work` for at most `limit` (without one, to its end). When the limit passes first, `cut` is set
/// and `work` dropped while it is (what was in flight counts as cut by a timeout): `None`.
async fn within<T>(work: impl Future<Output = T>, limit: Option<Duration>, cut: &AtomicBool) -> Option<T> {
    let Some(limit) = limit else { return Some(work.await) };
    let mut work = std::pin::pin!(work);
    tokio::select! {
        r = &mut work => return Some(r),
        _ = tokio::time::sleep(limit) => {}
    }
    cut.store(true, Ordering::Relaxed);
    None
}

/// The response of a route whose rule redirects (`RequestRedirect`): nothing is forwarded.
fn redirect_response<B>(redirect: &Redirect, req: &Request<B>) -> Response<ProxyBody> {
    let location = redirect.location(req.uri(), req.headers());
    let mut rsp = Response::new(ProxyBody::empty());
    *rsp.status_mut() = redirect.status;
    let h = rsp.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_str(&location).unwrap_or_else(|_| HeaderValue::from_static("/")));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    rsp
}

/// Attempts a request until it succeeds or may not be retried: returns the response the caller gets,
/// the request's fate, and the proxy's error reason when the proxy made the response.
async fn attempts(
    call: Routed<'_>,
    req: Request<Incoming>,
    timed_out: &Arc<AtomicBool>,
) -> (Response<ProxyBody>, Fate, Option<ProxyErrorReason>) {
    let Routed { ctx, target, policy, route, caller, drain, tapped } = call;
    // Each attempt has its own record; retries name the first attempt's id (the chain). The first record
    // exists before the body is buffered, so a timeout during buffering is reported too.
    let chain = tapped.map(|_| Arc::new(RetryChain::new()));
    let new_record = |attempt: u32| -> Option<Record> {
        tapped.map(|t| {
            t.record(target.tap_dst.clone()).attempt(
                route.tap_name.clone(),
                attempt,
                chain.clone(),
                Some(timed_out.clone()),
            )
        })
    };
    let mut first_record = new_record(1);
    let (parts, body) = req.into_parts();
    let budget = route.budget.as_ref();
    let (mut first, replay) = match budget {
        None => (Some(RequestBody::Stream(body)), None),
        Some(_) => match RequestBody::buffer(body).await {
            Ok(Buffered::Complete(r)) => (None, Some(r)),
            Ok(Buffered::TooLarge(b)) => (Some(b), None),
            Err(e) => {
                // The client's body failed (malformed chunked body, aborted upload): the client's failure.
                let context = format!("reading the request body failed: {e}");
                let reason = ProxyErrorReason::BadRequest;
                let rsp = respond(reason, caller, &target.authority, &context, Count::Above, first_record);
                return (rsp, Fate::FailedNotRetryable, Some(reason));
            }
        },
    };
    let idempotent = is_idempotent(&parts.method);
    let attempt_timeout = route.rule().and_then(|r| r.attempt_timeout);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let body = match (&replay, first.take()) {
            (Some(r), _) => r.body(),
            (None, Some(b)) => b,
            (None, None) => unreachable!("a streamed body is only sent once"),
        };
        let mut req = Request::new(body);
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = parts.uri.clone();
        *req.version_mut() = parts.version;
        *req.headers_mut() = parts.headers.clone();
        let record = if attempt == 1 { first_record.take() } else { new_record(attempt) };
        let (balancer, picked) = backend(ctx, policy, Some(route), target);
        let linkerd = route.linkerd.as_ref().map(|m| m.backend(picked));
        if let Some(m) = linkerd {
            m.sent();
        }
        let attempt_started = linkerd.map(|_| std::time::Instant::now());
        let mut actual = Some(Unanswered::start(&route.metrics.actual, caller).cut_by(Some(timed_out)));
        let sent = forward_attempt(&balancer, req, caller, drain, Some(timed_out), record);
        let Answer { rsp, proxy_error } = match within(sent, attempt_timeout, timed_out).await {
            Some(answer) => answer,
            None => {
                // This attempt was cut (its endpoint and the per-attempt series count it as cut by a
                // timeout); the route's own timeout keeps running.
                drop(actual.take());
                timed_out.store(false, Ordering::Relaxed);
                let limit = attempt_timeout.unwrap_or_default();
                let context = format!("attempt {attempt} on route '{}' timed out after {limit:?}", route.name);
                let reason = ProxyErrorReason::Timeout;
                let rsp = respond(reason, caller, &target.authority, &context, Count::Above, None);
                Answer { rsp, proxy_error: Some(reason) }
            }
        };
        // An attempt cut by the per-attempt timeout may be retried whatever the statuses named (Linkerd).
        let cut = actual.is_none();
        let status = rsp.status().as_u16();
        let grpc_code = grpc_status(rsp.headers());
        if let (Some(m), Some(started)) = (linkerd, attempt_started) {
            let grpc = route.linkerd.as_ref().is_some_and(|l| l.is_grpc());
            m.answered(Outcome::of(grpc, status, grpc_code, proxy_error), started.elapsed());
        }
        let failure = match proxy_error {
            Some(reason) => reason.is_failure(status, grpc_code),
            None => route.is_failure(status, grpc_code),
        };
        if let Some(actual) = actual {
            actual.settle(status, grpc_code, failure, proxy_error.map(|r| r.as_str()), None);
        }
        let retried = attempt > 1;
        let fate = if !failure {
            Some(if retried { Fate::SucceededAfterRetry } else { Fate::SucceededFirst })
        } else if budget.is_none() {
            Some(if route.retryable { Fate::FailedNoBudget } else { Fate::FailedNotRetryable })
        } else if !cut && !route.retries_response(status, grpc_code) {
            Some(Fate::FailedNotRetryable)
        } else if replay.is_none() {
            Some(Fate::FailedBodyTooLarge)
        } else if !idempotent && !proxy_error.is_some_and(not_written) {
            // The request reached the app: only idempotent methods are sent again.
            Some(Fate::FailedNotRetryable)
        } else {
            None
        };
        if let Some(fate) = fate {
            // On a retryable route, every response that is not a retryable failure deposits into the budget.
            if let Some(b) = budget {
                b.deposit();
            }
            return (rsp, fate, proxy_error);
        }
        route.metrics.retryable.inc();
        if attempt > route.max_retries(policy.max_retries) {
            return (rsp, Fate::FailedRetriesExhausted, proxy_error);
        }
        if !budget.is_some_and(|b| b.withdraw()) {
            route.metrics.skipped_no_budget.inc();
            return (rsp, Fate::FailedNoBudget, proxy_error);
        }
        rsp.into_body().discard();
        tracing::debug!(route = %route.name, attempt, status, "retrying");
    }
}

/// The balancer of an attempt's backend (a split's pick): a leaf target of the apex (counted under the
/// apex's authority, the leaf in `dst_service`).
fn backend<'a>(
    ctx: &Ctx,
    policy: &'a ServicePolicy,
    route: Option<&'a CompiledRoute>,
    target: &Arc<Target>,
) -> (Arc<crate::balance::Balancer>, Option<&'a str>) {
    let resolve = |leaf: &str| ctx.targets.leaf(ctx, &target.authority, leaf).map(|t| t.balancer.clone());
    policy.backend(route, || ctx.discovery.version(), (&target.authority, &target.balancer), resolve)
}

/// Failures that happen before any byte of the request was written: safe to retry whatever the method.
fn not_written(reason: ProxyErrorReason) -> bool {
    matches!(
        reason,
        ProxyErrorReason::ConnectError
            | ProxyErrorReason::ConnectTimeout
            | ProxyErrorReason::Failfast
            | ProxyErrorReason::LoadShed
    )
}

fn is_idempotent(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE)
}

/// The deadline a gRPC client set (`grpc-timeout: 100m` = 100 ms), honoured like a route timeout.
pub fn grpc_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let v = headers.get("grpc-timeout")?.to_str().ok()?;
    if v.len() < 2 || v.len() > 9 {
        return None;
    }
    let (n, unit) = v.split_at(v.len() - 1);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Counts the effective response of a route when the caller's response ends (or the caller went away).
struct RouteEnd {
    route: Arc<CompiledRoute>,
    effective: Unanswered,
    status: u16,
    grpc_status: Option<u32>,
    error: Option<ProxyErrorReason>,
    ttfb: Duration,
    received: std::time::Instant,
}

impl OnEnd for RouteEnd {
    fn on_end(self: Box<Self>, end: &BodyEnd<'_>) {
        let (grpc, complete) = (end.grpc_status.or(self.grpc_status), end.complete);
        if let Some(linkerd) = &self.route.linkerd {
            let outcome = match (end.cancelled, complete) {
                (true, _) => Outcome::Error("CANCEL"),
                (false, false) => Outcome::Error("UNKNOWN"),
                _ => Outcome::of(linkerd.is_grpc(), self.status, grpc, self.error),
            };
            linkerd.record(outcome, self.received.elapsed());
        }
        if end.cancelled {
            self.effective.cancel();
            return;
        }
        let failure = !complete
            || match self.error {
                Some(reason) => reason.is_failure(self.status, grpc),
                None => self.route.is_failure(self.status, grpc),
            };
        self.effective.settle(self.status, grpc, failure, self.error.map(|e| e.as_str()), Some(self.ttfb));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts() {
        let h = |v: &str| {
            let mut m = http::HeaderMap::new();
            m.insert("grpc-timeout", v.parse().unwrap());
            grpc_timeout(&m)
        };
        assert_eq!(h("100m"), Some(Duration::from_millis(100)));
        assert_eq!(h("2S"), Some(Duration::from_secs(2)));
        assert_eq!(h("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(h("5x"), None);
        assert_eq!(h("m"), None);
    }
}
