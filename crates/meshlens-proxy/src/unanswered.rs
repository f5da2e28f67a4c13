//! Every request accounted for: a guard counts a request on one series when it is accepted and its
//! response when it is settled; dropped unsettled, it counts the request as `cancelled` (the caller closed,
//! reset or timed out first) or as cut by the route timeout — so each series keeps the law requests =
//! responses + cancellations + in flight (DESIGN.md §5).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use meshlens_api::ProxyErrorReason;
use meshlens_api::labels::ERROR_CANCELLED;

use crate::errors::Caller;
use crate::metrics::HttpTargetMetrics;

/// One request on one series (endpoint, inbound, route effective or actual), until its response is counted.
pub(crate) struct Unanswered {
    metrics: Arc<HttpTargetMetrics>,
    started: Instant,
    grpc: bool,
    /// The status of the response head already on its way to the caller (0: none yet).
    status: u16,
    /// Set by the route tier when its timeout cut this request.
    timed_out: Option<Arc<AtomicBool>>,
    settled: bool,
}

impl Unanswered {
    /// Counts a request of `caller` on `metrics` (`request_total += 1`); its elapsed time runs from when
    /// the proxy received it.
    pub(crate) fn start(metrics: &Arc<HttpTargetMetrics>, caller: &Caller) -> Unanswered {
        Unanswered::start_at(metrics, caller.grpc, caller.received)
    }

    /// Counts a request on `metrics` that was received at `started`.
    pub(crate) fn start_at(metrics: &Arc<HttpTargetMetrics>, grpc: bool, started: Instant) -> Unanswered {
        metrics.request();
        Unanswered { metrics: metrics.clone(), started, grpc, status: 0, timed_out: None, settled: false }
    }

    /// A request the route tier may cut with its timeout: dropped after it set `flag`, it counts as the
    /// proxy's `timeout`, not as a cancellation.
    pub(crate) fn cut_by(mut self, flag: Option<&Arc<AtomicBool>>) -> Unanswered {
        self.timed_out = flag.cloned();
        self
    }

    /// The response head (`status`) is on its way to the caller.
    pub(crate) fn head(&mut self, status: u16) {
        self.status = status;
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Counts the response (see [`HttpTargetMetrics::response`]).
    pub(crate) fn settle(
        mut self,
        status: u16,
        grpc_status: Option<u32>,
        failure: bool,
        error: Option<&str>,
        latency: Option<Duration>,
    ) {
        self.settled = true;
        self.metrics.response(status, grpc_status, failure, error, latency);
    }

    /// Counts the request as cancelled by its caller now (or as cut, when the route's timeout set its flag).
    pub(crate) fn cancel(self) {
        drop(self);
    }
}

impl Drop for Unanswered {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let elapsed = self.started.elapsed();
        if self.status == 0 && self.timed_out.as_ref().is_some_and(|t| t.load(Ordering::Relaxed)) {
            let reason = ProxyErrorReason::Timeout;
            let (status, grpc_status) =
                if self.grpc { (200, Some(reason.grpc_status())) } else { (reason.http_status(), None) };
            self.metrics.response(status, grpc_status, true, Some(reason.as_str()), Some(elapsed));
        } else {
            self.metrics.response(self.status, None, true, Some(ERROR_CANCELLED), Some(elapsed));
        }
    }
}
