//! The admin listener: `/metrics`, `/live`, `/ready`, `/config`, `/log-level`, `/endpoints`, `/logs`.
//! Changes (`PUT /log-level`) need the admin token (`Authorization: Bearer`) and a loopback peer.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use meshlens_api::balancer::{BalancerState, ProxyBalancers};
use serde::Serialize;
use tokio::net::TcpStream;

use crate::app::Listen;
use crate::ctx::Ctx;
use crate::detect::Protocol;
use crate::http::body::ProxyBody;
use crate::http::server::serve;
use crate::io::Counted;
use crate::log::LogLevel;
use crate::shutdown::Drain;

pub struct Admin {
    pub ctx: Arc<Ctx>,
    pub listen: Listen,
    pub log: Arc<dyn LogLevel>,
    /// False until the proxy has discovery to route with (the first control-plane snapshot).
    pub ready: Arc<std::sync::atomic::AtomicBool>,
}

pub async fn serve_conn(admin: Arc<Admin>, io: Counted<TcpStream>, peer: SocketAddr, drain: Drain) {
    let settings = admin.ctx.server.clone();
    let svc = move |req| handle(admin.clone(), peer, req);
    serve(io, Protocol::Http1, svc, &settings, drain, &peer.to_string(), None).await;
}

async fn handle(admin: Arc<Admin>, peer: SocketAddr, req: Request<Incoming>) -> Response<ProxyBody> {
    let path = req.uri().path().to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "/metrics") => {
            let mut out = String::with_capacity(16 * 1024);
            admin.ctx.registry.encode(&mut out);
            text(StatusCode::OK, crate::metrics::CONTENT_TYPE, out)
        }
        (Method::GET, "/live") => text(StatusCode::OK, "text/plain", "live\n".into()),
        (Method::GET, "/ready") => {
            if admin.ready.load(std::sync::atomic::Ordering::Relaxed) {
                text(StatusCode::OK, "text/plain", "ready\n".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "not ready: no discovery from the control plane yet\n".into(),
                )
            }
        }
        (Method::GET, "/config") => {
            let discovery = admin.ctx.discovery.load();
            json(&ConfigView { config: &admin.ctx.config, listen: &admin.listen, discovery: &discovery.snapshot })
        }
        (Method::GET, "/endpoints") => json(&endpoints(&admin.ctx)),
        (Method::GET, "/logs") => logs(&admin, req.uri().query()),
        (Method::GET, "/log-level") => text(StatusCode::OK, "text/plain", format!("{}\n", admin.log.get())),
        (Method::PUT, "/log-level") => {
            if let Err(why) = authorized(&admin.ctx.config, req.headers()) {
                let mut rsp = text(StatusCode::UNAUTHORIZED, "text/plain", why.into());
                rsp.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
                return rsp;
            }
            if !peer.ip().is_loopback() {
                return text(
                    StatusCode::FORBIDDEN,
                    "text/plain",
                    "log level changes are accepted from loopback only\n".into(),
                );
            }
            let body = match Limited::new(req.into_body(), 4096).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    return text(StatusCode::PAYLOAD_TOO_LARGE, "text/plain", "log level too long\n".into());
                }
            };
            let filter = String::from_utf8_lossy(&body).trim().to_string();
            match admin.log.set(&filter) {
                Ok(()) => {
                    tracing::info!(filter, "log level changed");
                    text(StatusCode::OK, "text/plain", format!("{filter}\n"))
                }
                Err(e) => text(StatusCode::BAD_REQUEST, "text/plain", format!("{e}\n")),
            }
        }
        (_, "/metrics" | "/live" | "/ready" | "/config" | "/endpoints" | "/logs" | "/log-level") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "text/plain", "method not allowed\n".into())
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found; try /metrics /live /ready /config /endpoints /logs /log-level\n".into(),
        ),
    }
}

/// Mutating endpoints need `Authorization: Bearer <admin token>`; why not (a 401) otherwise.
fn authorized(config: &crate::config::Config, headers: &http::HeaderMap) -> Result<(), &'static str> {
    let Some(expected) = &config.admin_token else {
        return Err("changes are off: this proxy has no admin token (--admin-token-file)\n");
    };
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let same = sent.is_some_and(|s| {
        s.len() == expected.len() && s.bytes().zip(expected.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    if same { Ok(()) } else { Err("missing or wrong admin token: send Authorization: Bearer <admin token>\n") }
}

#[derive(Serialize)]
struct ConfigView<'a> {
    #[serde(flatten)]
    config: &'a crate::config::Config,
    listen: &'a Listen,
    /// The discovery state in force: services, endpoints, profiles and splits, with its version.
    discovery: &'a meshlens_api::Snapshot,
}

fn endpoints(ctx: &Ctx) -> ProxyBalancers {
    let destinations = ctx
        .targets
        .all()
        .into_iter()
        .map(|t| BalancerState {
            authority: t.authority.clone(),
            leaf: t.leaf.clone(),
            meshed: t.meshed,
            opaque: t.opaque,
            failfast: t.balancer.in_failfast(),
            queued: t.balancer.queued() as u64,
            endpoints: t.balancer.view(),
        })
        .collect();
    ProxyBalancers { destinations }
}

/// `GET /logs?since=SEQ&level=warn|error`: the recent WARN/ERROR events after `since`.
fn logs(admin: &Admin, query: Option<&str>) -> Response<ProxyBody> {
    let mut since = 0;
    let mut level = tracing::Level::WARN;
    for (key, value) in
        query.unwrap_or("").split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, "")))
    {
        match key {
            "since" => match value.parse() {
                Ok(n) => since = n,
                Err(_) => return bad_request(&format!("since must be a sequence number, not '{value}'")),
            },
            "level" => match value.to_ascii_lowercase().as_str() {
                "warn" | "warning" => level = tracing::Level::WARN,
                "error" => level = tracing::Level::ERROR,
                _ => return bad_request(&format!("level must be warn or error, not '{value}'")),
            },
            _ => return bad_request(&format!("unknown parameter '{key}'; use since and level")),
        }
    }
    json(&admin.log.events().page(since, level))
}

fn bad_request(reason: &str) -> Response<ProxyBody> {
    let mut body = serde_json::json!({ "error": reason }).to_string();
    body.push('\n');
    text(StatusCode::BAD_REQUEST, "application/json", body)
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<ProxyBody> {
    let mut rsp = Response::new(ProxyBody::full(Bytes::from(body)));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    rsp
}

fn json<T: Serialize>(value: &T) -> Response<ProxyBody> {
    match serde_json::to_string_pretty(value) {
        Ok(mut s) => {
            s.push('\n');
            text(StatusCode::OK, "application/json", s)
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, "text/plain", format!("{e}\n")),
    }
}
