//! The rules of `spec.alerts` as a Prometheus rule file, over the proxies' Linkerd-named metrics as
//! `meshlens prometheus-config` scrapes them (labels `namespace`, `deployment`, `pod`). Per-service
//! objectives become rules of their own (matched on `deployment`, or on the `dst` authority for retries);
//! the mesh-wide rule leaves those out. Split weights are configuration, not metrics: the control plane
//! alone judges them.

use std::fmt::Write;

use meshlens_api::alerts::{self as api, AlertsReport};
use meshlens_api::mesh::ServiceObjectives;

/// One rule of the file.
struct Rule {
    alert: &'static str,
    expr: String,
    for_: String,
    severity: &'static str,
    summary: &'static str,
}

/// The rule file for `report`'s configuration.
pub fn render(report: &AlertsReport) -> String {
    let spec = &report.spec;
    let o = &report.objectives;
    let w = &spec.window;
    let min = spec.min_request_rate;
    let mut rules = Vec::new();
    // (matchers, objectives) per variant: the overrides, then the mesh-wide values for everything else.
    let mut variants: Vec<(String, String, ServiceObjectives)> = Vec::new();
    let mut names = Vec::new();
    for key in o.services.keys() {
        let (ns, name) = key.split_once('/').map_or((None, key.as_str()), |(n, s)| (Some(n), s));
        let ns_m = ns.map(|n| format!(",namespace=\"{n}\"")).unwrap_or_default();
        let dst_re = match ns {
            Some(n) => format!("{}\\\\.{}\\\\..*", regex_quote(name), regex_quote(n)),
            None => format!("{}\\\\..*", regex_quote(name)),
        };
        let objectives = o.for_service(ns.unwrap_or(""), name);
        variants.push((format!("{ns_m},deployment=\"{name}\""), format!(",dst=~\"{dst_re}\""), objectives));
        names.push((regex_quote(name), dst_re));
    }
    let mesh_wide =
        ServiceObjectives { success_rate: o.success_rate, latency_factor: o.latency_factor, retry_rate: o.retry_rate };
    if names.is_empty() {
        variants.push((String::new(), String::new(), mesh_wide));
    } else {
        let deploys: Vec<&str> = names.iter().map(|n| n.0.as_str()).collect();
        let dsts: Vec<&str> = names.iter().map(|n| n.1.as_str()).collect();
        variants.push((
            format!(",deployment!~\"{}\"", deploys.join("|")),
            format!(",dst!~\"{}\"", dsts.join("|")),
            mesh_wide,
        ));
    }
    let inbound = |m: &str| format!("direction=\"inbound\"{m}");
    for (deploy, dst, obj) in &variants {
        let by = "sum by (namespace, deployment)";
        let total = format!("{by} (rate(response_total{{{}}}[{w}]))", inbound(deploy));
        let enough = format!("{total} >= {min}");
        if spec.enabled(api::SUCCESS_RATE) {
            rules.push(Rule {
                alert: alert_name(api::SUCCESS_RATE),
                expr: format!(
                    "100 * {by} (rate(response_total{{{},classification=\"success\",error!=\"cancelled\"}}[{w}])) / {total} \
                     < {} and on (namespace, deployment) {enough}",
                    inbound(deploy),
                    obj.success_rate
                ),
                for_: spec.for_of(api::SUCCESS_RATE).to_string(),
                severity: "critical",
                summary: "{{ $labels.deployment }} answers {{ printf \"%.2f\" $value }}% of its requests successfully, below its objective",
            });
        }
        if spec.enabled(api::LATENCY) {
            let p99 = |offset: &str| {
                format!(
                    "histogram_quantile(0.99, sum by (namespace, deployment, le) (rate(response_latency_ms_bucket{{{}}}[{w}]{offset})))",
                    inbound(deploy)
                )
            };
            rules.push(Rule {
                alert: alert_name(api::LATENCY),
                expr: format!(
                    "{} > {} * {} and on (namespace, deployment) {enough}",
                    p99(""),
                    obj.latency_factor,
                    p99(&format!(" offset {}", spec.baseline))
                ),
                for_: spec.for_of(api::LATENCY).to_string(),
                severity: "warning",
                summary: "{{ $labels.deployment }}'s p99 is {{ printf \"%.0f\" $value }} ms, over its latency factor × the same window earlier",
            });
        }
        if spec.enabled(api::RETRY_RATE) {
            let by = "sum by (namespace, deployment, dst, rt_route)";
            let out = format!("direction=\"outbound\"{dst}");
            let effective = format!("{by} (rate(route_response_total{{{out}}}[{w}]))");
            rules.push(Rule {
                alert: alert_name(api::RETRY_RATE),
                expr: format!(
                    "100 * ({by} (rate(route_actual_response_total{{{out}}}[{w}])) / {effective} - 1) > {} \
                     and on (namespace, deployment, dst, rt_route) {effective} >= {min}",
                    obj.retry_rate
                ),
                for_: spec.for_of(api::RETRY_RATE).to_string(),
                severity: "warning",
                summary: "{{ $labels.deployment }} retries {{ $labels.rt_route }} of {{ $labels.dst }}: {{ printf \"%.1f\" $value }}% extra attempts",
            });
        }
    }
    let mut s = String::from(
        "# Prometheus alerting rules equivalent to the meshlens control plane's (meshlens alerts --prometheus-rules).\n\
         # Load with rule_files: in the prometheus.yml of `meshlens prometheus-config`.\n\
         # splitWeights (TrafficSplit weights not adding up to 100) is configuration, not metrics: the control\n\
         # plane judges it (meshlens alerts).\n\
         groups:\n  - name: meshlens\n    rules:\n",
    );
    for r in rules {
        let _ = write!(
            s,
            "      - alert: {}\n        expr: {}\n        for: {}\n        labels:\n          severity: {}\n        \
             annotations:\n          summary: {}\n",
            r.alert,
            quote(&r.expr),
            r.for_,
            r.severity,
            quote(r.summary)
        );
    }
    s
}

fn alert_name(rule: &str) -> &'static str {
    api::RULES.iter().find(|r| r.0 == rule).map_or("", |r| r.1)
}

/// A YAML double-quoted string.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `s` with regex metacharacters escaped (one backslash; doubled again for PromQL's string).
fn regex_quote(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c.to_string() } else { format!("\\\\{c}") })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_carry_the_thresholds_and_for_durations() {
        let mut report = super::super::tests::report();
        report.spec.rules.insert(api::LATENCY.into(), api::RuleSpec { enabled: Some(false), for_: None });
        report.objectives.services.insert(
            "prod/payment".into(),
            meshlens_api::mesh::ObjectiveOverride { success_rate: Some(99.9), ..Default::default() },
        );
        let text = render(&report);
        assert!(!text.contains("LatencyAboveBaseline"), "{text}");
        assert_eq!(text.matches("alert: SuccessRateBelowObjective").count(), 2, "{text}");
        assert!(text.contains(r#"namespace=\"prod\",deployment=\"payment\""#), "{text}");
        assert!(text.contains(r#"deployment!~\"payment\""#), "{text}");
        assert!(text.contains("< 99.9 and"), "{text}");
        assert!(text.contains("< 99.5 and"), "{text}");
        assert!(text.contains("> 5 and on (namespace, deployment, dst, rt_route)"), "{text}");
        assert!(text.contains("for: 2m\n"), "{text}");
    }
}
