//! `stat au`: one row per authority (the `host:port` callers named), as Linkerd's `stat authority`.
//!
//! Without `to`/`from`: what the workloads in scope served, by the authority of the service each request
//! named (the inbound route series: every caller, meshed or not; canonical `svc.ns.svc.cluster.local:port`).
//! `from=X`: X's requests by the authority X's app called (outbound, per attempt, with TCP). `to=X`: the
//! requests of every meshed workload in scope to X, by the authority they called.

use std::collections::BTreeMap;

use meshlens_api::labels::ERROR_CANCELLED;
use meshlens_api::stats::StatRow;

use super::{Res, Span, numbers};
use crate::api_types::Resources;
use crate::metricstore::{Family, Key, MetricStore};

/// The view the rows are of.
pub(super) enum View<'a> {
    Served,
    From(&'a Res),
    To(&'a Res),
}

/// Does `name` (as given on the command line) name `authority`? The exact `host:port`, or the host alone.
fn names(name: &str, authority: &str) -> bool {
    name == authority || authority.rsplit_once(':').is_some_and(|(host, _)| host == name)
}

/// The namespace of the mesh service an authority names (its canonical name), else empty.
fn namespace_of(res: &Resources, authority: &str) -> String {
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    res.services.iter().find(|s| s.fqdn == host).map(|s| s.namespace.clone()).unwrap_or_default()
}

/// The rows of `view`, for the authorities `wanted` (all when empty), sorted by authority.
pub(super) fn rows(
    res: &Resources,
    ms: &MetricStore,
    scope: Option<&str>,
    wanted: &[String],
    view: View<'_>,
    span: &Span,
) -> Vec<StatRow> {
    let in_scope = |k: &Key| scope.is_none_or(|s| s == k.namespace);
    let picked =
        |k: &Key| !k.authority.is_empty() && (wanted.is_empty() || wanted.iter().any(|w| names(w, &k.authority)));
    let http_of = |k: &Key| -> bool {
        picked(k)
            && match view {
                View::Served => k.family == Family::Route && !k.outbound && in_scope(k),
                View::From(x) => k.family == Family::Http && k.outbound && x.is_source(k),
                View::To(x) => k.family == Family::Http && k.outbound && in_scope(k) && x.is_destination(k),
            }
    };
    // Connections are counted by the client's proxy only: TCP numbers where this view is a client's.
    let tcp_of = |k: &Key| -> bool {
        picked(k)
            && k.family == Family::Tcp
            && k.outbound
            && match view {
                View::Served => false,
                View::From(x) => x.is_source(k),
                View::To(x) => in_scope(k) && x.is_destination(k),
            }
    };
    let http = span.query(ms, |k| http_of(k).then(|| k.authority.clone()));
    let tcp = span.query(ms, |k| tcp_of(k).then(|| k.authority.clone()));
    let errors = span.query(ms, |k| {
        (http_of(k) && !k.error.is_empty() && k.error != ERROR_CANCELLED)
            .then(|| (k.authority.clone(), k.error.clone()))
    });
    let mut all: Vec<&String> = http.keys().filter(|a| http[*a].http).collect();
    all.extend(tcp.keys().filter(|a| tcp[*a].tcp && !http.get(*a).is_some_and(|t| t.http)));
    all.sort();
    let client = !matches!(view, View::Served);
    all.into_iter()
        .map(|authority| {
            let ns = namespace_of(res, authority);
            let tcp = client.then(|| tcp.get(authority)).flatten();
            let mut row = numbers("authority", &ns, authority, "-".into(), http.get(authority), tcp, span);
            let errs: BTreeMap<String, u64> = errors
                .iter()
                .filter(|((a, _), t)| a == authority && t.failure + t.success > 0.0)
                .map(|((_, e), t)| (e.clone(), (t.failure + t.success).round() as u64))
                .collect();
            row.proxy_errors = (!errs.is_empty()).then_some(errs);
            row
        })
        .collect()
}
