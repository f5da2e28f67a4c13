//! Forwarding one HTTP request to a balancer's endpoint and streaming the response back, with the
//! endpoint's metrics, load estimate and pooled connection settled when the response ends.
//!
//! This is the endpoint tier of the request path (logical → concrete → endpoint); routes and retries sit
//! above [`forward`], identity in the endpoint client below it. Tap and the access log observe each
//! attempt here through its [`Record`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::{HeaderValue, Request, Response, StatusCode, Version, header};
use meshlens_api::ProxyErrorReason;

use crate::balance::{Balancer, Endpoint, InFlight};
use crate::client::Reusable;
use crate::errors::{L5D_PROXY_ERROR, peer_label, rescue};
use crate::http::body::{BodyEnd, OnEnd, ProxyBody, grpc_status};
use crate::http::headers::{is_upgrade, strip_hop_by_hop};
use crate::http::request_body::RequestBody;
use crate::metrics::HttpTargetMetrics;
use crate::shutdown::Drain;
use crate::tap::record::Record;

/// A connection that failed before any byte of the request was written is tried on another endpoint,
/// at most this many times in all.
const CONNECT_ATTEMPTS: usize = 3;

/// Sends `req` to an endpoint of `balancer` and returns the response (or the proxy's error response).
pub async fn forward(
    balancer: &Arc<Balancer>,
    req: Request<RequestBody>,
    grpc: bool,
    drain: &Drain,
    record: Option<Record>,
) -> Response<ProxyBody> {
    forward_attempt(balancer, req, grpc, drain, None, record).await
}

/// [`forward`] for one attempt of a route with a timeout: when the route tier drops this future after
/// setting `timed_out`, the endpoint's metrics count the cut attempt as `504`/`error="timeout"` (and its
/// record, dropped with it, reports the same).
pub async fn forward_attempt(
    balancer: &Arc<Balancer>,
    mut req: Request<RequestBody>,
    grpc: bool,
    drain: &Drain,
    timed_out: Option<&Arc<AtomicBool>>,
    mut record: Option<Record>,
) -> Response<ProxyBody> {
    let version = req.version();
    let upgrade = version == Version::HTTP_11 && is_upgrade(req.headers());
    prepare_request(&mut req, upgrade);
    let mut skip = None;
    let mut attempt = 0;
    let (ep, conn, in_flight) = loop {
        attempt += 1;
        let ep = match balancer.ready_endpoint(skip).await {
            Ok(ep) => ep,
            Err(reason) => {
                let m = balancer.service_metrics.get();
                m.request();
                m.response(status_of(reason, grpc), None, true, Some(reason.as_str()), None);
                let rsp = rescue(reason, grpc, balancer.name());
                if let Some(r) = record {
                    r.respond(&rsp, reason);
                }
                return rsp;
            }
        };
        // In flight from the moment it is picked: concurrent picks see it while its connection opens.
        let in_flight = ep.start();
        match ep.client.conn(req.version()).await {
            Ok(c) => break (ep, c, in_flight),
            Err(e) => {
                balancer.mark_down(&ep);
                if attempt < CONNECT_ATTEMPTS && balancer.pick(Some(ep.addr)).is_some() {
                    tracing::info!(endpoint = %ep.addr, error = %e, "connect failed; trying another endpoint");
                    skip = Some(ep.addr);
                    continue;
                }
                let reason = e.reason();
                ep.http_metrics.request();
                ep.http_metrics.response(status_of(reason, grpc), None, true, Some(reason.as_str()), None);
                let rsp = rescue(reason, grpc, &e.to_string());
                if let Some(mut r) = record {
                    r.dispatch(Some(&ep));
                    r.respond(&rsp, reason);
                }
                return rsp;
            }
        }
    };

    if let Some(r) = record.as_mut() {
        r.dispatch(Some(&ep));
    }
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    ep.http_metrics.request();
    let mut cut = CutAttempt { metrics: ep.http_metrics.clone(), timed_out: timed_out.cloned(), grpc, armed: true };
    let started = Instant::now();
    let result = ep.send(conn, req, !upgrade).await;
    cut.armed = false;
    let (mut rsp, pooled) = match result {
        Ok(sent) => sent,
        Err(e) => {
            let reason = e.reason();
            balancer.answered(&ep, started.elapsed(), true);
            if e.is_connect() {
                balancer.mark_down(&ep);
            }
            ep.http_metrics.response(status_of(reason, grpc), None, true, Some(reason.as_str()), None);
            ep.record_outcome(502, None);
            let detail = format!("endpoint {}: {e}", ep.addr);
            let rsp = rescue(reason, grpc, &detail);
            if let Some(r) = record {
                r.respond(&rsp, reason);
            }
            return rsp;
        }
    };
    let ttfb = started.elapsed();
    balancer.answered(&ep, ttfb, rsp.status().is_server_error());
    // The client gets the response in its own protocol version, whatever the endpoint spoke.
    *rsp.version_mut() = version;

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
        metrics: ep.http_metrics.clone(),
        status: rsp.status().as_u16(),
        grpc_status: grpc_status(rsp.headers()),
        error: peer_error,
        ttfb,
        _in_flight: in_flight,
        pooled,
        record,
    };
    rsp.map(|body| ProxyBody::upstream(body, Some(Box::new(end))))
}

fn status_of(reason: ProxyErrorReason, grpc: bool) -> u16 {
    if grpc { 200 } else { reason.http_status() }
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

/// Counts an attempt that the route's timeout cut before its response arrived.
struct CutAttempt {
    metrics: Arc<HttpTargetMetrics>,
    timed_out: Option<Arc<AtomicBool>>,
    grpc: bool,
    armed: bool,
}

impl Drop for CutAttempt {
    fn drop(&mut self) {
        if self.armed && self.timed_out.as_ref().is_some_and(|t| t.load(Ordering::Relaxed)) {
            let reason = ProxyErrorReason::Timeout;
            let grpc_status = self.grpc.then_some(reason.grpc_status());
            self.metrics.response(status_of(reason, self.grpc), grpc_status, true, Some(reason.as_str()), None);
        }
    }
}

/// Settles a forwarded response when its body ends: response metrics, in-flight count, connection reuse.
struct ResponseEnd {
    endpoint: Arc<Endpoint>,
    metrics: Arc<HttpTargetMetrics>,
    status: u16,
    grpc_status: Option<u32>,
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
        let grpc = end.grpc_status.or(self.grpc_status);
        let failure = self.status >= 500 || grpc.is_some_and(|c| c != 0) || !complete || self.error.is_some();
        self.metrics.response(self.status, grpc, failure, self.error, Some(self.ttfb));
        self.endpoint.record_outcome(if complete { self.status } else { 502 }, grpc);
        if complete && let Some(conn) = self.pooled {
            self.endpoint.client.put_back(conn);
        }
    }
}
