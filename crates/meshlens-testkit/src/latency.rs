//! A backend handler whose latency follows a known distribution (a mixture of uniform ranges) and which
//! fails a known share of requests, and exact sample quantiles: for tests of latency percentiles.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;

use crate::backend::{HandlerFuture, full};

/// The reference distribution: 90% uniform in 8–12 ms, 8% in 80–120 ms, 2% in 700–900 ms.
pub const REFERENCE_MIX: [(f64, f64, f64); 3] = [(0.90, 8.0, 12.0), (0.08, 80.0, 120.0), (0.02, 700.0, 900.0)];

/// Uniform numbers in [0, 1) from one shared SplitMix64 sequence (lock-free; any thread may draw).
#[derive(Debug)]
pub struct Uniform(AtomicU64);

impl Uniform {
    pub fn new(seed: u64) -> Self {
        Uniform(AtomicU64::new(seed))
    }

    pub fn next(&self) -> f64 {
        let mut z = self.0.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A draw from `mix` ((weight, from ms, to ms), weights summing to 1), in milliseconds.
    pub fn from_mix(&self, mix: &[(f64, f64, f64)]) -> f64 {
        let (pick, within) = (self.next(), self.next());
        let mut acc = 0.0;
        for &(weight, from, to) in mix {
            acc += weight;
            if pick < acc {
                return from + (to - from) * within;
            }
        }
        let (_, from, to) = mix[mix.len() - 1];
        from + (to - from) * within
    }
}

/// Waits a latency drawn from `mix` (see [`Uniform::from_mix`]), then responds 500 with probability
/// `failure_ratio`, else 200.
pub fn mixed_latency(
    mix: &[(f64, f64, f64)],
    failure_ratio: f64,
    seed: u64,
) -> impl Fn(Request<Incoming>) -> HandlerFuture + Clone + Send + Sync + 'static {
    let mix: Arc<[(f64, f64, f64)]> = mix.into();
    let random = Arc::new(Uniform::new(seed));
    move |_req: Request<Incoming>| {
        let delay = Duration::from_secs_f64(random.from_mix(&mix) / 1000.0);
        let fail = random.next() < failure_ratio;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            let mut resp = Response::new(full(if fail { "failed on purpose" } else { "ok" }));
            if fail {
                *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            }
            resp
        })
    }
}

/// The `q` quantile of `sorted` samples (the smallest value with at least `q` of the samples at or below).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_mix() {
        let u = Uniform::new(7);
        let mut v: Vec<f64> = (0..20_000).map(|_| u.from_mix(&REFERENCE_MIX)).collect();
        v.sort_by(f64::total_cmp);
        let share = |lo: f64, hi: f64| v.iter().filter(|x| **x >= lo && **x <= hi).count() as f64 / v.len() as f64;
        assert!((share(8.0, 12.0) - 0.90).abs() < 0.01);
        assert!((share(80.0, 120.0) - 0.08).abs() < 0.01);
        assert!((share(700.0, 900.0) - 0.02).abs() < 0.005);
        assert!((quantile(&v, 0.5) - 10.2).abs() < 0.2, "{}", quantile(&v, 0.5));
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.0);
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.99), 4.0);
    }
}
