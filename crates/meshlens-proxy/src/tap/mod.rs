//! Tap: live request events for subscribers of the tap listener, and the per-request record that feeds
//! both tap and the access log.
//!
//! The request path asks [`Observers::observing`] once per request: one atomic load, and nothing else
//! happens when nobody taps and the access log is off. Otherwise a [`record::Record`] follows the request
//! (inbound) or each attempt (outbound, at the endpoint tier) and hands events to every matching
//! subscription through a bounded buffer: a full buffer drops the event (`tap_dropped_events_total`)
//! instead of slowing the request.

pub mod event;
pub mod filter;
pub mod record;
pub mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use http::HeaderMap;
use meshlens_api::tap::{REDACTED_HEADERS, StreamId};
use tokio::sync::mpsc;

use crate::access_log::AccessLog;
use crate::config::Config;
use crate::http::client_name::{self, CLIENT_HEADER};
use crate::metrics::{Counter, Gauge, Registry};
use event::{Event, Header, Headers, Meta, Metadata, Peer};
use filter::{Filter, RateLimit};

/// Events buffered per subscription before new ones are dropped.
pub const SUBSCRIPTION_BUFFER: usize = 1024;

/// Tap subscriptions and the access log of one proxy.
pub struct Observers {
    /// Subscriptions, plus one while the access log is on: the only thing a request reads when zero.
    watchers: AtomicUsize,
    subscriptions: ArcSwap<Vec<Arc<Subscription>>>,
    edit: Mutex<()>,
    /// Subscriptions that capture headers.
    header_subscriptions: AtomicUsize,
    next_key: AtomicU64,
    pub access_log: Option<AccessLog>,
    pub tokens: TapTokens,
    pub own: Identity,
    dropped: Arc<Counter>,
    streams: Arc<Gauge>,
}

/// This proxy's own metadata as tap shows it, built once.
pub struct Identity {
    /// Outbound source: `deployment`, `pod`, `namespace` of this proxy's workload.
    pub workload: Meta,
    /// Inbound destination: the local app with this proxy's workload metadata.
    pub inbound_dst: Peer,
    /// Inbound source metadata: `tls=loopback` or `tls=no_tls_from_remote`.
    pub src_loopback: Meta,
    pub src_remote: Meta,
    /// A destination the proxy never resolved (a request refused before routing).
    pub unknown_dst: Peer,
}

impl Identity {
    fn new(config: &Config) -> Identity {
        let mut workload = BTreeMap::new();
        if let Some(w) = &config.workload {
            workload.insert("deployment".to_string(), w.clone());
        }
        if let Some(i) = &config.instance {
            workload.insert("pod".to_string(), i.clone());
        }
        workload.insert("namespace".to_string(), config.namespace.clone());
        let tls = |v: &str| Metadata::from_pairs(&[("tls", v)]);
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        Identity {
            inbound_dst: Peer { addr: config.app.unwrap_or(unspecified), meta: Metadata::new(workload.clone()) },
            workload: Metadata::new(workload),
            src_loopback: tls("loopback"),
            src_remote: tls("no_tls_from_remote"),
            unknown_dst: Peer { addr: unspecified, meta: Metadata::new(BTreeMap::new()) },
        }
    }

    /// The inbound source of a request from `peer`: its `tls` state and, when the request carries a
    /// well-formed `meshlens-client` header, the calling proxy's `pod`, `deployment` and `namespace` with
    /// `identity: unverified` (the peer claims them; nothing checks the claim). `claims` remembers the
    /// connection's last claim, so a peer proxy's keep-alive connection builds its metadata once.
    pub fn inbound_src(&self, peer: SocketAddr, headers: &HeaderMap, claims: &ClaimCache) -> Peer {
        let base = if peer.ip().is_loopback() { &self.src_loopback } else { &self.src_remote };
        let meta = match headers.get(CLIENT_HEADER) {
            None => base.clone(),
            Some(value) => match claims.get() {
                Some((known, meta)) if known == value => meta.clone(),
                _ => match client_name::parse(value) {
                    None => base.clone(),
                    Some(claim) => {
                        let mut map = base.map().clone();
                        map.insert("pod".into(), claim.instance.into());
                        map.insert("deployment".into(), claim.workload.into());
                        map.insert("namespace".into(), claim.namespace.into());
                        map.insert(IDENTITY_KEY.into(), UNVERIFIED.into());
                        let meta = Metadata::new(map);
                        let _ = claims.set((value.clone(), meta.clone()));
                        meta
                    }
                },
            },
        };
        Peer { addr: peer, meta }
    }
}

/// The source metadata key saying how the source's names are known, and its one value today: the peer
/// proxy claimed them (`meshlens-client`) and nothing verified the claim.
pub const IDENTITY_KEY: &str = "identity";
pub const UNVERIFIED: &str = "unverified";

/// One inbound connection's first `meshlens-client` claim and the metadata built for it.
pub type ClaimCache = std::sync::OnceLock<(http::HeaderValue, Meta)>;

/// The bearer tokens the tap listener accepts: the control plane's (from the lease, updated on every
/// renewal) and the operator's `--tap-token`.
#[derive(Default)]
pub struct TapTokens {
    fixed: Option<String>,
    lease: Mutex<Option<String>>,
}

/// What a presented token amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenCheck {
    Accepted,
    /// No token is configured at all: tap is off.
    NoneConfigured,
    Missing,
    Wrong,
}

impl TapTokens {
    pub fn new(fixed: Option<String>) -> TapTokens {
        TapTokens { fixed: fixed.filter(|t| !t.is_empty()), lease: Mutex::new(None) }
    }

    /// The token of the latest lease (`None` when the control plane issues none).
    pub fn set_lease_token(&self, token: Option<String>) {
        *self.lease.lock().unwrap_or_else(|e| e.into_inner()) = token.filter(|t| !t.is_empty());
    }

    pub fn check(&self, presented: Option<&str>) -> TokenCheck {
        let lease = self.lease.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let known: Vec<&str> = self.fixed.iter().map(String::as_str).chain(lease.as_deref()).collect();
        if known.is_empty() {
            return TokenCheck::NoneConfigured;
        }
        match presented {
            None => TokenCheck::Missing,
            Some(p) if known.iter().any(|k| same(k.as_bytes(), p.as_bytes())) => TokenCheck::Accepted,
            Some(_) => TokenCheck::Wrong,
        }
    }
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One tap stream: its filter, rate limit, id counter and bounded buffer.
pub struct Subscription {
    key: u64,
    pub filter: Filter,
    rate: Option<RateLimit>,
    next_stream: AtomicU64,
    tx: mpsc::Sender<Event>,
    dropped: Arc<Counter>,
}

impl Subscription {
    fn next_id(&self) -> StreamId {
        StreamId { base: 0, stream: self.next_stream.fetch_add(1, Ordering::Relaxed) }
    }

    /// Whether `maxRps` lets one more matching request through.
    fn admit(&self) -> bool {
        self.rate.as_ref().is_none_or(|r| r.take())
    }

    fn send(&self, event: Event) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(event) {
            self.dropped.inc();
        }
    }
}

/// Removes its subscription when the tap stream ends (the client went away, or the proxy drains).
pub struct SubscriptionGuard {
    observers: Arc<Observers>,
    key: u64,
    headers: bool,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        let o = &self.observers;
        let _edit = o.edit.lock().unwrap_or_else(|e| e.into_inner());
        let mut subs = Vec::clone(&o.subscriptions.load());
        subs.retain(|s| s.key != self.key);
        o.subscriptions.store(Arc::new(subs));
        if self.headers {
            o.header_subscriptions.fetch_sub(1, Ordering::Relaxed);
        }
        o.watchers.fetch_sub(1, Ordering::Relaxed);
        o.streams.dec();
    }
}

impl Observers {
    pub fn new(config: &Config, registry: &Registry) -> Arc<Observers> {
        let access_log = config.access_log.map(|format| AccessLog::start(format, registry));
        Arc::new(Observers {
            watchers: AtomicUsize::new(access_log.is_some() as usize),
            subscriptions: ArcSwap::from_pointee(Vec::new()),
            edit: Mutex::new(()),
            header_subscriptions: AtomicUsize::new(0),
            next_key: AtomicU64::new(0),
            access_log,
            tokens: TapTokens::new(config.tap_token.clone()),
            own: Identity::new(config),
            dropped: registry.counter(
                "tap_dropped_events_total",
                "Tap events dropped because a tap client did not read them fast enough.",
            ),
            streams: registry.gauge("tap_streams", "Tap streams open on this proxy."),
        })
    }

    /// Does anyone look at requests (a tap stream or the access log)? The request path's one check.
    #[inline]
    pub fn observing(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) != 0
    }

    /// Whether some subscription captures headers.
    pub fn wants_headers(&self) -> bool {
        self.header_subscriptions.load(Ordering::Relaxed) != 0
    }

    pub(crate) fn subscriptions(&self) -> arc_swap::Guard<Arc<Vec<Arc<Subscription>>>> {
        self.subscriptions.load()
    }

    /// Opens a tap stream with `filter`; events arrive on the receiver until the guard is dropped.
    pub fn subscribe(self: &Arc<Self>, filter: Filter) -> (SubscriptionGuard, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        let headers = filter.headers;
        let sub = Arc::new(Subscription {
            key,
            rate: filter.max_rps.map(RateLimit::new),
            filter,
            next_stream: AtomicU64::new(0),
            tx,
            dropped: self.dropped.clone(),
        });
        let _edit = self.edit.lock().unwrap_or_else(|e| e.into_inner());
        let mut subs = Vec::clone(&self.subscriptions.load());
        subs.push(sub);
        self.subscriptions.store(Arc::new(subs));
        if headers {
            self.header_subscriptions.fetch_add(1, Ordering::Relaxed);
        }
        self.watchers.fetch_add(1, Ordering::Relaxed);
        self.streams.inc();
        (SubscriptionGuard { observers: self.clone(), key, headers }, rx)
    }
}

/// Copies headers for tap, with the values of sensitive ones replaced by `[redacted]`.
pub fn capture(headers: &HeaderMap) -> Headers {
    Arc::new(
        headers
            .iter()
            .map(|(name, value)| Header {
                name: name.as_str().to_string(),
                value_str: if REDACTED_HEADERS.contains(&name.as_str()) {
                    "[redacted]".to_string()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                },
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens() {
        let t = TapTokens::new(None);
        assert_eq!(t.check(Some("x")), TokenCheck::NoneConfigured);
        t.set_lease_token(Some("lease".into()));
        assert_eq!(t.check(None), TokenCheck::Missing);
        assert_eq!(t.check(Some("leas")), TokenCheck::Wrong);
        assert_eq!(t.check(Some("lease")), TokenCheck::Accepted);
        t.set_lease_token(Some("renewed".into()));
        assert_eq!(t.check(Some("lease")), TokenCheck::Wrong, "a renewal replaces the token");
        let t = TapTokens::new(Some("fixed".into()));
        t.set_lease_token(Some("lease".into()));
        assert_eq!(t.check(Some("fixed")), TokenCheck::Accepted);
        assert_eq!(t.check(Some("lease")), TokenCheck::Accepted);
    }

    #[test]
    fn capture_redacts_sensitive_headers() {
        let mut h = HeaderMap::new();
        h.insert("authorization", "Bearer secret".parse().unwrap());
        h.insert("cookie", "a=b".parse().unwrap());
        h.insert("x-request-id", "42".parse().unwrap());
        let c = capture(&h);
        let get = |n: &str| c.iter().find(|x| x.name == n).unwrap().value_str.clone();
        assert_eq!(get("authorization"), "[redacted]");
        assert_eq!(get("cookie"), "[redacted]");
        assert_eq!(get("x-request-id"), "42");
    }

    #[test]
    fn subscriptions_are_counted_and_removed() {
        let o = Observers::new(&Config::for_test(), &Registry::new());
        assert!(!o.observing());
        let (guard, _rx) = o.subscribe(Filter::parse("headers=true").unwrap());
        assert!(o.observing() && o.wants_headers());
        drop(guard);
        assert!(!o.observing() && !o.wants_headers());
        assert!(o.subscriptions().is_empty());
    }
}
