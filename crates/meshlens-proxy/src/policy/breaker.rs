//! The per-endpoint circuit breaker: Linkerd's "consecutive failures" failure accrual
//! (`outbound/src/http/breaker/consecutive_failures.rs`, backoff from `linkerd/exp-backoff`), as a state
//! machine driven by the request path.
//!
//! - **Closed**: every request is admitted; `max_failures` consecutive failures (default 7) open it.
//! - **Open** until a penalty has passed: nothing is admitted; responses of requests admitted earlier are
//!   ignored. The penalty is `min_penalty × 2^n` capped at `max_penalty` (defaults 1 s and 1 min), `n`
//!   counting the failed probations since the breaker last closed, plus a uniform jitter of up to
//!   `jitter × base` (default 0.5), the total capped at `max_penalty` — Linkerd's `ExponentialBackoff`.
//! - **Probation**, once the penalty has passed: exactly one request (the probe) is admitted; its outcome
//!   decides — success closes the breaker, failure opens it again with the next, larger penalty.
//!
//! Linkerd names these the other way round ("open" = traffic flows, "shut" = ejected); we use the usual
//! breaker words. The transition from Open to Probation happens with time, observed by whichever call comes
//! first ([`ConsecutiveFailures::admits`], [`ConsecutiveFailures::record`], [`ConsecutiveFailures::state`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

/// The breaker's settings (Linkerd's `balancer.linkerd.io/failure-accrual-consecutive-*` defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BreakerParams {
    /// Consecutive failures that open the breaker (≥ 1). Default 7.
    pub max_failures: u32,
    /// The first penalty. Default 1 s.
    pub min_penalty: Duration,
    /// The longest penalty, jitter included (> 0, ≥ `min_penalty`). Default 1 min.
    pub max_penalty: Duration,
    /// The share of the base penalty that may be added at random (0..=100, finite). Default 0.5.
    pub jitter: f64,
    /// Beyond Linkerd: a probe whose outcome was not recorded within this time (its request was cancelled,
    /// say) is presumed lost and the probation slot is offered again, so a lost probe cannot keep the
    /// endpoint out for ever. Default 1 min.
    pub probe_timeout: Duration,
}

impl Default for BreakerParams {
    fn default() -> BreakerParams {
        BreakerParams {
            max_failures: 7,
            min_penalty: Duration::from_secs(1),
            max_penalty: Duration::from_secs(60),
            jitter: 0.5,
            probe_timeout: Duration::from_secs(60),
        }
    }
}

impl BreakerParams {
    /// Checks the settings as Linkerd's `ExponentialBackoff::try_new` does, plus `max_failures ≥ 1`.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_failures == 0 {
            return Err("max failures must be at least 1".to_string());
        }
        if self.max_penalty.is_zero() {
            return Err("max penalty must be non-zero".to_string());
        }
        if self.min_penalty > self.max_penalty {
            return Err("max penalty must not be less than min penalty".to_string());
        }
        if !self.jitter.is_finite() || !(0.0..=100.0).contains(&self.jitter) {
            return Err(format!("jitter ratio {} is not in 0..=100", self.jitter));
        }
        Ok(())
    }

    /// The base penalty after `failed_probes` failed probations: `min × 2^n`, capped at `max`.
    pub fn base_penalty(&self, failed_probes: u32) -> Duration {
        self.min_penalty
            .checked_mul(2u32.saturating_pow(failed_probes))
            .unwrap_or(self.max_penalty)
            .min(self.max_penalty)
    }
}

/// The breaker's state, as the admin `/endpoints` view shows it (`{"state":"open","remaining_ms":850}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Ejected; probation starts in `remaining_ms`.
    Open {
        /// Milliseconds until probation.
        remaining_ms: u64,
    },
    /// One probe request may go (or has gone) through.
    Probation,
}

impl BreakerState {
    /// `closed`, `open` or `probation`: the metric label of the state.
    pub fn as_str(&self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open { .. } => "open",
            BreakerState::Probation => "probation",
        }
    }
}

/// A state change, named by the state entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Entered Open (from Closed, or from a failed probation).
    Opened {
        /// How long it stays open (jitter included).
        penalty: Duration,
    },
    /// Entered Probation (the penalty passed).
    Probation,
    /// Entered Closed (the probe succeeded).
    Closed,
}

impl Transition {
    /// `open`, `probation` or `closed`: the metric label of the state entered.
    pub fn as_str(&self) -> &'static str {
        match self {
            Transition::Opened { .. } => "open",
            Transition::Probation => "probation",
            Transition::Closed => "closed",
        }
    }
}

/// How many times each state was entered, for the `…_breaker_transitions_total{state}` counter.
#[derive(Debug, Default)]
pub struct TransitionCounts {
    /// Times Open was entered.
    pub opened: AtomicU64,
    /// Times Probation was entered.
    pub probation: AtomicU64,
    /// Times Closed was entered (from probation).
    pub closed: AtomicU64,
}

impl TransitionCounts {
    fn count(&self, t: Transition) {
        let counter = match t {
            Transition::Opened { .. } => &self.opened,
            Transition::Probation => &self.probation,
            Transition::Closed => &self.closed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One endpoint's consecutive-failures breaker. Thread-safe; every call takes a short mutex.
///
/// The caller's contract: ask [`admits`](Self::admits) before sending a request to the endpoint (and send
/// it only on `true`); call [`record`](Self::record) once with the outcome of each request admitted. A
/// request that ends without an outcome may skip `record`; if it was the probe, the slot is offered again
/// after [`BreakerParams::probe_timeout`].
#[derive(Debug)]
pub struct ConsecutiveFailures {
    params: BreakerParams,
    inner: Mutex<Inner>,
    /// Every transition, counted as it happens (including Open → Probation, which only time causes).
    pub transitions: TransitionCounts,
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Failed probations since the breaker last closed: the exponent of the next penalty.
    failed_probes: u32,
    rng: fastrand::Rng,
}

#[derive(Clone, Copy, Debug)]
enum Phase {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// `probe`: when the probe was admitted, if it has been.
    Probation {
        probe: Option<Instant>,
    },
}

impl ConsecutiveFailures {
    /// A closed breaker with these settings (assumed [valid](BreakerParams::validate)).
    pub fn new(params: BreakerParams) -> ConsecutiveFailures {
        ConsecutiveFailures::with_rng(params, fastrand::Rng::new())
    }

    /// Like [`new`](Self::new), drawing the jitter from `rng` (seed it for reproducible penalties).
    pub fn with_rng(params: BreakerParams, rng: fastrand::Rng) -> ConsecutiveFailures {
        ConsecutiveFailures {
            params,
            inner: Mutex::new(Inner { phase: Phase::Closed { failures: 0 }, failed_probes: 0, rng }),
            transitions: TransitionCounts::default(),
        }
    }

    /// The settings.
    pub fn params(&self) -> &BreakerParams {
        &self.params
    }

    /// Whether a request may be sent to the endpoint now. In probation this takes the single probe slot
    /// (atomically: of racing callers exactly one gets `true`).
    pub fn admits(&self) -> bool {
        let now = Instant::now();
        let mut inner = self.lock();
        self.advance(&mut inner, now);
        match inner.phase {
            Phase::Closed { .. } => true,
            Phase::Open { .. } => false,
            Phase::Probation { probe: Some(at) } if now.saturating_duration_since(at) < self.params.probe_timeout => {
                false
            }
            Phase::Probation { .. } => {
                inner.phase = Phase::Probation { probe: Some(now) };
                true
            }
        }
    }

    /// Records the outcome of an admitted request; returns the transition it caused, if any. Outcomes that
    /// arrive while the breaker is open, or in probation before the probe was admitted, are stragglers of
    /// requests admitted earlier and are ignored (as Linkerd does while shut). In probation, the first
    /// outcome after the probe was admitted decides.
    pub fn record(&self, success: bool) -> Option<Transition> {
        let now = Instant::now();
        let mut inner = self.lock();
        self.advance(&mut inner, now);
        let transition = match inner.phase {
            Phase::Closed { failures } if success => {
                if failures != 0 {
                    inner.phase = Phase::Closed { failures: 0 };
                }
                None
            }
            Phase::Closed { failures } => {
                let failures = failures + 1;
                if failures >= self.params.max_failures {
                    inner.failed_probes = 0;
                    Some(self.open(&mut inner, now))
                } else {
                    inner.phase = Phase::Closed { failures };
                    None
                }
            }
            Phase::Open { .. } | Phase::Probation { probe: None } => None,
            Phase::Probation { probe: Some(_) } if success => {
                inner.phase = Phase::Closed { failures: 0 };
                inner.failed_probes = 0;
                Some(Transition::Closed)
            }
            Phase::Probation { probe: Some(_) } => {
                inner.failed_probes = inner.failed_probes.saturating_add(1);
                Some(self.open(&mut inner, now))
            }
        };
        if let Some(t) = transition {
            self.transitions.count(t);
        }
        transition
    }

    /// The state now, for the admin view.
    pub fn state(&self) -> BreakerState {
        let now = Instant::now();
        let mut inner = self.lock();
        self.advance(&mut inner, now);
        match inner.phase {
            Phase::Closed { .. } => BreakerState::Closed,
            Phase::Open { until } => {
                let remaining = until.saturating_duration_since(now);
                BreakerState::Open { remaining_ms: u64::try_from(remaining.as_millis()).unwrap_or(u64::MAX) }
            }
            Phase::Probation { .. } => BreakerState::Probation,
        }
    }

    /// Consecutive failures counted so far while closed (0 in the other states).
    pub fn consecutive_failures(&self) -> u32 {
        match self.lock().phase {
            Phase::Closed { failures } => failures,
            _ => 0,
        }
    }

    /// Open → Probation once the penalty has passed.
    fn advance(&self, inner: &mut Inner, now: Instant) {
        if let Phase::Open { until } = inner.phase
            && now >= until
        {
            inner.phase = Phase::Probation { probe: None };
            self.transitions.count(Transition::Probation);
        }
    }

    /// Enters Open with the penalty for `inner.failed_probes`.
    fn open(&self, inner: &mut Inner, now: Instant) -> Transition {
        let base = self.params.base_penalty(inner.failed_probes);
        let jitter = if self.params.jitter == 0.0 {
            Duration::ZERO
        } else {
            let extra = Duration::try_from_secs_f64(base.as_secs_f64() * inner.rng.f64() * self.params.jitter);
            extra.unwrap_or(Duration::MAX).min(self.params.max_penalty.saturating_sub(base))
        };
        let penalty = base + jitter;
        inner.phase = Phase::Open { until: now + penalty };
        Transition::Opened { penalty }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for ConsecutiveFailures {
    fn default() -> ConsecutiveFailures {
        ConsecutiveFailures::new(BreakerParams::default())
    }
}

#[cfg(test)]
#[path = "tests/breaker.rs"]
mod tests;
