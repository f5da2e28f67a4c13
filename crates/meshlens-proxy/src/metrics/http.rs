//! Linkerd's HTTP families `request_total`, `response_latency_ms` and `response_total`, per target.
//!
//! A target (an outbound endpoint, the inbound app, …) is resolved once; after that, counting a
//! response on the common path (plain HTTP status, or gRPC status with HTTP 200) is a few array
//! indexings, a `OnceLock` read and relaxed atomic adds. Responses carrying an `error` label, and
//! unusual status codes, take a lock-free scan over the target's few series instead.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use meshlens_api::labels;

use super::encode::{escape_label_value_into, write_header, write_sample};
use super::extremes::{Extremes, current_window};
use super::registry::{Collect, Registry};
use super::series_list::SeriesList;
use super::{Counter, Histogram, LabelSet};

const REQUEST_HELP: &str = "Total count of HTTP requests.";
const RESPONSE_HELP: &str = "Total count of HTTP responses.";
const LATENCY_HELP: &str = "Elapsed times between a request's headers being received and its response beginning.";
const LATENCY_MAX_HELP: &str = "The largest latency (ms) of the series observed in the last 10-20 s.";
const LATENCY_MIN_HELP: &str = "The smallest latency (ms) of the series observed in the last 10-20 s.";

/// gRPC status codes 0 (OK) ..= 16 (UNAUTHENTICATED) have a slot each.
const GRPC_CODES: usize = 17;
/// Status codes 100..=599 have a slot each, allocated per hundred on first use.
const FIRST_STATUS: u16 = 100;
const STATUS_CHUNKS: usize = 5;

/// The HTTP families of one registry. Cheap to clone.
#[derive(Clone)]
pub struct HttpMetrics {
    inner: Arc<HttpFamilies>,
}

struct HttpFamilies {
    request_total: String,
    response_total: String,
    latency: Option<String>,
    /// `<latency>_max` and `<latency>_min`.
    extremes: Option<[String; 2]>,
    targets: Mutex<HashMap<LabelSet, Arc<HttpTargetMetrics>>>,
    order: SeriesList<HttpTargetMetrics>,
}

impl HttpMetrics {
    /// Registers `request_total`, `response_latency_ms` and `response_total`.
    pub fn register(reg: &Registry) -> HttpMetrics {
        HttpMetrics::register_prefixed(reg, "", true)
    }

    /// Registers `<prefix>request_total`, `<prefix>response_total` and, with `latency`,
    /// `<prefix>response_latency_ms`: e.g. `route_` (with latency), `route_actual_` (without), `control_`.
    ///
    /// # Panics
    /// When one of the names is already registered.
    pub fn register_prefixed(reg: &Registry, prefix: &str, latency: bool) -> HttpMetrics {
        let inner = Arc::new(HttpFamilies {
            request_total: format!("{prefix}{}", labels::REQUEST_TOTAL),
            response_total: format!("{prefix}{}", labels::RESPONSE_TOTAL),
            latency: latency.then(|| format!("{prefix}{}", labels::RESPONSE_LATENCY_MS)),
            extremes: latency.then(|| {
                [labels::LATENCY_MAX_SUFFIX, labels::LATENCY_MIN_SUFFIX]
                    .map(|suffix| format!("{prefix}{}{suffix}", labels::RESPONSE_LATENCY_MS))
            }),
            targets: Mutex::new(HashMap::new()),
            order: SeriesList::default(),
        });
        let mut names = vec![inner.request_total.as_str()];
        names.extend(inner.latency.as_deref());
        names.extend(inner.extremes.iter().flatten().map(String::as_str));
        names.push(&inner.response_total);
        reg.register(&names, inner.clone());
        HttpMetrics { inner }
    }

    /// The handle for one target, created on first use. Locks and hashes: call once per target.
    pub fn target(&self, labels: LabelSet) -> Arc<HttpTargetMetrics> {
        let mut targets = self.inner.targets.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = targets.get(&labels) {
            return t.clone();
        }
        let t = Arc::new(HttpTargetMetrics::new(labels.clone(), self.inner.latency.is_some()));
        targets.insert(labels, t.clone());
        self.inner.order.push(t.clone());
        t
    }

    /// Number of targets (each has one `request_total` series).
    #[cfg(test)]
    pub fn target_count(&self) -> usize {
        self.inner.order.len()
    }

    /// Number of `response_total` series over all targets.
    #[cfg(test)]
    pub fn series_count(&self) -> usize {
        self.inner.order.snapshot().iter().map(|t| t.responses.len()).sum()
    }
}

impl Collect for HttpFamilies {
    fn encode(&self, out: &mut String) {
        let targets = self.order.snapshot();
        write_header(out, &self.request_total, REQUEST_HELP, "counter");
        for t in targets.iter() {
            write_sample(out, &self.request_total, "", &[t.labels.as_str()], t.requests.get());
        }
        if let Some(name) = &self.latency {
            write_header(out, name, LATENCY_HELP, "histogram");
            for t in targets.iter() {
                for s in t.latencies.snapshot().iter() {
                    s.hist.encode_series(out, name, t.labels.as_str(), &s.labels);
                }
            }
        }
        if let Some(names) = &self.extremes {
            let window = current_window();
            for ((name, help), max) in names.iter().zip([LATENCY_MAX_HELP, LATENCY_MIN_HELP]).zip([true, false]) {
                write_header(out, name, help, "gauge");
                for t in targets.iter() {
                    for s in t.latencies.snapshot().iter() {
                        s.extremes.encode(out, name, &[t.labels.as_str(), &s.labels], window, max);
                    }
                }
            }
        }
        write_header(out, &self.response_total, RESPONSE_HELP, "counter");
        for t in targets.iter() {
            for s in t.responses.snapshot().iter() {
                write_sample(out, &self.response_total, "", &[t.labels.as_str(), &s.labels], s.count.get());
            }
        }
    }
}

/// The HTTP metrics of one target.
pub struct HttpTargetMetrics {
    labels: LabelSet,
    record_latency: bool,
    requests: Counter,
    /// `[status / 100 - 1][status % 100]` for status 100..=599.
    by_status: [OnceLock<Box<[StatusSlot; 100]>>; STATUS_CHUNKS],
    /// `[grpc code][failure]` for responses with HTTP status 200 and no error.
    grpc: [[OnceLock<Arc<ResponseSeries>>; 2]; GRPC_CODES],
    /// Every `response_total` series of this target, in creation order.
    responses: SeriesList<ResponseSeries>,
    /// Every `response_latency_ms` series of this target, in creation order.
    latencies: SeriesList<LatencySeries>,
}

struct StatusSlot {
    latency: OnceLock<Arc<LatencySeries>>,
    /// `[failure]` for responses without gRPC status and error.
    plain: [OnceLock<Arc<ResponseSeries>>; 2],
}

impl StatusSlot {
    const fn new() -> StatusSlot {
        StatusSlot { latency: OnceLock::new(), plain: [const { OnceLock::new() }; 2] }
    }
}

struct ResponseSeries {
    status: u16,
    grpc: Option<u32>,
    failure: bool,
    error: Option<Box<str>>,
    /// `status_code="…",classification="…",grpc_status="…",error="…"`
    labels: Box<str>,
    count: Counter,
}

struct LatencySeries {
    status: u16,
    /// `status_code="…"`
    labels: Box<str>,
    hist: Histogram,
    extremes: Extremes,
}

impl HttpTargetMetrics {
    fn new(labels: LabelSet, record_latency: bool) -> HttpTargetMetrics {
        HttpTargetMetrics {
            labels,
            record_latency,
            requests: Counter::new(),
            by_status: [const { OnceLock::new() }; STATUS_CHUNKS],
            grpc: [const { [const { OnceLock::new() }; 2] }; GRPC_CODES],
            responses: SeriesList::default(),
            latencies: SeriesList::default(),
        }
    }

    /// Requests counted so far.
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }

    /// Counts one request: `request_total{<target>} += 1`.
    #[inline]
    pub fn request(&self) {
        self.requests.inc();
    }

    /// Counts one response in `response_total{<target>,status_code,classification,grpc_status,error}`
    /// and, when `latency` is given, records it in `response_latency_ms{<target>,status_code}`.
    ///
    /// `status` 0 means no response head reached the caller (`status_code=""`: a cancellation).
    /// `grpc_status` is the gRPC status seen (trailers or trailers-only headers); `failure` the
    /// classification; `error` the reason token when the proxy made the response or the stream
    /// failed (`timeout`, `peer:timeout`, …). Never locks; allocates only the first time a
    /// combination occurs on this target.
    pub fn response(
        &self,
        status: u16,
        grpc_status: Option<u32>,
        failure: bool,
        error: Option<&str>,
        latency: Option<Duration>,
    ) {
        let class = usize::from(failure);
        let new = || self.new_response(status, grpc_status, failure, error);
        let counted = match (grpc_status, error) {
            (None, None) => self.status_slot(status).map(|slot| slot.plain[class].get_or_init(new).count.inc()),
            (Some(code), None) if status == 200 && (code as usize) < GRPC_CODES => {
                self.grpc[code as usize][class].get_or_init(new).count.inc();
                Some(())
            }
            _ => None,
        };
        if counted.is_none() {
            let matches = |s: &ResponseSeries| s.is(status, grpc_status, failure, error);
            let make = || ResponseSeries::new(status, grpc_status, failure, error);
            self.responses.find_or_push(matches, make).count.inc();
        }
        if let Some(d) = latency.filter(|_| self.record_latency) {
            match self.status_slot(status) {
                Some(slot) => slot.latency.get_or_init(|| self.new_latency(status)).observe(d),
                None => self.latencies.find_or_push(|s| s.status == status, || LatencySeries::new(status)).observe(d),
            }
        }
    }

    #[inline]
    fn status_slot(&self, status: u16) -> Option<&StatusSlot> {
        let offset = usize::from(status.checked_sub(FIRST_STATUS)?);
        let chunk = self.by_status.get(offset / 100)?;
        Some(&chunk.get_or_init(|| Box::new([const { StatusSlot::new() }; 100]))[offset % 100])
    }

    /// Creates a series whose key is guarded by a `OnceLock` and appends it to the ordered list.
    fn new_response(&self, status: u16, grpc: Option<u32>, failure: bool, error: Option<&str>) -> Arc<ResponseSeries> {
        let s = Arc::new(ResponseSeries::new(status, grpc, failure, error));
        self.responses.push(s.clone());
        s
    }

    fn new_latency(&self, status: u16) -> Arc<LatencySeries> {
        let s = Arc::new(LatencySeries::new(status));
        self.latencies.push(s.clone());
        s
    }
}

impl ResponseSeries {
    fn new(status: u16, grpc: Option<u32>, failure: bool, error: Option<&str>) -> ResponseSeries {
        let mut l = String::with_capacity(80);
        let class = if failure { "failure" } else { "success" };
        let _ = write!(
            l,
            "{}=\"{}\",{}=\"{class}\",{}=\"",
            labels::STATUS_CODE,
            StatusText(status),
            labels::CLASSIFICATION,
            labels::GRPC_STATUS
        );
        if let Some(code) = grpc {
            let _ = write!(l, "{code}");
        }
        let _ = write!(l, "\",{}=\"", labels::ERROR);
        escape_label_value_into(&mut l, error.unwrap_or(""));
        l.push('"');
        ResponseSeries { status, grpc, failure, error: error.map(Into::into), labels: l.into(), count: Counter::new() }
    }

    #[inline]
    fn is(&self, status: u16, grpc: Option<u32>, failure: bool, error: Option<&str>) -> bool {
        self.status == status && self.grpc == grpc && self.failure == failure && self.error.as_deref() == error
    }
}

impl LatencySeries {
    fn new(status: u16) -> LatencySeries {
        let labels = format!("{}=\"{}\"", labels::STATUS_CODE, StatusText(status)).into();
        LatencySeries { status, labels, hist: Histogram::new(), extremes: Extremes::default() }
    }

    #[inline]
    fn observe(&self, d: Duration) {
        self.hist.observe(d);
        self.extremes.observe(d);
    }
}

/// A `status_code` label value: empty for 0, a request cancelled before any response head.
struct StatusText(u16);

impl std::fmt::Display for StatusText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 == 0 { Ok(()) } else { write!(f, "{}", self.0) }
    }
}
