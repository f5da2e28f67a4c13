//! One workload's page: who calls it and what it calls, its routes (EFFECTIVE vs ACTUAL per callee),
//! its instances, the diagnosis findings about it; recent proxy log events and a live tap are loaded by
//! the script from `/api/v1/logs` and `/api/v1/tap`.

use std::fmt::Write;

use std::collections::BTreeMap;
use std::time::Instant;

use meshlens_api::balancer::CallerView;
use meshlens_api::stats::{RouteNumbers, RouteRow, StatQuery, StatRow};

use super::balancers::SharedReading;
use super::html::{Frame, esc, millis, page, percent, rate};
use super::overview::{Column, table, table_with};
use super::{Window, findings};
use crate::api::Shared;
use crate::diagnostics::{self, EndpointsQuery};
use crate::statsapi;

/// Per instance of workload `ns/name`, how each calling instance's balancer sees it (as
/// `/api/v1/endpoints?balancers=true` answers for the services it backs, from the shared `reading`); empty
/// when it backs none.
pub(super) async fn balancers(
    s: &Shared,
    reading: &SharedReading,
    w: &Window,
    ns: &str,
    name: &str,
) -> BTreeMap<String, Vec<CallerView>> {
    let snapshot = s.store.current().snapshot.clone();
    let authorities: Vec<String> = snapshot
        .services
        .iter()
        .filter(|svc| {
            svc.namespace == ns && svc.endpoints.iter().any(|e| e.labels.get("deployment").is_some_and(|d| d == name))
        })
        .filter_map(|svc| Some(format!("{}.{}:{}", svc.name, svc.namespace, svc.ports.first()?.port)))
        .collect();
    if authorities.is_empty() {
        return BTreeMap::new();
    }
    let q = EndpointsQuery { authority: authorities.join(","), namespace: Some(ns.into()), ..Default::default() };
    let Ok(mut resolved) = diagnostics::endpoints(&snapshot, &q) else { return BTreeMap::new() };
    let Ok(counts) = diagnostics::window_request_counts(&s.stats, &w.res, Some(w.window.clone())).await else {
        return BTreeMap::new();
    };
    let callers = reading.get(Instant::now(), || diagnostics::fetch_balancers(&w.res)).await;
    diagnostics::add_callers(&mut resolved, &snapshot, &callers, &counts);
    let mut out: BTreeMap<String, Vec<CallerView>> = BTreeMap::new();
    for row in resolved.into_values().flatten() {
        out.entry(row.pod).or_default().extend(row.callers);
    }
    out
}

/// The mean share of the callers' requests an instance answered, over the callers that sent any.
fn share(callers: &[CallerView]) -> String {
    let shares: Vec<f64> = callers.iter().filter_map(|c| c.share).collect();
    if shares.is_empty() {
        return "-".into();
    }
    format!("{:.1}%", shares.iter().sum::<f64>() / shares.len() as f64 * 100.0)
}

/// How many balancers hold the instance, and their breakers' states (`in 3 balancers, open 1, closed 2`).
fn state(callers: &[CallerView]) -> String {
    if callers.is_empty() {
        return "-".into();
    }
    let mut breakers: BTreeMap<&str, usize> = BTreeMap::new();
    for c in callers.iter().filter_map(|c| c.breaker.as_deref()) {
        *breakers.entry(c).or_default() += 1;
    }
    let mut out = format!("in {} balancer{}", callers.len(), if callers.len() == 1 { "" } else { "s" });
    for (b, n) in breakers {
        out.push_str(&format!(", {b} {n}"));
    }
    out
}

/// Proxy errors by reason (`timeout=2 connect_error=1`), `-` when none.
fn proxy_errors(r: &StatRow) -> String {
    match &r.proxy_errors {
        Some(m) if !m.is_empty() => m.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(" "),
        _ => "-".into(),
    }
}

/// The page; a failing query shows its error in place of its section.
/// `balancers`: per instance, the calling balancers' views of it ([`balancers`]).
pub(super) fn render(w: &Window, ns: &str, name: &str, balancers: &BTreeMap<String, Vec<CallerView>>) -> String {
    let me = format!("deploy/{name}");
    let mut body = String::from("<div data-live=\"workload\">");
    let key = |r: &meshlens_api::stats::StatRow| format!("{}/{}", r.namespace, r.name);
    // Callers and callees: only the workloads with traffic to or from this one.
    let section = |body: &mut String, title: &str, q: StatQuery, attr: &str| {
        let _ = write!(body, "<h2>{title}</h2>");
        let peers = q.to.is_some() || q.from.is_some();
        match statsapi::stat(&w.res, &w.store, &q, w.end) {
            Ok(mut rows) => {
                rows.retain(|r| !peers || r.rps.is_some_and(|rps| rps > 0.0));
                table(body, w, &rows, attr, key)
            }
            Err(e) => {
                let _ = write!(body, "<p class=\"error\">{}</p>", esc(&format!("{e:?}")));
            }
        }
    };
    section(&mut body, "Inbound", w.query_in(ns, &me), "data-workload");
    section(&mut body, "Callers", StatQuery { to: Some(me.clone()), ..w.query_in(ns, "deploy") }, "data-caller");
    let outbound = StatQuery { from: Some(me.clone()), ..w.query_in(ns, "deploy") };
    section(&mut body, "Callees", outbound.clone(), "data-callee");

    super::history::render(&mut body, w, ns, name);

    body.push_str("<h2>Routes</h2>");
    let mut routes: Vec<RouteGroup> = Vec::new();
    let mine = || (ns.to_string(), name.to_string());
    if let Ok(map) = statsapi::routes(&w.res, &w.store, &w.query_in(ns, &me), w.end) {
        routes.extend(map.into_iter().map(|(k, v)| (format!("served ({k})"), mine(), v)));
    }
    let callees = statsapi::stat(&w.res, &w.store, &outbound, w.end).unwrap_or_default();
    for c in callees.iter().filter(|c| c.rps.is_some_and(|r| r > 0.0)) {
        let q = StatQuery {
            to: Some(format!("deploy/{}", c.name)),
            to_namespace: Some(c.namespace.clone()),
            ..w.query_in(ns, &me)
        };
        if let Ok(map) = statsapi::routes(&w.res, &w.store, &q, w.end) {
            let callee = (c.namespace.clone(), c.name.clone());
            routes.extend(map.into_values().map(|v| (format!("to {}/{}", c.namespace, c.name), callee.clone(), v)));
        }
    }
    route_table(&mut body, &w.window, &routes);

    body.push_str("<h2>Instances</h2>");
    let wl = w.res.workloads.iter().find(|x| x.namespace == ns && x.name == name);
    let names: Vec<&str> = wl.map(|x| x.instances.iter().map(|i| i.instance.as_str()).collect()).unwrap_or_default();
    if names.is_empty() {
        body.push_str("<p>No instance is registered.</p>");
    } else {
        let q = StatQuery { names: Some(names.join(",")), ..w.query_in(ns, "po") };
        match statsapi::stat(&w.res, &w.store, &q, w.end) {
            Ok(rows) => {
                let callers = |r: &StatRow| balancers.get(&r.name).map_or(&[][..], Vec::as_slice);
                let columns: [Column<'_>; 4] = [
                    ("CANCELLED", "cancelled", &|r| r.cancelled.map_or_else(|| "-".into(), |n| n.to_string())),
                    ("PROXY_ERRORS", "proxy-errors", &|r| esc(&proxy_errors(r))),
                    ("BALANCER_SHARE", "balancer-share", &|r| share(callers(r))),
                    ("BALANCER_STATE", "balancer-state", &|r| esc(&state(callers(r)))),
                ];
                table_with(&mut body, w, &rows, "data-instance", key, &columns)
            }
            Err(e) => {
                let _ = write!(body, "<p class=\"error\">{}</p>", esc(&format!("{e:?}")));
            }
        }
    }

    findings::render(&mut body, w, ns, Some(name));
    body.push_str("</div>");

    log_and_tap_panels(&mut body, &me, ns);
    let command = format!(
        "meshlens stat {me} -n {ns} -t {0}; meshlens routes {me} -n {ns} --to deploy/CALLEE -o wide -t {0}; \
         meshlens diagnostics endpoints SERVICE.{ns}:PORT -n {ns} -o wide -t {0}",
        w.window
    );
    page(&Frame { title: &format!("{ns}/{name}"), page: "workload", window: &w.window, offset: None, command }, &body)
}

/// The recent proxy log events of `resource` (`deploy/NAME`) and a live tap panel with the CLI's filters.
pub(super) fn log_and_tap_panels(body: &mut String, me: &str, ns: &str) {
    let _ = write!(
        body,
        "<h2>Recent proxy log events</h2><div id=\"logs\" data-logs=\"{0}\" data-namespace=\"{1}\"><p>loading…</p></div>\
         <h2>Live tap</h2><form id=\"tap-filter\" class=\"tap-filter\"><label>method <input name=\"method\" size=\"6\"></label> <label>path <input name=\"path\" size=\"14\"></label> \
         <label>authority <input name=\"authority\" size=\"14\"></label> \
         <label>status <input name=\"status\" size=\"7\" placeholder=\"5xx\"></label> \
         <label><input type=\"checkbox\" name=\"failed\" value=\"true\"> failed only</label></form>\
         <p><button id=\"tap-toggle\" data-tap=\"{0}\" data-namespace=\"{1}\">start</button> \
         <span class=\"cli\">CLI: <code id=\"tap-command\">meshlens tap {0} -n {1}</code></span></p>\
         <table class=\"stats\" id=\"tap\"><thead><tr><th>TIME</th><th>DIRECTION</th><th>METHOD</th><th>AUTHORITY</th>\
         <th>PATH</th><th>STATUS</th><th>LATENCY</th><th>NOTE</th></tr></thead><tbody></tbody></table>",
        esc(me),
        esc(ns)
    );
}

/// A group of route rows: what they are for (served, to which callee, from which caller), the workload
/// serving the routes (namespace, name: the route pages link there), and the rows.
pub(super) type RouteGroup = (String, (String, String), Vec<RouteRow>);

/// Route rows under the column FOR (served, or to which callee): effective and actual numbers, timeouts,
/// retry fates; each route links to its page.
pub(super) fn route_table(body: &mut String, window: &str, routes: &[RouteGroup]) {
    if routes.is_empty() {
        body.push_str("<p>No routes in the window.</p>");
        return;
    }
    body.push_str(
        "<table class=\"stats\"><thead><tr><th>FOR</th><th>ROUTE</th><th>AUTHORITY</th><th>EFFECTIVE_SUCCESS</th>\
         <th>EFFECTIVE_RPS</th><th>ACTUAL_SUCCESS</th><th>ACTUAL_RPS</th><th>LATENCY_P50</th><th>LATENCY_P95</th>\
         <th>LATENCY_P99</th><th>TIMEOUTS</th><th>RETRY_FATES</th></tr></thead><tbody>",
    );
    for (what, (ns, server), rows) in routes {
        for r in rows {
            let (es, er, a_s, ar) = match r.numbers {
                RouteNumbers::ToTarget { effective_success, effective_rps, actual_success, actual_rps } => {
                    (effective_success, effective_rps, actual_success, actual_rps)
                }
                RouteNumbers::Plain { success, rps } => (success, rps, None, None),
            };
            let _ = write!(
                body,
                "<tr data-route=\"{}\"><td>{}</td><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.route),
                esc(what),
                esc(&super::route::href(ns, server, &r.route, window)),
                esc(&r.route),
                esc(&r.authority),
                percent(es),
                rate(er),
                percent(a_s),
                rate(ar),
                millis(r.latency_ms_p50),
                millis(r.latency_ms_p95),
                millis(r.latency_ms_p99),
                r.timeouts.map(|t| t.to_string()).unwrap_or_else(|| "-".into()),
                esc(&r
                    .retry_fates
                    .iter()
                    .flatten()
                    .map(|(fate, n)| format!("{fate}={n}"))
                    .collect::<Vec<_>>()
                    .join(" "))
            );
        }
    }
    body.push_str("</tbody></table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(pod: &str, share: Option<f64>, breaker: Option<&str>) -> CallerView {
        CallerView {
            namespace: "prod".into(),
            workload: "frontend".into(),
            pod: pod.into(),
            ewma_ms: 3.0,
            in_flight: 0,
            requests_total: 10,
            breaker: breaker.map(Into::into),
            breaker_remaining_ms: None,
            share,
        }
    }

    #[test]
    fn instance_balancer_share_and_state_sum_up_the_callers() {
        assert_eq!((share(&[]), state(&[])), ("-".to_string(), "-".to_string()), "not in any balancer");
        let callers = [
            caller("frontend-0", Some(0.5), Some("closed")),
            caller("frontend-1", Some(0.25), Some("open")),
            caller("frontend-2", None, Some("closed")),
        ];
        assert_eq!(share(&callers), "37.5%", "the mean over the callers that sent requests");
        assert_eq!(state(&callers), "in 3 balancers, closed 2, open 1");
        assert_eq!(state(&[caller("a", None, None)]), "in 1 balancer");
        assert_eq!(share(&[caller("a", None, None)]), "-");
    }
}
