//! `meshlens alerts`: the control plane's pending, firing and recently resolved alerts with their evidence
//! (`/api/v1/alerts`), once or `--watch`ed; `--prometheus-rules` prints the same rules for Prometheus.

mod prometheus;

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use meshlens_api::alerts::{Alert, AlertState, AlertsReport};

use super::client::{self, ControlArg};
use super::output::{self, Format};

pub const ABOUT: &str = "\
Pending and firing alerts with their evidence (--watch), or the rules for Prometheus (--prometheus-rules).

The control plane judges four rules on live traffic after every scrape round: success rate below the
objective, p99 above latencyFactor x its own baseline, retry rate above the objective (thresholds from
spec.objectives of mesh.yaml), and TrafficSplit weights that do not add up to 100. spec.alerts sets each
rule's `for:`, turns rules off, sets the minimum request rate, and lists webhook receivers (Alertmanager's
webhook format). Listed: pending and firing alerts, then those resolved in the last 15 minutes.";

/// `meshlens alerts` (the command's description is its entry in `Command`).
#[derive(Args, Debug)]
pub struct AlertsArgs {
    /// table, wide (with evidence) or json.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    /// Keep polling; print the alerts again whenever they change (json: one line per change).
    #[arg(short = 'w', long, conflicts_with = "prometheus_rules")]
    watch: bool,
    /// How often --watch asks.
    #[arg(long, default_value = "2s", value_parser = interval, requires = "watch")]
    interval: Duration,
    /// Print equivalent Prometheus alerting rules (a rule file) for a Prometheus scraping the proxies
    /// (`meshlens prometheus-config`), with the mesh's thresholds and `for:` durations.
    #[arg(long)]
    prometheus_rules: bool,
    #[command(flatten)]
    control: ControlArg,
}

fn interval(s: &str) -> Result<Duration, String> {
    let d = meshlens_api::duration::parse(s)?;
    if d < Duration::from_millis(100) {
        return Err("must be at least 100ms".into());
    }
    Ok(d)
}

pub fn run(args: AlertsArgs) -> anyhow::Result<ExitCode> {
    let url = args.control.url();
    let fetch = || client::get_json::<AlertsReport>(&url, "/api/v1/alerts");
    if args.prometheus_rules {
        print!("{}", prometheus::render(&fetch()?));
        return Ok(ExitCode::SUCCESS);
    }
    if !args.watch {
        print!("{}", show(&fetch()?, args.output, (false, false))?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut last = None;
    loop {
        let report = fetch()?;
        let now: Vec<(String, AlertState)> = report.alerts.iter().map(|a| (a.subject.clone(), a.state)).collect();
        if last.as_ref() != Some(&now) {
            print!("{}", show(&report, args.output, (true, last.is_some()))?);
            last = Some(now);
        }
        std::thread::sleep(args.interval);
    }
}

/// `watching`: json is one compact line per change; `again`: not the first print.
fn show(report: &AlertsReport, format: Format, (watching, again): (bool, bool)) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json if watching => format!("{}\n", serde_json::to_string(report)?),
        Format::Json => output::json(report)?,
        _ => {
            let mut s = if again { "\n".to_string() } else { String::new() };
            s.push_str(&render(report, format == Format::Wide));
            s
        }
    })
}

fn value(a: &Alert) -> String {
    match a.rule.as_str() {
        "latency" => format!("{:.0}ms > {:.0}ms", a.value, a.threshold),
        "splitWeights" => format!("{} ≠ {}", a.value, a.threshold),
        "retryRate" => format!("{:.1}% > {}%", a.value, a.threshold),
        _ => format!("{:.2}% < {}%", a.value, a.threshold),
    }
}

/// The table: one row an alert (`wide`: its evidence below it).
pub fn render(report: &AlertsReport, wide: bool) -> String {
    if !report.evaluating {
        return "The control plane reads Prometheus (--prometheus-url) and evaluates no alerts: load `meshlens alerts \
                --prometheus-rules` into Prometheus.\n"
            .into();
    }
    if report.alerts.is_empty() {
        let when = report.evaluated_at.as_deref().map_or("not evaluated yet".to_string(), |t| format!("evaluated {t}"));
        return format!("No alerts ({when}).\n");
    }
    let rows: Vec<Vec<String>> = report
        .alerts
        .iter()
        .map(|a| {
            let since = match a.state {
                AlertState::Pending => &a.active_at,
                AlertState::Firing => a.fired_at.as_ref().unwrap_or(&a.active_at),
                AlertState::Resolved => a.resolved_at.as_ref().unwrap_or(&a.active_at),
            };
            let name = a.labels.get("alertname").cloned().unwrap_or_else(|| a.rule.clone());
            vec![
                a.state.as_str().to_uppercase(),
                name,
                a.namespace().to_string(),
                a.subject.clone(),
                value(a),
                since.clone(),
            ]
        })
        .collect();
    let table = output::table(&["STATE", "ALERT", "NAMESPACE", "SUBJECT", "VALUE", "SINCE"], &rows, 6);
    if !wide {
        return table;
    }
    let mut out = table;
    for a in &report.alerts {
        out.push_str(&format!("\n{} {}: {}\n", a.state.as_str().to_uppercase(), a.subject, a.summary));
        for e in &a.evidence {
            out.push_str(&format!("  - {e}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    pub(super) fn report() -> AlertsReport {
        let alert = Alert {
            rule: "successRate".into(),
            state: AlertState::Firing,
            labels: BTreeMap::from([
                ("alertname".into(), "SuccessRateBelowObjective".into()),
                ("namespace".into(), "prod".into()),
            ]),
            subject: "deploy/order-service".into(),
            summary: "order-service answered 85.00% of its requests successfully".into(),
            value: 85.0,
            threshold: 99.5,
            evidence: vec!["30 of 200 requests failed in the last 60s (3.3 req/s)".into()],
            active_at: "2026-12-03T07:00:00.000Z".into(),
            fired_at: Some("2026-12-03T07:02:00.000Z".into()),
            resolved_at: None,
        };
        AlertsReport {
            evaluating: true,
            evaluated_at: Some("2026-12-03T07:02:05.000Z".into()),
            alerts: vec![alert],
            rules: Vec::new(),
            spec: Default::default(),
            objectives: Default::default(),
        }
    }

    #[test]
    fn a_row_an_alert_and_wide_adds_the_evidence() {
        let r = report();
        assert_eq!(
            render(&r, false),
            "STATE    ALERT                       NAMESPACE   SUBJECT                VALUE            SINCE\n\
             FIRING   SuccessRateBelowObjective   prod        deploy/order-service   85.00% < 99.5%   \
             2026-12-03T07:02:00.000Z\n"
        );
        assert!(render(&r, true).ends_with(
            "\nFIRING deploy/order-service: order-service answered 85.00% of its requests successfully\n  - 30 of \
             200 requests failed in the last 60s (3.3 req/s)\n"
        ));
        let quiet = AlertsReport { alerts: Vec::new(), ..r };
        assert_eq!(render(&quiet, false), "No alerts (evaluated 2026-12-03T07:02:05.000Z).\n");
    }
}
