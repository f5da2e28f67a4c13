//! `meshlens diagnose`: the five-step method run by the control plane (`/api/v1/diagnose`), printed as
//! ranked findings with their evidence and the plain commands that show the same (docs/diagnose.md).

use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use meshlens_api::diagnose::{Finding, Report, Severity};
use meshlens_api::time::{Precision, rfc3339};

use super::client::{self, ControlArg};
use super::output::{self, Format};

/// The exit code when a finding meets `--fail-on`.
pub const FAIL_ON_EXIT: u8 = 3;

/// Find what is wrong with the traffic of a namespace: the root cause first, with evidence and the
/// commands that confirm it. Nothing above "info" means nothing was found wrong.
#[derive(Args, Debug)]
pub struct DiagnoseArgs {
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// The window judged.
    #[arg(short = 't', long = "time-window", default_value = "1m")]
    time_window: String,
    /// table (wide is the same) or json.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    /// Exit with code 3 when a finding is at least this severe (critical, warning, info).
    #[arg(long, value_name = "SEVERITY", value_parser = severity)]
    fail_on: Option<Severity>,
    /// Give up after this long (Go-style duration); the tap sample takes a tenth of it (at most 3 s).
    #[arg(long, default_value = "60s", value_parser = budget)]
    time_budget: Duration,
    /// The baseline latencies and edges are compared with: the same window this long ago (default: the
    /// window just before).
    ///
    /// Without it, each route's latency is compared with a baseline learned from the earlier windows the
    /// control plane (or Prometheus) holds: the median p99 over up to 8 windows of the same length with
    /// ≥50 requests, once 3 such windows exist (until then, the window just before; the report says which).
    #[arg(long, value_name = "DURATION")]
    offset: Option<String>,
    /// Re-evaluate every this long (e.g. 10s) and print what changed: new and resolved findings.
    #[arg(short = 'w', long, value_name = "DURATION", value_parser = budget)]
    watch: Option<Duration>,
    /// Compare this mesh's configuration with another's (a mesh directory, or a control plane's URL): the
    /// differences are a `config-drift` finding, and each finding about a service that differs names them.
    #[arg(long, value_name = "DIR_OR_URL")]
    compare: Option<String>,
    /// The API token of the --compare control plane.
    #[arg(long, value_name = "FILE", requires = "compare")]
    compare_token_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    control: ControlArg,
}

fn severity(s: &str) -> Result<Severity, String> {
    Severity::parse(s).ok_or_else(|| format!("'{s}': expected critical, warning or info"))
}

fn budget(s: &str) -> Result<Duration, String> {
    meshlens_api::duration::parse(s).map_err(|e| format!("invalid time budget '{s}': {e}"))
}

/// One evaluation within the time budget.
fn evaluate(args: &DiagnoseArgs) -> anyhow::Result<Report> {
    let budget = format!("{}ms", args.time_budget.as_millis());
    let mut params = vec![("namespace", &args.namespace), ("window", &args.time_window), ("budget", &budget)];
    if let Some(offset) = &args.offset {
        params.push(("offset", offset));
    }
    let path = format!("/api/v1/diagnose?{}", client::query(&params));
    let url = args.control.url();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(client::get_json::<Report>(&url, &path));
    });
    let mut report = match rx.recv_timeout(args.time_budget) {
        Ok(r) => r?,
        Err(mpsc::RecvTimeoutError::Timeout) => {
            return Err(anyhow!("diagnose did not finish within its time budget of {:?}", args.time_budget));
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => return Err(anyhow!("diagnose stopped without an answer")),
    };
    if let Some(other) = &args.compare {
        let token = match &args.compare_token_file {
            Some(f) => Some(crate::runtime::secrets::read_secret(f)?),
            None => None,
        };
        let res: meshlens_control::api_types::Resources = client::get_json(&args.control.url(), "/api/v1/resources")?;
        let this = meshlens_control::drift::MeshView::from_resources(&res);
        let differences = meshlens_control::drift::compare(&this, &super::check::view(other, token.as_deref())?);
        add_drift(&mut report, other, &differences);
    }
    Ok(report)
}

/// The service a drift subject is about (`svc/NS/NAME`, `sp/NS/NAME.NS.svc…`, `route sp/NS/NAME… ROUTE`,
/// `ts/NS/NAME[ BACKEND]`): its namespace and short name.
fn drift_service(subject: &str) -> Option<(&str, &str)> {
    let resource = subject.strip_prefix("route ").unwrap_or(subject).split(' ').next()?;
    let mut parts = resource.splitn(3, '/');
    let (_, ns, name) = (parts.next()?, parts.next()?, parts.next()?);
    Some((ns, name.split('.').next()?))
}

/// Adds `differences` from mesh `other` to the report: evidence on every finding that names a service
/// that differs, and one `config-drift` finding listing them all (info: drift alone is not a fault).
pub fn add_drift(report: &mut Report, other: &str, differences: &[meshlens_api::check::Difference]) {
    let line = |d: &meshlens_api::check::Difference| {
        let this = d.this.as_deref().unwrap_or("absent");
        let theirs = d.other.as_deref().unwrap_or("absent");
        format!("{} {}: {this} here, {theirs} in {other}", d.kind, d.subject)
    };
    let words = |text: &str, name: &str| text.split(|c: char| !(c.is_alphanumeric() || c == '-')).any(|w| w == name);
    for f in &mut report.findings {
        for d in differences {
            let Some((ns, name)) = drift_service(&d.subject) else { continue };
            if ns == f.namespace && (words(&f.subject, name) || words(&f.cause, name)) {
                f.evidence.push(format!("configuration differs from {other}: {}", line(d)));
            }
        }
    }
    let mine: Vec<&meshlens_api::check::Difference> = differences
        .iter()
        .filter(|d| drift_service(&d.subject).is_some_and(|(ns, _)| ns == report.namespace))
        .collect();
    report.checked.push(format!(
        "the configuration against {other}: {} difference(s) in namespace {} ({} in all)",
        mine.len(),
        report.namespace,
        differences.len()
    ));
    if mine.is_empty() {
        return;
    }
    report.findings.push(Finding {
        severity: Severity::Info,
        kind: meshlens_api::diagnose::CONFIG_DRIFT.to_string(),
        subject: format!("ns/{}", report.namespace),
        namespace: report.namespace.clone(),
        cause: format!("the configuration differs from {other} in {} place(s)", mine.len()),
        evidence: mine.iter().map(|d| line(d)).collect(),
        commands: vec![format!("meshlens check --compare {other}")],
        impact_rps: 0.0,
    });
}

pub fn run(args: DiagnoseArgs) -> anyhow::Result<ExitCode> {
    let report = evaluate(&args)?;
    let text = if args.output == Format::Json { output::json(&report)? } else { render(&report) };
    print!("{text}");
    if let Some(every) = args.watch {
        watch(&args, report.clone(), every)?;
    }
    if args.fail_on.is_some_and(|min| report.worst().is_some_and(|w| w >= min)) {
        return Ok(ExitCode::from(FAIL_ON_EXIT));
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-evaluates every `every` until interrupted, printing what changed (json: each new report).
fn watch(args: &DiagnoseArgs, mut last: Report, every: Duration) -> anyhow::Result<()> {
    use std::io::Write;
    loop {
        std::thread::sleep(every);
        let next = match evaluate(args) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("diagnose: {e:#}");
                continue;
            }
        };
        let text = if args.output == Format::Json {
            serde_json::to_string(&next)? + "\n"
        } else {
            changes(&last, &next, &rfc3339(std::time::SystemTime::now(), Precision::Seconds))
        };
        print!("{text}");
        std::io::stdout().flush()?;
        last = next;
    }
}

/// What changed between two reports, in rank order: findings (kind and subject) that are new, changed
/// severity, or resolved; nothing when nothing changed.
pub fn changes(before: &Report, after: &Report, at: &str) -> String {
    use std::fmt::Write;
    let key = |f: &Finding| (f.kind.clone(), f.subject.clone());
    let old: std::collections::BTreeMap<_, _> = before.findings.iter().map(|f| (key(f), f)).collect();
    let new: std::collections::BTreeMap<_, _> = after.findings.iter().map(|f| (key(f), f)).collect();
    let mut out = String::new();
    // In rank order.
    for f in &after.findings {
        match old.get(&key(f)) {
            None => {
                let _ = writeln!(
                    out,
                    "{at} NEW {} {} {}: {}",
                    f.severity.as_str().to_uppercase(),
                    f.kind,
                    f.subject,
                    f.cause
                );
            }
            Some(o) if o.severity != f.severity => {
                let (from, to) = (o.severity.as_str().to_uppercase(), f.severity.as_str().to_uppercase());
                let _ = writeln!(out, "{at} NOW {to} (was {from}) {} {}: {}", f.kind, f.subject, f.cause);
            }
            Some(_) => {}
        }
    }
    for f in &before.findings {
        if !new.contains_key(&key(f)) {
            let _ = writeln!(out, "{at} RESOLVED {} {} {}", f.severity.as_str().to_uppercase(), f.kind, f.subject);
        }
    }
    out
}

/// The human form: each finding with its cause, evidence and commands; then what was checked.
pub fn render(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let serious = report.findings.iter().filter(|f| f.severity > Severity::Info).count();
    let _ = writeln!(
        out,
        "Namespace {}, last {}s: {}",
        report.namespace,
        report.window_s,
        match serious {
            0 => "nothing wrong found".to_string(),
            1 => "1 finding".to_string(),
            n => format!("{n} findings"),
        }
    );
    for (i, f) in report.findings.iter().enumerate() {
        let _ = writeln!(out, "\n{}. {} {} {}", i + 1, f.severity.as_str().to_uppercase(), f.kind, f.subject);
        let _ = writeln!(out, "   {}", f.cause);
        for e in &f.evidence {
            let _ = writeln!(out, "   - {e}");
        }
        for c in &f.commands {
            let _ = writeln!(out, "   $ {c}");
        }
    }
    let _ = writeln!(out, "\nChecked:");
    for c in &report.checked {
        let _ = writeln!(out, "  {c}");
    }
    out
}

/// Parses `--fail-on` the way clap does (for tests of the exit-code rule).
#[cfg(test)]
fn fails(report: &Report, min: &str) -> bool {
    let min = severity(min).unwrap();
    report.worst().is_some_and(|w| w >= min)
}

#[cfg(test)]
mod tests {
    use meshlens_api::diagnose::{FAILING_WORKLOAD, STOPPED_EDGE};

    use super::*;

    fn report(severities: &[Severity]) -> Report {
        let findings = severities
            .iter()
            .map(|s| Finding {
                severity: *s,
                kind: FAILING_WORKLOAD.into(),
                subject: "deploy/db".into(),
                namespace: "prod".into(),
                cause: "db itself answers 10.00% of its requests with failures".into(),
                evidence: vec!["db served 600 requests".into()],
                commands: vec!["meshlens stat deploy/db -n prod".into()],
                impact_rps: 1.0,
            })
            .collect();
        Report {
            namespace: "prod".into(),
            window_s: 60.0,
            covered_s: 60.0,
            findings,
            checked: vec!["success of 3 workloads".into()],
        }
    }

    #[test]
    fn drift_names_the_differences_on_the_findings_about_them() {
        use meshlens_api::check::{Change, Difference};
        let diff = |kind: &str, subject: &str, this: &str, other: &str| Difference {
            kind: kind.into(),
            subject: subject.into(),
            change: Change::Changed,
            this: Some(this.into()),
            other: Some(other.into()),
        };
        let differences = [
            diff("timeout", "route sp/prod/db.prod.svc.cluster.local GET /rows", "2s", "3s"),
            diff("weight", "ts/staging/db ml-b", "50", "100"),
        ];
        let mut r = report(&[Severity::Warning]);
        add_drift(&mut r, "./staging", &differences);
        assert_eq!(
            r.findings[0].evidence.last().unwrap(),
            "configuration differs from ./staging: timeout route sp/prod/db.prod.svc.cluster.local GET /rows: 2s here, 3s in ./staging"
        );
        let drift = &r.findings[1];
        assert_eq!(
            (drift.kind.as_str(), drift.subject.as_str(), drift.severity),
            ("config-drift", "ns/prod", Severity::Info)
        );
        assert_eq!(drift.evidence.len(), 1, "only this namespace's differences: {:?}", drift.evidence);
        assert!(r.checked.last().unwrap().contains("1 difference(s) in namespace prod (2 in all)"));

        let mut same = report(&[Severity::Warning]);
        add_drift(&mut same, "./staging", &[]);
        assert_eq!(same.findings.len(), 1, "no drift finding when nothing differs");
    }

    #[test]
    fn fail_on_meets_the_worst_severity() {
        assert!(fails(&report(&[Severity::Warning]), "warning"));
        assert!(fails(&report(&[Severity::Critical]), "warning"));
        assert!(!fails(&report(&[Severity::Info]), "warning"));
        assert!(!fails(&report(&[]), "info"));
        assert!(severity("fatal").is_err());
    }

    #[test]
    fn findings_print_with_evidence_and_commands() {
        let text = render(&report(&[Severity::Critical]));
        assert_eq!(
            text,
            "Namespace prod, last 60s: 1 finding\n\n1. CRITICAL failing-workload deploy/db\n   db itself answers 10.00% of \
             its requests with failures\n   - db served 600 requests\n   $ meshlens stat deploy/db -n prod\n\nChecked:\n  \
             success of 3 workloads\n"
        );
        assert!(render(&report(&[])).starts_with("Namespace prod, last 60s: nothing wrong found\n"));
    }

    #[test]
    fn watching_prints_new_resolved_and_changed_findings_only() {
        let before = report(&[Severity::Warning]);
        assert_eq!(changes(&before, &before, "12:00:00"), "");
        let mut after = report(&[Severity::Critical]);
        let mut stopped = after.findings[0].clone();
        stopped.kind = STOPPED_EDGE.into();
        stopped.cause = "web stopped calling db".into();
        after.findings.push(stopped);
        assert_eq!(
            changes(&before, &after, "12:00:10"),
            "12:00:10 NOW CRITICAL (was WARNING) failing-workload deploy/db: db itself answers 10.00% of its requests \
             with failures\n12:00:10 NEW CRITICAL stopped-edge deploy/db: web stopped calling db\n"
        );
        assert_eq!(
            changes(&after, &report(&[]), "12:00:20"),
            "12:00:20 RESOLVED CRITICAL failing-workload deploy/db\n12:00:20 RESOLVED CRITICAL stopped-edge deploy/db\n"
        );
    }
}
