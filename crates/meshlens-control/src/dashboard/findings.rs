//! The diagnosis panel: `/api/v1/diagnose`'s findings with their evidence and commands, linked to the pages
//! of the workloads they name.

use std::fmt::Write;

use super::Window;
use super::html::esc;
use crate::diagnose::{self, DiagnoseQuery};

/// The findings of `/api/v1/diagnose` for namespace `ns` (only those naming workload `about`, when given),
/// each linked to its subject's page; nothing when diagnosis cannot run.
pub(super) fn render(body: &mut String, w: &Window, ns: &str, about: Option<&str>) {
    let q = DiagnoseQuery { namespace: Some(ns.into()), window: Some(w.window.clone()), ..DiagnoseQuery::default() };
    let Ok(report) = diagnose::diagnose(&w.res, &w.config.mesh.spec.objectives, &w.store, &q, w.end) else { return };
    let names =
        |text: &str, name: &str| text.split(|c: char| !(c.is_alphanumeric() || c == '-')).any(|word| word == name);
    let about = |text: &str| about.is_none_or(|name| names(text, name));
    let findings: Vec<_> = report
        .findings
        .iter()
        .filter(|f| about(&f.subject) || about(&f.cause) || f.evidence.iter().any(|e| about(e)))
        .collect();
    let _ = write!(
        body,
        "<h2>Diagnosis: {}</h2><p class=\"cli\">CLI: <code>meshlens diagnose -n {} -t {}</code></p>",
        esc(ns),
        esc(ns),
        esc(&w.window)
    );
    if findings.is_empty() {
        body.push_str("<p>No finding.</p>");
        return;
    }
    body.push_str("<ul class=\"findings\">");
    for f in findings {
        // `deploy/NAME`, or `deploy/NAME -n NS` for a workload in another namespace (f.namespace).
        let subject = match f.subject.strip_prefix("deploy/").and_then(|t| t.split(' ').next()) {
            Some(target) => format!(
                "<a href=\"/workload/{}/{}?window={}\">{}</a>",
                esc(&f.namespace),
                esc(target),
                esc(&w.window),
                esc(&f.subject)
            ),
            None => esc(&f.subject),
        };
        let _ = write!(
            body,
            "<li class=\"{}\" data-finding=\"{}\"><b>{}</b> {} {subject}: {}<ul>",
            f.severity.as_str(),
            esc(&f.kind),
            f.severity.as_str(),
            esc(&f.kind),
            esc(&f.cause)
        );
        for e in &f.evidence {
            let _ = write!(body, "<li>{}</li>", esc(e));
        }
        for c in &f.commands {
            let _ = write!(body, "<li><code>{}</code></li>", esc(c));
        }
        body.push_str("</ul></li>");
    }
    body.push_str("</ul>");
}
