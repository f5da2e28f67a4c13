//! The inbound side: peers' requests to this workload, forwarded to the local app (`--app`).
//! HTTP/1 and HTTP/2 are served as HTTP; anything else, or a silent client, is forwarded as opaque TCP.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::ctx::Ctx;
use crate::detect::{Protocol, detect};
use crate::errors::{Caller, Count, is_grpc, respond};
use crate::forward::forward;
use crate::http::request_body::RequestBody;
use crate::http::server::{EdgeRefusal, OnRefused, serve};
use crate::inbound_routes::InboundRoutes;
use crate::io::Counted;
use crate::shutdown::Drain;
use crate::tap::ClaimCache;
use crate::tap::record::Tapped;
use crate::targets::Target;
use meshlens_api::tap::ProxyDirection;

pub async fn serve_conn(
    ctx: Arc<Ctx>,
    app: Arc<Target>,
    routes: Arc<InboundRoutes>,
    io: Counted<TcpStream>,
    peer: SocketAddr,
    drain: Drain,
) {
    let detected = match detect(io, ctx.config.timeouts.detect).await {
        Ok(d) => d,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "connection failed during protocol detection");
            return;
        }
    };
    match detected.protocol {
        Some(p @ (Protocol::Http1 | Protocol::Http2)) => {
            let app_target = app.clone();
            let drain2 = drain.clone();
            let ctx2 = ctx.clone();
            let claims = Arc::new(ClaimCache::new());
            let svc = move |req: http::Request<hyper::body::Incoming>| {
                let app = app.clone();
                let drain = drain2.clone();
                let caller = Caller::new(peer, is_grpc(req.headers()));
                let route = routes.request(&req, &caller);
                // The one check per request: does anyone observe requests?
                let record = ctx2.observers.observing().then(|| {
                    let src = ctx2.observers.own.inbound_src(peer, req.headers(), &claims);
                    let tapped = Tapped::new(&ctx2.observers, ProxyDirection::Inbound, src, &req);
                    tapped.record(app.tap_dst.clone()).route(route.as_ref().and_then(|r| r.tap_name()))
                });
                async move {
                    let rsp = if req.method() == http::Method::CONNECT {
                        let reason = meshlens_api::ProxyErrorReason::BadRequest;
                        let count = Count::New(app.balancer.service_metrics.get());
                        respond(reason, &caller, "", "CONNECT on the inbound listener", count, record)
                    } else {
                        forward(&app.balancer, req.map(RequestBody::Stream), &caller, &drain, record).await
                    };
                    match route {
                        Some(r) => r.respond(rsp),
                        None => rsp,
                    }
                }
            };
            let on_refused = refused_at_edge(&ctx, &app_target, peer);
            serve(detected.io, p, svc, &ctx.server, drain, &peer.to_string(), Some(on_refused)).await;
        }
        // Not HTTP, or a server-speaks-first protocol (the client sent nothing): opaque TCP to the app.
        Some(Protocol::Tcp) | None => crate::tcp::forward(detected.io, &app.balancer, peer).await,
    }
}

/// Answers a request the server edge refused (malformed or oversize head): counted on the inbound series.
fn refused_at_edge(ctx: &Arc<Ctx>, app: &Arc<Target>, peer: SocketAddr) -> OnRefused {
    let (ctx, app) = (ctx.clone(), app.clone());
    let claims = Arc::new(ClaimCache::new());
    Arc::new(move |refusal: EdgeRefusal| {
        let record = refusal.request.as_ref().filter(|_| ctx.observers.observing()).map(|req| {
            let src = ctx.observers.own.inbound_src(peer, req.headers(), &claims);
            Tapped::new(&ctx.observers, ProxyDirection::Inbound, src, req).record(app.tap_dst.clone())
        });
        let caller = Caller::new(peer, false);
        let count = Count::New(app.balancer.service_metrics.get());
        respond(refusal.reason, &caller, "", refusal.why, count, record)
    })
}
