//! The overview (`/`): every namespace and workload with the numbers of `meshlens stat`, rows below their
//! success objective marked, firing and pending alerts above them.

use std::fmt::Write;

use meshlens_api::alerts::Alert;
use meshlens_api::stats::StatRow;

use super::Window;
use super::html::{Frame, esc, millis, page, percent, rate};
use crate::diagnostics::QueryError;
use crate::statsapi;

/// The page, or the stats query's error; `alerts` as `/api/v1/alerts` lists them.
pub(super) fn render(w: &Window, alerts: &[Alert]) -> Result<String, QueryError> {
    let namespaces = statsapi::stat(&w.res, &w.store, &w.query("ns"), w.end)?;
    let workloads = statsapi::stat(&w.res, &w.store, &w.query("deploy"), w.end)?;
    let then = match &w.then {
        Some((offset, store, end)) => Some((offset.as_str(), statsapi::stat(&w.res, store, &w.query("deploy"), *end)?)),
        None => None,
    };
    let mut body = String::from("<div data-live=\"overview\">");
    super::firing::render(&mut body, alerts, &w.window);
    body.push_str("<h2>Namespaces</h2>");
    table(&mut body, w, &namespaces, "data-namespace", |r| r.name.clone());
    body.push_str("<h2>Workloads</h2>");
    table(&mut body, w, &workloads, "data-workload", |r| format!("{}/{}", r.namespace, r.name));
    if let Some((offset, rows)) = &then {
        compare(&mut body, &workloads, offset, rows);
    }
    let mut namespaces: Vec<&str> = w.res.workloads.iter().map(|x| x.namespace.as_str()).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    for ns in namespaces {
        super::findings::render(&mut body, w, ns, None);
    }
    body.push_str("</div>");
    let command = match &then {
        Some((offset, _)) => {
            format!("meshlens stat deploy -A -t {0}; meshlens stat deploy -A -t {0} --offset {offset}", w.window)
        }
        None => format!("meshlens stat deploy -A -t {}", w.window),
    };
    let offset = then.as_ref().map(|(o, _)| *o);
    Ok(page(&Frame { title: "Overview", page: "overview", window: &w.window, offset, command }, &body))
}

/// A table of stat rows; each row carries `attr="key"` and is marked `below` when its success rate is
/// under its objective.
pub(super) fn table(out: &mut String, w: &Window, rows: &[StatRow], attr: &str, key: impl Fn(&StatRow) -> String) {
    table_with(out, w, rows, attr, key, &[]);
}

/// An extra column of [`table_with`]: its header, its cell's `data-col`, and the cell's HTML.
pub(super) type Column<'a> = (&'a str, &'a str, &'a dyn Fn(&StatRow) -> String);

/// [`table`] with `extra` columns after the usual ones.
pub(super) fn table_with(
    out: &mut String,
    w: &Window,
    rows: &[StatRow],
    attr: &str,
    key: impl Fn(&StatRow) -> String,
    extra: &[Column<'_>],
) {
    out.push_str(
        "<table class=\"stats\"><thead><tr><th>NAMESPACE</th><th>NAME</th><th>MESHED</th><th>SUCCESS</th>\
         <th>RPS</th><th>LATENCY_P50</th><th>LATENCY_P95</th><th>LATENCY_P99</th><th>TCP_CONN</th>",
    );
    for (header, _, _) in extra {
        let _ = write!(out, "<th>{header}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        // The row of callers without a proxy (`stat --to`) names no workload.
        let workload = matches!(attr, "data-workload" | "data-caller" | "data-callee") && !r.unmeshed;
        let objective = if workload { w.objective(&r.namespace, &r.name) } else { w.objectives().success_rate / 100.0 };
        let below = r.success.is_some_and(|s| s < objective);
        let name = if workload {
            format!(
                "<a href=\"/workload/{}/{}?window={}\">{}</a>",
                esc(&r.namespace),
                esc(&r.name),
                esc(&w.window),
                esc(&r.name)
            )
        } else if r.unmeshed {
            "(unmeshed)".to_string()
        } else {
            esc(&r.name)
        };
        let _ = write!(
            out,
            "<tr {attr}=\"{}\"{}><td>{}</td><td>{name}</td><td data-col=\"meshed\">{}</td>\
             <td data-col=\"success\" title=\"objective {:.2}%\">{}</td><td data-col=\"rps\">{}</td>\
             <td data-col=\"p50\">{}</td><td data-col=\"p95\">{}</td><td data-col=\"p99\">{}</td>\
             <td data-col=\"tcp\">{}</td>",
            esc(&key(r)),
            if below { " class=\"below\" data-below=\"true\"" } else { "" },
            esc(&r.namespace),
            esc(&r.meshed),
            objective * 100.0,
            percent(r.success),
            rate(r.rps),
            millis(r.latency_ms_p50),
            millis(r.latency_ms_p95),
            millis(r.latency_ms_p99),
            r.tcp_open_connections.map(|c| c.to_string()).unwrap_or_else(|| "-".into()),
        );
        for (_, col, cell) in extra {
            let _ = write!(out, "<td data-col=\"{col}\">{}</td>", cell(r));
        }
        out.push_str("</tr>");
    }
    if rows.is_empty() {
        let _ = write!(out, "<tr><td colspan=\"{}\">No traffic or workloads yet.</td></tr>", 9 + extra.len());
    }
    out.push_str("</tbody></table>");
}

/// Now against `offset` ago: success and RPS of each workload in both windows.
fn compare(out: &mut String, now: &[StatRow], offset: &str, then: &[StatRow]) {
    let _ = write!(
        out,
        "<h2>Compared with {0} ago</h2><table class=\"stats\"><thead><tr><th>NAMESPACE</th><th>NAME</th>\
         <th>SUCCESS</th><th>SUCCESS ({0} ago)</th><th>RPS</th><th>RPS ({0} ago)</th><th>LATENCY_P99</th>\
         <th>LATENCY_P99 ({0} ago)</th></tr></thead><tbody>",
        esc(offset)
    );
    for r in now {
        let old = then.iter().find(|t| t.namespace == r.namespace && t.name == r.name);
        let _ = write!(
            out,
            "<tr data-compare=\"{}/{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.namespace),
            esc(&r.name),
            esc(&r.namespace),
            esc(&r.name),
            percent(r.success),
            percent(old.and_then(|o| o.success)),
            rate(r.rps),
            rate(old.and_then(|o| o.rps)),
            millis(r.latency_ms_p99),
            millis(old.and_then(|o| o.latency_ms_p99)),
        );
    }
    out.push_str("</tbody></table>");
}
