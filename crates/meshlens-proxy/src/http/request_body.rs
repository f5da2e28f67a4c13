//! The request body the proxy sends upstream: the client's body streamed through, or a buffered copy
//! that can be sent again (for retries). Only retryable routes pay for buffering, and only up to
//! [`MAX_REPLAY_BYTES`].

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

/// Request bodies up to this size are buffered for replay on retryable routes; larger ones are never retried.
pub const MAX_REPLAY_BYTES: usize = 64 * 1024;

pub enum RequestBody {
    /// The client's body, streamed as it arrives.
    Stream(Incoming),
    /// A complete body held in memory: can be cloned for another attempt.
    Replay(Replay),
    /// The start of a body read while trying to buffer it, then the rest of the stream.
    Partial { head: VecDeque<Bytes>, rest: Incoming },
}

/// A complete buffered body (data chunks and trailers), cheap to clone.
#[derive(Clone, Default)]
pub struct Replay {
    chunks: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
}

/// What reading a body for replay found.
pub enum Buffered {
    /// The whole body fit: it can be replayed.
    Complete(Replay),
    /// Too large (or failed midway): send it once, as read so far plus the rest.
    TooLarge(RequestBody),
}

impl RequestBody {
    /// Reads `body` into memory if it ends within [`MAX_REPLAY_BYTES`].
    pub async fn buffer(mut body: Incoming) -> Result<Buffered, hyper::Error> {
        if body.size_hint().lower() > MAX_REPLAY_BYTES as u64 {
            return Ok(Buffered::TooLarge(RequestBody::Stream(body)));
        }
        let mut chunks = VecDeque::new();
        let mut size = 0usize;
        let mut trailers = None;
        while let Some(frame) = body.frame().await {
            let frame = frame?;
            match frame.into_data() {
                Ok(data) => {
                    size += data.len();
                    chunks.push_back(data);
                    if size > MAX_REPLAY_BYTES {
                        return Ok(Buffered::TooLarge(RequestBody::Partial { head: chunks, rest: body }));
                    }
                }
                Err(frame) => {
                    if let Ok(t) = frame.into_trailers() {
                        trailers = Some(t);
                    }
                }
            }
        }
        Ok(Buffered::Complete(Replay { chunks, trailers }))
    }
}

impl Replay {
    pub fn body(&self) -> RequestBody {
        RequestBody::Replay(self.clone())
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut *self {
            RequestBody::Stream(b) => Pin::new(b).poll_frame(cx),
            RequestBody::Replay(r) => Poll::Ready(match r.chunks.pop_front() {
                Some(data) => Some(Ok(Frame::data(data))),
                None => r.trailers.take().map(|t| Ok(Frame::trailers(t))),
            }),
            RequestBody::Partial { head, rest } => match head.pop_front() {
                Some(data) => Poll::Ready(Some(Ok(Frame::data(data)))),
                None => Pin::new(rest).poll_frame(cx),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Stream(b) => b.is_end_stream(),
            RequestBody::Replay(r) => r.chunks.is_empty() && r.trailers.is_none(),
            RequestBody::Partial { head, rest } => head.is_empty() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Stream(b) => b.size_hint(),
            RequestBody::Replay(r) => SizeHint::with_exact(r.chunks.iter().map(|c| c.len() as u64).sum()),
            RequestBody::Partial { head, rest } => {
                let buffered: u64 = head.iter().map(|c| c.len() as u64).sum();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.size_hint().lower() + buffered);
                if let Some(upper) = rest.size_hint().upper() {
                    hint.set_upper(upper + buffered);
                }
                hint
            }
        }
    }
}
