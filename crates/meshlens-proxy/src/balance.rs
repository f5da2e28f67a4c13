//! The balancer of one destination: power of two choices over peak-EWMA latency × in-flight requests,
//! picked inline over an atomically swapped endpoint list (DESIGN.md §7). Requests wait in a bounded queue
//! only while no endpoint is ready; after the failfast timeout they get 504 and new ones 503 until an
//! endpoint is ready again.
//!
//! The estimate also weighs failures and stalls, and recovers: a failed response counts as
//! [`FAILURE_PENALTY`] × the group's typical latency; a request in flight for longer than the estimate
//! raises it; estimates decay towards the group's typical latency (not towards zero), each good answer
//! pulls at least [`MIN_PULL`] of the way down, and one pick in [`PROBE_EVERY`] goes to the least
//! recently chosen endpoint not awaiting an answer, so a recovered instance is measured again within
//! seconds.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use meshlens_api::ProxyErrorReason;
use tokio::sync::Notify;

use crate::client::EndpointClient;
use crate::metrics::{Counter, HttpMetrics, HttpTargetMetrics, LabelSet};
use crate::policy::breaker::{BreakerParams, BreakerState, ConsecutiveFailures};

/// One endpoint of a balancer, with its load estimate, connection pool and (optional) circuit breaker.
pub struct Endpoint {
    pub addr: SocketAddr,
    pub labels: BTreeMap<String, String>,
    /// `labels` plus `tls`: the destination metadata tap shows, built once.
    pub tap_meta: crate::tap::event::Meta,
    pub http_metrics: Arc<HttpTargetMetrics>,
    pub client: EndpointClient,
    pub breaker: Option<Breaker>,
    ewma: Mutex<PeakEwma>,
    in_flight: AtomicU32,
    /// Requests sent and not answered yet (no response headers).
    awaiting: AtomicU32,
    /// Clock readings ([`ticks`]): when `awaiting` last left zero, the last answer, the last pick.
    busy_since: AtomicU64,
    last_answer: AtomicU64,
    last_chosen: AtomicU64,
    ready: AtomicBool,
    probing: AtomicBool,
}

impl Endpoint {
    pub fn new(
        addr: SocketAddr,
        labels: BTreeMap<String, String>,
        http_metrics: Arc<HttpTargetMetrics>,
        client: EndpointClient,
        default_rtt: Duration,
        breaker: Option<Breaker>,
    ) -> Endpoint {
        let mut tap_meta = labels.clone();
        tap_meta.insert("tls".to_string(), "disabled".to_string());
        Endpoint {
            addr,
            tap_meta: crate::tap::event::Metadata::new(tap_meta),
            labels,
            http_metrics,
            client,
            breaker,
            ewma: Mutex::new(PeakEwma::new(default_rtt)),
            in_flight: AtomicU32::new(0),
            awaiting: AtomicU32::new(0),
            busy_since: AtomicU64::new(0),
            last_answer: AtomicU64::new(0),
            last_chosen: AtomicU64::new(0),
            ready: AtomicBool::new(true),
            probing: AtomicBool::new(false),
        }
    }

    /// Latency estimate × (in-flight + 1). While requests await an answer, the time since the endpoint
    /// last answered (or since they wait) is a lower bound of its latency: a stalled endpoint looks slower
    /// with every moment it stays silent. (Long responses being streamed do not count: they were answered.)
    fn cost(&self, now: Instant, decay: Duration, typical: f64) -> f64 {
        let rtt = self.ewma.lock().unwrap_or_else(|e| e.into_inner()).estimate(now, decay, typical);
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        let silent = if self.awaiting.load(Ordering::Relaxed) > 0 {
            let since = self.busy_since.load(Ordering::Relaxed).max(self.last_answer.load(Ordering::Relaxed));
            ticks(now).saturating_sub(since) as f64
        } else {
            0.0
        };
        rtt.max(silent) * (in_flight as f64 + 1.0)
    }

    /// Counts a request in flight until the returned guard is dropped (at the end of the response).
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Sends a request on `conn` ([`EndpointClient::send`]), counted meanwhile as awaiting an answer.
    pub async fn send(
        &self,
        conn: crate::client::Conn,
        req: http::Request<crate::http::request_body::RequestBody>,
        reuse: bool,
    ) -> Result<(http::Response<hyper::body::Incoming>, Option<crate::client::Reusable>), crate::client::SendError>
    {
        if self.awaiting.fetch_add(1, Ordering::Relaxed) == 0 {
            self.busy_since.store(ticks(Instant::now()), Ordering::Relaxed);
        }
        let _awaiting = Awaiting(&self.awaiting);
        self.client.send(conn, req, reuse).await
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// Connected, and not ejected by its breaker (probation counts: it may take its probe).
    fn usable(&self) -> bool {
        self.is_ready() && self.breaker.as_ref().is_none_or(|b| !matches!(b.state(), BreakerState::Open { .. }))
    }

    /// Takes the breaker's permission for one request (the single probe, in probation).
    fn admits(&self) -> bool {
        self.breaker.as_ref().is_none_or(|b| b.admits())
    }

    /// Feeds the outcome of a request the endpoint answered (or failed to) to the breaker. The caller's own
    /// failures (cancellations, malformed bodies) are never fed to it.
    pub fn record_outcome(&self, failure: bool) {
        if let Some(b) = &self.breaker {
            b.record(!failure);
        }
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    pub fn ewma_ms(&self, decay: Duration, typical: f64) -> f64 {
        self.ewma.lock().unwrap_or_else(|e| e.into_inner()).estimate(Instant::now(), decay, typical) / 1e6
    }
}

/// An endpoint's circuit breaker, with its transitions exported as metrics.
pub struct Breaker {
    inner: ConsecutiveFailures,
    /// `opened`, `probation`, `closed` transition counters, and how many of each were already counted.
    counters: [Arc<Counter>; 3],
    seen: [AtomicU64; 3],
}

impl Breaker {
    pub fn new(params: BreakerParams, counters: [Arc<Counter>; 3]) -> Breaker {
        Breaker { inner: ConsecutiveFailures::new(params), counters, seen: Default::default() }
    }

    pub fn state(&self) -> BreakerState {
        self.inner.state()
    }

    fn admits(&self) -> bool {
        let admitted = self.inner.admits();
        self.sync();
        admitted
    }

    fn record(&self, success: bool) {
        if let Some(t) = self.inner.record(success) {
            tracing::info!(transition = t.as_str(), "endpoint circuit breaker");
        }
        self.sync();
    }

    fn sync(&self) {
        let t = &self.inner.transitions;
        for (i, now) in [&t.opened, &t.probation, &t.closed].into_iter().enumerate() {
            let now = now.load(Ordering::Relaxed);
            let before = self.seen[i].swap(now, Ordering::Relaxed);
            if now > before {
                self.counters[i].add(now - before);
            }
        }
    }
}

/// A metrics target created on first use, so a series appears only once something was counted on it
/// (the service-level series of failfast and load-shed responses, which most services never need).
pub struct LazyTarget {
    family: HttpMetrics,
    labels: LabelSet,
    cell: std::sync::OnceLock<Arc<HttpTargetMetrics>>,
}

impl LazyTarget {
    pub fn new(family: HttpMetrics, labels: LabelSet) -> LazyTarget {
        LazyTarget { family, labels, cell: std::sync::OnceLock::new() }
    }

    pub fn get(&self) -> &Arc<HttpTargetMetrics> {
        self.cell.get_or_init(|| self.family.target(self.labels.clone()))
    }
}

/// Decrements an endpoint's count of requests awaiting an answer on drop (answered, failed or cancelled).
struct Awaiting<'a>(&'a AtomicU32);

impl Drop for Awaiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Decrements an endpoint's in-flight count on drop.
pub struct InFlight(Arc<Endpoint>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A failed response (5xx, or no response) weighs as this many times the group's typical latency.
pub const FAILURE_PENALTY: f64 = 10.0;
/// No estimate goes above this many times the group's typical latency (a stall of 20 s would otherwise
/// take minutes to forget).
const CEILING: f64 = 50.0;
/// Each answer faster than the estimate pulls it at least this share of the way down.
pub const MIN_PULL: f64 = 0.25;
/// One pick in this many goes to the least recently chosen endpoint with no request awaiting an answer.
pub const PROBE_EVERY: u64 = 16;
/// Weight of one successful answer in the group's typical latency.
const TYPICAL_WEIGHT: f64 = 1.0 / 32.0;

/// Nanoseconds since the first call (a process-wide origin for clock readings kept in atomics).
fn ticks(now: Instant) -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    let origin = *ORIGIN.get_or_init(|| now - Duration::from_secs(1));
    now.saturating_duration_since(origin).as_nanos() as u64
}

/// Peak-sensitive EWMA of response latency, in nanoseconds (after tower's `PeakEwma`): a slower sample
/// replaces the estimate at once, faster ones pull it down with the decay (at least [`MIN_PULL`] each);
/// idle time decays it towards the group's typical latency.
struct PeakEwma {
    rtt_ns: f64,
    updated: Instant,
}

impl PeakEwma {
    fn new(default_rtt: Duration) -> Self {
        PeakEwma { rtt_ns: default_rtt.as_nanos() as f64, updated: Instant::now() }
    }

    /// `typical`: the group's typical latency in ns (0 while unknown: then the estimate stays put).
    fn estimate(&self, now: Instant, decay: Duration, typical: f64) -> f64 {
        if typical <= 0.0 {
            return self.rtt_ns;
        }
        let elapsed = now.saturating_duration_since(self.updated).as_nanos() as f64;
        typical + (self.rtt_ns - typical) * (-elapsed / decay.as_nanos() as f64).exp()
    }

    fn observe(&mut self, now: Instant, rtt: Duration, decay: Duration, typical: f64) {
        let rtt = rtt.as_nanos() as f64;
        let current = self.estimate(now, decay, typical);
        self.rtt_ns = if rtt > current {
            if typical > 0.0 { rtt.min(typical * CEILING) } else { rtt }
        } else {
            let elapsed = now.saturating_duration_since(self.updated).as_nanos() as f64;
            let w = (-elapsed / decay.as_nanos() as f64).exp().min(1.0 - MIN_PULL);
            current * w + rtt * (1.0 - w)
        };
        self.updated = now;
    }
}

/// Settings of every balancer of a proxy.
#[derive(Clone, Debug)]
pub struct BalancerSettings {
    pub decay: Duration,
    pub failfast: Duration,
    pub queue_capacity: usize,
}

/// Balances requests for one destination over its endpoints.
pub struct Balancer {
    name: String,
    endpoints: ArcSwap<Vec<Arc<Endpoint>>>,
    settings: BalancerSettings,
    queued: AtomicUsize,
    failfast: AtomicBool,
    became_ready: Notify,
    /// The group's typical latency (ns, as `f64` bits; 0 until the first answer): an EWMA of successful
    /// answers of every endpoint, each at most 4× the current value.
    typical: AtomicU64,
    picks: AtomicU64,
    /// Metrics for responses that reached no endpoint (failfast, load shed): `target_addr=""`.
    pub service_metrics: LazyTarget,
}

impl Balancer {
    pub fn new(
        name: String,
        endpoints: Vec<Arc<Endpoint>>,
        settings: BalancerSettings,
        service_metrics: LazyTarget,
    ) -> Arc<Balancer> {
        Arc::new(Balancer {
            name,
            endpoints: ArcSwap::from_pointee(endpoints),
            settings,
            queued: AtomicUsize::new(0),
            failfast: AtomicBool::new(false),
            became_ready: Notify::new(),
            typical: AtomicU64::new(0),
            picks: AtomicU64::new(0),
            service_metrics,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn endpoints(&self) -> Arc<Vec<Arc<Endpoint>>> {
        self.endpoints.load_full()
    }

    /// Replaces the endpoint set (a discovery update); waiting requests are woken when any is ready.
    pub fn set_endpoints(&self, endpoints: Vec<Arc<Endpoint>>) {
        let any_ready = endpoints.iter().any(|e| e.is_ready());
        self.endpoints.store(Arc::new(endpoints));
        if any_ready {
            self.failfast.store(false, Ordering::Relaxed);
            self.became_ready.notify_waiters();
        }
    }

    /// The group's typical latency in ns (0 while nothing answered).
    fn typical(&self) -> f64 {
        f64::from_bits(self.typical.load(Ordering::Relaxed))
    }

    /// Feeds an answer of `ep` to the balancer: its time to response headers, and whether it failed
    /// (5xx, or no response). A failure weighs as [`FAILURE_PENALTY`] × the typical latency.
    pub fn answered(&self, ep: &Endpoint, latency: Duration, failed: bool) {
        let now = Instant::now();
        let typical = self.typical();
        let sample = if failed && typical > 0.0 {
            latency.max(Duration::from_nanos((typical * FAILURE_PENALTY) as u64))
        } else {
            latency
        };
        ep.ewma.lock().unwrap_or_else(|e| e.into_inner()).observe(now, sample, self.settings.decay, typical);
        ep.last_answer.store(ticks(now), Ordering::Relaxed);
        if !failed {
            let ns = latency.as_nanos() as f64;
            // Racy read-modify-write: a lost update only loses one sample's weight.
            let next = if typical <= 0.0 { ns } else { typical + (ns.min(typical * 4.0) - typical) * TYPICAL_WEIGHT };
            self.typical.store(next.max(1.0).to_bits(), Ordering::Relaxed);
        }
    }

    /// Power of two choices among ready endpoints, excluding `skip` (an endpoint that just failed); one
    /// pick in [`PROBE_EVERY`] takes the least recently chosen endpoint with no request awaiting an answer
    /// instead (so a stalled one is not probed until it answers).
    pub fn pick(&self, skip: Option<SocketAddr>) -> Option<Arc<Endpoint>> {
        let eps = self.endpoints.load();
        let usable = |e: &&Arc<Endpoint>| e.usable() && Some(e.addr) != skip;
        let now = Instant::now();
        let probe = eps.len() > 1 && self.picks.fetch_add(1, Ordering::Relaxed).is_multiple_of(PROBE_EVERY);
        let probed = if probe {
            eps.iter()
                .filter(|e| usable(e) && e.awaiting.load(Ordering::Relaxed) == 0)
                .min_by_key(|e| e.last_chosen.load(Ordering::Relaxed))
                .cloned()
        } else {
            None
        };
        let chosen = match probed {
            Some(ep) => ep,
            None => self.pick_among(&eps, &usable, now)?,
        };
        let chosen = if chosen.admits() {
            chosen
        } else {
            // Its breaker's single probe is taken: any other endpoint whose breaker admits a request.
            eps.iter().filter(|e| usable(e)).find(|e| e.addr != chosen.addr && e.admits()).cloned()?
        };
        chosen.last_chosen.store(ticks(now), Ordering::Relaxed);
        Some(chosen)
    }

    fn pick_among(
        &self,
        eps: &[Arc<Endpoint>],
        usable: &dyn Fn(&&Arc<Endpoint>) -> bool,
        now: Instant,
    ) -> Option<Arc<Endpoint>> {
        match eps.len() {
            0 => None,
            1 => eps.iter().find(|e| usable(e)).cloned(),
            n => {
                let a = fastrand::usize(..n);
                let mut b = fastrand::usize(..n - 1);
                if b >= a {
                    b += 1;
                }
                let (ea, eb) = (&eps[a], &eps[b]);
                let chosen = match (usable(&ea), usable(&eb)) {
                    (true, true) => {
                        let (decay, typical) = (self.settings.decay, self.typical());
                        let (ca, cb) = (ea.cost(now, decay, typical), eb.cost(now, decay, typical));
                        // Costs within 1% are a tie (e.g. endpoints nobody measured yet): pick at random.
                        if (ca - cb).abs() <= ca.max(cb) * 0.01 {
                            if fastrand::bool() { ea } else { eb }
                        } else if ca < cb {
                            ea
                        } else {
                            eb
                        }
                    }
                    (true, false) => ea,
                    (false, true) => eb,
                    (false, false) => return eps.iter().find(|e| usable(e)).cloned(),
                };
                Some(chosen.clone())
            }
        }
    }

    /// A ready endpoint, waiting in the queue while none is; fails with `failfast` or `load_shed`.
    pub async fn ready_endpoint(&self, skip: Option<SocketAddr>) -> Result<Arc<Endpoint>, ProxyErrorReason> {
        if let Some(ep) = self.pick(skip) {
            return Ok(ep);
        }
        if self.failfast.load(Ordering::Relaxed) {
            return Err(ProxyErrorReason::LoadShed);
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.settings.queue_capacity {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return Err(ProxyErrorReason::LoadShed);
        }
        let _dequeue = Dequeue(&self.queued);
        let deadline = tokio::time::Instant::now() + self.settings.failfast;
        loop {
            let notified = self.became_ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(ep) = self.pick(skip) {
                return Ok(ep);
            }
            if self.failfast.load(Ordering::Relaxed) {
                return Err(ProxyErrorReason::Failfast);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline) => {
                    if let Some(ep) = self.pick(skip) {
                        return Ok(ep);
                    }
                    tracing::warn!(balancer = %self.name, "no endpoint became ready in time: entering failfast");
                    self.failfast.store(true, Ordering::Relaxed);
                    self.became_ready.notify_waiters();
                    return Err(ProxyErrorReason::Failfast);
                }
            }
        }
    }

    /// Takes an endpoint out of rotation after a connection failure and probes it until it accepts again.
    pub fn mark_down(self: &Arc<Self>, ep: &Arc<Endpoint>) {
        ep.ready.store(false, Ordering::Relaxed);
        if ep.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let balancer = Arc::downgrade(self);
        let endpoint = Arc::downgrade(ep);
        tokio::spawn(probe(balancer, endpoint));
    }

    pub fn in_failfast(&self) -> bool {
        self.failfast.load(Ordering::Relaxed)
    }

    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

struct Dequeue<'a>(&'a AtomicUsize);

impl Drop for Dequeue<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Reconnects to a down endpoint with backoff (100 ms doubling to 5 s); marks it ready when it accepts,
/// keeping that connection in its pool for the next request.
async fn probe(balancer: Weak<Balancer>, endpoint: Weak<Endpoint>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::time::sleep(backoff).await;
        let (Some(bal), Some(ep)) = (balancer.upgrade(), endpoint.upgrade()) else {
            return;
        };
        if ep.client.warm().await.is_ok() {
            tracing::info!(balancer = %bal.name, endpoint = %ep.addr, "endpoint accepts connections again");
            ep.ready.store(true, Ordering::Relaxed);
            ep.probing.store(false, Ordering::Release);
            bal.failfast.store(false, Ordering::Relaxed);
            bal.became_ready.notify_waiters();
            return;
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

impl Balancer {
    /// What `/endpoints` shows of each endpoint.
    pub fn view(&self) -> Vec<meshlens_api::balancer::EndpointState> {
        self.endpoints
            .load()
            .iter()
            .map(|e| {
                let (idle, h2) = e.client.pool_state();
                let breaker = e.breaker.as_ref().map(Breaker::state);
                meshlens_api::balancer::EndpointState {
                    address: e.addr,
                    labels: e.labels.clone(),
                    ready: e.is_ready(),
                    ewma_ms: (e.ewma_ms(self.settings.decay, self.typical()) * 1000.0).round() / 1000.0,
                    in_flight: e.in_flight(),
                    requests_total: e.http_metrics.requests(),
                    idle_http1_connections: idle as u64,
                    http2_connected: h2,
                    breaker: breaker.map(|b| b.as_str().to_string()),
                    breaker_remaining_ms: match breaker {
                        Some(BreakerState::Open { remaining_ms }) => Some(remaining_ms),
                        _ => None,
                    },
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_ewma_jumps_up_and_decays_towards_the_typical_latency() {
        let decay = Duration::from_secs(10);
        let typical = 10e6;
        let t0 = Instant::now();
        let mut e = PeakEwma { rtt_ns: 30e6, updated: t0 };
        e.observe(t0, Duration::from_millis(80), decay, typical);
        assert_eq!(e.estimate(t0, decay, typical), 80e6, "a slower sample is taken at once");
        e.observe(t0, Duration::from_secs(20), decay, typical);
        assert_eq!(e.estimate(t0, decay, typical), typical * CEILING, "a stall counts up to the ceiling");
        let t1 = t0 + Duration::from_millis(10);
        e.observe(t1, Duration::from_millis(10), decay, typical);
        let est = e.estimate(t1, decay, typical);
        assert!(est <= typical + (typical * CEILING - typical) * (1.0 - MIN_PULL) + 1.0, "a good answer pulls: {est}");
        let idle = e.estimate(t1 + Duration::from_secs(300), decay, typical);
        assert!((idle - typical).abs() < 1e3, "idle time decays it to the typical latency: {idle}");
    }

    #[test]
    fn a_stall_is_forgotten_after_a_few_good_answers() {
        let decay = Duration::from_secs(10);
        let typical = 5e6;
        let t0 = Instant::now();
        let mut e = PeakEwma { rtt_ns: typical, updated: t0 };
        e.observe(t0, Duration::from_secs(20), decay, typical);
        let mut t = t0;
        for _ in 0..20 {
            t += Duration::from_millis(300);
            e.observe(t, Duration::from_millis(5), decay, typical);
        }
        let est = e.estimate(t, decay, typical);
        assert!(est < typical * 1.2, "20 good answers in 6 s bring it back: {est}");
    }
}
