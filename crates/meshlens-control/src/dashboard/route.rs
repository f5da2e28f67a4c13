//! One route's page (`/route/NS/WORKLOAD?route=NAME`): the route as its workload serves it and as each
//! caller sends it (EFFECTIVE vs ACTUAL, timeouts, retry fates), its configuration with `file:line`,
//! findings, recent proxy log events and a live tap of the workload.

use std::fmt::Write;

use meshlens_api::profile::RouteSpec;
use meshlens_api::stats::StatQuery;

use super::html::{Frame, esc, page};
use super::workload::{RouteGroup, log_and_tap_panels, route_table};
use super::{Window, findings};
use crate::statsapi;

/// The page of route `route` served by workload `ns/name`, for `window`.
pub(super) fn href(ns: &str, name: &str, route: &str, window: &str) -> String {
    let query = serde_urlencoded::to_string([("route", route), ("window", window)]).unwrap_or_default();
    format!("/route/{ns}/{name}?{query}")
}

/// The profile routes named `route` of the services `ns/name` backs, with where each was declared.
fn declared<'a>(w: &'a Window, ns: &str, name: &str, route: &str) -> Vec<(&'a str, &'a str, &'a RouteSpec)> {
    let fqdns: Vec<&str> =
        w.res.services.iter().filter(|s| s.namespace == ns && s.workload == name).map(|s| s.fqdn.as_str()).collect();
    w.res
        .profiles
        .iter()
        .filter(|p| fqdns.contains(&p.profile.metadata.name.as_str()))
        .flat_map(|p| {
            let (profile, source) = (p.profile.metadata.name.as_str(), p.source.as_str());
            p.profile.spec.routes.iter().filter(|r| r.name == route).map(move |r| (profile, source, r))
        })
        .collect()
}

pub(super) fn render(w: &Window, ns: &str, name: &str, route: &str) -> String {
    let me = format!("deploy/{name}");
    let mine = (ns.to_string(), name.to_string());
    let mut body = format!(
        "<p>Route <code>{}</code> of <a href=\"/workload/{}/{}?window={}\">{}/{}</a>.</p><div data-live=\"route\">",
        esc(route),
        esc(ns),
        esc(name),
        esc(&w.window),
        esc(ns),
        esc(name)
    );
    let only = |rows: Vec<meshlens_api::stats::RouteRow>| rows.into_iter().filter(|r| r.route == route).collect();
    let mut groups: Vec<RouteGroup> = Vec::new();
    if let Ok(map) = statsapi::routes(&w.res, &w.store, &w.query_in(ns, &me), w.end) {
        groups.extend(map.into_iter().map(|(k, v)| (format!("served ({k})"), mine.clone(), only(v))));
    }
    let callers = StatQuery { to: Some(me.clone()), ..w.query_in(ns, "deploy") };
    for c in statsapi::stat(&w.res, &w.store, &callers, w.end).unwrap_or_default() {
        if c.unmeshed || !c.rps.is_some_and(|r| r > 0.0) {
            continue;
        }
        let q = StatQuery {
            to: Some(me.clone()),
            to_namespace: Some(ns.into()),
            ..w.query_in(&c.namespace, &format!("deploy/{}", c.name))
        };
        if let Ok(map) = statsapi::routes(&w.res, &w.store, &q, w.end) {
            let from = format!("from {}/{}", c.namespace, c.name);
            groups.extend(map.into_values().map(|v| (from.clone(), mine.clone(), only(v))));
        }
    }
    groups.retain(|(_, _, rows)| !rows.is_empty());
    body.push_str("<h2>Requests</h2>");
    route_table(&mut body, &w.window, &groups);

    body.push_str("<h2>Configuration</h2>");
    let routes = declared(w, ns, name, route);
    if routes.is_empty() {
        body.push_str("<p>No ServiceProfile route has this name: <code>[DEFAULT]</code> is what no route matched.</p>");
    } else {
        body.push_str(
            "<table class=\"stats\"><thead><tr><th>PROFILE</th><th>CONDITION</th><th>RETRYABLE</th><th>TIMEOUT</th>\
             <th>DECLARED AT</th></tr></thead><tbody>",
        );
        for (profile, source, r) in routes {
            let _ = write!(
                body,
                "<tr data-route-config=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&r.name),
                esc(profile),
                esc(&r.condition.to_string()),
                if r.is_retryable || r.retry.is_some() { "yes" } else { "no" },
                esc(r.timeout.as_deref().unwrap_or("-")),
                esc(source)
            );
        }
        body.push_str("</tbody></table>");
    }
    findings::render(&mut body, w, ns, Some(name));
    body.push_str("</div>");
    log_and_tap_panels(&mut body, &me, ns);
    let command = format!(
        "meshlens routes {me} -n {ns} -o wide -t {0}; meshlens routes deploy/CALLER -n NS --to {me} --to-namespace {ns} \
         -o wide -t {0}; meshlens top {me} -n {ns} --routes",
        w.window
    );
    let title = format!("{ns}/{name} {route}");
    page(&Frame { title: &title, page: "route", window: &w.window, offset: None, command }, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_link_escapes_its_name() {
        assert_eq!(
            href("prod", "user-service", "GET /users/{id}", "5m"),
            "/route/prod/user-service?route=GET+%2Fusers%2F%7Bid%7D&window=5m"
        );
    }
}
