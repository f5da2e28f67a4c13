//! The baseline a route's latency is compared with: the `--offset` window, or, without one, learned from
//! the earlier windows of the same length the source holds (the median of each route's p99 over the
//! windows with enough traffic), else the window just before.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::evidence::Counts;
use super::wilson;
use crate::metricstore::MetricStore;

/// Earlier windows read to learn a baseline (the newest is the window just before).
pub(crate) const LEARN_WINDOWS: usize = 8;
/// Windows with ≥ [`wilson::MIN_REQUESTS`] requests a learned baseline needs.
pub(crate) const MIN_LEARNED: usize = 3;

/// Which earlier windows to read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Plan {
    /// How long before the window's end the newest earlier window ends (ms).
    pub offset_ms: u64,
    /// How many windows, back to back, newest first.
    pub count: usize,
    /// `--offset` chose the one window (nothing is learned).
    pub asked: bool,
}

impl Plan {
    /// `--offset`'s one window, else [`LEARN_WINDOWS`] windows before this one.
    pub fn new(window_ms: u64, offset_ms: Option<u64>) -> Plan {
        match offset_ms {
            Some(offset_ms) => Plan { offset_ms, count: 1, asked: true },
            None => Plan { offset_ms: window_ms, count: LEARN_WINDOWS, asked: false },
        }
    }

    /// The window just before, alone (what `check` and the graph compare with).
    pub fn before(window_ms: u64) -> Plan {
        Plan { offset_ms: window_ms, count: 1, asked: false }
    }

    /// How long before the window's end the `i`-th earlier window ends (ms).
    pub fn end_ago(&self, i: usize, window_ms: u64) -> u64 {
        self.offset_ms + i as u64 * window_ms
    }
}

/// The earlier windows, newest first: each window's store and the time it ends at in it.
pub(crate) struct History<'s> {
    pub windows: Vec<(&'s MetricStore, u64)>,
    pub plan: Plan,
}

impl<'s> History<'s> {
    /// The earlier windows a store holds itself (the embedded store): the newest always (as far as it
    /// reaches), older ones only when held in full. (Slots are merged after ten minutes into minute-long
    /// ones: [`LEARN_WINDOWS`] windows shorter than a minute reach back less than that.)
    pub fn held(ms: &'s MetricStore, now: u64, window_ms: u64, plan: Plan) -> History<'s> {
        let held_from = ms.held_from().unwrap_or(u64::MAX);
        let windows = (0..plan.count)
            .map_while(|i| now.checked_sub(plan.end_ago(i, window_ms)))
            .enumerate()
            .filter(|&(i, end)| {
                let start = end.saturating_sub(window_ms);
                i == 0 || (end >= window_ms && start >= held_from)
            })
            .map(|(_, end)| (ms, end))
            .collect();
        History { windows, plan }
    }

    /// Windows read elsewhere (Prometheus), newest first.
    pub fn read(windows: &'s [(Arc<MetricStore>, u64)], plan: Plan) -> History<'s> {
        History { windows: windows.iter().map(|(s, end)| (&**s, *end)).collect(), plan }
    }
}

/// What a route's latency is compared with.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Baseline {
    /// Requests in a baseline window (learned: the median over the windows).
    pub requests: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// How many windows it was learned from; 0: the one window (`--offset`'s or the one just before).
    pub learned_from: usize,
}

impl Baseline {
    fn one(c: &Counts) -> Baseline {
        Baseline { requests: c.requests(), p50_ms: c.p50_ms, p99_ms: c.p99_ms, learned_from: 0 }
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// Each group's baseline from its counts in the earlier windows (newest first): unless `asked`, the
/// medians over the windows with enough traffic when at least [`MIN_LEARNED`] have it, else the newest
/// window's counts.
pub(crate) fn learn<K: Ord + Clone>(earlier: &[BTreeMap<K, Counts>], asked: bool) -> BTreeMap<K, Baseline> {
    let ids: BTreeSet<&K> = earlier.iter().flat_map(|w| w.keys()).collect();
    let mut out = BTreeMap::new();
    for id in ids {
        let usable: Vec<&Counts> = earlier
            .iter()
            .filter_map(|w| w.get(id))
            .filter(|c| c.requests() >= wilson::MIN_REQUESTS && c.p99_ms.is_some())
            .collect();
        let baseline = if !asked && usable.len() >= MIN_LEARNED {
            Baseline {
                requests: median(usable.iter().map(|c| c.requests()).collect()).unwrap_or_default(),
                p50_ms: median(usable.iter().filter_map(|c| c.p50_ms).collect()),
                p99_ms: median(usable.iter().filter_map(|c| c.p99_ms).collect()),
                learned_from: usable.len(),
            }
        } else {
            match earlier.first().and_then(|w| w.get(id)) {
                Some(c) => Baseline::one(c),
                None => continue,
            }
        };
        out.insert(id.clone(), baseline);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(n: f64, p99: f64) -> Counts {
        Counts { ok: n, p50_ms: Some(p99 / 4.0), p99_ms: Some(p99), ..Counts::default() }
    }

    #[test]
    fn the_median_of_the_windows_with_traffic_is_learned() {
        let w = |n: f64, p99: f64| BTreeMap::from([("r", counts(n, p99))]);
        // The window just before was slow already; a quiet window does not count.
        let earlier = [w(100.0, 400.0), w(100.0, 40.0), w(10.0, 900.0), w(120.0, 50.0), w(80.0, 45.0)];
        let b = &learn(&earlier, false)["r"];
        assert_eq!((b.p99_ms, b.learned_from, b.requests), (Some(47.5), 4, 100.0));
        // Asked for one window (--offset), or too little history: the newest window alone.
        assert_eq!(learn(&earlier, true)["r"], Baseline::one(&counts(100.0, 400.0)));
        assert_eq!(learn(&earlier[..3], false)["r"].learned_from, 0);
    }

    #[test]
    fn held_windows_are_whole_and_back_to_back() {
        let ms = MetricStore::new(crate::metricstore::Settings::new(1000, 3_600_000));
        let src = crate::metricstore::Source { namespace: "p".into(), workload: "w".into(), instance: "w-0".into() };
        ms.ingest(&src, 5_000, &[], true, &|_: &str| None);
        let ends = |now, plan| History::held(&ms, now, 60_000, plan).windows.iter().map(|w| w.1).collect::<Vec<_>>();
        // Held from 5 s: at 200 s, the windows ending 140 s and 80 s (from 20 s); not the one from -40 s.
        assert_eq!(ends(200_000, Plan::new(60_000, None)), [140_000, 80_000]);
        // --offset reads its window, held or not.
        assert_eq!(ends(200_000, Plan::new(60_000, Some(190_000))), [10_000]);
        assert_eq!(ends(30 * 60_000, Plan::new(60_000, None)).len(), LEARN_WINDOWS);
    }
}
