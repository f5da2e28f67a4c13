//! Step 3, which side gave up: per edge of a tap sample, its failures split into cancellations by the
//! caller (no response: it went away), proxy timeouts (`l5d-proxy-error: timeout`, proxy-made 504s), other
//! proxy-made errors and the app's own failures, with a verdict naming the side.

use std::collections::BTreeMap;

use meshlens_api::errors::ProxyErrorReason;

use super::sample::Sampled;

/// Who made a sampled request fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Side {
    /// The caller went away before any response (its client's timeout, or its proxy cutting a timed-out
    /// route, as the callee's proxy sees it).
    Cancelled,
    /// A proxy's route timeout answered 504.
    ProxyTimeout,
    /// A proxy made the response for another reason (`connect_error`, `no_route`, …).
    ProxyMade,
    /// The app answered a failure.
    App,
}

/// Why `r` failed; `None` when it did not. `timed_out`: whether its route's callers' proxies time out.
pub(super) fn side(r: &Sampled, timed_out: bool) -> Option<Side> {
    if !r.failed() {
        return None;
    }
    Some(match r.proxy_error.as_deref().and_then(ProxyErrorReason::from_token) {
        Some(ProxyErrorReason::Timeout) => Side::ProxyTimeout,
        Some(_) => Side::ProxyMade,
        None if r.cancelled() && timed_out => Side::ProxyTimeout,
        None if r.cancelled() => Side::Cancelled,
        None => Side::App,
    })
}

/// One edge's sampled requests.
#[derive(Default)]
struct Tally {
    requests: usize,
    /// Elapsed ms of the failures, by side.
    failed: BTreeMap<Side, Vec<f64>>,
    /// What the failures of each side were (status or reason), counted.
    what: BTreeMap<Side, BTreeMap<String, usize>>,
    /// Elapsed ms of the answered requests.
    answered: Vec<f64>,
}

/// The caller and callee of a sampled request, by workload when known.
fn edge(r: &Sampled) -> (String, String) {
    let name = |w: &str, fallback: &str| if w.is_empty() { fallback.to_string() } else { w.to_string() };
    (name(&r.src_workload, &r.src), name(&r.dst_workload, &r.dst))
}

/// `1234.5` ms → `1.2 s`; `12.3` → `12 ms`.
pub(super) fn ms(v: f64) -> String {
    if v >= 1000.0 { format!("{:.1} s", v / 1000.0) } else { format!("{v:.0} ms") }
}

/// The `q` quantile of `v` (sorted in place); 0 when empty.
pub(super) fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n => v[((q * n as f64).ceil() as usize).clamp(1, n) - 1],
    }
}

/// Per edge with failures: the failures by side, then which side gave up when cancellations, timeouts or
/// the app made at least half of them (≥2). `timeouts`: `(workload, route)` whose callers' proxies time out.
pub(crate) fn evidence(reqs: &[Sampled], timeouts: &[(String, String)]) -> Vec<String> {
    let mut edges: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for r in reqs {
        let (src, dst) = edge(r);
        let timed_out = timeouts.iter().any(|(w, route)| *w == dst && *route == r.route);
        let t = edges.entry((src, dst)).or_default();
        t.requests += 1;
        let elapsed = r.elapsed_ms.unwrap_or_default();
        match side(r, timed_out) {
            Some(s) => {
                t.failed.entry(s).or_default().push(elapsed);
                let what = match (s, &r.proxy_error, r.status) {
                    (_, Some(e), _) => e.clone(),
                    (_, None, Some(status)) => status.to_string(),
                    _ => "reset".to_string(),
                };
                *t.what.entry(s).or_default().entry(what).or_default() += 1;
            }
            None => t.answered.push(elapsed),
        }
    }
    let mut out = Vec::new();
    for ((src, dst), mut t) in edges {
        let failed: usize = t.failed.values().map(Vec::len).sum();
        if failed == 0 {
            continue;
        }
        let mut parts = Vec::new();
        for (s, times) in &mut t.failed {
            let (lo, hi) = (quantile(times, 0.0), quantile(times, 1.0));
            let what: Vec<String> = t.what[s].iter().map(|(w, n)| format!("{w} ×{n}")).collect();
            let what = what.join(", ");
            let range = match (ms(lo), ms(hi)) {
                (lo, hi) if lo == hi => format!("after {lo}"),
                (lo, hi) => format!("after {lo}–{hi}"),
            };
            let n = times.len();
            parts.push(match s {
                Side::Cancelled => format!("{n} cancelled by {src} before any response ({range})"),
                Side::ProxyTimeout => format!("{n} cut by a proxy's route timeout ({range})"),
                Side::ProxyMade => format!("{n} proxy-made ({what})"),
                Side::App => format!("{n} app errors from {dst} ({what})"),
            });
        }
        out.push(format!(
            "tap: {src} → {dst}: {failed} of {} sampled requests failed: {}",
            t.requests,
            parts.join(", ")
        ));
        let Some((side, times)) = t.failed.iter_mut().max_by_key(|(_, v)| v.len()) else { continue };
        if times.len() < 2 || 2 * times.len() < failed {
            continue;
        }
        let patience = quantile(times, 0.5);
        let outlasted = times.len();
        let answered = match t.answered.len() {
            0 => String::new(),
            _ => format!(
                ", while its answered ones took p50 {}, the slowest {}",
                ms(quantile(&mut t.answered, 0.5)),
                ms(quantile(&mut t.answered, 1.0))
            ),
        };
        let slow = format!("{dst}'s slow requests: {outlasted} of {} sampled outlasted it{answered}", t.requests);
        out.push(match side {
            Side::Cancelled => {
                format!("tap: {src} gives up after ~{}; the cause is {slow}", ms(patience))
            }
            Side::ProxyTimeout => {
                format!(
                    "tap: {src}'s proxy gives up (route timeout, proxy-made 504) after ~{}; the cause is {slow}",
                    ms(patience)
                )
            }
            Side::App => format!("tap: nobody gave up: {dst}'s app answered the failures itself"),
            // Which proxy and why is the reason's to say (an app's malformed response, a refused name, …).
            Side::ProxyMade => continue,
        });
    }
    out
}

/// Up to `n` failed requests to show, one of each side first.
pub(crate) fn examples<'a>(failed: &[&'a Sampled], n: usize) -> Vec<&'a Sampled> {
    let mut picked: Vec<&Sampled> = Vec::new();
    let mut seen = Vec::new();
    for r in failed {
        let s = side(r, false);
        if !seen.contains(&s) {
            seen.push(s);
            picked.push(r);
        }
    }
    for r in failed {
        if !picked.iter().any(|p| std::ptr::eq(*p, *r)) {
            picked.push(r);
        }
    }
    picked.truncate(n);
    picked.sort_by_key(|r| r.seq);
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(seq: usize, status: Option<u16>, proxy_error: Option<&str>, elapsed_ms: f64) -> Sampled {
        Sampled {
            seq,
            inbound: true,
            own: "callee-0".into(),
            src: "po/caller-0".into(),
            dst: "po/callee-0".into(),
            served_by: "callee-0".into(),
            src_workload: "caller".into(),
            dst_workload: "callee".into(),
            method: "GET".into(),
            path: "/work".into(),
            route: "GET /work".into(),
            status,
            proxy_error: proxy_error.map(str::to_string),
            elapsed_ms: Some(elapsed_ms),
            ended: true,
            ..Sampled::default()
        }
    }

    /// A caller with a 2 s client timeout calls a callee whose handler takes 3 s on a quarter of its
    /// requests: the caller gives up, the callee's slow requests are the cause.
    fn impatient() -> Vec<Sampled> {
        (0..40)
            .map(|i| match i % 4 {
                3 => call(i, None, None, 2000.0 + i as f64),
                _ => call(i, Some(200), None, 5.0),
            })
            .collect()
    }

    #[test]
    fn an_impatient_caller_is_named_as_the_side_that_gave_up_and_the_slow_callee_as_the_cause() {
        let ev = evidence(&impatient(), &[]);
        assert_eq!(
            ev,
            [
                "tap: caller → callee: 10 of 40 sampled requests failed: 10 cancelled by caller before any response \
                 (after 2.0 s)",
                "tap: caller gives up after ~2.0 s; the cause is callee's slow requests: 10 of 40 sampled outlasted \
                 it, while its answered ones took p50 5 ms, the slowest 5 ms",
            ],
            "{ev:#?}"
        );
    }

    #[test]
    fn cancellations_on_a_route_whose_callers_time_out_are_the_proxy_s_timeout() {
        let timeouts = [("callee".to_string(), "GET /work".to_string())];
        let ev = evidence(&impatient(), &timeouts);
        assert!(ev[0].contains("10 cut by a proxy's route timeout (after 2.0 s)"), "{ev:#?}");
        assert!(
            ev[1].starts_with("tap: caller's proxy gives up (route timeout, proxy-made 504) after ~2.0 s"),
            "{ev:#?}"
        );
        // As the caller's own proxy reports it: a proxy-made 504.
        let outbound: Vec<_> = (0..20)
            .map(|i| match i % 5 {
                0 => call(i, Some(504), Some("timeout"), 5000.0),
                _ => call(i, Some(200), None, 10.0),
            })
            .collect();
        let ev = evidence(&outbound, &[]);
        assert!(ev[0].ends_with("4 cut by a proxy's route timeout (after 5.0 s)"), "{ev:#?}");
        assert!(ev[1].contains("after ~5.0 s; the cause is callee's slow requests: 4 of 20"), "{ev:#?}");
    }

    #[test]
    fn app_errors_blame_nobody_for_giving_up() {
        let mut reqs: Vec<_> = (0..20).map(|i| call(i, Some(if i % 4 == 0 { 503 } else { 200 }), None, 4.0)).collect();
        reqs.push(call(20, None, None, 2000.0));
        let ev = evidence(&reqs, &[]);
        assert_eq!(
            ev[0],
            "tap: caller → callee: 6 of 21 sampled requests failed: 1 cancelled by caller before any response (after \
             2.0 s), 5 app errors from callee (503 ×5)"
        );
        assert_eq!(ev[1], "tap: nobody gave up: callee's app answered the failures itself");
        // Tap lines: one of each side first.
        let failed: Vec<&Sampled> = reqs.iter().filter(|r| r.failed()).collect();
        let shown = examples(&failed, 3);
        assert_eq!(shown.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 4, 20]);
    }

    #[test]
    fn proxy_made_failures_get_no_verdict_their_reason_says_whose_they_are() {
        // auth-service's proxy refuses its app's malformed responses: the app's fault, made by a proxy.
        let reqs: Vec<_> = (0..10)
            .map(|i| match i % 3 {
                0 => call(i, Some(502), Some("invalid_response"), 4.0),
                _ => call(i, Some(200), None, 4.0),
            })
            .collect();
        let ev = evidence(&reqs, &[]);
        assert_eq!(ev, ["tap: caller → callee: 4 of 10 sampled requests failed: 4 proxy-made (invalid_response ×4)"]);
    }

    #[test]
    fn a_clean_edge_says_nothing() {
        let reqs: Vec<_> = (0..20).map(|i| call(i, Some(200), None, 4.0)).collect();
        assert!(evidence(&reqs, &[]).is_empty());
    }
}
