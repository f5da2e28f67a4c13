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
use crate::errors::{is_grpc, rescue};
use crate::http::body::ProxyBody;
use crate::http::client_name::OwnName;
use crate::http::server::serve;
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
            let state = Arc::new(ConnState { peer, fixed, last: Mutex::new(None), drain: drain.clone() });
            let ctx2 = ctx.clone();
            let svc = move |req| handle(ctx2.clone(), state.clone(), req);
            serve(detected.io, p, svc, &ctx.server, drain, &peer.to_string()).await;
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

async fn handle(ctx: Arc<Ctx>, state: Arc<ConnState>, mut req: Request<Incoming>) -> Response<ProxyBody> {
    let grpc = is_grpc(req.headers());
    // The one check per request: does anyone observe requests?
    let tapped = ctx.observers.observing().then(|| {
        let src = Peer { addr: state.peer, meta: ctx.observers.own.workload.clone() };
        Tapped::new(&ctx.observers, ProxyDirection::Outbound, src, &req)
    });
    // A response the proxy makes before the request reaches the logical tier.
    let refuse = |reason: ProxyErrorReason, context: &str, dst: Option<&Target>| {
        let rsp = rescue(reason, grpc, context);
        if let Some(t) = &tapped {
            let dst = dst.map_or_else(|| ctx.observers.own.unknown_dst.clone(), |t| t.tap_dst.clone());
            t.record(dst).respond(&rsp, reason);
        }
        rsp
    };
    // CONNECT must name its destination in authority form (`CONNECT host:port`), nothing else.
    if req.method() == Method::CONNECT && (req.uri().authority().is_none() || req.uri().scheme().is_some()) {
        return refuse(ProxyErrorReason::BadRequest, "CONNECT needs an authority-form target (host:port)", None);
    }
    let authority = match &state.fixed {
        Some(a) => a.as_str(),
        None => match request_authority(&req) {
            Some(a) => a,
            None => return refuse(ProxyErrorReason::BadRequest, "request has no authority (Host)", None),
        },
    };
    let target = match target_for(&ctx, &state, authority).await {
        Ok(t) => t,
        Err(reason) => return refuse(reason, authority, None),
    };
    if target.loops {
        return refuse(ProxyErrorReason::Loop, &target.authority, Some(&target));
    }
    if req.method() == Method::CONNECT {
        if !target.meshed && to_this_host(&target) {
            // Not other proxies' admin or tap listeners, nor any other local port (docs/security.md).
            let why = "CONNECT to a port on this host is allowed for mesh services only";
            return refuse(ProxyErrorReason::Forbidden, why, Some(&target));
        }
        return connect_tunnel(target, req, state.drain.clone()).await;
    }
    // Only a meshed destination's inbound proxy reads who is calling; nobody else gets the header.
    if target.meshed {
        ctx.own_name.stamp(req.headers_mut());
    } else {
        OwnName::clear(req.headers_mut());
    }
    crate::logical::serve(&ctx, &target, req, grpc, &state.drain, tapped).await
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
fn request_authority(req: &Request<Incoming>) -> Option<&str> {
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
async fn connect_tunnel(target: Arc<Target>, mut req: Request<Incoming>, drain: Drain) -> Response<ProxyBody> {
    let balancer = target.balancer.clone();
    let ep = match balancer.ready_endpoint(None).await {
        Ok(ep) => ep,
        Err(reason) => return rescue(reason, false, &target.authority),
    };
    let mut server = match ep.client.connect().await {
        Ok(s) => s,
        Err(e) => {
            balancer.mark_down(&ep);
            let reason = match e {
                crate::client::ConnectError::Timeout(..) => ProxyErrorReason::ConnectTimeout,
                _ => ProxyErrorReason::ConnectError,
            };
            return rescue(reason, false, &e.to_string());
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
