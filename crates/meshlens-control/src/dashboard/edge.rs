//! One edge's page (`/edge/NS/SRC/NS/DST`): the caller's requests to the callee as the callee's numbers,
//! and the caller's routes to it, EFFECTIVE vs ACTUAL, with retry fates.

use std::fmt::Write;

use meshlens_api::stats::StatQuery;

use super::html::{Frame, esc, page};
use super::overview::table;
use super::workload::route_table;
use super::{Window, findings};
use crate::statsapi;

pub(super) fn render(w: &Window, (src_ns, src): (&str, &str), (dst_ns, dst): (&str, &str)) -> String {
    let link = |ns: &str, name: &str| {
        format!("<a href=\"/workload/{0}/{1}?window={2}\">{0}/{1}</a>", esc(ns), esc(name), esc(&w.window))
    };
    let mut body =
        format!("<p>From {} to {}.</p><div data-live=\"edge\"><h2>Requests</h2>", link(src_ns, src), link(dst_ns, dst));
    let q = StatQuery {
        resource: "deploy".into(),
        names: Some(dst.into()),
        namespace: Some(dst_ns.into()),
        from: Some(format!("deploy/{src}")),
        from_namespace: Some(src_ns.into()),
        window: Some(w.window.clone()),
        ..StatQuery::default()
    };
    match statsapi::stat(&w.res, &w.store, &q, w.end) {
        Ok(rows) => table(&mut body, w, &rows, "data-callee", |r| format!("{}/{}", r.namespace, r.name)),
        Err(e) => {
            let _ = write!(body, "<p class=\"error\">{}</p>", esc(&format!("{e:?}")));
        }
    }
    body.push_str("<h2>Routes</h2>");
    let q = StatQuery {
        resource: format!("deploy/{src}"),
        namespace: Some(src_ns.into()),
        to: Some(format!("deploy/{dst}")),
        to_namespace: Some(dst_ns.into()),
        window: Some(w.window.clone()),
        ..StatQuery::default()
    };
    match statsapi::routes(&w.res, &w.store, &q, w.end) {
        Ok(map) => {
            let callee = (dst_ns.to_string(), dst.to_string());
            let routes: Vec<_> = map.into_values().map(|v| (format!("to {dst_ns}/{dst}"), callee.clone(), v)).collect();
            route_table(&mut body, &w.window, &routes);
        }
        Err(e) => {
            let _ = write!(body, "<p class=\"error\">{}</p>", esc(&format!("{e:?}")));
        }
    }
    findings::render(&mut body, w, src_ns, Some(dst));
    body.push_str("</div>");
    let command = format!(
        "meshlens stat deploy/{dst} -n {dst_ns} --from deploy/{src} --from-namespace {src_ns} -t {0}; \
         meshlens routes deploy/{src} -n {src_ns} --to deploy/{dst} --to-namespace {dst_ns} -o wide -t {0}",
        w.window
    );
    let title = format!("{src_ns}/{src} → {dst_ns}/{dst}");
    page(&Frame { title: &title, page: "edge", window: &w.window, offset: None, command }, &body)
}
