//! The demo app's HTTP/1.1 server (hyper), with one twist: a response may be replaced by raw bytes
//! (an invalid response no HTTP library would write), after which the connection is closed.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use super::app::{App, Decision};
use super::client::{CallResult, Downstream, Outcome};

/// Serves `app` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, app: Arc<App>, downstream: Downstream) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (app, downstream) = (app.clone(), downstream.clone());
        tokio::spawn(async move {
            let raw = Arc::new(Mutex::new(None::<Bytes>));
            let io = TokioIo::new(Hijack { io: stream, raw: raw.clone(), state: State::Normal });
            let svc = service_fn(move |req| handle(app.clone(), downstream.clone(), raw.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new().keep_alive(true).serve_connection(io, svc).await;
        });
    }
}

type Body = Full<Bytes>;

async fn handle(
    app: Arc<App>,
    downstream: Downstream,
    raw: Arc<Mutex<Option<Bytes>>>,
    req: Request<Incoming>,
) -> Result<Response<Body>, std::convert::Infallible> {
    let (parts, body) = req.into_parts();
    // Read (and drop) the request body first, as a real service would.
    let _ = body.collect().await;
    let path = parts.uri.path().to_owned();
    let Some((route, captures)) = app.route(&parts.method, &path) else {
        let body = json!({"error": "no route", "method": parts.method.as_str(), "path": path, "service": app.name});
        return Ok(json_response(404, &body, None));
    };
    let decision = app.decide(route);
    respond(&app, &downstream, &raw, decision, &parts.method, &path, &captures).await
}

async fn respond(
    app: &App,
    downstream: &Downstream,
    raw: &Mutex<Option<Bytes>>,
    d: Decision,
    method: &http::Method,
    path: &str,
    captures: &[(String, String)],
) -> Result<Response<Body>, std::convert::Infallible> {
    let r = &app.routes[d.route];
    tokio::time::sleep(d.latency).await;
    if let Some(kind) = d.invalid {
        *raw.lock().unwrap_or_else(PoisonError::into_inner) = Some(Bytes::from_static(kind.response()));
        // Whatever hyper writes now is swallowed; the raw bytes go out instead, then the connection closes.
        let mut rsp = Response::new(Full::new(Bytes::new()));
        rsp.headers_mut().insert(http::header::CONNECTION, http::HeaderValue::from_static("close"));
        return Ok(rsp);
    }
    let mut calls: Vec<CallResult> = Vec::new();
    if d.make_calls && !r.calls.is_empty() {
        let one = |c| call_one(app, downstream, c, captures);
        if r.parallel {
            calls = futures_util::future::join_all(r.calls.iter().map(one)).await;
        } else {
            for c in &r.calls {
                let result = one(c).await;
                let failed = !result.ok();
                calls.push(result);
                if failed {
                    break;
                }
            }
        }
    }
    let calls_json: Vec<_> = calls
        .iter()
        .map(|c| {
            let mut v = json!({"service": c.service, "ms": c.elapsed.as_millis() as u64});
            match &c.outcome {
                Outcome::Status(s) => v["status"] = json!(s),
                Outcome::Timeout => v["error"] = json!("timeout"),
                Outcome::Error(e) => v["error"] = json!(e),
            }
            if let Some(p) = &c.proxy_error {
                v["proxyError"] = json!(p);
            }
            v
        })
        .collect();
    if let Some(failed) = calls.iter().find(|c| !c.ok()) {
        // A failed call fails this request: 504 when our own client timed out, else 502.
        let status = if failed.outcome == Outcome::Timeout { 504 } else { 502 };
        let body = json!({
            "error": format!("call to {} failed", failed.service),
            "service": app.name, "instance": app.instance, "calls": calls_json,
        });
        return Ok(json_response(status, &body, None));
    }
    let body = match &d.body {
        Some(b) => Bytes::from(b.clone()),
        None => {
            let v = json!({
                "service": app.name, "instance": app.instance, "route": r.name,
                "method": method.as_str(), "path": path, "calls": calls_json,
            });
            Bytes::from(v.to_string())
        }
    };
    Ok(json_response(d.status, &serde_json::Value::Null, Some(body)))
}

async fn call_one(
    app: &App,
    downstream: &Downstream,
    c: &super::app::CallSpec,
    captures: &[(String, String)],
) -> CallResult {
    let path = app.fill(&c.path, captures);
    let body = c.body.as_deref().map(|b| app.fill(b, captures));
    downstream.call(&c.service, c.method.clone(), &path, body.as_deref(), c.via, c.timeout).await
}

fn json_response(status: u16, body: &serde_json::Value, raw: Option<Bytes>) -> Response<Body> {
    let bytes = raw.unwrap_or_else(|| Bytes::from(body.to_string()));
    let mut rsp = Response::new(Full::new(bytes));
    *rsp.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    rsp.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    rsp
}

/// A connection whose next write may be replaced by raw bytes, after which writes are swallowed.
struct Hijack {
    io: TcpStream,
    raw: Arc<Mutex<Option<Bytes>>>,
    state: State,
}

enum State {
    Normal,
    Writing(Bytes),
    Swallow,
}

impl AsyncRead for Hijack {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Hijack {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Normal => match this.raw.lock().unwrap_or_else(PoisonError::into_inner).take() {
                    Some(raw) => this.state = State::Writing(raw),
                    None => return Pin::new(&mut this.io).poll_write(cx, buf),
                },
                State::Writing(raw) => {
                    if raw.is_empty() {
                        this.state = State::Swallow;
                        continue;
                    }
                    let n = ready!(Pin::new(&mut this.io).poll_write(cx, raw))?;
                    raw.advance(n);
                }
                State::Swallow => return Poll::Ready(Ok(buf.len())),
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
