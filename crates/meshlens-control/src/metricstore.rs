//! The embedded metric store: what every proxy's `/metrics` said, as per-scrape deltas in time slots,
//! rolled up at ingest (DESIGN.md §7) so memory grows with workloads, instances and routes, not with raw
//! series (target addresses, status codes and latency buckets are folded in).
//!
//! - Counters become deltas against the previous scrape of the same raw series; a value lower than the
//!   previous one is a counter reset (the delta is the new value). A series first seen on a later scrape of
//!   an instance starts at 0, so its first increments are kept; the first scrape of an instance is a
//!   baseline unless the instance registered just before (then it starts at 0 too).
//! - Histogram buckets are stored per bucket (not cumulative), sparse, so a query can sum them over any
//!   window and interpolate quantiles the way PromQL's `histogram_quantile` does.
//! - Slots are one scrape interval wide; slots older than `compact_after` are merged into `compact_span`
//!   slots; slots older than the retention are dropped.
//!
//! Timestamps are milliseconds on any monotonic clock the caller chooses (tests use synthetic ones).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use meshlens_api::promtext::Sample;

/// Who was scraped: the source identity of every series of one `/metrics` page.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Source {
    pub namespace: String,
    pub workload: String,
    pub instance: String,
}

/// A destination peer resolved from an address (passthrough series have no `dst_*` labels; TCP series are
/// resolved by address too, so a connection counts where its endpoint is registered now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub namespace: String,
    pub workload: String,
    pub instance: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    /// `response_total` and `response_latency_ms` (per endpoint attempt outbound; served inbound).
    Http,
    /// `route_response_total` and `route_response_latency_ms` (effective, above retries).
    Route,
    /// `route_actual_response_total` (per attempt).
    RouteActual,
    /// `route_retry_fate_total` (per original request: how its retries ended; counted in `success`).
    RetryFate,
    /// `tcp_*` (inbound `peer="src"`, outbound `peer="dst"`).
    Tcp,
}

/// The rolled-up identity of a series.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub family: Family,
    pub outbound: bool,
    pub namespace: String,
    pub workload: String,
    pub instance: String,
    pub dst_namespace: String,
    pub dst_workload: String,
    pub dst_instance: String,
    pub dst_service: String,
    /// `authority` (HTTP outbound and TCP to a meshed instance), `dst` (routes), or the `target_addr` of an
    /// unmeshed TCP destination.
    pub authority: String,
    /// `rt_route` (routes).
    pub route: String,
    /// `fate` (retry fates).
    pub fate: String,
    /// `status_code` (HTTP and route families).
    pub status_code: String,
    /// `error`: the proxy-error reason of responses the proxy made (`timeout`, `connect_error`,
    /// `peer:…`), `cancelled` for requests the caller gave up on, empty for the app's own responses.
    pub error: String,
    /// Outbound HTTP refused before an endpoint was chosen (`no_route`, `loop`, …): no `target_addr`, no
    /// `dst_*`; `authority` is what the app asked for.
    pub unrouted: bool,
}

/// What one key accumulated in one slot (72 bytes: the store holds one per key and slot).
#[derive(Clone, Debug)]
struct Agg {
    success: f64,
    failure: f64,
    /// (index into the bounds table, count in that bucket — not cumulative)
    buckets: Vec<(u16, u32)>,
    read_bytes: f64,
    write_bytes: f64,
    /// Responses the proxy made because the route timeout fired (`error="timeout"`).
    timeouts: f32,
    /// Requests the caller gave up on (`error="cancelled"`).
    cancelled: f32,
    /// The smallest and largest latency (ms) the proxies reported (`_min`/`_max` gauges) with this slot's
    /// scrapes: `(+inf, -inf)` when none; `max` is `+inf` when some buckets came without them (a proxy
    /// that does not report them), so the key is not clamped. Merging is min/max either way.
    min: f32,
    max: f32,
}

impl Default for Agg {
    fn default() -> Self {
        Agg {
            success: 0.0,
            failure: 0.0,
            buckets: Vec::new(),
            read_bytes: 0.0,
            write_bytes: 0.0,
            timeouts: 0.0,
            cancelled: 0.0,
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        }
    }
}

impl Agg {
    fn add(&mut self, o: &Agg) {
        self.success += o.success;
        self.failure += o.failure;
        self.read_bytes += o.read_bytes;
        self.write_bytes += o.write_bytes;
        self.timeouts += o.timeouts;
        self.cancelled += o.cancelled;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        for &(i, c) in &o.buckets {
            self.add_bucket(i, c);
        }
    }

    /// The observed (min, max), when known for everything this holds.
    fn extremes(&self) -> Option<(f64, f64)> {
        (self.min <= self.max && self.max.is_finite()).then(|| (f64::from(self.min), f64::from(self.max)))
    }

    fn add_bucket(&mut self, i: u16, c: u32) {
        match self.buckets.iter_mut().find(|(j, _)| *j == i) {
            Some((_, v)) => *v = v.saturating_add(c),
            None => self.buckets.push((i, c)),
        }
    }
}

struct Slot {
    start: u64,
    end: u64,
    data: HashMap<u32, Agg>,
    /// Complete and shrunk to fit (compaction unseals a slot it merges into).
    sealed: bool,
}

#[derive(Default)]
struct InstanceState {
    /// raw series (hash of name + labels) → last value
    last: HashMap<u64, f64>,
    /// key → gauge value (tcp_open_connections) at the last scrape
    gauges: HashMap<u32, f64>,
    last_scrape: Option<u64>,
}

/// Sizes and timing.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub interval_ms: u64,
    pub retention_ms: u64,
    pub compact_after_ms: u64,
    pub compact_span_ms: u64,
}

impl Settings {
    pub fn new(interval_ms: u64, retention_ms: u64) -> Self {
        Settings {
            interval_ms: interval_ms.max(1),
            retention_ms,
            compact_after_ms: (10 * 60_000).max(20 * interval_ms),
            compact_span_ms: (60_000).max(4 * interval_ms),
        }
    }
}

#[derive(Default)]
struct Inner {
    keys: Vec<Key>,
    key_ids: HashMap<Key, u32>,
    bounds: Vec<f64>,
    slots: VecDeque<Slot>,
    instances: HashMap<Source, InstanceState>,
    /// Where the data the store holds begins: its first scrape, later the end of the last slot the
    /// retention dropped.
    data_from: Option<u64>,
    /// The latest scrape.
    last_at: u64,
}

/// Sums over a window for one group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub success: f64,
    pub failure: f64,
    /// (lower bound, upper bound, count) sorted by bound, not cumulative; the lower bound is the next
    /// smaller bound any proxy reported, so empty buckets need not be stored.
    pub buckets: Vec<(f64, f64, f64)>,
    pub read_bytes: f64,
    pub write_bytes: f64,
    /// Route-timeout responses (routes).
    pub timeouts: f64,
    /// Requests the caller gave up on (counted in `failure` too).
    pub cancelled: f64,
    /// The smallest and largest latency observed (ms), when every proxy that reported buckets reported
    /// them: quantiles stay inside.
    pub extremes: Option<(f64, f64)>,
    /// Currently open connections (gauge, at the last scrape of each live instance).
    pub open_connections: f64,
    /// HTTP data was seen.
    pub http: bool,
    /// TCP data (bytes or open connections) was seen.
    pub tcp: bool,
}

impl Totals {
    pub fn requests(&self) -> f64 {
        self.success + self.failure
    }

    /// 0..1, or None without requests.
    pub fn success_rate(&self) -> Option<f64> {
        let n = self.requests();
        (n > 0.0).then(|| self.success / n)
    }

    /// PromQL `histogram_quantile` over the buckets of the whole window (linear interpolation inside the
    /// bucket; the +Inf bucket answers the highest finite bound), clamped into the observed extremes.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let v = quantile(&self.buckets, q)?;
        Some(match self.extremes {
            Some((lo, hi)) if lo <= hi => v.clamp(lo, hi),
            _ => v,
        })
    }
}

/// `histogram_quantile(q, …)` on non-cumulative (lower, upper, count) buckets sorted by bound.
pub fn quantile(buckets: &[(f64, f64, f64)], q: f64) -> Option<f64> {
    let total: f64 = buckets.iter().map(|b| b.2).sum();
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut cum = 0.0;
    for &(lower, upper, count) in buckets {
        let prev = cum;
        cum += count;
        if cum >= rank && count > 0.0 {
            if upper.is_infinite() {
                return Some(lower);
            }
            if upper <= 0.0 {
                return Some(upper);
            }
            return Some(lower + (upper - lower) * (rank - prev) / count);
        }
    }
    buckets.iter().rev().find(|b| b.1.is_finite()).map(|b| b.1)
}

/// The store. Cheap to share (`Arc`), one lock.
pub struct MetricStore {
    settings: Settings,
    epoch: tokio::time::Instant,
    inner: Mutex<Inner>,
}

/// A 64-bit hash of name + labels: the identity of a raw series between two scrapes (kept instead of
/// the label text, so per-instance state is 16 bytes a series).
fn series_id(s: &Sample) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.name.hash(&mut h);
    for (k, v) in &s.labels {
        k.hash(&mut h);
        v.hash(&mut h);
    }
    h.finish()
}

/// `svc.ns.svc.cluster.local:80` → (svc, ns).
pub fn split_fqdn(authority: &str) -> (String, String) {
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let mut parts = host.split('.');
    let svc = parts.next().unwrap_or("").to_string();
    let ns = parts.next().unwrap_or("").to_string();
    (svc, ns)
}

impl MetricStore {
    pub fn new(settings: Settings) -> Self {
        MetricStore { settings, epoch: tokio::time::Instant::now(), inner: Mutex::new(Inner::default()) }
    }

    /// Milliseconds since the store was created (the timestamps the scraper and the API use).
    pub fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn settings(&self) -> Settings {
        self.settings
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Ingests one scrape of `src` taken at `at`. `from_zero` makes even the first scrape of the instance
    /// count in full (it registered just now). `peer` resolves a target address to a meshed instance.
    pub fn ingest(
        &self,
        src: &Source,
        at: u64,
        samples: &[Sample],
        from_zero: bool,
        peer: &dyn Fn(&str) -> Option<Peer>,
    ) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let mut state = inner.instances.remove(src).unwrap_or_default();
        let baseline = state.last_scrape.is_none() && !from_zero;
        let mut next_last = HashMap::with_capacity(state.last.len().max(samples.len()));
        let mut gauges = HashMap::new();
        let mut aggs: HashMap<u32, Agg> = HashMap::new();
        // key → (le, cumulative delta)
        let mut hist: HashMap<u32, Vec<(f64, f64)>> = HashMap::new();
        // key → (min, max) latency gauges
        let mut extremes: HashMap<u32, (f64, f64)> = HashMap::new();
        for s in samples {
            let (family, kind) = match s.name.as_str() {
                "response_total" => (Family::Http, Kind::Class),
                "response_latency_ms_bucket" => (Family::Http, Kind::Bucket),
                "route_response_total" => (Family::Route, Kind::Class),
                "route_response_latency_ms_bucket" => (Family::Route, Kind::Bucket),
                "route_actual_response_total" => (Family::RouteActual, Kind::Class),
                "route_retry_fate_total" => (Family::RetryFate, Kind::Fate),
                "tcp_read_bytes_total" => (Family::Tcp, Kind::Read),
                "tcp_write_bytes_total" => (Family::Tcp, Kind::Write),
                "tcp_open_connections" => (Family::Tcp, Kind::Open),
                "response_latency_ms_max" => (Family::Http, Kind::Max),
                "response_latency_ms_min" => (Family::Http, Kind::Min),
                "route_response_latency_ms_max" => (Family::Route, Kind::Max),
                "route_response_latency_ms_min" => (Family::Route, Kind::Min),
                _ => continue,
            };
            let Some(key) = key_for(src, family, s, peer) else { continue };
            let id = intern(&mut inner.keys, &mut inner.key_ids, key);
            match kind {
                Kind::Open => {
                    *gauges.entry(id).or_insert(0.0) += s.value;
                    continue;
                }
                Kind::Max | Kind::Min => {
                    if s.value.is_finite() && !baseline {
                        extremes.entry(id).or_insert((f64::INFINITY, f64::NEG_INFINITY));
                        let e = extremes.get_mut(&id).expect("just inserted");
                        if kind == Kind::Max { e.1 = e.1.max(s.value) } else { e.0 = e.0.min(s.value) }
                    }
                    continue;
                }
                _ => {}
            }
            let sid = series_id(s);
            let prev = state.last.get(&sid).copied().unwrap_or(if baseline { s.value } else { 0.0 });
            let delta = if s.value >= prev { s.value - prev } else { s.value };
            next_last.insert(sid, s.value);
            if !delta.is_finite() {
                continue;
            }
            match kind {
                Kind::Class => {
                    let a = aggs.entry(id).or_default();
                    // A cancelled request is a failure whatever its status (DESIGN.md §5).
                    if s.label("classification") == "success"
                        && s.label("error") != meshlens_api::labels::ERROR_CANCELLED
                    {
                        a.success += delta;
                    } else {
                        a.failure += delta;
                    }
                    match s.label("error") {
                        "timeout" => a.timeouts += delta as f32,
                        meshlens_api::labels::ERROR_CANCELLED => a.cancelled += delta as f32,
                        _ => {}
                    }
                }
                Kind::Fate => aggs.entry(id).or_default().success += delta,
                Kind::Bucket => {
                    let le = match s.label("le") {
                        "+Inf" => f64::INFINITY,
                        v => match v.parse::<f64>() {
                            Ok(v) => v,
                            Err(_) => continue,
                        },
                    };
                    let h = hist.entry(id).or_default();
                    match h.iter_mut().find(|(b, _)| *b == le) {
                        Some((_, c)) => *c += delta,
                        None => h.push((le, delta)),
                    }
                }
                Kind::Read => aggs.entry(id).or_default().read_bytes += delta,
                Kind::Write => aggs.entry(id).or_default().write_bytes += delta,
                Kind::Open | Kind::Max | Kind::Min => {}
            }
        }
        for (id, mut h) in hist {
            h.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut prev = 0.0;
            for (le, cum) in h {
                let count = cum - prev;
                prev = cum;
                let idx = bound_index(&mut inner.bounds, le);
                if count >= 0.5 {
                    aggs.entry(id).or_default().add_bucket(idx, count.round().min(u32::MAX as f64) as u32);
                }
            }
        }
        // Buckets without both extremes: unbounded (max = +inf).
        for (id, a) in aggs.iter_mut().filter(|(_, a)| !a.buckets.is_empty()) {
            let (lo, hi) = extremes.get(id).copied().unwrap_or((f64::INFINITY, f64::INFINITY));
            let hi = if lo.is_finite() && hi.is_finite() { hi } else { f64::INFINITY };
            a.min = a.min.min(lo as f32);
            a.max = a.max.max(hi as f32);
        }
        state.last = next_last;
        state.gauges = gauges;
        state.last_scrape = Some(at);
        inner.instances.insert(src.clone(), state);
        inner.data_from.get_or_insert(at);
        inner.last_at = inner.last_at.max(at);

        aggs.retain(|_, a| a.success + a.failure + a.read_bytes + a.write_bytes > 0.0 || !a.buckets.is_empty());
        if aggs.is_empty() {
            return;
        }
        let interval = self.settings.interval_ms;
        let start = at / interval * interval;
        let slot = match inner.slots.iter().rposition(|s| s.start <= start) {
            Some(i) if inner.slots[i].end > start => &mut inner.slots[i],
            pos => {
                let at = pos.map_or(0, |i| i + 1);
                inner.slots.insert(at, Slot { start, end: start + interval, data: HashMap::new(), sealed: false });
                &mut inner.slots[at]
            }
        };
        for (id, a) in aggs {
            slot.data.entry(id).or_default().add(&a);
        }
    }

    /// Forgets instances that are no longer registered (their gauges stop counting at once; their deltas
    /// stay in the slots until the retention drops them).
    pub fn retain_instances(&self, live: &HashSet<Source>) {
        self.lock().instances.retain(|k, _| live.contains(k));
    }

    /// Drops slots past the retention and merges old slots.
    pub fn compact(&self, now: u64) {
        let st = self.settings;
        let mut inner = self.lock();
        while inner.slots.front().is_some_and(|s| s.end + st.retention_ms < now) {
            if let Some(dropped) = inner.slots.pop_front() {
                inner.data_from = Some(inner.data_from.map_or(dropped.end, |f| f.max(dropped.end)));
            }
        }
        let old = now.saturating_sub(st.compact_after_ms);
        let mut merged: VecDeque<Slot> = VecDeque::with_capacity(inner.slots.len());
        for slot in inner.slots.drain(..) {
            if let Some(last) = merged.back_mut()
                && slot.end <= old
                && last.start / st.compact_span_ms == slot.start / st.compact_span_ms
            {
                last.end = slot.end;
                last.sealed = false;
                for (k, a) in slot.data {
                    last.data.entry(k).or_default().add(&a);
                }
                continue;
            }
            merged.push_back(slot);
        }
        // Slots that are complete will not grow again: give back what their maps over-allocated.
        let done = now.saturating_sub(2 * st.interval_ms);
        for slot in merged.iter_mut().filter(|s| s.end <= done && !s.sealed) {
            slot.sealed = true;
            slot.data.shrink_to_fit();
            for a in slot.data.values_mut() {
                a.buckets.shrink_to_fit();
            }
        }
        inner.slots = merged;
    }

    /// How much of the window `(end - window, end]` the store holds data for (ms): the whole window once
    /// the store is older than it; before, from its first scrape to its last (0 before any scrape).
    pub fn covered(&self, end: u64, window: u64) -> u64 {
        let inner = self.lock();
        match inner.data_from {
            None => 0,
            Some(from) if from <= end.saturating_sub(window) => window,
            Some(from) => end.min(inner.last_at).saturating_sub(from),
        }
    }

    /// When each instance was last scraped (store time, ms).
    pub fn last_scrapes(&self) -> HashMap<Source, u64> {
        self.lock().instances.iter().filter_map(|(src, st)| st.last_scrape.map(|t| (src.clone(), t))).collect()
    }

    /// Where the data the store holds begins (None before the first scrape).
    pub fn held_from(&self) -> Option<u64> {
        self.lock().data_from
    }

    /// Says the store holds data from `at` on (a store filled with the sums of a whole window at once).
    pub fn holds_from(&self, at: u64) {
        let mut inner = self.lock();
        inner.data_from = Some(inner.data_from.map_or(at, |f| f.min(at)));
    }

    /// Sums the window `(now - window, now]` per group; `group` selects keys (None = not wanted).
    pub fn query<G: Ord + Clone>(
        &self,
        now: u64,
        window: u64,
        mut group: impl FnMut(&Key) -> Option<G>,
    ) -> BTreeMap<G, Totals> {
        let inner = self.lock();
        let from = now.saturating_sub(window);
        let mut groups: HashMap<u32, Option<G>> = HashMap::new();
        let mut sums: BTreeMap<G, (Agg, f64, bool, bool)> = BTreeMap::new();
        for slot in inner.slots.iter().filter(|s| s.start > from && s.start <= now) {
            for (id, a) in &slot.data {
                let g = groups.entry(*id).or_insert_with(|| group(&inner.keys[*id as usize]));
                if let Some(g) = g {
                    let e = sums.entry(g.clone()).or_default();
                    e.0.add(a);
                    e.2 |= a.success + a.failure > 0.0;
                    e.3 |= a.read_bytes + a.write_bytes > 0.0;
                }
            }
        }
        let live_after = now.saturating_sub(3 * self.settings.interval_ms);
        // Open connections are known only now: a window that ended earlier has none to show.
        let live = |t: u64| t >= live_after && t <= now;
        for st in inner.instances.values().filter(|s| s.last_scrape.is_some_and(live)) {
            for (id, v) in &st.gauges {
                let g = groups.entry(*id).or_insert_with(|| group(&inner.keys[*id as usize]));
                if let Some(g) = g {
                    let e = sums.entry(g.clone()).or_default();
                    e.1 += v;
                    e.3 |= *v > 0.0;
                }
            }
        }
        sums.into_iter()
            .map(|(g, (a, open, http, tcp))| {
                let mut buckets: Vec<(f64, f64, f64)> = a
                    .buckets
                    .iter()
                    .map(|&(i, c)| {
                        let upper = inner.bounds[i as usize];
                        let lower = inner.bounds.iter().copied().filter(|b| *b < upper).fold(0.0, f64::max);
                        (lower, upper, f64::from(c))
                    })
                    .collect();
                buckets.sort_by(|x, y| x.1.total_cmp(&y.1));
                let t = Totals {
                    success: a.success,
                    failure: a.failure,
                    buckets,
                    read_bytes: a.read_bytes,
                    write_bytes: a.write_bytes,
                    timeouts: f64::from(a.timeouts),
                    cancelled: f64::from(a.cancelled),
                    extremes: a.extremes(),
                    open_connections: open,
                    http,
                    tcp,
                };
                (g, t)
            })
            .collect()
    }

    /// Approximate bytes held (slots, keys, per-instance state).
    pub fn memory(&self) -> MemoryUse {
        let inner = self.lock();
        let agg = std::mem::size_of::<Agg>() + 4 + 8;
        let slot_bytes: usize = inner
            .slots
            .iter()
            .map(|s| {
                std::mem::size_of::<Slot>()
                    + s.data.capacity() * agg
                    + s.data.values().map(|a| a.buckets.capacity() * 8).sum::<usize>()
            })
            .sum();
        let key_bytes: usize = inner
            .keys
            .iter()
            .map(|k| {
                2 * std::mem::size_of::<Key>()
                    + 2 * (k.namespace.len()
                        + k.workload.len()
                        + k.instance.len()
                        + k.dst_namespace.len()
                        + k.dst_workload.len()
                        + k.dst_instance.len()
                        + k.dst_service.len()
                        + k.authority.len()
                        + k.route.len()
                        + k.fate.len()
                        + k.status_code.len()
                        + k.error.len())
            })
            .sum();
        let instance_bytes: usize =
            inner.instances.values().map(|s| s.last.capacity() * 24 + s.gauges.capacity() * 24).sum();
        MemoryUse {
            slots: inner.slots.len(),
            keys: inner.keys.len(),
            instances: inner.instances.len(),
            bytes: slot_bytes + key_bytes + instance_bytes,
            slot_bytes,
            key_bytes,
            instance_bytes,
        }
    }
}

/// What [`MetricStore::memory`] reports.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub struct MemoryUse {
    pub slots: usize,
    /// Rolled-up keys (source instance × direction × destination × route × family).
    pub keys: usize,
    pub instances: usize,
    /// Everything below.
    pub bytes: usize,
    /// The time slots (grows with keys × slots, bounded by the retention and compaction).
    pub slot_bytes: usize,
    pub key_bytes: usize,
    /// The last value of every raw series of every live instance (for deltas; not kept over time).
    pub instance_bytes: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Class,
    Fate,
    Bucket,
    Read,
    Write,
    Open,
    /// `_max`/`_min` latency gauges (per series, over the proxy's recent window).
    Max,
    Min,
}

fn intern(keys: &mut Vec<Key>, ids: &mut HashMap<Key, u32>, key: Key) -> u32 {
    if let Some(id) = ids.get(&key) {
        return *id;
    }
    let id = keys.len() as u32;
    keys.push(key.clone());
    ids.insert(key, id);
    id
}

fn bound_index(bounds: &mut Vec<f64>, le: f64) -> u16 {
    match bounds.iter().position(|b| *b == le) {
        Some(i) => i as u16,
        None => {
            bounds.push(le);
            (bounds.len() - 1) as u16
        }
    }
}

fn key_for(src: &Source, family: Family, s: &Sample, peer: &dyn Fn(&str) -> Option<Peer>) -> Option<Key> {
    let outbound = match s.label("direction") {
        "inbound" => false,
        "outbound" => true,
        _ => return None,
    };
    let mut key = Key {
        family,
        outbound,
        namespace: src.namespace.clone(),
        workload: src.workload.clone(),
        instance: src.instance.clone(),
        dst_namespace: String::new(),
        dst_workload: String::new(),
        dst_instance: String::new(),
        dst_service: String::new(),
        authority: String::new(),
        route: String::new(),
        fate: String::new(),
        status_code: s.label("status_code").to_string(),
        error: s.label("error").to_string(),
        unrouted: false,
    };
    match family {
        Family::Http => {
            if outbound {
                key.dst_namespace = s.label("dst_namespace").to_string();
                key.dst_workload = s.label("dst_deployment").to_string();
                key.dst_instance = s.label("dst_pod").to_string();
                key.dst_service = s.label("dst_service").to_string();
                key.authority = s.label("authority").to_string();
                key.unrouted = key.dst_namespace.is_empty() && s.label("target_addr").is_empty();
                // A passthrough request (no `dst_*` labels) to a meshed instance's address is meshed traffic.
                if key.dst_namespace.is_empty()
                    && let Some(p) = peer(s.label("target_addr"))
                {
                    key.dst_namespace = p.namespace;
                    key.dst_workload = p.workload;
                    key.dst_instance = p.instance;
                }
            }
        }
        Family::Route | Family::RouteActual | Family::RetryFate => {
            key.fate = s.label("fate").to_string();
            key.authority = s.label("dst").to_string();
            key.route = s.label("rt_route").to_string();
            let (svc, ns) = split_fqdn(&key.authority);
            key.dst_service = svc;
            key.dst_namespace = ns;
        }
        Family::Tcp => match (outbound, s.label("peer")) {
            (false, "src") => {}
            (true, "dst") => match peer(s.label("target_addr")) {
                Some(p) => {
                    key.dst_namespace = p.namespace;
                    key.dst_workload = p.workload;
                    key.dst_instance = p.instance;
                    // The service the app called (`stat au --from`); empty for a passthrough address.
                    key.authority = s.label("authority").to_string();
                }
                // Not a meshed instance: an unmeshed destination, kept by its address (bounded by the
                // proxy, which folds passthrough addresses past its cap into one series).
                None => key.authority = s.label("target_addr").to_string(),
            },
            _ => return None,
        },
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshlens_api::promtext::parse;

    fn src(w: &str, i: usize) -> Source {
        Source { namespace: "prod".into(), workload: w.into(), instance: format!("{w}-{i}") }
    }

    fn no_peer(_: &str) -> Option<Peer> {
        None
    }

    fn page(ok: u64, fail: u64, buckets: &[(&str, u64)]) -> Vec<Sample> {
        let mut text = format!(
            "response_total{{direction=\"inbound\",target_addr=\"1\",status_code=\"200\",classification=\"success\"}} {ok}\n\
             response_total{{direction=\"inbound\",target_addr=\"1\",status_code=\"500\",classification=\"failure\"}} {fail}\n"
        );
        for (le, c) in buckets {
            text.push_str(&format!(
                "response_latency_ms_bucket{{direction=\"inbound\",target_addr=\"1\",status_code=\"200\",le=\"{le}\"}} {c}\n"
            ));
        }
        parse(&text).0
    }

    fn inbound(store: &MetricStore, now: u64, window: u64) -> BTreeMap<String, Totals> {
        store.query(now, window, |k| (!k.outbound && k.family == Family::Http).then(|| k.workload.clone()))
    }

    #[test]
    fn deltas_resets_and_first_scrape_baseline() {
        let store = MetricStore::new(Settings::new(1000, 3_600_000));
        let s = src("web", 0);
        // First scrape: baseline (the proxy ran before we looked).
        store.ingest(&s, 1000, &page(100, 10, &[]), false, &no_peer);
        assert!(inbound(&store, 1000, 10_000).is_empty());
        store.ingest(&s, 2000, &page(130, 10, &[]), false, &no_peer);
        // Counter reset: the proxy restarted; 5 and 1 are new.
        store.ingest(&s, 3000, &page(5, 1, &[]), false, &no_peer);
        store.ingest(&s, 4000, &page(15, 1, &[]), false, &no_peer);
        let t = &inbound(&store, 4000, 10_000)["web"];
        assert_eq!((t.success, t.failure), (45.0, 1.0));
        // A window of two intervals sees only the last two scrapes.
        let t = &inbound(&store, 4000, 2000)["web"];
        assert_eq!((t.success, t.failure), (15.0, 1.0));
        // A series that appears later starts at 0.
        let mut p = page(15, 1, &[]);
        p.extend(parse("response_total{direction=\"inbound\",status_code=\"503\",classification=\"failure\"} 4\n").0);
        store.ingest(&s, 5000, &p, false, &no_peer);
        assert_eq!(inbound(&store, 5000, 1000)["web"].failure, 4.0);
        // A new instance that registered just now counts from 0.
        store.ingest(&src("web", 1), 5000, &page(7, 0, &[]), true, &no_peer);
        assert_eq!(inbound(&store, 5000, 1000)["web"].success, 7.0);
    }

    #[test]
    fn quantiles_interpolate_over_the_whole_window() {
        let store = MetricStore::new(Settings::new(1000, 3_600_000));
        let s = src("web", 0);
        let b = |a: u64, b: u64, c: u64| vec![("10", a), ("20", b), ("100", c), ("+Inf", c)];
        store.ingest(&s, 1000, &page(0, 0, &b(0, 0, 0)), true, &no_peer);
        // 90 requests in (0,10], then 10 in (20,100].
        store.ingest(&s, 2000, &page(90, 0, &b(90, 90, 90)), true, &no_peer);
        store.ingest(&s, 3000, &page(100, 0, &b(90, 90, 100)), true, &no_peer);
        let t = &inbound(&store, 3000, 3000)["web"];
        assert_eq!(t.buckets, vec![(0.0, 10.0, 90.0), (20.0, 100.0, 10.0)]);
        assert_eq!(t.quantile(0.5), Some(50.0 / 90.0 * 10.0));
        assert_eq!(t.quantile(0.9), Some(10.0));
        assert_eq!(t.quantile(0.95), Some(20.0 + 80.0 * 0.5));
        assert!((t.quantile(0.99).unwrap() - (20.0 + 80.0 * 0.9)).abs() < 1e-9);
        // The last scrape alone: all 10 in (20,100].
        let t = &inbound(&store, 3000, 1000)["web"];
        assert_eq!(t.quantile(0.5), Some(60.0));
        assert_eq!(quantile(&[(0.0, 10.0, 0.0), (10.0, f64::INFINITY, 4.0)], 0.5), Some(10.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    /// Quantiles stay inside the observed extremes, merged over slots by min/max; a slot whose buckets came
    /// without them leaves the window unclamped.
    #[test]
    fn quantiles_are_clamped_to_the_observed_extremes() {
        assert_eq!(std::mem::size_of::<Agg>(), 72, "one per key and slot: keep it small");
        let store = MetricStore::new(Settings::new(1000, 3_600_000));
        let s = src("web", 0);
        let page = |n: u64, extremes: Option<(u64, u64)>| {
            let mut p = page(n, 0, &[("1000", 0), ("2000", n), ("+Inf", n)]);
            if let Some((lo, hi)) = extremes {
                let l = "direction=\"inbound\",target_addr=\"1\",status_code=\"200\"";
                let text = format!("response_latency_ms_max{{{l}}} {hi}\nresponse_latency_ms_min{{{l}}} {lo}\n");
                p.extend(parse(&text).0);
            }
            p
        };
        store.ingest(&s, 1000, &page(0, None), false, &no_peer);
        store.ingest(&s, 2000, &page(10, Some((1010, 1100))), false, &no_peer);
        store.ingest(&s, 3000, &page(20, Some((1005, 1200))), false, &no_peer);
        let t = &inbound(&store, 3000, 10_000)["web"];
        assert_eq!(t.extremes, Some((1005.0, 1200.0)));
        assert_eq!(t.quantile(0.99), Some(1200.0), "interpolated 1990, observed at most 1200");
        assert_eq!(t.quantile(0.01), Some(1010.0), "inside the observed range: as interpolated");
        store.ingest(&s, 4000, &page(30, None), false, &no_peer);
        let t = &inbound(&store, 4000, 10_000)["web"];
        assert_eq!(t.extremes, None, "buckets without extremes: not clamped");
        assert!((t.quantile(0.99).unwrap() - 1990.0).abs() < 1e-9);
    }

    #[test]
    fn compaction_keeps_totals_and_retention_drops_old_slots() {
        let mut settings = Settings::new(1000, 100_000);
        settings.compact_after_ms = 20_000;
        settings.compact_span_ms = 10_000;
        let store = MetricStore::new(settings);
        let s = src("web", 0);
        for i in 0..=90u64 {
            store.ingest(&s, i * 1000, &page(i, 0, &[]), true, &no_peer);
        }
        store.compact(90_000);
        let mem = store.memory();
        assert!(mem.slots < 40, "{mem:?}");
        assert_eq!(inbound(&store, 90_000, 200_000)["web"].success, 90.0);
        store.compact(300_000);
        assert_eq!(store.memory().slots, 0);
    }

    #[test]
    fn tcp_gauges_follow_live_instances_and_peers_resolve() {
        let store = MetricStore::new(Settings::new(1000, 3_600_000));
        let s = src("web", 0);
        let text = "tcp_open_connections{direction=\"outbound\",peer=\"dst\",target_addr=\"127.0.0.1:9\"} 2\n\
            tcp_write_bytes_total{direction=\"outbound\",peer=\"dst\",target_addr=\"127.0.0.1:9\"} 100\n\
            tcp_open_connections{direction=\"admin\",peer=\"src\",target_addr=\"127.0.0.1:1\"} 1\n";
        let peer = |a: &str| {
            (a == "127.0.0.1:9").then(|| Peer {
                namespace: "prod".into(),
                workload: "db".into(),
                instance: "db-0".into(),
            })
        };
        store.ingest(&s, 1000, &parse(text).0, true, &peer);
        let q = |now| store.query(now, 10_000, |k| (k.family == Family::Tcp).then(|| k.dst_workload.clone()));
        let t = &q(1000)["db"];
        assert_eq!((t.open_connections, t.write_bytes), (2.0, 100.0));
        assert_eq!(q(1000).len(), 1, "admin connections are not traffic");
        // Gone for longer than three intervals: no longer open.
        assert_eq!(q(9000)["db"].open_connections, 0.0);
        store.retain_instances(&HashSet::new());
        assert_eq!(store.memory().instances, 0);
    }

    /// An hour of a demo-sized mesh (16 instances, each serving inbound, calling two services of two
    /// instances each over three routes, 41 latency buckets) scraped every 5 s: memory stays bounded by
    /// compaction, and a `stat all`-sized query is fast. Prints the numbers (`--nocapture`).
    #[test]
    #[ignore = "measurement; run with --ignored --nocapture"]
    fn an_hour_of_demo_traffic() {
        let bounds: Vec<String> = [
            "0.5", "1", "1.5", "2", "2.5", "3", "4", "5", "7.5", "10", "15", "20", "25", "30", "40", "50", "75", "100",
            "150", "200", "250", "300", "400", "500", "750", "1000", "1500", "2000", "2500", "3000", "4000", "5000",
            "7500", "10000", "15000", "20000", "25000", "30000", "40000", "50000", "+Inf",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let page = |i: usize, n: u64| {
            let mut t = String::new();
            let hist = |t: &mut String, name: &str, labels: &str, n: u64| {
                for (j, le) in bounds.iter().enumerate() {
                    let c = if j >= 12 { n } else { n * j as u64 / 12 };
                    t.push_str(&format!("{name}{{{labels},le=\"{le}\"}} {c}\n"));
                }
            };
            let inbound =
                format!("direction=\"inbound\",target_addr=\"127.0.0.1:{i}\",tls=\"disabled\",status_code=\"200\"");
            t.push_str(&format!("response_total{{{inbound},classification=\"success\"}} {n}\n"));
            hist(&mut t, "response_latency_ms_bucket", &inbound, n);
            for d in 0..2 {
                for e in 0..2 {
                    let dst = format!(
                        "direction=\"outbound\",authority=\"svc{d}.prod.svc.cluster.local:80\",target_addr=\"127.0.0.1:{e}\",dst_deployment=\"svc{d}\",dst_namespace=\"prod\",dst_pod=\"svc{d}-{e}\",dst_service=\"svc{d}\",status_code=\"200\""
                    );
                    t.push_str(&format!("response_total{{{dst},classification=\"success\"}} {n}\n"));
                    hist(&mut t, "response_latency_ms_bucket", &dst, n);
                }
                for r in 0..3 {
                    let route = format!(
                        "direction=\"outbound\",dst=\"svc{d}.prod.svc.cluster.local:80\",rt_route=\"GET /r{r}\",status_code=\"200\""
                    );
                    t.push_str(&format!("route_response_total{{{route},classification=\"success\"}} {n}\n"));
                    t.push_str(&format!("route_actual_response_total{{{route},classification=\"success\"}} {n}\n"));
                    hist(&mut t, "route_response_latency_ms_bucket", &route, n);
                }
            }
            t.push_str(&format!(
                "tcp_read_bytes_total{{direction=\"inbound\",peer=\"src\",target_addr=\"x\"}} {}\n",
                n * 100
            ));
            t.push_str("tcp_open_connections{direction=\"inbound\",peer=\"src\",target_addr=\"x\"} 2\n");
            parse(&t).0
        };
        let store = MetricStore::new(Settings::new(5000, 3_600_000));
        let sources: Vec<Source> = (0..16).map(|i| src(&format!("w{}", i / 2), i)).collect();
        let started = std::time::Instant::now();
        for round in 0..720u64 {
            let at = round * 5000;
            for (i, s) in sources.iter().enumerate() {
                let mut p = page(i, round * 5);
                // Make some buckets move differently per round.
                for smp in p.iter_mut() {
                    smp.value += (round * (i as u64 % 3)) as f64;
                }
                store.ingest(s, at, &p, true, &no_peer);
            }
            store.compact(at);
        }
        let ingest = started.elapsed();
        let mem = store.memory();
        let now = 719 * 5000;
        let t = std::time::Instant::now();
        for family in [Family::Http, Family::Tcp] {
            for by in 0..3 {
                let r = store.query(now, 3_600_000, |k| {
                    (k.family == family && !k.outbound).then(|| match by {
                        0 => k.workload.clone(),
                        1 => k.instance.clone(),
                        _ => k.namespace.clone(),
                    })
                });
                assert!(!r.is_empty());
            }
        }
        let query_1h = t.elapsed();
        let t = std::time::Instant::now();
        let r = store.query(now, 60_000, |k| (k.family == Family::Http && !k.outbound).then(|| k.workload.clone()));
        let query_1m = t.elapsed();
        println!(
            "hour of demo traffic: {mem:?}; ingest of 720 rounds {ingest:?}; stat-all-sized query over 1h {query_1h:?}, one 1m query {query_1m:?}; p99 {:?}",
            r["w0"].quantile(0.99)
        );
        assert!(mem.slots <= 130 + 60, "{mem:?}");
        assert!(mem.slot_bytes < 8 << 20, "{mem:?}");
    }

    /// The accuracy check, on the store alone: latencies from a known smooth distribution (90% in
    /// 8–12 ms, 8% in 80–120 ms, 2% in 700–900 ms) bucketed with the proxy's bounds and scraped twelve
    /// times → p50/p95/p99 over the whole window within max(5%, one bucket width) of the exact sample
    /// quantiles, and the success rate exact.
    #[test]
    fn quantiles_match_a_known_distribution_within_a_bucket() {
        let bounds = [
            0.5,
            1.0,
            1.5,
            2.0,
            2.5,
            3.0,
            4.0,
            5.0,
            7.5,
            10.0,
            15.0,
            20.0,
            25.0,
            30.0,
            40.0,
            50.0,
            75.0,
            100.0,
            150.0,
            200.0,
            250.0,
            300.0,
            400.0,
            500.0,
            750.0,
            1000.0,
            1500.0,
            2000.0,
            2500.0,
            3000.0,
            4000.0,
            5000.0,
            7500.0,
            10000.0,
            f64::INFINITY,
        ];
        let mut seed: u64 = 42;
        let mut uniform = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        let store = MetricStore::new(Settings::new(1000, 3_600_000));
        let s = src("web", 0);
        let mut cumulative = vec![0u64; bounds.len()];
        let mut all = Vec::new();
        let (mut ok, mut failed) = (0u64, 0u64);
        for round in 0..=12u64 {
            if round > 0 {
                for _ in 0..1000 {
                    let p = uniform();
                    let v = if p < 0.90 {
                        8.0 + 4.0 * uniform()
                    } else if p < 0.98 {
                        80.0 + 40.0 * uniform()
                    } else {
                        700.0 + 200.0 * uniform()
                    };
                    all.push(v);
                    for (i, b) in bounds.iter().enumerate() {
                        if v <= *b {
                            cumulative[i] += 1;
                        }
                    }
                    if uniform() < 0.003 { failed += 1 } else { ok += 1 }
                }
            }
            let mut text = format!(
                "response_total{{direction=\"inbound\",classification=\"success\"}} {ok}\n\
                 response_total{{direction=\"inbound\",classification=\"failure\"}} {failed}\n"
            );
            for (b, c) in bounds.iter().zip(&cumulative) {
                let le = if b.is_infinite() { "+Inf".to_string() } else { b.to_string() };
                text.push_str(&format!("response_latency_ms_bucket{{direction=\"inbound\",le=\"{le}\"}} {c}\n"));
            }
            store.ingest(&s, round * 1000, &parse(&text).0, round == 0, &no_peer);
        }
        all.sort_by(f64::total_cmp);
        let t = &inbound(&store, 12_000, 12_000)["web"];
        assert_eq!(t.success_rate(), Some(ok as f64 / (ok + failed) as f64));
        for q in [0.5, 0.95, 0.99] {
            let exact = all[(q * all.len() as f64) as usize - 1];
            let got = t.quantile(q).unwrap();
            let i = bounds.iter().position(|b| exact <= *b).unwrap();
            let width = bounds[i] - if i == 0 { 0.0 } else { bounds[i - 1] };
            let tolerance = (0.05 * exact).max(width);
            assert!((got - exact).abs() <= tolerance, "p{}: {got} vs exact {exact} (tolerance {tolerance})", q * 100.0);
        }
    }
}
