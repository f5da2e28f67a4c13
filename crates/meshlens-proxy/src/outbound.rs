//! The outbound side: the app's calls to other services, arriving at the outbound listener (as an HTTP
//! proxy, by Host/`:authority`, or via CONNECT) or at a local upstream listener bound to one service.
//!
//! Only loopback peers are served: the outbound listener must never become an open proxy.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use meshlens_api::ProxyErrorReason;
use tokio::net::TcpStream;

use crate::ctx::Ctx;
use crate::detect::{Protocol, detect};
use crate::errors::{Caller, Count, is_grpc, respond};
use crate::http::body::ProxyBody;
use crate::http::client_name::OwnName;
use crate::http::server::{EdgeRefusal, OnRefused, serve};
use crate::io::Counted;
use crate::shutdown::Drain;
use crate::tap::event::Peer;
use crate::tap::record::Tapped;
use crate::targets::Target;
use meshlens_api::tap::ProxyDirection;

/// Per-connection state: where the connection goes (for upstream listeners) and the last target used,
/// so a keep-alive connection does not resolve its authority again on every request.
struct ConnState {
    peer: SocketAddr,
    fixed: Option<String>,
    last: Mutex<Option<(String, u64, Arc<Target>)>>,
    drain: Drain,
}

/// Serves one connection accepted on the outbound listener (`fixed = None`) or an upstream listener.
pub async fn serve_conn(ctx: Arc<Ctx>, io: Counted<TcpStream>, peer: SocketAddr, fixed: Option<String>, drain: Drain) {
    if !peer.ip().is_loopback() {
        tracing::warn!(%peer, "refused a connection to the outbound listener from a non-loopback peer");
        return;
    }
    // A fixed destination that is opaque skips detection altogether.
    if let Some(authority) = &fixed
        && let Ok(target) = ctx.targets.resolve(&ctx, authority).await
        && target.opaque
    {
        crate::tcp::forward(io, &target.balancer, peer).await;
        return;
    }
    let detected = match detect(io, ctx.config.timeouts.detect).await {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "connection failed during protocol detection");
            return;
        }
    };
    match (detected.protocol, &fixed) {
        (Some(p @ (Protocol::Http1 | Protocol::Http2)), _) => {
            let on_refused = refused_at_edge(&ctx, peer, fixed.clone());
            let state = Arc::new(ConnState { peer, fixed, last: Mutex::new(None), drain: drain.clone() });
            let ctx2 = ctx.clone();
            let svc = move |req| handle(ctx2.clone(), state.clone(), req);
            serve(detected.io, p, svc, &ctx.server, drain, &peer.to_string(), Some(on_refused)).await;
        }
        (_, Some(authority)) => match ctx.targets.resolve(&ctx, authority).await {
            Ok(target) => crate::tcp::forward(detected.io, &target.balancer, peer).await,
            Err(reason) => {
                tracing::warn!(%peer, authority, reason = reason.as_str(), "no destination for TCP")
            }
        },
        (_, None) => {
            tracing::warn!(%peer, "outbound connection is not HTTP and has no known destination; closing it");
        }
    }
}

/// Answers a request the server edge refused (malformed or oversize head) like any refused request.
fn refused_at_edge(ctx: &Arc<Ctx>, peer: SocketAddr, fixed: Option<String>) -> OnRefused {
    let ctx = ctx.clone();
    Arc::new(move |refusal: EdgeRefusal| {
        let caller = Caller::new(peer, false);
        let req = refusal.request.as_ref();
        let tapped = req.filter(|_| ctx.observers.observing()).map(|req| tapped(&ctx, peer, req));
        let asked = fixed.as_deref().or_else(|| req.and_then(request_authority));
        refuse(&ctx, &caller, asked, refusal.reason, refusal.why, tapped.as_ref(), None)
    })
}

/// Captures a request for tap (when someone observes requests).
fn tapped<B>(ctx: &Ctx, peer: SocketAddr, req: &Request<B>) -> Tapped {
    let src = Peer { addr: peer, meta: ctx.observers.own.workload.clone() };
    Tapped::new(&ctx.observers, ProxyDirection::Outbound, src, req)
}

/// A response the proxy makes before choosing an endpoint: counted under the authority asked for.
fn refuse(
    ctx: &Ctx,
    caller: &Caller,
    asked: Option<&str>,
    reason: ProxyErrorReason,
    context: &str,
    tapped: Option<&Tapped>,
    dst: Option<&Target>,
) -> Response<ProxyBody> {
    let record =
        tapped.map(|t| t.record(dst.map_or_else(|| ctx.observers.own.unknown_dst.clone(), |t| t.tap_dst.clone())));
    let domain = ctx.discovery.load().snapshot.cluster_domain.clone();
    let series = ctx.refused.series(asked, &ctx.config.namespace, &domain);
    respond(reason, caller, asked.unwrap_or(""), context, Count::New(&series), record)
}

async fn handle(ctx: Arc<Ctx>, state: Arc<ConnState>, mut req: Request<Incoming>) -> Response<ProxyBody> {
    let caller = Caller::new(state.peer, is_grpc(req.headers()));
    // The one check per request: does anyone observe requests?
    let tapped = ctx.observers.observing().then(|| tapped(&ctx, state.peer, &req));
    // A response made before an endpoint is chosen names (and is counted under) the authority asked for.
    let refuse = |reason: ProxyErrorReason, context: &str, asked: Option<&str>, dst: Option<&Target>| {
        refuse(&ctx, &caller, asked, reason, context, tapped.as_ref(), dst)
    };
    // CONNECT must name its destination in authority form (`CONNECT host:port`), nothing else.
    if req.method() == Method::CONNECT && (req.uri().authority().is_none() || req.uri().scheme().is_some()) {
        let asked = state.fixed.as_deref().or_else(|| request_authority(&req));
        return refuse(ProxyErrorReason::BadRequest, "CONNECT needs an authority-form target (host:port)", asked, None);
    }
    let authority = match &state.fixed {
        Some(a) => a.as_str(),
        None => match request_authority(&req) {
            Some(a) => a,
            None => return refuse(ProxyErrorReason::BadRequest, "request has no authority (Host)", None, None),
        },
    };
    let target = match target_for(&ctx, &state, authority).await {
        Ok(t) => t,
        Err(reason) => return refuse(reason, "the authority resolves to no destination", Some(authority), None),
    };
    if target.loops {
        let why = "an endpoint is this proxy's own outbound listener";
        return refuse(ProxyErrorReason::Loop, why, Some(authority), Some(&target));
    }
    if req.method() == Method::CONNECT {
        if !target.meshed && to_this_host(&target) {
            // Not other proxies' admin or tap listeners, nor any other local port (docs/security.md).
            let why = "CONNECT to a port on this host is allowed for mesh services only";
            return refuse(ProxyErrorReason::Forbidden, why, Some(authority), Some(&target));
        }
        return connect_tunnel(target, req, &caller, state.drain.clone()).await;
    }
    // Only a meshed destination's inbound proxy reads who is calling; nobody else gets the header.
    if target.meshed {
        ctx.own_name.stamp(req.headers_mut());
    } else {
        OwnName::clear(req.headers_mut());
    }
    crate::logical::serve(&ctx, &target, req, &caller, &state.drain, tapped).await
}

/// Does an unmeshed destination lead to this host (a loopback or wildcard address, `localhost`)?
fn to_this_host(target: &Target) -> bool {
    let host = target.authority.rsplit_once(':').map_or(target.authority.as_str(), |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
        || target.balancer.view().iter().any(|e| e.address.ip().is_loopback() || e.address.ip().is_unspecified())
}

/// The authority a request names: absolute-form URI or `:authority`, else the Host header.
fn request_authority<B>(req: &Request<B>) -> Option<&str> {
    if let Some(a) = req.uri().authority() {
        return Some(a.as_str());
    }
    req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).filter(|h| !h.is_empty())
}

async fn target_for(ctx: &Ctx, state: &ConnState, authority: &str) -> Result<Arc<Target>, ProxyErrorReason> {
    let version = ctx.discovery.version();
    if let Some((a, v, t)) = state.last.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
        && a == authority
        && *v == version
        && t.is_current()
    {
        return Ok(t.clone());
    }
    let target = ctx.targets.resolve(ctx, authority).await?;
    *state.last.lock().unwrap_or_else(|e| e.into_inner()) = Some((authority.to_string(), version, target.clone()));
    Ok(target)
}

/// `CONNECT host:port`: answers 200 once the destination accepts, then joins the two connections.
async fn connect_tunnel(
    target: Arc<Target>,
    mut req: Request<Incoming>,
    caller: &Caller,
    drain: Drain,
) -> Response<ProxyBody> {
    let balancer = target.balancer.clone();
    let ep = match balancer.ready_endpoint(None).await {
        Ok(ep) => ep,
        Err(reason) => {
            let count = Count::New(balancer.service_metrics.get());
            return respond(reason, caller, &target.authority, "CONNECT: no ready endpoint", count, None);
        }
    };
    let mut server = match ep.client.connect().await {
        Ok(s) => s,
        Err(e) => {
            balancer.mark_down(&ep);
            let reason = match e {
                crate::client::ConnectError::Timeout(..) => ProxyErrorReason::ConnectTimeout,
                _ => ProxyErrorReason::ConnectError,
            };
            let detail = format!("CONNECT: endpoint {}: {e}", ep.addr);
            return respond(reason, caller, &target.authority, &detail, Count::New(&ep.http_metrics), None);
        }
    };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let _in_flight = ep.start();
        match upgrade.await {
            Ok(upgraded) => {
                let mut client = hyper_util::rt::TokioIo::new(upgraded);
                if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut server).await {
                    tracing::debug!(error = %e, "CONNECT tunnel ended with an error");
                }
            }
            Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
        }
        drop(drain);
    });
    let mut rsp = Response::new(ProxyBody::empty());
    *rsp.status_mut() = StatusCode::OK;
    rsp
}
