//! The alerts panel of the overview: firing and pending alerts of `/api/v1/alerts`, linked to their pages.

use std::fmt::Write;

use meshlens_api::alerts::{Alert, AlertState};

use super::html::esc;

/// A table of the firing and pending alerts in `alerts` (their rule, subject, summary and since when),
/// each subject linked to its workload page (a split's to `/config`); nothing when none is.
pub(super) fn render(body: &mut String, alerts: &[Alert], window: &str) {
    let live: Vec<&Alert> = alerts.iter().filter(|a| a.state != AlertState::Resolved).collect();
    if live.is_empty() {
        return;
    }
    body.push_str(
        "<section data-alerts><h2>Alerts</h2><p class=\"cli\">CLI: <code>meshlens alerts</code></p>\
         <table class=\"stats\"><thead><tr><th>STATE</th><th>RULE</th><th>SUBJECT</th><th>SUMMARY</th>\
         <th>SINCE</th></tr></thead><tbody>",
    );
    for a in live {
        let href = match (a.labels.get("deployment"), a.labels.get("trafficsplit")) {
            (Some(d), _) => Some(format!("/workload/{}/{}?window={}", esc(a.namespace()), esc(d), esc(window))),
            (None, Some(_)) => Some(format!("/config?window={}", esc(window))),
            (None, None) => None,
        };
        let subject = match href {
            Some(href) => format!("<a href=\"{href}\">{}</a>", esc(&a.subject)),
            None => esc(&a.subject),
        };
        let since = if a.state == AlertState::Firing { a.fired_at.as_deref() } else { None };
        let _ = write!(
            body,
            "<tr class=\"{0}\" data-alert=\"{1}\" data-state=\"{0}\"><td>{0}</td><td>{1}</td><td>{subject}</td>\
             <td>{2}</td><td>{3}</td></tr>",
            a.state.as_str(),
            esc(&a.rule),
            esc(&a.summary),
            esc(since.unwrap_or(&a.active_at)),
        );
    }
    body.push_str("</tbody></table></section>");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn alert(state: AlertState, labels: &[(&str, &str)], subject: &str) -> Alert {
        Alert {
            rule: "successRate".into(),
            state,
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            subject: subject.into(),
            summary: "order-service succeeds 90.0% <below> 99.5%".into(),
            value: 90.0,
            threshold: 99.5,
            evidence: vec![],
            active_at: "2027-01-15T08:00:00.000Z".into(),
            fired_at: (state != AlertState::Pending).then(|| "2027-01-15T08:01:00.000Z".into()),
            resolved_at: None,
        }
    }

    #[test]
    fn lists_firing_and_pending_linked_to_their_pages_and_is_absent_otherwise() {
        let mut body = String::new();
        render(&mut body, &[alert(AlertState::Resolved, &[], "deploy/x")], "5m");
        assert_eq!(body, "", "resolved alerts only: no panel");
        let alerts = [
            alert(
                AlertState::Firing,
                &[("namespace", "prod"), ("deployment", "order-service")],
                "deploy/order-service",
            ),
            alert(AlertState::Pending, &[("namespace", "prod"), ("trafficsplit", "checkout")], "ts/checkout"),
            alert(AlertState::Resolved, &[("namespace", "prod"), ("deployment", "gone")], "deploy/gone"),
        ];
        render(&mut body, &alerts, "5m");
        assert!(body.contains("<code>meshlens alerts</code>"), "{body}");
        assert!(
            body.contains(
                "<tr class=\"firing\" data-alert=\"successRate\" data-state=\"firing\"><td>firing</td><td>successRate</td>\
                 <td><a href=\"/workload/prod/order-service?window=5m\">deploy/order-service</a></td>\
                 <td>order-service succeeds 90.0% &lt;below&gt; 99.5%</td><td>2027-01-15T08:01:00.000Z</td></tr>"
            ),
            "{body}"
        );
        assert!(body.contains("<a href=\"/config?window=5m\">ts/checkout</a></td>"), "{body}");
        assert!(body.contains("<td>2027-01-15T08:00:00.000Z</td>"), "pending since it became active: {body}");
        assert!(!body.contains("gone"), "{body}");
    }
}
