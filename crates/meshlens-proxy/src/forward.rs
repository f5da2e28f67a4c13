//! Forwarding one HTTP request to a balancer's endpoint and streaming the response back, with the
//! endpoint's metrics, load estimate and pooled connection settled when the response ends.
//!
//! This is the endpoint tier of the request path (logical → concrete → endpoint); routes and retries sit
//! above [`forward`], identity in the endpoint client below it. Tap and the access log observe each
//! attempt here through its [`Record`].

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use meshlens_api::ProxyErrorReason;
use meshlens_api::errors::is_failure;

use crate::balance::{Balancer, Endpoint, InFlight};
use crate::client::{Conn, Reusable, SendError};
use crate::errors::{Caller, Count, L5D_PROXY_ERROR, is_grpc, peer_label, respond};
use crate::http::body::{BodyEnd, OnEnd, ProxyBody, grpc_status};
use crate::http::headers::{is_upgrade, strip_hop_by_hop};
use crate::http::request_body::RequestBody;
use crate::shutdown::Drain;
use crate::tap::record::Record;
use crate::unanswered::Unanswered;

/// A connection that failed before any byte of the request was written is tried on another endpoint,
/// at most this many times in all.
const CONNECT_ATTEMPTS: usize = 3;

/// What an attempt produced: the response for the caller and, when the proxy made it, why. The retry
/// loop reads the outcome from here, never from the response's headers.
pub(crate) struct Answer {
    pub rsp: Response<ProxyBody>,
    pub proxy_error: Option<ProxyErrorReason>,
}

impl Answer {
    fn made(rsp: Response<ProxyBody>, reason: ProxyErrorReason) -> Answer {
        Answer { rsp, proxy_error: Some(reason) }
    }
}

/// Sends `req` to an endpoint of `balancer` and returns the response (or the proxy's error response).
pub(crate) async fn forward(
    balancer: &Arc<Balancer>,
    req: Request<RequestBody>,
    caller: &Caller,
    drain: &Drain,
    record: Option<Record>,
) -> Response<ProxyBody> {
    forward_attempt(balancer, req, caller, drain, None, record).await.rsp
}

/// [`forward`] for one attempt of a route with a timeout: when the route tier drops this future after
/// setting `timed_out`, the endpoint's metrics count the cut attempt as `504`/`error="timeout"` (and its
/// record, dropped with it, reports the same); dropped otherwise, the caller went away: `cancelled`.
pub(crate) async fn forward_attempt(
    balancer: &Arc<Balancer>,
    mut req: Request<RequestBody>,
    caller: &Caller,
    drain: &Drain,
    timed_out: Option<&Arc<AtomicBool>>,
    mut record: Option<Record>,
) -> Answer {
    let version = req.version();
    let upgrade = version == Version::HTTP_11 && is_upgrade(req.headers());
    prepare_request(&mut req, upgrade);
    let mut waiting = Waiting { balancer, caller, timed_out, over: false };
    let picked = connect(balancer, version).await;
    waiting.over = true;
    let (ep, conn, in_flight) = match picked {
        Ok(picked) => picked,
        Err(NotConnected { reason, endpoint, detail }) => {
            let count = match &endpoint {
                Some(ep) => Count::New(&ep.http_metrics),
                None => Count::New(balancer.service_metrics.get()),
            };
            if let (Some(r), Some(ep)) = (record.as_mut(), &endpoint) {
                r.dispatch(Some(ep));
            }
            return Answer::made(respond(reason, caller, balancer.name(), &detail, count, record), reason);
        }
    };
    if let Some(r) = record.as_mut() {
        r.dispatch(Some(&ep));
    }
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let mut guard = Unanswered::start(&ep.http_metrics, caller).cut_by(timed_out);
    let started = Instant::now();
    // Requests the server provably did not process are sent again inside (counted on their own).
    let (mut rsp, pooled) = match ep.send(conn, req, !upgrade).await {
        Ok(sent) => sent,
        Err(e) => {
            let reason = match &e {
                // Our request body failed: the client's (malformed chunked body, aborted upload).
                SendError::Http(h) if h.is_user() => ProxyErrorReason::BadRequest,
                _ => e.reason(),
            };
            if !reason.is_callers() {
                balancer.answered(&ep, started.elapsed(), true);
                ep.record_outcome(true);
                if e.is_connect() {
                    balancer.mark_down(&ep);
                }
            }
            let detail = match (&e, reason) {
                (SendError::Http(h), ProxyErrorReason::InvalidResponse) => {
                    format!("endpoint {}: {}", ep.addr, ep.client.invalid_response(h))
                }
                _ => format!("endpoint {}: {e}", ep.addr),
            };
            let rsp = respond(reason, caller, balancer.name(), &detail, Count::Settle(guard), record);
            return Answer::made(rsp, reason);
        }
    };
    let ttfb = started.elapsed();
    // A failed answer weighs in the endpoint's load estimate as a penalty latency. A gRPC response whose
    // head carries no `grpc-status` tells its outcome in the trailers: the balancer hears it at the end.
    let head_grpc_status = grpc_status(rsp.headers());
    let failed_at_head = is_failure(rsp.status().as_u16(), head_grpc_status);
    let outcome_in_trailers = !failed_at_head && head_grpc_status.is_none() && is_grpc(rsp.headers());
    if !outcome_in_trailers {
        balancer.answered(&ep, ttfb, failed_at_head);
    }
    // The client gets the response in its own protocol version, whatever the endpoint spoke.
    *rsp.version_mut() = version;
    guard.head(rsp.status().as_u16());

    let headers = rsp.headers_mut();
    let peer_error = headers
        .remove(L5D_PROXY_ERROR)
        .and_then(|v| v.to_str().ok().and_then(ProxyErrorReason::from_token))
        .map(peer_label);
    let switching = rsp.status() == StatusCode::SWITCHING_PROTOCOLS;
    let upgrade_to = if switching { rsp.headers().get(header::UPGRADE).cloned() } else { None };
    strip_hop_by_hop(rsp.headers_mut());
    if let Some(r) = record.as_mut() {
        r.response(rsp.status().as_u16(), rsp.headers(), None);
    }
    if let (Some(proto), Some(down)) = (upgrade_to, downstream_upgrade) {
        rsp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        rsp.headers_mut().insert(header::UPGRADE, proto);
        let up = hyper::upgrade::on(&mut rsp);
        tokio::spawn(tunnel_upgrade(down, up, drain.clone()));
    }
    let end = ResponseEnd {
        endpoint: ep.clone(),
        guard,
        status: rsp.status().as_u16(),
        grpc_status: head_grpc_status,
        balancer: outcome_in_trailers.then(|| balancer.clone()),
        error: peer_error,
        ttfb,
        _in_flight: in_flight,
        pooled,
        record,
    };
    Answer { rsp: rsp.map(|body| ProxyBody::upstream(body, Some(Box::new(end)))), proxy_error: None }
}

/// A request waiting for a ready endpoint and a connection: when its caller goes away (or the route's
/// timeout cuts it) meanwhile, it is counted on the service's series, since no endpoint's series saw it.
struct Waiting<'a> {
    balancer: &'a Balancer,
    caller: &'a Caller,
    timed_out: Option<&'a Arc<AtomicBool>>,
    over: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.over {
            Unanswered::start(self.balancer.service_metrics.get(), self.caller).cut_by(self.timed_out).cancel();
        }
    }
}

/// Why no connection to an endpoint could be had: the endpoint tried last, if any.
struct NotConnected {
    reason: ProxyErrorReason,
    endpoint: Option<Arc<Endpoint>>,
    detail: String,
}

/// Picks a ready endpoint and a connection to it, trying other endpoints when connecting fails.
async fn connect(balancer: &Arc<Balancer>, version: Version) -> Result<(Arc<Endpoint>, Conn, InFlight), NotConnected> {
    let mut skip = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let ep = balancer.ready_endpoint(skip).await.map_err(|reason| NotConnected {
            reason,
            endpoint: None,
            detail: "no ready endpoint".to_string(),
        })?;
        // In flight from the moment it is picked: concurrent picks see it while its connection opens.
        let in_flight = ep.start();
        match ep.client.conn(version).await {
            Ok(c) => return Ok((ep, c, in_flight)),
            Err(e) => {
                balancer.mark_down(&ep);
                if attempt < CONNECT_ATTEMPTS && balancer.pick(Some(ep.addr)).is_some() {
                    tracing::info!(endpoint = %ep.addr, error = %e, "connect failed; trying another endpoint");
                    skip = Some(ep.addr);
                    continue;
                }
                let reason = e.reason();
                return Err(NotConnected { reason, detail: format!("endpoint {}: {e}", ep.addr), endpoint: Some(ep) });
            }
        }
    }
}

/// Makes the request fit for the endpoint: origin-form URI and a Host header for HTTP/1, no hop-by-hop
/// headers (but `Connection: upgrade` kept for an upgrade).
fn prepare_request<B>(req: &mut Request<B>, upgrade: bool) {
    let upgrade_to = if upgrade { req.headers().get(header::UPGRADE).cloned() } else { None };
    strip_hop_by_hop(req.headers_mut());
    if let Some(proto) = upgrade_to {
        req.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        req.headers_mut().insert(header::UPGRADE, proto);
    }
    if req.version() != Version::HTTP_2
        && let Some(authority) = req.uri().authority().cloned()
    {
        if !req.headers().contains_key(header::HOST)
            && let Ok(v) = HeaderValue::from_str(authority.as_str())
        {
            req.headers_mut().insert(header::HOST, v);
        }
        let pq = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        if let Ok(uri) = pq.parse() {
            *req.uri_mut() = uri;
        }
    }
}

/// Joins the client's and the endpoint's upgraded connections (WebSocket and other HTTP/1 upgrades).
async fn tunnel_upgrade(down: hyper::upgrade::OnUpgrade, up: hyper::upgrade::OnUpgrade, drain: Drain) {
    let (down, up) = match tokio::try_join!(down, up) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade did not complete");
            return;
        }
    };
    let mut down = hyper_util::rt::TokioIo::new(down);
    let mut up = hyper_util::rt::TokioIo::new(up);
    // Holding `drain` keeps shutdown waiting (up to its grace period) for the tunnel to end.
    if let Err(e) = tokio::io::copy_bidirectional(&mut down, &mut up).await {
        tracing::debug!(error = %e, "upgraded connection ended with an error");
    }
    drop(drain);
}

/// Settles a forwarded response when its body ends: response metrics, breaker, in-flight count, connection
/// reuse. A body the caller dropped before its end is a cancellation, not the endpoint's failure.
struct ResponseEnd {
    endpoint: Arc<Endpoint>,
    guard: Unanswered,
    status: u16,
    grpc_status: Option<u32>,
    /// Set when the balancer is yet to hear how the response went (its outcome is in the trailers).
    balancer: Option<Arc<Balancer>>,
    error: Option<&'static str>,
    ttfb: Duration,
    _in_flight: InFlight,
    pooled: Option<Reusable>,
    record: Option<Record>,
}

impl OnEnd for ResponseEnd {
    fn on_end(self: Box<Self>, end: &BodyEnd<'_>) {
        let complete = end.complete;
        if let Some(r) = self.record {
            r.end(end);
        }
        if end.cancelled {
            self.guard.cancel();
            return;
        }
        let grpc = end.grpc_status.or(self.grpc_status);
        // A peer proxy's error (`peer:no_route`, …) is a failure of the request; the breaker judges the
        // endpoint by the response alone.
        let failed = !complete || is_failure(self.status, grpc);
        self.guard.settle(self.status, grpc, failed || self.error.is_some(), self.error, Some(self.ttfb));
        self.endpoint.record_outcome(failed);
        if let Some(balancer) = &self.balancer {
            balancer.answered(&self.endpoint, self.ttfb, failed);
        }
        if complete && let Some(conn) = self.pooled {
            self.endpoint.client.put_back(conn);
        }
    }
}
