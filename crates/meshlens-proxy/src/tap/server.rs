//! The tap listener: `GET /tap?<filter>` with `Authorization: Bearer <token>` streams NDJSON tap events
//! until the client goes away (its subscription is removed at once) or the proxy drains.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body::{Body, Frame};
use hyper::body::Incoming;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::event::Event;
use super::filter::Filter;
use super::{Observers, SubscriptionGuard, TokenCheck};
use crate::detect::Protocol;
use crate::http::body::ProxyBody;
use crate::http::server::{ServerSettings, serve};
use crate::io::Counted;
use crate::shutdown::Drain;

/// A chunk of the stream holds at most about this many bytes of events.
const MAX_CHUNK: usize = 64 * 1024;
/// After an event arrives, the stream waits this long for more before it writes, so a busy proxy
/// writes a tap chunk per interval rather than one per event (each write is a syscall on its thread).
const LINGER: std::time::Duration = std::time::Duration::from_millis(2);

pub async fn serve_conn(
    observers: Arc<Observers>,
    settings: ServerSettings,
    io: Counted<TcpStream>,
    peer: SocketAddr,
    drain: Drain,
) {
    let d = drain.clone();
    let svc = move |req| {
        let observers = observers.clone();
        let drain = d.clone();
        async move { handle(&observers, req, drain) }
    };
    serve(io, Protocol::Http1, svc, &settings, drain, &peer.to_string(), None).await;
}

fn handle(observers: &Arc<Observers>, req: Request<Incoming>, drain: Drain) -> Response<ProxyBody> {
    if req.uri().path() != "/tap" {
        return error(StatusCode::NOT_FOUND, "not found: the tap listener serves GET /tap only");
    }
    if req.method() != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "tap streams are opened with GET /tap");
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match observers.tokens.check(bearer) {
        TokenCheck::Accepted => {}
        TokenCheck::NoneConfigured => {
            return error(
                StatusCode::FORBIDDEN,
                "tap is disabled: it needs a control plane that issues tap tokens (--control) or --tap-token",
            );
        }
        TokenCheck::Missing => {
            return error(StatusCode::UNAUTHORIZED, "missing tap token: send Authorization: Bearer <token>");
        }
        TokenCheck::Wrong => return error(StatusCode::UNAUTHORIZED, "invalid tap token"),
    }
    let filter = match Filter::parse(req.uri().query().unwrap_or("")) {
        Ok(f) => f,
        Err(e) => return error(StatusCode::BAD_REQUEST, &format!("invalid tap filter: {e}")),
    };
    let headers = filter.headers;
    let (guard, rx) = observers.subscribe(filter);
    let drained = Box::pin(async move { drain.signaled().await });
    let body = TapBody { rx, headers, _guard: guard, drained, draining: false, linger: None, buf: Vec::new() };
    let mut rsp = Response::new(ProxyBody::stream(body));
    rsp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/x-ndjson"));
    rsp.headers_mut().insert(header::CACHE_CONTROL, http::HeaderValue::from_static("no-cache"));
    rsp
}

fn error(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = serde_json::json!({ "error": message }).to_string() + "\n";
    let mut rsp = Response::new(ProxyBody::full(body));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    rsp
}

/// The NDJSON stream of one subscription: the events that arrived within [`LINGER`] of the first are
/// written as one chunk. When the proxy drains, the events already buffered are written, then the
/// stream ends.
struct TapBody {
    rx: mpsc::Receiver<Event>,
    headers: bool,
    _guard: SubscriptionGuard,
    drained: Pin<Box<dyn Future<Output = ()> + Send>>,
    draining: bool,
    linger: Option<Pin<Box<tokio::time::Sleep>>>,
    buf: Vec<u8>,
}

impl TapBody {
    fn write_waiting(&mut self) {
        while self.buf.len() < MAX_CHUNK
            && let Ok(e) = self.rx.try_recv()
        {
            e.write_json(&mut self.buf, self.headers);
        }
    }

    fn chunk(&mut self) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.linger = None;
        let out = std::mem::take(&mut self.buf);
        Poll::Ready((!out.is_empty()).then(|| Ok(Frame::data(Bytes::from(out)))))
    }
}

impl Body for TapBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if !this.draining && this.drained.as_mut().poll(cx).is_ready() {
            this.draining = true;
        }
        if this.draining {
            this.write_waiting();
            return this.chunk();
        }
        if this.linger.is_none() {
            match this.rx.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return this.chunk(),
                Poll::Ready(Some(e)) => e.write_json(&mut this.buf, this.headers),
            }
            this.linger = Some(Box::pin(tokio::time::sleep(LINGER)));
        }
        this.write_waiting();
        if this.buf.len() < MAX_CHUNK && this.linger.as_mut().is_some_and(|l| l.as_mut().poll(cx).is_pending()) {
            return Poll::Pending;
        }
        this.write_waiting();
        this.chunk()
    }
}
