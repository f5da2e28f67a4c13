//! Step 3, latency tails: in a tap sample of a workload, one instance or one route that carries most of
//! its slow requests — far beyond what its share of the requests would give it by chance.

use std::collections::BTreeMap;

use super::evidence::SLOW_FACTOR;
use super::sample::Sampled;
use super::sides::{ms, quantile};

/// A request slower than this is slow whatever the median.
const MIN_SLOW_MS: f64 = 100.0;
/// Slow requests the sample must hold: with fewer, chance alone concentrates them.
const MIN_SLOW: usize = 10;
/// Share of the slow requests one instance or route must carry.
const CONCENTRATED: f64 = 0.8;
/// How unlikely the concentration must be by chance (given the key's share of the requests): strict,
/// as every instance and route of every tapped workload is tested.
const CHANCE: f64 = 1e-3;

/// One instance or route carrying a workload's latency tail.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Tail {
    /// `po/NAME` or `route deploy/W ROUTE`.
    pub subject: String,
    pub cause: String,
    pub evidence: Vec<String>,
    /// Its share of the slow requests.
    pub share: f64,
}

/// P(X ≥ k) for X ~ Binomial(n, p).
fn binomial_tail(k: usize, n: usize, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut log_pmf = n as f64 * lq;
    let mut tail = 0.0;
    for i in 0..=n {
        if i > 0 {
            log_pmf += ((n - i + 1) as f64 / i as f64).ln() + lp - lq;
        }
        if i >= k {
            tail += log_pmf.exp();
        }
    }
    tail.min(1.0)
}

/// `p50 X, p99 Y`.
fn spread(v: &mut [f64]) -> String {
    format!("p50 {}, p99 {}", ms(quantile(v, 0.5)), ms(quantile(v, 0.99)))
}

/// The instance or route (≥2 of them sampled) carrying ≥80% of the workload's slow requests (≥10, over
/// 4× the median and 100 ms), surely not by chance; the more certain of the two.
pub(crate) fn find(workload: &str, reqs: &[Sampled]) -> Option<Tail> {
    let served: Vec<(&Sampled, f64)> =
        reqs.iter().filter(|r| r.inbound).filter_map(|r| Some((r, r.elapsed_ms?))).collect();
    let mut all: Vec<f64> = served.iter().map(|s| s.1).collect();
    let limit = (SLOW_FACTOR * quantile(&mut all, 0.5)).max(MIN_SLOW_MS);
    let slow_total = served.iter().filter(|s| s.1 > limit).count();
    if slow_total < MIN_SLOW {
        return None;
    }
    let by = |key: fn(&Sampled) -> &str| {
        let mut keys: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (r, e) in &served {
            keys.entry(key(r)).or_default().push(*e);
        }
        let slow = |v: &[f64]| v.iter().filter(|e| **e > limit).count();
        let (k, v) = keys.iter().max_by_key(|(_, v)| slow(v))?;
        let (k, v, n) = (k.to_string(), v.clone(), slow(v));
        let chance = binomial_tail(n, slow_total, v.len() as f64 / served.len() as f64);
        let rest: Vec<f64> = keys.iter().filter(|(o, _)| **o != k).flat_map(|(_, v)| v.iter().copied()).collect();
        (keys.len() >= 2 && n as f64 >= CONCENTRATED * slow_total as f64 && chance < CHANCE)
            .then_some((k, v, n, rest, chance))
    };
    let instance = by(|r| r.own.as_str()).filter(|t| !t.0.is_empty());
    let route = by(|r| r.route.as_str());
    let (is_instance, (key, mut mine, n, mut rest, _)) = match (instance, route) {
        (Some(i), Some(r)) if r.4 < i.4 => (false, r),
        (Some(i), _) => (true, i),
        (None, Some(r)) => (false, r),
        (None, None) => return None,
    };
    let (subject, name) = match is_instance {
        true => (format!("po/{key}"), format!("po/{key}")),
        false => (format!("route deploy/{workload} {key}"), format!("route {key}")),
    };
    let others = match is_instance {
        true => format!("the other instances of {workload}"),
        false => format!("{workload}'s other routes"),
    };
    let rest_slow = rest.iter().filter(|e| **e > limit).count();
    let cause = format!(
        "{name} carries {workload}'s latency tail: {n} of the {slow_total} sampled requests slower than {} were \
         served by it",
        ms(limit)
    );
    let evidence = vec![
        format!("tap: {name}: {n} of {} sampled requests over {} ({})", mine.len(), ms(limit), spread(&mut mine)),
        format!("tap: {others}: {rest_slow} of {} over {} ({})", rest.len(), ms(limit), spread(&mut rest)),
    ];
    Some(Tail { subject, cause, evidence, share: n as f64 / slow_total as f64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(seq: usize, pod: &str, route: &str, elapsed_ms: f64) -> Sampled {
        Sampled {
            seq,
            inbound: true,
            own: pod.into(),
            served_by: pod.into(),
            method: "GET".into(),
            path: "/x".into(),
            route: route.into(),
            status: Some(200),
            elapsed_ms: Some(elapsed_ms),
            ended: true,
            ..Sampled::default()
        }
    }

    #[test]
    fn one_slow_instance_is_named_with_numbers() {
        // x-1 takes ~800 ms on a third of its requests; x-0 and x-2 answer in ~5 ms.
        let reqs: Vec<_> = (0..150)
            .map(|i| {
                let pod = ["x-0", "x-1", "x-2"][i % 3];
                let slow = pod == "x-1" && i % 2 == 0;
                req(i, pod, ["GET /a", "GET /b"][i % 2], if slow { 800.0 } else { 5.0 })
            })
            .collect();
        let tail = find("x", &reqs).expect("a tail");
        assert_eq!(tail.subject, "po/x-1");
        assert_eq!(
            tail.cause,
            "po/x-1 carries x's latency tail: 25 of the 25 sampled requests slower than 100 ms were served by it"
        );
        assert_eq!(
            tail.evidence,
            [
                "tap: po/x-1: 25 of 50 sampled requests over 100 ms (p50 5 ms, p99 800 ms)",
                "tap: the other instances of x: 0 of 100 over 100 ms (p50 5 ms, p99 5 ms)",
            ]
        );
    }

    #[test]
    fn one_slow_route_is_named_as_a_route_of_the_workload() {
        let reqs: Vec<_> = (0..120)
            .map(|i| {
                let route = ["GET /fast", "GET /slow"][i % 2];
                let slow = route == "GET /slow" && i % 3 == 0;
                req(i, ["x-0", "x-1"][(i / 2) % 2], route, if slow { 2500.0 } else { 8.0 })
            })
            .collect();
        let tail = find("x", &reqs).expect("a tail");
        assert_eq!(tail.subject, "route deploy/x GET /slow");
        assert!(tail.evidence[1].starts_with("tap: x's other routes: 0 of 60 over 100 ms"), "{tail:#?}");
    }

    #[test]
    fn a_tail_spread_over_instances_and_routes_or_too_small_names_nothing() {
        // 20% slow everywhere (slow-success): no instance or route carries it.
        let reqs: Vec<_> = (0..200)
            .map(|i| req(i, ["p-0", "p-1"][i % 2], "POST /charge", if i % 5 == 0 { 300.0 } else { 20.0 }))
            .collect();
        assert_eq!(find("p", &reqs), None);
        // A handful of slow requests all on one of two instances: chance, not a finding.
        let reqs: Vec<_> = (0..40)
            .map(|i| req(i, ["p-0", "p-1"][i % 2], "POST /charge", if i % 8 == 0 { 300.0 } else { 20.0 }))
            .collect();
        assert_eq!(find("p", &reqs), None);
    }

    #[test]
    fn the_binomial_tail() {
        assert!((binomial_tail(1, 1, 0.5) - 0.5).abs() < 1e-12);
        assert!((binomial_tail(10, 10, 0.5) - 0.5f64.powi(10)).abs() < 1e-12);
        assert!((binomial_tail(0, 10, 0.3) - 1.0).abs() < 1e-12);
        assert!((binomial_tail(2, 3, 0.5) - 0.5).abs() < 1e-12);
    }
}
