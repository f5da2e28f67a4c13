//! Handlers that misbehave as real instances do: failing a share of requests fast (or only in gRPC
//! trailers), and stalling then resuming (like SIGSTOP and SIGCONT). Connection-level faults (GOAWAY, closes, refused streams) are
//! [`ConnFaults`](crate::backend::ConnFaults) of [`HttpBackend::start_faulty`](crate::HttpBackend::start_faulty).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Incoming;
use tokio::sync::watch;

use crate::backend::{BoxBody, HandlerFuture, full};
use crate::latency::Uniform;

/// Answers `500` at once on a `share` of requests (drawn from `seed`), and runs `inner` on the others:
/// an instance whose failures look faster than its successes.
pub fn failing_fast<H, Fut>(
    share: f64,
    seed: u64,
    inner: H,
) -> impl Fn(Request<Incoming>) -> HandlerFuture + Clone + Send + Sync + 'static
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<BoxBody>> + Send + 'static,
{
    let random = Arc::new(Uniform::new(seed));
    move |req: Request<Incoming>| {
        if random.next() < share {
            let mut rsp = Response::new(full("failed on purpose"));
            *rsp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            return Box::pin(async move { rsp }) as HandlerFuture;
        }
        let fut = inner(req);
        Box::pin(fut)
    }
}

/// A gRPC-style answer after `delay`: `200`, `content-type: application/grpc`, one empty message, and
/// `grpc-status` only in the trailers: `14` (UNAVAILABLE) on a `share` of requests (drawn from `seed`),
/// `0` on the others. The head alone does not tell a failure from a success.
pub fn failing_in_trailers(
    share: f64,
    seed: u64,
    delay: Duration,
) -> impl Fn(Request<Incoming>) -> HandlerFuture + Clone + Send + Sync + 'static {
    let random = Arc::new(Uniform::new(seed));
    move |_req: Request<Incoming>| {
        let code = if random.next() < share { "14" } else { "0" };
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from_static(code));
            let frames =
                [Ok::<_, crate::BoxError>(Frame::data(Bytes::from_static(&[0; 5]))), Ok(Frame::trailers(trailers))];
            let body = StreamBody::new(futures_util::stream::iter(frames));
            let mut rsp = Response::new(BodyExt::boxed(body));
            rsp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            rsp
        }) as HandlerFuture
    }
}

/// A switch that stalls every handler wrapped with [`Stall::wrap`]: while stalled, requests are accepted
/// but not answered; on [`Stall::resume`] they all proceed.
#[derive(Clone, Debug)]
pub struct Stall(Arc<watch::Sender<bool>>);

impl Default for Stall {
    fn default() -> Self {
        Stall(Arc::new(watch::channel(false).0))
    }
}

impl Stall {
    pub fn stall(&self) {
        self.0.send_replace(true);
    }

    pub fn resume(&self) {
        self.0.send_replace(false);
    }

    /// `inner`, waiting first while the switch is stalled.
    pub fn wrap<H, Fut>(&self, inner: H) -> impl Fn(Request<Incoming>) -> HandlerFuture + Clone + Send + Sync + 'static
    where
        H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Response<BoxBody>> + Send + 'static,
    {
        let switch = self.0.clone();
        move |req: Request<Incoming>| {
            let mut stalled = switch.subscribe();
            let inner = inner.clone();
            Box::pin(async move {
                let _ = stalled.wait_for(|s| !*s).await;
                inner(req).await
            })
        }
    }
}
