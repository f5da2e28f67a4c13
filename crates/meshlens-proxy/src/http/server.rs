//! Serving one detected HTTP connection with hyper, with the proxy's limits, until it ends or drains.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::detect::Protocol;
use crate::http::body::ProxyBody;
use crate::http::framing::{FramingWatch, HeadLimits, Responded};
use crate::shutdown::Drain;
use meshlens_api::ProxyErrorReason;

/// A request the server edge refused before any handler saw it: why, and what could be read of it.
pub(crate) struct EdgeRefusal {
    pub reason: ProxyErrorReason,
    pub why: &'static str,
    pub request: Option<Request<()>>,
}

/// The listener's way to answer, count, tap and log a request its edge refused (`errors::respond`).
pub(crate) type OnRefused = Arc<dyn Fn(EdgeRefusal) -> Response<ProxyBody> + Send + Sync>;

/// Server-side limits, the same on every listener (DESIGN.md §7: one header limit everywhere).
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub header_read_timeout: Duration,
    pub h2_max_concurrent_streams: u32,
    /// HTTP/1 requests whose `Upgrade: h2c` (and `HTTP2-Settings`) the proxy removed.
    pub h2c_upgrades_stripped: std::sync::Arc<crate::metrics::Counter>,
}

/// Removes an `Upgrade: h2c` offer (and `HTTP2-Settings`, and their `Connection` tokens): the request goes on
/// as plain HTTP/1, so what follows is still parsed, guarded, counted and tapped (Linkerd does the same).
/// True when there was one.
fn strip_h2c(headers: &mut http::HeaderMap) -> bool {
    let h2c = headers
        .get_all(http::header::UPGRADE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|p| p.trim().eq_ignore_ascii_case("h2c"))));
    if !h2c && !headers.contains_key("http2-settings") {
        return false;
    }
    headers.remove(http::header::UPGRADE);
    headers.remove("http2-settings");
    let rest: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("upgrade") && !t.eq_ignore_ascii_case("http2-settings"))
        .map(str::to_string)
        .collect();
    headers.remove(http::header::CONNECTION);
    if let Ok(v) = http::HeaderValue::from_str(&rest.join(", "))
        && !rest.is_empty()
    {
        headers.insert(http::header::CONNECTION, v);
    }
    true
}

/// Serves HTTP/1 or HTTP/2 on `io` with `svc` until the client is done or the proxy drains. Requests the
/// edge refuses (malformed or oversize heads) are answered by `on_refused` when given.
pub(crate) async fn serve<IO, S, F>(
    io: IO,
    protocol: Protocol,
    svc: S,
    settings: &ServerSettings,
    drain: Drain,
    peer: &str,
    on_refused: Option<OnRefused>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    let result = match protocol {
        Protocol::Http2 => {
            let limits = (settings.max_header_bytes, settings.max_headers);
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let refused = headers_too_large(&req, limits).then(|| {
                    let reason = ProxyErrorReason::HeadersTooLarge;
                    let why = "request headers over the limit";
                    match &on_refused {
                        Some(on_refused) => on_refused(EdgeRefusal { reason, why, request: Some(head_of(&req)) }),
                        None => {
                            tracing::warn!(reason = reason.as_str(), why, "refused a request from the client");
                            crate::errors::rescue(reason, false)
                        }
                    }
                });
                let fut = match refused {
                    Some(rsp) => Err(rsp),
                    None => Ok(svc(req)),
                };
                async move {
                    Ok::<_, Infallible>(match fut {
                        Ok(fut) => fut.await,
                        Err(rsp) => rsp,
                    })
                }
            });
            let io = TokioIo::new(io);
            let conn = http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .max_header_list_size(hard_header_limit(settings.max_header_bytes) as u32)
                .max_concurrent_streams(settings.h2_max_concurrent_streams)
                .max_pending_accept_reset_streams(20)
                .max_local_error_reset_streams(1024)
                .serve_connection(io, svc);
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => res,
                _ = drain.signaled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        }
        _ => {
            // The guard refuses malformed, ambiguous and oversize heads before hyper parses them.
            let limits = HeadLimits { max_bytes: settings.max_header_bytes, max_headers: settings.max_headers };
            let responded = Responded::default();
            let io = FramingWatch::new(io, limits, responded.clone(), on_refused);
            let stripped = settings.h2c_upgrades_stripped.clone();
            let svc = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                if strip_h2c(req.headers_mut()) {
                    stripped.inc();
                }
                let fut = svc(req);
                let responded = responded.clone();
                async move { Ok::<_, Infallible>(fut.await.map(|body| CountEnd { body, responded })) }
            });
            let io = TokioIo::new(io);
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(settings.header_read_timeout)
                .max_buf_size(hard_header_limit(settings.max_header_bytes))
                .max_headers(settings.max_headers * 2)
                .serve_connection(io, svc)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                res = conn.as_mut() => res,
                _ = drain.signaled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        }
    };
    if let Err(e) = result {
        if e.is_parse_too_large() || e.is_parse() {
            let reason = if e.is_parse_too_large() { "headers_too_large" } else { "bad_request" };
            tracing::warn!(peer, reason, error = %e, "refused a malformed request from the client");
        } else if e.is_timeout() {
            // Mostly an idle keep-alive connection the client left open: closing it is routine.
            tracing::debug!(peer, "closed a client connection that sent no request head in time");
        } else {
            // The client went away (closed or reset mid-exchange): its request, if any, is accounted for.
            tracing::debug!(peer, error = %e, "client connection ended with an error");
        }
    }
}

/// hyper's own parser limit, above ours: requests between the two get our 431 with `l5d-proxy-error`;
/// only grossly oversized ones meet hyper's bare 431.
fn hard_header_limit(limit: usize) -> usize {
    (limit * 2).max(16 * 1024)
}

/// The head of `req` without its body (for the accounting of a refused request).
fn head_of(req: &Request<Incoming>) -> Request<()> {
    let mut head = Request::new(());
    *head.method_mut() = req.method().clone();
    *head.uri_mut() = req.uri().clone();
    *head.version_mut() = req.version();
    *head.headers_mut() = req.headers().clone();
    head
}

/// Is this request over the proxy's header limits (total bytes, as HTTP/2 counts them, or count)?
fn headers_too_large(req: &Request<Incoming>, (max_bytes, max_count): (usize, usize)) -> bool {
    let headers = req.headers();
    if headers.len() > max_count {
        return true;
    }
    let mut size = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    for (name, value) in headers {
        size += name.as_str().len() + value.len() + 32;
    }
    size > max_bytes
}

/// A response body that tells the request guard when hyper is done with it (dropped after the last frame).
struct CountEnd {
    body: ProxyBody,
    responded: Responded,
}

impl http_body::Body for CountEnd {
    type Data = bytes::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<bytes::Bytes>, hyper::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for CountEnd {
    fn drop(&mut self) {
        self.responded.done();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn h2c_offers_are_removed_other_upgrades_stay() {
        let mut h = http::HeaderMap::new();
        h.insert("connection", "keep-alive, Upgrade, HTTP2-Settings".parse().unwrap());
        h.insert("upgrade", "h2c".parse().unwrap());
        h.insert("http2-settings", "AAMAAABkAAQAAP__".parse().unwrap());
        assert!(super::strip_h2c(&mut h));
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["connection"], "keep-alive");
        let mut ws = http::HeaderMap::new();
        ws.insert("connection", "Upgrade".parse().unwrap());
        ws.insert("upgrade", "websocket".parse().unwrap());
        assert!(!super::strip_h2c(&mut ws));
        assert_eq!(ws.len(), 2);
    }
}
