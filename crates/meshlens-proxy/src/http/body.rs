//! The response body the proxy serves: the upstream's body streamed through untouched, or an empty body
//! for proxy-made responses. It observes the end of the stream (and gRPC trailers) to finish the
//! response's bookkeeping: metrics, the endpoint's in-flight count, and the pooled connection.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// Bookkeeping run exactly once when a response ends: cleanly (`complete`) or not (dropped, errored).
pub trait OnEnd: Send + 'static {
    /// `grpc_status` is the status from the trailers, when the body carried one.
    fn on_end(self: Box<Self>, grpc_status: Option<u32>, complete: bool);
}

pub struct ProxyBody {
    inner: Option<Incoming>,
    /// A body the proxy made itself (admin pages, error details).
    full: Option<Bytes>,
    /// The endpoint tier's bookkeeping (metrics, pool), then the route tier's (effective metrics).
    on_end: Option<Box<dyn OnEnd>>,
    on_end_outer: Option<Box<dyn OnEnd>>,
}

impl ProxyBody {
    pub fn empty() -> ProxyBody {
        ProxyBody { inner: None, full: None, on_end: None, on_end_outer: None }
    }

    pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
        let bytes = bytes.into();
        ProxyBody { inner: None, full: (!bytes.is_empty()).then_some(bytes), on_end: None, on_end_outer: None }
    }

    pub fn upstream(inner: Incoming, on_end: Option<Box<dyn OnEnd>>) -> ProxyBody {
        ProxyBody { inner: Some(inner), full: None, on_end, on_end_outer: None }
    }

    /// Adds bookkeeping to run after the existing one when the response ends (one outer hook).
    pub fn on_end(mut self, hook: Box<dyn OnEnd>) -> ProxyBody {
        debug_assert!(self.on_end_outer.is_none(), "one outer end hook per response");
        self.on_end_outer = Some(hook);
        self
    }

    fn finish(&mut self, grpc_status: Option<u32>, complete: bool) {
        if let Some(f) = self.on_end.take() {
            f.on_end(grpc_status, complete);
        }
        if let Some(f) = self.on_end_outer.take() {
            f.on_end(grpc_status, complete);
        }
    }
}

/// Reads `grpc-status` from trailers or trailers-only headers.
pub fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers.get("grpc-status")?.to_str().ok()?.trim().parse().ok()
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            if let Some(bytes) = this.full.take() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            this.finish(None, true);
            return Poll::Ready(None);
        };
        let frame = ready!(Pin::new(inner).poll_frame(cx));
        match &frame {
            None => this.finish(None, true),
            Some(Ok(f)) => {
                if let Some(trailers) = f.trailers_ref() {
                    let status = grpc_status(trailers);
                    // Trailers are the last frame; hyper reports the end on the next poll, but the response is done.
                    this.finish(status, true);
                }
            }
            Some(Err(_)) => this.finish(None, false),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Some(b) => b.is_end_stream(),
            None => self.full.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Some(b) => b.size_hint(),
            None => SizeHint::with_exact(self.full.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        let complete = self.inner.as_ref().is_none_or(|b| b.is_end_stream());
        self.finish(None, complete);
    }
}
