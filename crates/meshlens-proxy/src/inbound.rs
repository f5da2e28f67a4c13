//! The inbound side: peers' requests to this workload, forwarded to the local app (`--app`).
//! HTTP/1 and HTTP/2 are served as HTTP; anything else, or a silent client, is forwarded as opaque TCP.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;

use crate::ctx::Ctx;
use crate::detect::{Protocol, detect};
use crate::errors::{is_grpc, rescue};
use crate::forward::forward;
use crate::http::request_body::RequestBody;
use crate::http::server::serve;
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
            let drain2 = drain.clone();
            let ctx2 = ctx.clone();
            let claims = Arc::new(ClaimCache::new());
            let svc = move |req: http::Request<hyper::body::Incoming>| {
                let app = app.clone();
                let drain = drain2.clone();
                // The one check per request: does anyone observe requests?
                let record = ctx2.observers.observing().then(|| {
                    let src = ctx2.observers.own.inbound_src(peer, req.headers(), &claims);
                    Tapped::new(&ctx2.observers, ProxyDirection::Inbound, src, &req).record(app.tap_dst.clone())
                });
                let route = routes.request(&req);
                async move {
                    let grpc = is_grpc(req.headers());
                    if req.method() == http::Method::CONNECT {
                        let reason = meshlens_api::ProxyErrorReason::BadRequest;
                        let rsp = rescue(reason, grpc, "CONNECT on the inbound listener");
                        if let Some(r) = record {
                            r.respond(&rsp, reason);
                        }
                        return rsp;
                    }
                    let rsp = forward(&app.balancer, req.map(RequestBody::Stream), grpc, &drain, record).await;
                    match route {
                        Some(r) => r.respond(rsp),
                        None => rsp,
                    }
                }
            };
            serve(detected.io, p, svc, &ctx.server, drain, &peer.to_string()).await;
        }
        // Not HTTP, or a server-speaks-first protocol (the client sent nothing): opaque TCP to the app.
        Some(Protocol::Tcp) | None => crate::tcp::forward(detected.io, &app.balancer, peer).await,
    }
}
