//! Linkerd's route families for routes compiled from HTTPRoutes/GRPCRoutes:
//! `outbound_{http,grpc}_route_request_duration_seconds` (buckets 0.05, 0.5, 1, 10 s) and
//! `outbound_{http,grpc}_route_request_statuses_total`, labelled as Linkerd's proxy labels them
//! (`parent_*`, `route_*`, `hostname`; reference/linkerd-routes.md §3.1). Label sets are built once per
//! route configuration; a status series is created the first time its status is seen on the route.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use meshlens_api::ProxyErrorReason;

use crate::discovery::ServicePortRef;
use crate::metrics::{Counter, CounterFamily, Family, LabelSet, Metric, Registry};

/// Linkerd's request-duration bounds in microseconds (0.05, 0.5, 1, 10 s), `+Inf` not included.
const BOUNDS_US: [u64; 4] = [50_000, 500_000, 1_000_000, 10_000_000];

/// A histogram in seconds with Linkerd's route bounds.
#[derive(Debug, Default)]
pub struct SecondsHistogram {
    buckets: [std::sync::atomic::AtomicU64; BOUNDS_US.len() + 1],
    sum_us: std::sync::atomic::AtomicU64,
}

impl SecondsHistogram {
    pub fn observe(&self, d: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[BOUNDS_US.partition_point(|&b| b < us)].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }
}

impl Metric for SecondsHistogram {
    const TYPE: &'static str = "histogram";

    fn encode(&self, name: &str, labels: &str, out: &mut String) {
        use std::fmt::Write as _;
        use std::sync::atomic::Ordering::Relaxed;
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0u64;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Relaxed);
            let le = BOUNDS_US.get(i).map_or("+Inf".to_string(), |us| format!("{}", *us as f64 / 1e6));
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}");
        }
        let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_us.load(Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

/// The families, one pair per protocol.
pub struct LinkerdRouteFamilies {
    http: (Family<SecondsHistogram>, CounterFamily),
    grpc: (Family<SecondsHistogram>, CounterFamily),
}

impl LinkerdRouteFamilies {
    pub fn register(reg: &Registry) -> LinkerdRouteFamilies {
        let pair = |proto: &str| {
            (
                reg.family(
                    &format!("outbound_{proto}_route_request_duration_seconds"),
                    "Time from a request's arrival to its response's end, per HTTPRoute/GRPCRoute (Linkerd's family).",
                ),
                reg.counter_family(
                    &format!("outbound_{proto}_route_request_statuses_total"),
                    "Completed requests per HTTPRoute/GRPCRoute by status and error (Linkerd's family).",
                ),
            )
        };
        LinkerdRouteFamilies { http: pair("http"), grpc: pair("grpc") }
    }

    /// The handles of one route of `sp` (`kind` `HTTPRoute` or `GRPCRoute`, `group` its API group).
    pub fn route(&self, sp: &ServicePortRef, kind: &str, group: &str, name: &str) -> LinkerdRouteMetrics {
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
        let (duration, statuses) = if grpc { &self.grpc } else { &self.http };
        LinkerdRouteMetrics {
            duration: duration.get_or_create(&labels),
            statuses: statuses.clone(),
            labels,
            grpc,
            seen: Arc::new(RwLock::new(Vec::new())),
        }
    }
}

/// One route's handles. The status series are kept as they appear (a handful per route).
#[derive(Clone)]
pub struct LinkerdRouteMetrics {
    duration: Arc<SecondsHistogram>,
    statuses: CounterFamily,
    labels: LabelSet,
    grpc: bool,
    seen: Arc<RwLock<Seen>>,
}

/// The status series of a route, as they appeared.
type Seen = Vec<(Outcome, Arc<Counter>)>;

/// What a request ended with: a status (HTTP, or gRPC code) or a proxy error.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Status(u32),
    Error(&'static str),
}

impl Outcome {
    /// The outcome of a response the caller got: the proxy's `error` when it made it, else the status
    /// (`grpc` for a gRPC route: its `grpc-status`, OK when the stream ended without one).
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
        self.grpc
    }

    /// Counts one request that ended after `elapsed`.
    pub fn record(&self, outcome: Outcome, elapsed: Duration) {
        self.duration.observe(elapsed);
        let found = self
            .seen
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(o, _)| *o == outcome)
            .map(|(_, c)| c.clone());
        let counter = found.unwrap_or_else(|| {
            let (status, error) = match outcome {
                Outcome::Status(s) if self.grpc => (grpc_code_name(s).to_string(), ""),
                Outcome::Status(s) => (s.to_string(), ""),
                Outcome::Error(e) => (String::new(), e),
            };
            let key = if self.grpc { "grpc_status" } else { "http_status" };
            let labels = self.labels.clone().with(key, &status).with("error", error);
            let counter = self.statuses.get_or_create(&labels);
            self.seen.write().unwrap_or_else(|e| e.into_inner()).push((outcome, counter.clone()));
            counter
        });
        counter.inc();
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
        let h = SecondsHistogram::default();
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
