//! The balancer of one destination: power of two choices over peak-EWMA latency × in-flight requests,
//! picked inline over an atomically swapped endpoint list (DESIGN.md §7). Requests wait in a bounded queue
//! only while no endpoint is ready; after the failfast timeout they get 504 and new ones 503 until an
//! endpoint is ready again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
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
            ready: AtomicBool::new(true),
            probing: AtomicBool::new(false),
        }
    }

    fn cost(&self, now: Instant, decay: Duration) -> f64 {
        let rtt = self.ewma.lock().unwrap_or_else(|e| e.into_inner()).estimate(now, decay);
        rtt * (self.in_flight.load(Ordering::Relaxed) as f64 + 1.0)
    }

    /// Records a response's time to headers in the load estimate.
    pub fn observe(&self, rtt: Duration, decay: Duration) {
        self.ewma.lock().unwrap_or_else(|e| e.into_inner()).observe(Instant::now(), rtt, decay);
    }

    /// Counts a request in flight until the returned guard is dropped (at the end of the response).
    pub fn start(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
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

    pub fn ewma_ms(&self, decay: Duration) -> f64 {
        self.ewma.lock().unwrap_or_else(|e| e.into_inner()).estimate(Instant::now(), decay) / 1e6
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

/// Decrements an endpoint's in-flight count on drop.
pub struct InFlight(Arc<Endpoint>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Peak-sensitive EWMA of response latency, in nanoseconds (as tower's `PeakEwma`): a slower sample
/// replaces the estimate at once, faster ones pull it down with the decay; idle time decays it too.
struct PeakEwma {
    rtt_ns: f64,
    updated: Instant,
}

impl PeakEwma {
    fn new(default_rtt: Duration) -> Self {
        PeakEwma { rtt_ns: default_rtt.as_nanos() as f64, updated: Instant::now() }
    }

    fn decayed(&self, now: Instant, decay: Duration) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated).as_nanos() as f64;
        self.rtt_ns * (-elapsed / decay.as_nanos() as f64).exp()
    }

    fn estimate(&self, now: Instant, decay: Duration) -> f64 {
        self.decayed(now, decay)
    }

    fn observe(&mut self, now: Instant, rtt: Duration, decay: Duration) {
        let rtt = rtt.as_nanos() as f64;
        let current = self.decayed(now, decay);
        self.rtt_ns = if rtt > current {
            rtt
        } else {
            let elapsed = now.saturating_duration_since(self.updated).as_nanos() as f64;
            let w = (-elapsed / decay.as_nanos() as f64).exp();
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
    pub connect_timeout: Duration,
}

/// Balances requests for one destination over its endpoints.
pub struct Balancer {
    name: String,
    endpoints: ArcSwap<Vec<Arc<Endpoint>>>,
    settings: BalancerSettings,
    queued: AtomicUsize,
    failfast: AtomicBool,
    became_ready: Notify,
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

    pub fn settings(&self) -> &BalancerSettings {
        &self.settings
    }

    /// Power of two choices among ready endpoints, excluding `skip` (an endpoint that just failed).
    pub fn pick(&self, skip: Option<SocketAddr>) -> Option<Arc<Endpoint>> {
        let eps = self.endpoints.load();
        let usable = |e: &&Arc<Endpoint>| e.usable() && Some(e.addr) != skip;
        let chosen = self.pick_among(&eps, &usable)?;
        if chosen.admits() {
            return Some(chosen);
        }
        // Its breaker's single probe is taken: any other endpoint whose breaker admits a request.
        eps.iter().filter(|e| usable(e)).find(|e| e.addr != chosen.addr && e.admits()).cloned()
    }

    fn pick_among(&self, eps: &[Arc<Endpoint>], usable: &dyn Fn(&&Arc<Endpoint>) -> bool) -> Option<Arc<Endpoint>> {
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
                        let now = Instant::now();
                        let (ca, cb) = (ea.cost(now, self.settings.decay), eb.cost(now, self.settings.decay));
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

/// Reconnects to a down endpoint with backoff (100 ms doubling to 5 s); marks it ready when it accepts.
async fn probe(balancer: Weak<Balancer>, endpoint: Weak<Endpoint>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        tokio::time::sleep(backoff).await;
        let (Some(bal), Some(ep)) = (balancer.upgrade(), endpoint.upgrade()) else {
            return;
        };
        let connect = tokio::net::TcpStream::connect(ep.addr);
        if let Ok(Ok(_stream)) = tokio::time::timeout(bal.settings.connect_timeout, connect).await {
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
                    ewma_ms: (e.ewma_ms(self.settings.decay) * 1000.0).round() / 1000.0,
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
    fn peak_ewma_jumps_up_and_decays_down() {
        let decay = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut e = PeakEwma { rtt_ns: 30e6, updated: t0 };
        e.observe(t0, Duration::from_millis(80), decay);
        assert_eq!(e.estimate(t0, decay), 80e6, "a slower sample is taken at once");
        e.observe(t0 + Duration::from_secs(1), Duration::from_millis(1), decay);
        let est = e.estimate(t0 + Duration::from_secs(1), decay);
        assert!(est < 80e6 && est > 1e6, "{est}");
        assert!(e.estimate(t0 + Duration::from_secs(300), decay) < 1e3, "idle time decays the estimate");
    }
}
