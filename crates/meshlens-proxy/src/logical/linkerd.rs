//! Linkerd's route families for routes compiled from HTTPRoutes/GRPCRoutes, labelled as Linkerd's proxy
//! labels them (`parent_*`, `route_*`, `hostname`, and `backend_*` per backend; reference/linkerd-routes.md
//! §3.1): per request `outbound_{http,grpc}_route_request_duration_seconds` (buckets 0.05, 0.5, 1, 10 s)
//! and `_request_statuses_total`; per attempt `_backend_requests_total`,
//! `_backend_response_duration_seconds` (buckets 0.025 … 10 s, to the response head) and
//! `_backend_response_statuses_total`. Label sets are built once per route configuration; a status series
//! is created the first time its status is seen on the route or backend.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use meshlens_api::ProxyErrorReason;

use crate::discovery::ServicePortRef;
use crate::metrics::{Counter, CounterFamily, Family, LabelSet, Metric, Registry};

/// Bucket bounds in microseconds, `+Inf` not included.
pub trait Bounds: Send + Sync + 'static {
    const US: &'static [u64];
}

/// Linkerd's request-duration bounds: 0.05, 0.5, 1, 10 s.
pub struct RequestBounds;
impl Bounds for RequestBounds {
    const US: &'static [u64] = &[50_000, 500_000, 1_000_000, 10_000_000];
}

/// Linkerd's backend response-duration bounds: 0.025, 0.05, 0.1, 0.25, 0.5, 1, 10 s.
pub struct BackendBounds;
impl Bounds for BackendBounds {
    const US: &'static [u64] = &[25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 10_000_000];
}

/// A histogram in seconds with the bounds `B`.
#[derive(Debug)]
pub struct SecondsHistogram<B> {
    buckets: Box<[AtomicU64]>,
    sum_us: AtomicU64,
    bounds: PhantomData<B>,
}

impl<B: Bounds> Default for SecondsHistogram<B> {
    fn default() -> Self {
        let buckets = (0..=B::US.len()).map(|_| AtomicU64::new(0)).collect();
        SecondsHistogram { buckets, sum_us: AtomicU64::new(0), bounds: PhantomData }
    }
}

impl<B: Bounds> SecondsHistogram<B> {
    pub fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[B::US.partition_point(|&b| b < us)].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }
}

impl<B: Bounds> Metric for SecondsHistogram<B> {
    const TYPE: &'static str = "histogram";

    fn encode(&self, name: &str, labels: &str, out: &mut String) {
        use std::fmt::Write as _;
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Relaxed);
            let le = B::US.get(i).map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
        }
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// The families of one protocol.
struct Families {
    duration: Family<SecondsHistogram<RequestBounds>>,
    statuses: CounterFamily,
    backend_requests: CounterFamily,
    backend_duration: Family<SecondsHistogram<BackendBounds>>,
    backend_statuses: CounterFamily,
}

/// The families, one set per protocol.
pub struct LinkerdRouteFamilies {
    http: Families,
    grpc: Families,
}

impl LinkerdRouteFamilies {
    pub fn register(reg: &Registry) -> LinkerdRouteFamilies {
        let families = |proto: &str| {
            let name = |suffix: &str| format!("outbound_{proto}_route_{suffix}");
            Families {
                duration: reg.family(
                    &name("request_duration_seconds"),
                    "Time from a request's arrival to its response's end, per HTTPRoute/GRPCRoute (Linkerd's family).",
                ),
                statuses: reg.counter_family(
                    &name("request_statuses_total"),
                    "Completed requests per HTTPRoute/GRPCRoute by status and error (Linkerd's family).",
                ),
                backend_requests: reg.counter_family(
                    &name("backend_requests_total"),
                    "Attempts sent to each backend of an HTTPRoute/GRPCRoute (Linkerd's family).",
                ),
                backend_duration: reg.family(
                    &name("backend_response_duration_seconds"),
                    "Time from an attempt's start to its response head, per route backend (Linkerd's family).",
                ),
                backend_statuses: reg.counter_family(
                    &name("backend_response_statuses_total"),
                    "Attempts per route backend by status and error (Linkerd's family).",
                ),
            }
        };
        LinkerdRouteFamilies { http: families("http"), grpc: families("grpc") }
    }

    /// The handles of one route of `sp` (`kind` `HTTPRoute` or `GRPCRoute`, `group` its API group), with
    /// those of each backend it may send to (`backends`: authorities `name.ns.svc.domain:port`; the apex
    /// service itself always).
    pub fn route(
        &self,
        sp: &ServicePortRef,
        kind: &str,
        group: &str,
        name: &str,
        backends: &[&str],
    ) -> LinkerdRouteMetrics {
        let grpc = kind == "GRPCRoute";
        let labels = LabelSet::new()
            .with("parent_group", "core")
            .with("parent_kind", "Service")
            .with("parent_namespace", &sp.namespace)
            .with("parent_name", &sp.name)
            .with("parent_port", &sp.port.to_string())
            .with("parent_section_name", "")
            .with("route_group", group)
            .with("route_kind", kind)
            .with("route_namespace", &sp.namespace)
            .with("route_name", name)
            .with("hostname", "");
        let f = if grpc { &self.grpc } else { &self.http };
        let backend = |ns: &str, name: &str, port: &str| {
            let labels = labels
                .clone()
                .with("backend_group", "core")
                .with("backend_kind", "Service")
                .with("backend_namespace", ns)
                .with("backend_name", name)
                .with("backend_port", port)
                .with("backend_section_name", "");
            BackendMetrics {
                requests: f.backend_requests.get_or_create(&labels),
                duration: f.backend_duration.get_or_create(&labels),
                statuses: Statuses::new(&f.backend_statuses, labels, grpc),
            }
        };
        let apex = backend(&sp.namespace, &sp.name, &sp.port.to_string());
        let backends = backends
            .iter()
            .map(|authority| {
                // `name.ns.svc.domain:port`
                let (host, port) = authority.rsplit_once(':').unwrap_or((authority, ""));
                let mut parts = host.splitn(3, '.');
                let (name, ns) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
                (authority.to_string(), backend(ns, name, port))
            })
            .collect();
        LinkerdRouteMetrics {
            duration: f.duration.get_or_create(&labels),
            statuses: Statuses::new(&f.statuses, labels, grpc),
            apex,
            backends,
        }
    }
}

/// One route's handles.
pub struct LinkerdRouteMetrics {
    duration: Arc<SecondsHistogram<RequestBounds>>,
    statuses: Statuses,
    apex: BackendMetrics,
    backends: Vec<(String, BackendMetrics)>,
}

/// One backend's handles on a route.
pub struct BackendMetrics {
    requests: Arc<Counter>,
    duration: Arc<SecondsHistogram<BackendBounds>>,
    statuses: Statuses,
}

impl BackendMetrics {
    /// Counts an attempt as it is sent.
    pub fn sent(&self) {
        self.requests.inc();
    }

    /// Counts an attempt's response head, `elapsed` after the attempt started.
    pub fn answered(&self, outcome: Outcome, elapsed: Duration) {
        self.duration.observe(elapsed);
        self.statuses.count(outcome);
    }
}

/// A status counter family with one label set, its series kept as they appear (a handful each).
struct Statuses {
    family: CounterFamily,
    labels: LabelSet,
    grpc: bool,
    seen: RwLock<Vec<(Outcome, Arc<Counter>)>>,
}

impl Statuses {
    fn new(family: &CounterFamily, labels: LabelSet, grpc: bool) -> Statuses {
        Statuses { family: family.clone(), labels, grpc, seen: RwLock::new(Vec::new()) }
    }

    fn count(&self, outcome: Outcome) {
        let seen = self.seen.read().unwrap_or_else(|e| e.into_inner());
        let found = seen.iter().find(|(o, _)| *o == outcome).map(|(_, c)| c.clone());
        drop(seen);
        let counter = found.unwrap_or_else(|| {
            let (status, error) = match outcome {
                Outcome::Status(s) if self.grpc => (grpc_code_name(s).to_string(), ""),
                Outcome::Status(s) => (s.to_string(), ""),
                Outcome::Error(e) => (String::new(), e),
            };
            let key = if self.grpc { "grpc_status" } else { "http_status" };
            let labels = self.labels.clone().with(key, &status).with("error", error);
            let counter = self.family.get_or_create(&labels);
            self.seen.write().unwrap_or_else(|e| e.into_inner()).push((outcome, counter.clone()));
            counter
        });
        counter.inc();
    }
}

/// What a request ended with: a status (HTTP, or gRPC code) or a proxy error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Status(u32),
    Error(&'static str),
}

impl Outcome {
    /// The outcome of a response: the proxy's `error` when it made it, else the status (`grpc` for a gRPC
    /// route: its `grpc-status`, OK when there is none yet).
    pub fn of(grpc: bool, status: u16, grpc_status: Option<u32>, error: Option<ProxyErrorReason>) -> Outcome {
        match error {
            Some(e) => Outcome::Error(error_name(e)),
            None if grpc => Outcome::Status(grpc_status.unwrap_or(0)),
            None => Outcome::Status(status.into()),
        }
    }
}

impl LinkerdRouteMetrics {
    pub fn is_grpc(&self) -> bool {
        self.statuses.grpc
    }

    /// Counts one request that ended after `elapsed`.
    pub fn record(&self, outcome: Outcome, elapsed: Duration) {
        self.duration.observe(elapsed);
        self.statuses.count(outcome);
    }

    /// The handles of the backend an attempt went to (`None`: the apex service).
    pub fn backend(&self, authority: Option<&str>) -> &BackendMetrics {
        authority.and_then(|a| self.backends.iter().find(|(b, _)| b == a)).map_or(&self.apex, |(_, m)| m)
    }
}

/// Linkerd's `error` label value for a proxy-made response.
fn error_name(e: ProxyErrorReason) -> &'static str {
    match e {
        ProxyErrorReason::Timeout => "REQUEST_TIMEOUT",
        ProxyErrorReason::Failfast => "FAIL_FAST",
        ProxyErrorReason::LoadShed => "LOAD_SHED",
        ProxyErrorReason::ConnectError | ProxyErrorReason::ConnectTimeout => "IO",
        _ => "UNKNOWN",
    }
}

/// gRPC status code names as Linkerd writes them (`OK`, `UNAVAILABLE`, …).
fn grpc_code_name(code: u32) -> &'static str {
    const NAMES: [&str; 17] = [
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    ];
    NAMES.get(code as usize).copied().unwrap_or("UNKNOWN")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_render_in_seconds_with_linkerds_buckets() {
        let h = SecondsHistogram::<RequestBounds>::default();
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_millis(700));
        h.observe(Duration::from_secs(30));
        let mut out = String::new();
        h.encode("d", "route_name=\"r\"", &mut out);
        let lines: Vec<_> = out.lines().collect();
        assert_eq!(
            lines,
            [
                "d_bucket{route_name=\"r\",le=\"0.05\"} 1",
                "d_bucket{route_name=\"r\",le=\"0.5\"} 1",
                "d_bucket{route_name=\"r\",le=\"1\"} 2",
                "d_bucket{route_name=\"r\",le=\"10\"} 2",
                "d_bucket{route_name=\"r\",le=\"+Inf\"} 3",
                "d_sum{route_name=\"r\"} 30.72",
                "d_count{route_name=\"r\"} 3",
            ]
        );
    }

    #[test]
    fn outcomes_as_linkerd_labels_them() {
        assert_eq!(grpc_code_name(0), "OK");
        assert_eq!(grpc_code_name(14), "UNAVAILABLE");
        assert_eq!(grpc_code_name(99), "UNKNOWN");
        let timeout = Outcome::of(false, 504, None, Some(ProxyErrorReason::Timeout));
        assert!(timeout == Outcome::Error("REQUEST_TIMEOUT"));
        assert!(Outcome::of(true, 200, None, None) == Outcome::Status(0), "a gRPC stream without status is OK");
        assert!(Outcome::of(false, 503, None, None) == Outcome::Status(503));
    }
}
