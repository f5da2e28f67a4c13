//! Handlers that misbehave as real instances do: failing a share of requests fast, and stalling then
//! resuming (like SIGSTOP and SIGCONT). Connection-level faults (GOAWAY, closes, refused streams) are
//! [`ConnFaults`](crate::backend::ConnFaults) of [`HttpBackend::start_faulty`](crate::HttpBackend::start_faulty).

use std::future::Future;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
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
