//! `Extremes`: the largest and smallest latency of a series over two rotating 10 s windows, kept next to
//! its histogram and exported as `<family>_max` / `<family>_min` gauges (meshlens_api::labels::LATENCY_MAX_SUFFIX).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::encode::{write_micros_as_ms, write_sample_start};

/// The length of one window.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// Values are packed as `window << VALUE_BITS | value`: one `fetch_max` per slot keeps the newest window
/// and, within it, the extreme value, with no reset to race with.
const VALUE_BITS: u32 = 40;
const VALUE_MASK: u64 = (1 << VALUE_BITS) - 1;

/// Max and min (µs) per window, in two slots indexed by the window's parity.
#[derive(Debug, Default)]
pub(crate) struct Extremes {
    /// `window << 40 | max_us`
    max: [AtomicU64; 2],
    /// `window << 40 | (VALUE_MASK - min_us)`: the smallest value packs to the largest number.
    min: [AtomicU64; 2],
}

/// The current window number (counted from the first use in this process, never 0).
pub(crate) fn current_window() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    start.elapsed().as_secs() / WINDOW.as_secs() + 1
}

impl Extremes {
    #[inline]
    pub(crate) fn observe(&self, d: Duration) {
        self.observe_in(current_window(), d);
    }

    /// Records `d` in window `window`: two relaxed `fetch_max`.
    #[inline]
    pub(crate) fn observe_in(&self, window: u64, d: Duration) {
        // Rounded outwards, so the gauges bound every observation.
        let ceil = u64::try_from(d.as_nanos().div_ceil(1000)).unwrap_or(u64::MAX).min(VALUE_MASK);
        let floor = u64::try_from(d.as_micros()).unwrap_or(u64::MAX).min(VALUE_MASK);
        let slot = (window % 2) as usize;
        let tag = (window & ((1 << (64 - VALUE_BITS)) - 1)) << VALUE_BITS;
        self.max[slot].fetch_max(tag | ceil, Relaxed);
        self.min[slot].fetch_max(tag | (VALUE_MASK - floor), Relaxed);
    }

    /// `(max_us, min_us)` over the window `window` and the one before it; `None` when neither saw a value.
    pub(crate) fn get(&self, window: u64) -> Option<(u64, u64)> {
        let fresh = |packed: u64| {
            let w = packed >> VALUE_BITS;
            let now = window & ((1 << (64 - VALUE_BITS)) - 1);
            (packed != 0 && (w == now || w + 1 == now)).then_some(packed & VALUE_MASK)
        };
        let max = self.max.iter().filter_map(|m| fresh(m.load(Relaxed))).max()?;
        let min = VALUE_MASK - self.min.iter().filter_map(|m| fresh(m.load(Relaxed))).max()?;
        Some((max, min))
    }

    /// Writes the sample line of the `name` gauge (the max or, with `max` false, the min) when the series
    /// saw a value recently.
    pub(crate) fn encode(&self, out: &mut String, name: &str, labels: &[&str], window: u64, max: bool) {
        if let Some((hi, lo)) = self.get(window) {
            write_sample_start(out, name, "", labels);
            write_micros_as_ms(out, if max { hi } else { lo });
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn keeps_the_extremes_of_the_last_two_windows() {
        let e = Extremes::default();
        assert_eq!(e.get(5), None, "nothing observed");
        e.observe_in(5, ms(30));
        e.observe_in(5, ms(7));
        e.observe_in(5, ms(12));
        assert_eq!(e.get(5), Some((30_000, 7_000)));
        e.observe_in(6, ms(9));
        assert_eq!(e.get(6), Some((30_000, 7_000)), "the previous window still counts");
        e.observe_in(7, ms(10));
        assert_eq!(e.get(7), Some((10_000, 9_000)), "window 5 rotated out");
        assert_eq!(e.get(9), None, "nothing recent");
        e.observe_in(9, Duration::from_micros(1500));
        assert_eq!(e.get(9), Some((1_500, 1_500)));
    }
}
