//! Step 3, periodicity: an instance whose sampled failures are equally spaced in the requests it served
//! (every Nth: a counter in the app) or in time (fixed intervals), judged only on what the sample can
//! tell — too few sampled failures are said to be too few, with the counters' rate beside them.

use std::collections::BTreeMap;

use super::sample::{Counters, Sampled, whole};
use super::sides::ms;

/// Failures an instance's sample must hold to judge a period (two equal gaps).
const MIN_FAILURES: usize = 3;
/// Failures for fixed time intervals (three intervals: arrival times jitter).
const MIN_TIMED: usize = 4;
/// How far (share of their median) intervals may stray and still be fixed.
const JITTER: f64 = 0.15;
/// Instances with too few failures named at most.
const MAX_TOO_FEW: usize = 3;

/// One instance's sampled requests in order: (failed, arrival ms).
type Served = Vec<(bool, f64)>;

/// Equal gaps (≥2) between the failures' positions: every Nth request.
fn every_nth(seq: &Served) -> Option<usize> {
    let at: Vec<usize> = seq.iter().enumerate().filter(|(_, f)| f.0).map(|(i, _)| i).collect();
    let gaps: Vec<usize> = at.windows(2).map(|w| w[1] - w[0]).collect();
    let first = *gaps.first()?;
    (at.len() >= MIN_FAILURES && first >= 2 && gaps.iter().all(|g| *g == first)).then_some(first)
}

/// Near-equal time intervals between the failures (each within [`JITTER`] of their median).
fn fixed_interval(seq: &Served) -> Option<f64> {
    let at: Vec<f64> = seq.iter().filter(|f| f.0).map(|f| f.1).collect();
    if at.len() < MIN_TIMED {
        return None;
    }
    let mut gaps: Vec<f64> = at.windows(2).map(|w| w[1] - w[0]).collect();
    let median = super::sides::quantile(&mut gaps, 0.5);
    (median >= 50.0 && gaps.iter().all(|g| (g - median).abs() <= JITTER * median)).then_some(median)
}

/// The counters' line for an instance: `3 of 150 failed in 30s, 1 in 50`.
fn counted(counters: &Counters, pod: &str) -> Option<String> {
    let &(n, failed) = counters.instances.get(pod)?;
    (failed >= 0.5).then(|| format!("{failed:.0} of {n:.0} failed in {:.0}s, 1 in {:.0}", counters.seconds, n / failed))
}

/// Per instance of the sample (its inbound requests): a period when the sample shows one, else — when
/// `too_few` asks for it and its counters hold failures — that the sample is too small to tell.
pub(crate) fn evidence(reqs: &[Sampled], seconds: f64, counters: &Counters, too_few: bool) -> Vec<String> {
    let mut by_instance: BTreeMap<&str, Served> = BTreeMap::new();
    for r in reqs.iter().filter(|r| r.inbound) {
        by_instance.entry(r.own.as_str()).or_default().push((r.failed(), r.at_ms));
    }
    let mut out = Vec::new();
    let mut said = 0;
    for (pod, seq) in &by_instance {
        let failed = seq.iter().filter(|f| f.0).count();
        let counts = counted(counters, pod).map_or(String::new(), |c| format!("; its counters: {c}"));
        if let Some(n) = every_nth(seq).filter(|_| whole(reqs, pod, seconds)) {
            out.push(format!(
                "tap: po/{pod} failed every {n}th request it served ({failed} failures, equally spaced{counts})"
            ));
        } else if let Some(gap) = fixed_interval(seq) {
            out.push(format!("tap: po/{pod} failed at fixed intervals of ~{} ({failed} failures{counts})", ms(gap)));
        } else if too_few && failed < MIN_FAILURES && !counts.is_empty() && said < MAX_TOO_FEW {
            said += 1;
            out.push(format!(
                "tap: po/{pod}: {failed} of its {} sampled requests failed: too few to tell whether its failures \
                 come every Nth request or at fixed intervals{counts}",
                seq.len()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(pod: &str, n: usize, every: usize, rps: f64) -> Vec<Sampled> {
        (0..n)
            .map(|i| Sampled {
                seq: i,
                inbound: true,
                own: pod.into(),
                served_by: pod.into(),
                method: "POST".into(),
                path: "/predict".into(),
                route: "POST /predict".into(),
                status: Some(if (i + 1) % every == 0 { 503 } else { 200 }),
                elapsed_ms: Some(15.0),
                ended: true,
                at_ms: i as f64 * 1000.0 / rps,
                ..Sampled::default()
            })
            .collect()
    }

    fn counters(pod: &str, n: f64, failed: f64) -> Counters {
        Counters { seconds: 30.0, instances: [(pod.to_string(), (n, failed))].into() }
    }

    #[test]
    fn every_fifth_request_is_named_with_the_counters_beside_it() {
        let reqs = served("b-0", 40, 5, 13.0);
        let ev = evidence(&reqs, 3.0, &counters("b-0", 300.0, 60.0), true);
        assert_eq!(
            ev,
            ["tap: po/b-0 failed every 5th request it served (8 failures, equally spaced; its counters: 60 of 300 \
              failed in 30s, 1 in 5)"]
        );
    }

    /// Stale-split's ml-inference-b: every 50th request at ~4 req/s. A 3 s sample holds 12 of its requests
    /// and no failure, or one: it cannot tell, and says so rather than guessing.
    #[test]
    fn every_50th_at_4_rps_is_too_few_to_tell() {
        let reqs = served("ml-inference-b-0", 12, 50, 4.0);
        let ev = evidence(&reqs, 3.0, &counters("ml-inference-b-0", 120.0, 2.0), true);
        assert_eq!(
            ev,
            ["tap: po/ml-inference-b-0: 0 of its 12 sampled requests failed: too few to tell whether its failures \
              come every Nth request or at fixed intervals; its counters: 2 of 120 failed in 30s, 1 in 60"]
        );
        // The 50th request in the sample: one failure is no period either.
        let reqs: Vec<Sampled> = served("b-0", 62, 50, 4.0).split_off(40);
        let ev = evidence(&reqs, 3.0, &counters("b-0", 120.0, 2.0), true);
        assert!(ev[0].starts_with("tap: po/b-0: 1 of its 22 sampled requests failed: too few to tell"), "{ev:#?}");
        // Healthy instances say nothing.
        assert!(evidence(&served("a-0", 12, 1000, 4.0), 3.0, &counters("a-0", 120.0, 0.0), true).is_empty());
    }

    #[test]
    fn a_sample_cut_by_max_rps_names_no_nth_request_but_fixed_intervals() {
        // Sampled at its proxy's maxRps: the requests between failures may not all be there; the failures
        // came every 250 ms.
        let reqs = served("b-0", 150, 10, 40.0);
        let ev = evidence(&reqs, 3.0, &Counters::default(), true);
        assert_eq!(ev, ["tap: po/b-0 failed at fixed intervals of ~250 ms (15 failures)"]);
        // Two tapped proxies share maxRps: 70 requests in 3 s is at this one's 25 req/s.
        let mut reqs = served("b-0", 70, 10, 23.0);
        reqs.extend(served("b-1", 5, 1000, 2.0));
        let ev = evidence(&reqs, 3.0, &Counters::default(), true);
        assert!(ev[0].starts_with("tap: po/b-0 failed at fixed intervals of ~"), "{ev:#?}");
    }

    #[test]
    fn unequal_gaps_are_no_period() {
        let mut reqs = served("b-0", 40, 1000, 13.0);
        for i in [3, 9, 12, 25, 31] {
            reqs[i].status = Some(500);
        }
        assert!(evidence(&reqs, 3.0, &counters("b-0", 400.0, 50.0), true).is_empty());
    }
}
