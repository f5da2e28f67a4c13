//! The response body the proxy serves: the upstream's body streamed through untouched, an empty body
//! for proxy-made responses, or a stream the proxy produces (tap). It observes the end of the stream
//! (bytes, trailers, gRPC status) to finish the response's bookkeeping: metrics, the endpoint's in-flight
//! count, the pooled connection, tap and the access log.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// How a response body ended.
pub struct BodyEnd<'a> {
    /// The status from the trailers, when the body carried one.
    pub grpc_status: Option<u32>,
    /// Ended cleanly (not dropped or errored).
    pub complete: bool,
    /// Data bytes sent to the client.
    pub bytes: u64,
    /// The proxy itself dropped the response unread (a failed attempt it retries): not a stream error.
    pub discarded: bool,
    /// The caller went away (closed, reset) before the response was complete.
    pub cancelled: bool,
    pub trailers: Option<&'a HeaderMap>,
}

/// Bookkeeping run exactly once when a response ends: cleanly (`complete`) or not (dropped, errored).
pub trait OnEnd: Send + 'static {
    fn on_end(self: Box<Self>, end: &BodyEnd<'_>);
}

/// A body the proxy produces as it goes (a tap stream).
pub type StreamBody = Pin<Box<dyn Body<Data = Bytes, Error = hyper::Error> + Send>>;

pub struct ProxyBody {
    inner: Option<Incoming>,
    stream: Option<StreamBody>,
    bytes: u64,
    discarded: bool,
    /// A body the proxy made itself (admin pages, error details).
    full: Option<Bytes>,
    /// The endpoint tier's bookkeeping (metrics, pool), then the route tier's (effective metrics).
    on_end: Option<Box<dyn OnEnd>>,
    on_end_outer: Option<Box<dyn OnEnd>>,
}

impl ProxyBody {
    pub fn empty() -> ProxyBody {
        ProxyBody {
            inner: None,
            stream: None,
            bytes: 0,
            discarded: false,
            full: None,
            on_end: None,
            on_end_outer: None,
        }
    }

    pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
        let bytes = bytes.into();
        let mut body = ProxyBody::empty();
        body.full = (!bytes.is_empty()).then_some(bytes);
        body
    }

    pub fn upstream(inner: Incoming, on_end: Option<Box<dyn OnEnd>>) -> ProxyBody {
        let mut body = ProxyBody::empty();
        body.inner = Some(inner);
        body.on_end = on_end;
        body
    }

    pub fn stream(body: impl Body<Data = Bytes, Error = hyper::Error> + Send + 'static) -> ProxyBody {
        let mut proxy_body = ProxyBody::empty();
        proxy_body.stream = Some(Box::pin(body));
        proxy_body
    }

    /// Drops a response the proxy will not deliver (an attempt it retries); tap does not call it a reset.
    pub fn discard(mut self) {
        self.discarded = true;
    }

    /// Adds bookkeeping to run after the existing one when the response ends (one outer hook).
    pub fn on_end(mut self, hook: Box<dyn OnEnd>) -> ProxyBody {
        debug_assert!(self.on_end_outer.is_none(), "one outer end hook per response");
        self.on_end_outer = Some(hook);
        self
    }

    fn finish(&mut self, grpc_status: Option<u32>, complete: bool, cancelled: bool, trailers: Option<&HeaderMap>) {
        if self.on_end.is_none() && self.on_end_outer.is_none() {
            return;
        }
        let (bytes, discarded) = (self.bytes, self.discarded);
        let end = BodyEnd { grpc_status, complete, bytes, discarded, cancelled: cancelled && !discarded, trailers };
        if let Some(f) = self.on_end.take() {
            f.on_end(&end);
        }
        if let Some(f) = self.on_end_outer.take() {
            f.on_end(&end);
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
        if let Some(stream) = this.stream.as_mut() {
            return stream.as_mut().poll_frame(cx);
        }
        let Some(inner) = this.inner.as_mut() else {
            if let Some(bytes) = this.full.take() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            this.finish(None, true, false, None);
            return Poll::Ready(None);
        };
        let frame = ready!(Pin::new(inner).poll_frame(cx));
        match &frame {
            None => this.finish(None, true, false, None),
            Some(Ok(f)) => {
                if let Some(data) = f.data_ref() {
                    this.bytes += data.len() as u64;
                } else if let Some(trailers) = f.trailers_ref() {
                    let status = grpc_status(trailers);
                    // Trailers are the last frame; hyper reports the end on the next poll, but the response is done.
                    this.finish(status, true, false, Some(trailers));
                }
            }
            Some(Err(_)) => this.finish(None, false, false, None),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        if let Some(s) = &self.stream {
            return s.is_end_stream();
        }
        match &self.inner {
            Some(b) => b.is_end_stream(),
            None => self.full.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        if let Some(s) = &self.stream {
            return s.size_hint();
        }
        match &self.inner {
            Some(b) => b.size_hint(),
            None => SizeHint::with_exact(self.full.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

impl Drop for ProxyBody {
    fn drop(&mut self) {
        // Dropped before its end (and not by the proxy): the caller went away.
        let complete = self.inner.as_ref().is_none_or(|b| b.is_end_stream());
        self.finish(None, complete, !complete, None);
    }
}
