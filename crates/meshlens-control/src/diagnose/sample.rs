//! Step 3, tap: a bounded sample (`maxRps`-limited, a few seconds) of the (at most three) workloads the
//! serious findings name, each tapped once, through the control plane's tap relay: proxy-made vs app-made
//! failures by reason, which side gave up per edge (`sides`), failures concentrated on one instance or
//! route, periodicity (`period`), latency tails per instance and route (`tails`), and up to 3 failed
//! requests as tap lines.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use meshlens_api::diagnose::{Finding, LATENCY_TAIL, ROUTE_TIMEOUT, Report, Severity};
use meshlens_api::errors::{ProxyErrorReason, response_failed};
use meshlens_api::tap::{ProxyDirection, TapEvent};
use tokio::sync::watch;

use super::{period, rank, sides, tails};
use crate::store::Store;
use crate::tap;

/// Findings whose workloads are tapped (the first serious ones).
const MAX_TARGETS: usize = 3;
/// The most events a second each tapped workload sends (all its proxies together).
pub(crate) const MAX_RPS: f64 = 50.0;
/// The longest sample.
const LONGEST: Duration = Duration::from_secs(3);
/// Events read per workload at most.
const MAX_EVENTS: usize = 2000;
/// Failed requests shown as tap lines per finding.
const LINES: usize = 3;
/// Share of the failures one instance or route must carry to be named.
const CONCENTRATED: f64 = 0.8;

/// How long to sample within a time budget: a tenth of it, at most 3 s.
pub(crate) fn duration(budget: Option<Duration>) -> Duration {
    budget.map_or(LONGEST, |b| (b / 10).min(LONGEST))
}

/// One request seen by the tap, from its three events.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Sampled {
    /// Arrival order of its request event in the sample.
    pub seq: usize,
    pub inbound: bool,
    /// The tapped proxy's instance.
    pub own: String,
    /// `deployment/pod` of the far side, or its address.
    pub src: String,
    pub dst: String,
    /// The instance that served it (the callee's pod).
    pub served_by: String,
    /// The caller's and the callee's workloads (`deployment` metadata; empty when unknown).
    pub src_workload: String,
    pub dst_workload: String,
    pub method: String,
    pub path: String,
    /// The ServiceProfile route, or `METHOD path` when none matched.
    pub route: String,
    pub status: Option<u16>,
    pub grpc: Option<u32>,
    pub proxy_error: Option<String>,
    pub elapsed_ms: Option<f64>,
    pub ended: bool,
    /// When the control plane received its request event, in ms since the sample began.
    pub at_ms: f64,
}

impl Sampled {
    pub(super) fn failed(&self) -> bool {
        match self.status {
            Some(s) => {
                let reason = self.proxy_error.as_deref().and_then(ProxyErrorReason::from_token);
                response_failed(s, self.grpc, reason)
            }
            // Ended without a response: reset or cancelled.
            None => self.ended,
        }
    }

    /// What made it fail: the proxy's reason, or the app's status.
    fn reason(&self) -> String {
        match (&self.proxy_error, self.status) {
            (Some(r), _) => format!("proxy-made {r}"),
            (None, Some(_)) if self.grpc.is_some_and(|g| g != 0) => {
                format!("app-made grpc-status {}", self.grpc.unwrap_or_default())
            }
            (None, Some(s)) => format!("app-made {s}"),
            (None, None) => "reset before a response".into(),
        }
    }

    /// Ended before any response: the caller went away (a reset, a cancellation).
    pub(super) fn cancelled(&self) -> bool {
        self.status.is_none() && self.ended
    }

    /// A tap line.
    pub(super) fn line(&self) -> String {
        let dir = if self.inbound { "inbound" } else { "outbound" };
        let status = self.status.map_or("no response".to_string(), |s| format!(":status {s}"));
        let err = self.proxy_error.as_ref().map_or(String::new(), |e| format!(" l5d-proxy-error={e}"));
        let ms = self.elapsed_ms.map_or(String::new(), |ms| format!(" {ms:.0}ms"));
        format!("tap {dir} {} → {} {} {} {status}{err}{ms}", self.src, self.dst, self.method, self.path)
    }
}

fn endpoint_name(e: &meshlens_api::tap::TapEndpoint) -> String {
    match (e.metadata.get("deployment"), e.metadata.get("pod")) {
        (_, Some(pod)) => format!("po/{pod}"),
        (Some(d), None) => format!("deploy/{d}"),
        _ => format!("{}:{}", e.ip, e.port),
    }
}

/// A tap event with when it arrived (ms since the sample began).
pub(crate) type Timed = (f64, TapEvent);

/// Folds tap events into requests, in the order they started.
pub(crate) fn requests(events: &[Timed]) -> Vec<Sampled> {
    let mut by_id: BTreeMap<(u32, u64), Sampled> = BTreeMap::new();
    let mut next = 0;
    for (at_ms, e) in events {
        let inbound = e.proxy_direction == ProxyDirection::Inbound;
        let id = [
            e.request_init_event.as_ref().map(|r| &r.id),
            e.response_init_event.as_ref().map(|r| &r.id),
            e.response_end_event.as_ref().map(|r| &r.id),
        ]
        .into_iter()
        .flatten()
        .next();
        let Some(id) = id else { continue };
        let r = by_id.entry((id.base, id.stream)).or_default();
        if let Some(init) = &e.request_init_event {
            let own = if inbound { &e.destination } else { &e.source };
            *r = Sampled {
                seq: next,
                inbound,
                own: own.metadata.get("pod").cloned().unwrap_or_default(),
                src: endpoint_name(&e.source),
                dst: endpoint_name(&e.destination),
                served_by: e.destination.metadata.get("pod").cloned().unwrap_or_default(),
                src_workload: e.source.metadata.get("deployment").cloned().unwrap_or_default(),
                dst_workload: e.destination.metadata.get("deployment").cloned().unwrap_or_default(),
                at_ms: *at_ms,
                method: init.method.clone(),
                path: init.path.clone(),
                route: e.route_meta.get("route").cloned().unwrap_or_else(|| format!("{} {}", init.method, init.path)),
                ..Sampled::default()
            };
            next += 1;
        }
        if let Some(rsp) = &e.response_init_event {
            r.status = Some(rsp.http_status);
            r.elapsed_ms.get_or_insert(Duration::from(rsp.since_request_init).as_secs_f64() * 1000.0);
        }
        if let Some(end) = &e.response_end_event {
            r.ended = true;
            r.grpc = end.grpc_status_code;
            r.elapsed_ms = Some(Duration::from(end.since_request_init).as_secs_f64() * 1000.0);
        }
        if e.proxy_error.is_some() {
            r.proxy_error = e.proxy_error.clone();
        }
    }
    // Only requests whose start the sample saw (and that were answered or ended).
    let mut out: Vec<Sampled> =
        by_id.into_values().filter(|r| !r.method.is_empty() && (r.status.is_some() || r.ended)).collect();
    out.sort_by_key(|r| r.seq);
    out
}

/// The key carrying ≥80% of the failures (≥3 of them) when the requests have at least two keys.
fn concentrated<'a>(reqs: &'a [Sampled], key: impl Fn(&'a Sampled) -> &'a str) -> Option<(&'a str, usize, usize)> {
    let mut all: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in reqs {
        let e = all.entry(key(r)).or_default();
        e.0 += 1;
        e.1 += usize::from(r.failed());
    }
    let failed: usize = all.values().map(|v| v.1).sum();
    if all.len() < 2 || failed < 3 {
        return None;
    }
    let (k, (_, f)) = all.iter().max_by_key(|(_, v)| v.1)?;
    (*f as f64 >= CONCENTRATED * failed as f64).then_some((*k, *f, failed))
}

/// What the metric store counted over the diagnosed window, per instance: what a sample is read against.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Counters {
    pub seconds: f64,
    /// Instance → (requests, failed) it served.
    pub instances: BTreeMap<String, (f64, f64)>,
}

/// Whether the sample holds every request the proxy of instance `own` saw (its share of `maxRps`, split
/// evenly among the tapped proxies, dropped none): only then do request counts between failures mean
/// anything.
pub(super) fn whole(reqs: &[Sampled], own: &str, seconds: f64) -> bool {
    let proxies = reqs.iter().map(|r| r.own.as_str()).collect::<std::collections::BTreeSet<_>>().len().max(1);
    let seen = reqs.iter().filter(|r| r.own == own).count();
    (seen as f64) < 0.8 * MAX_RPS / proxies as f64 * seconds
}

/// What the findings of a tapped workload ask of its sample.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Asked<'a> {
    /// The routes (`(workload, route)`) whose callers' proxies time out (their cancellations are those
    /// timeouts).
    pub timeouts: &'a [(String, String)],
    /// Whether its findings are about failures (not only latency): then a period too long for the sample
    /// is said to be unknown.
    pub failures: bool,
}

/// What a sample of one workload shows, as evidence lines.
pub(crate) fn evidence(
    workload: &str,
    reqs: &[Sampled],
    seconds: f64,
    counters: &Counters,
    asked: Asked<'_>,
) -> Vec<String> {
    let failed: Vec<&Sampled> = reqs.iter().filter(|r| r.failed()).collect();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for r in &failed {
        *reasons.entry(r.reason()).or_default() += 1;
    }
    let by_reason = if reasons.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = reasons.iter().map(|(r, n)| format!("{n} {r}")).collect();
        format!(": {}", list.join(", "))
    };
    let mut out = vec![format!(
        "tap sample of deploy/{workload} for {seconds:.0}s (maxRps {MAX_RPS}): {} requests, {} failed{by_reason}",
        reqs.len(),
        failed.len()
    )];
    if let Some((pod, f, all)) = concentrated(reqs, |r| r.served_by.as_str()).filter(|c| !c.0.is_empty()) {
        out.push(format!("tap: {f} of the {all} sampled failures were served by po/{pod}"));
    }
    if let Some((route, f, all)) = concentrated(reqs, |r| r.route.as_str()) {
        out.push(format!("tap: {f} of the {all} sampled failures were on route {route}"));
    }
    out.extend(sides::evidence(reqs, asked.timeouts));
    out.extend(period::evidence(reqs, seconds, counters, asked.failures));
    out.extend(sides::examples(&failed, LINES).iter().map(|r| r.line()));
    out
}

/// The workload a finding's subject names (`deploy/X`, `route deploy/X …`, `po/X`), if any.
fn workload_of(subject: &str, store: &Store) -> Option<String> {
    let rest = subject.strip_prefix("route ").unwrap_or(subject);
    if let Some(name) = rest.strip_prefix("deploy/") {
        return Some(name.split(' ').next().unwrap_or(name).to_string());
    }
    let pod = rest.strip_prefix("po/")?;
    let res = store.resources();
    res.workloads.iter().find(|w| w.instances.iter().any(|i| i.instance == pod)).map(|w| w.name.clone())
}

/// Reads one tap for `duration` (or until [`MAX_EVENTS`]), each event with when it arrived.
async fn read(store: Arc<Store>, shutdown: watch::Receiver<bool>, query: String, duration: Duration) -> Vec<Timed> {
    let Ok(mut rx) = tap::parse(&query).and_then(|plan| tap::start(store, plan, shutdown)) else {
        return Vec::new();
    };
    let mut events = Vec::new();
    let began = tokio::time::Instant::now();
    let deadline = began + duration;
    while events.len() < MAX_EVENTS {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(line)) => {
                let at_ms = began.elapsed().as_secs_f64() * 1000.0;
                events.extend(serde_json::from_slice::<TapEvent>(&line).ok().map(|e| (at_ms, e)));
            }
            _ => break,
        }
    }
    events
}

/// `route deploy/W ROUTE` → (W, ROUTE).
fn route_of(subject: &str) -> Option<(String, String)> {
    let (w, route) = subject.strip_prefix("route deploy/")?.split_once(' ')?;
    Some((w.to_string(), route.to_string()))
}

/// Taps the workloads of the first serious findings at once and adds what the samples show to each:
/// evidence lines, and a `latency-tail` finding when one instance or route carries a workload's slow
/// requests (ranked next to the finding it locates).
pub(crate) async fn attach(
    report: &mut Report,
    store: &Arc<Store>,
    shutdown: &watch::Receiver<bool>,
    duration: Duration,
    counters: &Counters,
) {
    // (findings, (namespace, workload)): one tap per workload, for every finding naming it.
    let mut targets: Vec<(Vec<usize>, (String, String))> = Vec::new();
    for (i, f) in report.findings.iter().enumerate().filter(|(_, f)| f.severity > Severity::Info) {
        let Some(w) = workload_of(&f.subject, store).map(|w| (f.namespace.clone(), w)) else { continue };
        if let Some((findings, _)) = targets.iter_mut().find(|(_, t)| *t == w) {
            findings.push(i);
        } else if targets.len() < MAX_TARGETS {
            targets.push((vec![i], w));
        }
    }
    if targets.is_empty() || duration.is_zero() {
        return;
    }
    let timeouts: Vec<(String, String)> =
        report.findings.iter().filter(|f| f.kind == ROUTE_TIMEOUT).filter_map(|f| route_of(&f.subject)).collect();
    let reads = targets.iter().map(|(_, (ns, w))| {
        let query = serde_urlencoded::to_string([
            ("resource", format!("deploy/{w}")),
            ("namespace", ns.clone()),
            ("maxRps", MAX_RPS.to_string()),
        ])
        .unwrap_or_default();
        read(store.clone(), shutdown.clone(), query, duration)
    });
    let samples = futures_util::future::join_all(reads).await;
    let seconds = duration.as_secs_f64();
    let mut tapped = Vec::new();
    let mut located = Vec::new();
    for ((findings, (ns, w)), events) in targets.iter().zip(samples) {
        let reqs = requests(&events);
        let failures = findings.iter().any(|i| !rank::LATENCY_KINDS.contains(&report.findings[*i].kind.as_str()));
        let lines = evidence(w, &reqs, seconds, counters, Asked { timeouts: &timeouts, failures });
        for i in findings {
            report.findings[*i].evidence.extend(lines.iter().cloned());
        }
        let known = |s: &str| report.findings.iter().any(|f| f.subject == s);
        if let Some(tail) = tails::find(w, &reqs).filter(|t| !known(&t.subject)) {
            let parent = &report.findings[findings[0]];
            let tap = match tail.subject.starts_with("po/") {
                true => format!("meshlens tap {} -n {ns}", tail.subject),
                false => format!("meshlens tap deploy/{w} -n {ns}"),
            };
            let mut f = Finding {
                severity: Severity::Warning,
                kind: LATENCY_TAIL.to_string(),
                subject: tail.subject,
                namespace: ns.clone(),
                cause: tail.cause,
                evidence: tail.evidence,
                commands: vec![tap, format!("meshlens top deploy/{w} -n {ns}")],
                impact_rps: parent.impact_rps * tail.share,
            };
            f.evidence.push(format!("locates {} {}: {}", parent.kind, parent.subject, parent.cause));
            located.push((findings[0], f));
        }
        tapped.push(format!("deploy/{w}"));
    }
    // From the last, so the earlier positions hold.
    for (parent, f) in located.into_iter().rev() {
        rank::locate(&mut report.findings, parent, f);
    }
    report.checked.push(format!(
        "a {seconds:.0}s tap sample (maxRps {MAX_RPS}) of {}: failures by reason, side, instance, route and period; \
         latency tails by instance and route",
        tapped.join(", ")
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(seq: usize, pod: &str, route: &str, status: u16, proxy_error: Option<&str>) -> Sampled {
        Sampled {
            seq,
            inbound: true,
            own: pod.into(),
            served_by: pod.into(),
            src: "po/web-0".into(),
            dst: format!("po/{pod}"),
            method: "GET".into(),
            path: "/x".into(),
            route: route.into(),
            status: Some(status),
            proxy_error: proxy_error.map(str::to_string),
            elapsed_ms: Some(3.0),
            ended: true,
            ..Sampled::default()
        }
    }

    #[test]
    fn every_nth_request_of_one_instance_is_named_with_the_failures_by_reason() {
        // b-0 answers every 5th request with 503; a-0 is fine; one proxy-made timeout on a-0's route.
        let mut reqs = Vec::new();
        for i in 0..40 {
            reqs.push(req(2 * i, "b-0", "GET /x", if i % 5 == 4 { 503 } else { 200 }, None));
            reqs.push(req(2 * i + 1, "a-0", "GET /y", 200, None));
        }
        reqs.push(req(100, "a-0", "GET /y", 504, Some("timeout")));
        let ev = evidence("b", &reqs, 3.0, &Counters::default(), Asked { failures: true, ..Asked::default() });
        assert_eq!(
            ev[0],
            "tap sample of deploy/b for 3s (maxRps 50): 81 requests, 9 failed: 8 app-made 503, 1 proxy-made timeout"
        );
        assert!(ev.contains(&"tap: 8 of the 9 sampled failures were served by po/b-0".to_string()), "{ev:#?}");
        assert!(ev.contains(&"tap: 8 of the 9 sampled failures were on route GET /x".to_string()), "{ev:#?}");
        assert!(
            ev.contains(&"tap: po/b-0 failed every 5th request it served (8 failures, equally spaced)".to_string()),
            "{ev:#?}"
        );
        let lines: Vec<_> = ev.iter().filter(|l| l.starts_with("tap inbound")).collect();
        assert_eq!(lines.len(), 3, "{ev:#?}");
        assert_eq!(lines[0], "tap inbound po/web-0 → po/b-0 GET /x :status 503 3ms");
    }

    #[test]
    fn spread_failures_name_no_instance_route_or_period() {
        let reqs: Vec<_> = (0..30)
            .map(|i| {
                req(
                    i,
                    ["a-0", "a-1"][i % 2],
                    ["GET /x", "GET /y"][(i / 2) % 2],
                    if i % 7 == 0 || i % 11 == 0 { 500 } else { 200 },
                    None,
                )
            })
            .collect();
        let ev = evidence("a", &reqs, 3.0, &Counters::default(), Asked { failures: true, ..Asked::default() });
        let named = |l: &&String| l.contains("served by") || l.contains("on route") || l.contains("every");
        assert!(!ev.iter().any(|l| named(&l)), "{ev:#?}");
    }

    #[test]
    fn tap_events_fold_into_requests_with_their_side_and_arrival() {
        use meshlens_api::tap::{RequestInit, ResponseEnd, StreamId, TapEndpoint};
        let peer = |deploy: &str, pod: &str| TapEndpoint {
            ip: "127.0.0.1".into(),
            port: 1,
            metadata: [("deployment".to_string(), deploy.to_string()), ("pod".to_string(), pod.to_string())].into(),
        };
        let id = StreamId { base: 0, stream: 7 };
        let base = TapEvent::new(ProxyDirection::Inbound, peer("caller", "caller-0"), peer("callee", "callee-0"));
        let req = TapEvent {
            request_init_event: Some(RequestInit {
                id,
                method: "GET".into(),
                scheme: "http".into(),
                authority: "callee".into(),
                path: "/work".into(),
                headers: Vec::new(),
            }),
            ..base.clone()
        };
        // The caller went away after 2 s: an end without a response, reset.
        let end = TapEvent {
            response_end_event: Some(ResponseEnd {
                id,
                since_request_init: Duration::from_millis(2000).into(),
                since_response_init: None,
                response_bytes: 0,
                trailers: Vec::new(),
                grpc_status_code: None,
                reset_error_code: Some(2),
            }),
            ..base
        };
        let reqs = requests(&[(120.0, req), (2120.0, end)]);
        assert_eq!(reqs.len(), 1);
        let r = &reqs[0];
        assert!(r.cancelled() && r.failed(), "{r:#?}");
        assert_eq!((r.src_workload.as_str(), r.dst_workload.as_str(), r.at_ms), ("caller", "callee", 120.0));
        assert_eq!(r.elapsed_ms, Some(2000.0));
        assert_eq!(sides::side(r, false), Some(sides::Side::Cancelled));
        assert_eq!(r.line(), "tap inbound po/caller-0 → po/callee-0 GET /work no response 2000ms");
    }

    #[test]
    fn a_sample_within_the_time_budget() {
        assert_eq!(duration(None), Duration::from_secs(3));
        assert_eq!(duration(Some(Duration::from_secs(10))), Duration::from_secs(1));
        assert_eq!(duration(Some(Duration::from_secs(600))), Duration::from_secs(3));
    }
}
