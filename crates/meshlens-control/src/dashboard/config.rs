//! The configuration page (`/config`): whether the mesh directory loaded (validation errors with
//! `file:line`), traffic splits with their weights and actual shares, ServiceProfiles and their routes.

use std::fmt::Write;

use super::Window;
use super::html::{Frame, esc, page, percent, rate};
use crate::api_types::Status;
use crate::statsapi;

pub(super) fn render(w: &Window, status: &Status) -> String {
    let r = &status.reload;
    let mut body = String::from("<div data-live=\"config\"><h2>Mesh directory</h2>");
    let _ = write!(
        body,
        "<p data-reload=\"{}\">{} <code>{}</code>: loaded {}, reloads accepted {}, rejected {}.</p>",
        if r.ok { "ok" } else { "rejected" },
        if r.ok { "Valid:" } else { "<b class=\"error\">Invalid since</b>" },
        esc(&status.mesh_dir),
        esc(&r.loaded_at),
        r.accepted,
        r.rejected
    );
    if !r.ok {
        body.push_str("<p>The last valid configuration keeps serving. Errors:</p><ul class=\"errors\">");
        for e in &r.errors {
            let _ = write!(body, "<li><code>{}</code></li>", esc(e));
        }
        body.push_str("</ul>");
    }

    body.push_str("<h2>Traffic splits</h2>");
    match statsapi::stat(&w.res, &w.store, &w.query("ts"), w.end) {
        Ok(rows) if !rows.is_empty() => {
            body.push_str(
                "<table class=\"stats\"><thead><tr><th>NAMESPACE</th><th>SPLIT</th><th>APEX</th><th>LEAF</th>\
                 <th>WEIGHT</th><th>SHARE</th><th>SUCCESS</th><th>RPS</th></tr></thead><tbody>",
            );
            for row in rows {
                let _ = write!(
                    body,
                    "<tr data-split=\"{}/{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(&row.namespace),
                    esc(row.leaf.as_deref().unwrap_or_default()),
                    esc(&row.namespace),
                    esc(&row.name),
                    esc(row.apex.as_deref().unwrap_or("-")),
                    esc(row.leaf.as_deref().unwrap_or("-")),
                    row.weight.map(|v| format!("{v}")).unwrap_or_else(|| "-".into()),
                    percent(row.share),
                    percent(row.success),
                    rate(row.rps)
                );
            }
            body.push_str("</tbody></table>");
        }
        Ok(_) => body.push_str("<p>No traffic split.</p>"),
        Err(e) => {
            let _ = write!(body, "<p class=\"error\">{}</p>", esc(&format!("{e:?}")));
        }
    }

    body.push_str("<h2>Service profiles</h2>");
    if w.res.profiles.is_empty() {
        body.push_str("<p>No service profile.</p>");
    }
    for p in &w.res.profiles {
        let _ = write!(
            body,
            "<h3>{} <small>{}</small></h3><table class=\"stats\"><thead><tr><th>ROUTE</th><th>RETRYABLE</th>\
             <th>TIMEOUT</th></tr></thead><tbody>",
            esc(&p.profile.metadata.name),
            esc(&p.source)
        );
        for route in &p.profile.spec.routes {
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&route.name),
                if route.is_retryable { "yes" } else { "no" },
                esc(route.timeout.as_deref().unwrap_or("-"))
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</div>");
    let command = format!("meshlens stat ts -A -t {}", w.window);
    page(&Frame { title: "Configuration", page: "config", window: &w.window, offset: None, command }, &body)
}
