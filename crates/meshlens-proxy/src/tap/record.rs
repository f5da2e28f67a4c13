//! The per-request record: what tap and the access log know about one request (inbound) or one attempt
//! (outbound), from its start to the end of its response. One source of truth for both consumers.
//!
//! Request-side filters are decided when the destination is known (outbound: the endpoint the balancer
//! picked). Subscriptions without response filters get `req`, `rsp`, `end` as they happen; those with
//! `status`/`failed` get all three at the end, and only for matches. A record dropped before its response
//! (the route timeout cut the attempt) reports what the caller got: `504` with `proxyError` `timeout`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use http::{HeaderMap, Request, Response, header};
use meshlens_api::ProxyErrorReason;
use meshlens_api::tap::{ProxyDirection, StreamId};

use super::event::{End, Event, Kind, Peer, RequestInfo};
use super::filter::{RequestFacts, ResponseFacts};
use super::{Observers, Subscription, capture};
use crate::access_log;
use crate::balance::Endpoint;
use crate::http::body::{BodyEnd, ProxyBody, grpc_status};
use crate::policy::profile::DEFAULT_ROUTE_NAME;

/// The ids the first attempt of a request got in each subscription, for the `originalId` of retries.
pub type RetryChain = OnceLock<Box<[(u64, StreamId)]>>;

/// Reset code reported for a response that ended with an error or was cut short (INTERNAL_ERROR).
const RESET_INTERNAL_ERROR: u32 = 2;

/// What a request carries into the proxy's tiers when someone observes it.
#[derive(Clone)]
pub struct Tapped {
    pub observers: Arc<Observers>,
    pub info: Arc<RequestInfo>,
}

impl Tapped {
    /// Captures the request side of `req` (headers only when a subscription wants them).
    pub fn new<B>(observers: &Arc<Observers>, direction: ProxyDirection, src: Peer, req: &Request<B>) -> Tapped {
        let h = req.headers();
        let text = |name: header::HeaderName| h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let authority =
            req.uri().authority().map(|a| a.as_str().to_string()).or_else(|| text(header::HOST)).unwrap_or_default();
        let info = RequestInfo {
            direction,
            src,
            method: req.method().clone(),
            scheme: if req.uri().scheme_str() == Some("https") { "https" } else { "http" },
            authority,
            uri: req.uri().clone(),
            version: req.version(),
            headers: observers.wants_headers().then(|| capture(h)),
            grpc: crate::errors::is_grpc(h),
            user_agent: text(header::USER_AGENT),
            trace_id: access_log::trace_id(h),
            request_bytes: text(header::CONTENT_LENGTH).and_then(|v| v.parse().ok()),
            started_at: std::time::SystemTime::now(),
        };
        Tapped { observers: observers.clone(), info: Arc::new(info) }
    }

    /// A record of this request (or of one of its attempts) going to `dst`.
    pub fn record(&self, dst: Peer) -> Record {
        Record(Box::new(State {
            observers: self.observers.clone(),
            info: self.info.clone(),
            dst,
            dst_from_endpoint: self.info.direction == ProxyDirection::Outbound,
            route: None,
            attempt: None,
            chain: None,
            timed_out: None,
            started: Instant::now(),
            dispatched: None,
            matches: None,
            rsp: None,
            done: false,
        }))
    }
}

struct Match {
    sub: Arc<Subscription>,
    id: StreamId,
    original_id: Option<StreamId>,
    /// Response filters apply: events are held until the end.
    held: bool,
}

struct Rsp {
    at: Instant,
    status: u16,
    headers: Option<super::event::Headers>,
    proxy_error: Option<&'static str>,
    grpc_in_headers: Option<u32>,
}

/// One request's (or attempt's) life, as tap and the access log see it. Boxed, so the request path's
/// futures carry one pointer for it, whether or not anyone observes.
pub struct Record(Box<State>);

struct State {
    observers: Arc<Observers>,
    info: Arc<RequestInfo>,
    dst: Peer,
    dst_from_endpoint: bool,
    route: Option<Arc<str>>,
    attempt: Option<u32>,
    chain: Option<Arc<RetryChain>>,
    timed_out: Option<Arc<AtomicBool>>,
    started: Instant,
    dispatched: Option<Instant>,
    matches: Option<Vec<Match>>,
    rsp: Option<Rsp>,
    done: bool,
}

impl Record {
    /// Outbound: the ServiceProfile route (`None` for `[DEFAULT]`), the attempt number and the chain
    /// linking retries to the first attempt, and the flag the route timeout sets when it cuts the attempt.
    pub fn attempt(
        mut self,
        route: Option<Arc<str>>,
        attempt: u32,
        chain: Option<Arc<RetryChain>>,
        timed_out: Option<Arc<AtomicBool>>,
    ) -> Record {
        let s = &mut self.0;
        s.route = route;
        s.attempt = Some(attempt);
        s.chain = chain;
        s.timed_out = timed_out;
        self
    }

    /// Inbound: the ServiceProfile route of the served service (`None` for `[DEFAULT]`).
    pub fn route(mut self, route: Option<Arc<str>>) -> Record {
        self.0.route = route;
        self
    }

    /// The request goes to `endpoint` now (outbound: its discovery metadata becomes the destination).
    pub fn dispatch(&mut self, endpoint: Option<&Endpoint>) {
        self.0.dispatch(endpoint);
    }

    /// Response headers arrived (or the proxy made the response, with `proxy_error`).
    pub fn response(&mut self, status: u16, headers: &HeaderMap, proxy_error: Option<&'static str>) {
        self.0.response(status, headers, proxy_error);
    }

    /// A response the proxy made itself: its headers and end at once.
    pub fn respond(mut self, rsp: &Response<ProxyBody>, reason: ProxyErrorReason) {
        self.0.response(rsp.status().as_u16(), rsp.headers(), Some(reason.as_str()));
        self.0.finish(&BodyEnd {
            grpc_status: None,
            complete: true,
            bytes: 0,
            discarded: false,
            cancelled: false,
            trailers: None,
        });
    }

    /// The response ended (its body's end, trailers included).
    pub fn end(mut self, end: &BodyEnd<'_>) {
        self.0.finish(end);
    }
}

impl State {
    fn dispatch(&mut self, endpoint: Option<&Endpoint>) {
        if let Some(ep) = endpoint
            && self.dst_from_endpoint
        {
            self.dst = Peer { addr: ep.addr, meta: ep.tap_meta.clone() };
        }
        self.dispatched = Some(Instant::now());
        self.ensure_matched();
    }

    fn response(&mut self, status: u16, headers: &HeaderMap, proxy_error: Option<&'static str>) {
        self.ensure_matched();
        let matches = self.matches.as_deref().unwrap_or_default();
        let rsp = Rsp {
            at: Instant::now(),
            status,
            headers: matches.iter().any(|m| m.sub.filter.headers).then(|| capture(headers)),
            proxy_error,
            grpc_in_headers: grpc_status(headers),
        };
        for m in matches.iter().filter(|m| !m.held) {
            m.sub.send(self.event(m, self.rsp_kind(&rsp), rsp.proxy_error));
        }
        self.rsp = Some(rsp);
    }

    fn finish(&mut self, end: &BodyEnd<'_>) {
        if self.done {
            return;
        }
        self.done = true;
        self.ensure_matched();
        let now = Instant::now();
        let grpc = end.grpc_status.or(self.rsp.as_ref().and_then(|r| r.grpc_in_headers));
        let reset = !end.complete && !end.discarded;
        let proxy_error = self.rsp.as_ref().and_then(|r| r.proxy_error);
        let matches = self.matches.take().unwrap_or_default();
        if !matches.is_empty() {
            let wants_trailers = matches.iter().any(|m| m.sub.filter.headers);
            let end_event = End {
                since_request_init: now - self.started,
                since_response_init: self.rsp.as_ref().map(|r| now - r.at),
                response_bytes: end.bytes,
                trailers: end.trailers.filter(|_| wants_trailers).map(capture),
                grpc_status: grpc,
                reset_error_code: reset.then_some(RESET_INTERNAL_ERROR),
            };
            let facts = ResponseFacts {
                status: self.rsp.as_ref().map(|r| r.status),
                grpc_status: grpc,
                reset,
                proxy_error: proxy_error.and_then(ProxyErrorReason::from_token),
            };
            for m in &matches {
                if m.held {
                    if !m.sub.filter.matches_response(&facts) || !m.sub.admit() {
                        continue;
                    }
                    m.sub.send(self.event(m, Kind::Req, None));
                    if let Some(rsp) = &self.rsp {
                        m.sub.send(self.event(m, self.rsp_kind(rsp), proxy_error));
                    }
                }
                m.sub.send(self.event(m, Kind::End(end_event.clone()), proxy_error));
            }
        }
        if let Some(log) = &self.observers.access_log {
            log.write(&access_log::Entry {
                info: &self.info,
                status: self.rsp.as_ref().map(|r| r.status),
                response_bytes: end.bytes,
                total: now - self.started,
                processing: self.dispatched.unwrap_or(now) - self.started,
                route: self.route.as_deref(),
                attempt: self.attempt,
                proxy_error,
            });
        }
    }

    /// Decides which subscriptions see this request (once), and sends `req` to those that stream.
    fn ensure_matched(&mut self) {
        if self.matches.is_some() {
            return;
        }
        let subs = self.observers.subscriptions();
        let mut matches = Vec::new();
        if !subs.is_empty() {
            let info = &self.info;
            let facts = RequestFacts {
                direction: info.direction,
                authority: &info.authority,
                path: info.uri.path(),
                method: &info.method,
                scheme: info.scheme,
                route: self.route.as_deref().unwrap_or(DEFAULT_ROUTE_NAME),
                dst: self.dst.meta.map(),
            };
            let originals = match self.attempt {
                Some(n) if n > 1 => self.chain.as_ref().and_then(|c| c.get()),
                _ => None,
            };
            for sub in subs.iter().filter(|s| s.filter.matches_request(&facts)) {
                let held = sub.filter.filters_responses();
                if !held && !sub.admit() {
                    continue;
                }
                let original_id = originals.and_then(|o| o.iter().find(|(key, _)| *key == sub.key)).map(|(_, id)| *id);
                let m = Match { sub: sub.clone(), id: sub.next_id(), original_id, held };
                if !held {
                    m.sub.send(self.event(&m, Kind::Req, None));
                }
                matches.push(m);
            }
        }
        if self.attempt == Some(1)
            && let Some(chain) = &self.chain
        {
            let _ = chain.set(matches.iter().map(|m| (m.sub.key, m.id)).collect());
        }
        self.matches = Some(matches);
    }

    fn rsp_kind(&self, rsp: &Rsp) -> Kind {
        Kind::Rsp { since_request_init: rsp.at - self.started, status: rsp.status, headers: rsp.headers.clone() }
    }

    fn event(&self, m: &Match, kind: Kind, proxy_error: Option<&'static str>) -> Event {
        Event {
            info: self.info.clone(),
            dst: self.dst.clone(),
            route: self.route.clone(),
            id: m.id,
            attempt: self.attempt,
            original_id: m.original_id,
            proxy_error,
            kind,
        }
    }
}

impl Drop for State {
    /// Dropped before its end: cut by the route timeout (the caller got the proxy's timeout response),
    /// or abandoned (the client went away): reported as a reset.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let cut = self.timed_out.as_ref().is_some_and(|t| t.load(Ordering::Relaxed));
        let mut grpc_status = None;
        if cut && self.rsp.is_none() {
            let reason = ProxyErrorReason::Timeout;
            let status = if self.info.grpc { 200 } else { reason.http_status() };
            grpc_status = self.info.grpc.then_some(reason.grpc_status());
            self.response(status, &HeaderMap::new(), Some(reason.as_str()));
        }
        self.finish(&BodyEnd {
            grpc_status,
            complete: cut,
            bytes: 0,
            discarded: false,
            cancelled: !cut,
            trailers: None,
        });
    }
}
