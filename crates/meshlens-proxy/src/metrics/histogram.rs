//! `Histogram`: latency buckets in milliseconds as an atomic array with a computed index.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::Metric;
use super::encode::{write_micros_as_ms, write_sample, write_sample_start};

/// Upper bounds (`le`, inclusive) of the latency buckets in milliseconds, `+Inf` not included.
///
/// A superset of Linkerd's bounds (`meshlens_api::labels::LINKERD_LATENCY_BOUNDS_MS`), so Linkerd's
/// queries keep working, with finer steps in between so percentiles are accurate.
pub const LATENCY_BOUNDS_MS: [f64; 40] = [
    0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 75.0, 100.0, 150.0, 200.0,
    250.0, 300.0, 400.0, 500.0, 750.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0, 4000.0, 5000.0, 7500.0, 10000.0,
    15000.0, 20000.0, 25000.0, 30000.0, 40000.0, 50000.0,
];

/// [`LATENCY_BOUNDS_MS`] in microseconds: what bucketing and rendering use.
pub(crate) const BOUNDS_US: [u64; 40] = [
    500, 1_000, 1_500, 2_000, 2_500, 3_000, 4_000, 5_000, 7_500, 10_000, 15_000, 20_000, 25_000, 30_000, 40_000,
    50_000, 75_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000, 500_000, 750_000, 1_000_000, 1_500_000,
    2_000_000, 2_500_000, 3_000_000, 4_000_000, 5_000_000, 7_500_000, 10_000_000, 15_000_000, 20_000_000, 25_000_000,
    30_000_000, 40_000_000, 50_000_000,
];

const BUCKETS: usize = BOUNDS_US.len() + 1;

/// A latency histogram with [`LATENCY_BOUNDS_MS`] buckets plus `+Inf`.
///
/// `observe` is a binary search and two relaxed atomic adds. The sum is kept in whole microseconds
/// and rendered in milliseconds; the count is the sum of the buckets, so `_count` always equals the
/// `+Inf` bucket even while other threads observe.
#[derive(Debug)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram::new()
    }
}

impl Histogram {
    pub const fn new() -> Histogram {
        Histogram { buckets: [const { AtomicU64::new(0) }; BUCKETS], sum_us: AtomicU64::new(0) }
    }

    /// Records `d` in milliseconds. Bounds are inclusive: exactly 1 ms lands in `le="1"`.
    #[inline]
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[bucket_index(ns)].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(ns.saturating_add(500) / 1000, Relaxed);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    /// Sum of observations in microseconds (each rounded to the nearest microsecond).
    pub fn sum_micros(&self) -> u64 {
        self.sum_us.load(Relaxed)
    }

    /// Writes `_bucket` (cumulative, `le` last), `_sum` and `_count` lines; label parts may be empty.
    pub(crate) fn encode_series(&self, out: &mut String, name: &str, target: &str, series: &str) {
        let mut le = String::with_capacity(16);
        let mut cumulative = 0u64;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Relaxed);
            le.clear();
            le.push_str("le=\"");
            match BOUNDS_US.get(i) {
                Some(&us) => write_micros_as_ms(&mut le, us),
                None => le.push_str("+Inf"),
            }
            le.push('"');
            write_sample(out, name, "_bucket", &[target, series, &le], cumulative);
        }
        write_sample_start(out, name, "_sum", &[target, series]);
        write_micros_as_ms(out, self.sum_micros());
        out.push('\n');
        write_sample(out, name, "_count", &[target, series], cumulative);
    }
}

/// Index of the first bucket whose bound is `>=` the observation (`BOUNDS_US.len()` is `+Inf`).
#[inline]
fn bucket_index(ns: u64) -> usize {
    BOUNDS_US.partition_point(|&us| us * 1000 < ns)
}

impl Metric for Histogram {
    const TYPE: &'static str = "histogram";

    fn encode(&self, name: &str, labels: &str, out: &mut String) {
        self.encode_series(out, name, labels, "");
    }
}
