//! `meshlens check`: Linkerd-style sections of √ / ‼ / × checks (`/api/v1/check`), `--pre DIR` before
//! `up`, and `--compare` (drift between two meshes' configurations).

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use meshlens_api::check::{Check, CheckReport, CheckStatus, DriftReport, Section};
use meshlens_control::api_types::Resources;
use meshlens_control::drift::{self, MeshView};

use super::client::{self, ApiError, ControlArg};
use super::output::{self, Format};

/// Exit code: every check passed (warnings allowed), or no difference.
const PASSED: u8 = 0;
/// A check failed, or the meshes differ.
const FAILED: u8 = 1;
/// The control plane cannot be reached (usage errors exit 2 too).
const UNREACHABLE: u8 = 2;

/// What `meshlens check --help` says (examples: cmd/examples.rs).
pub const ABOUT: &str = "\
Check the mesh's health and its configuration against traffic (√ / ‼ / ×), a directory before `up`
(--pre), or the drift between two meshes (--compare).

Checks, as sections of √ (passed) / ‼ (warning) / × (failed) lines with a hint under each ‼ and ×: the
control plane (reachable, version), its configuration (the last reload, file:line when rejected), every
declared instance's proxy (registered, ready, on the latest snapshot, scraped) and the leases; then the
configuration against live traffic: split weights not adding to 100% (and the shares observed), backends a
split leaves out, route timeouts below the observed p99, spent retry budgets, routes matching nothing while
[DEFAULT] carries the traffic (with sample paths), services called without a ServiceProfile, workloads
below their objectives (success rate, retries).

Exit codes: 0 nothing failed (warnings allowed), 1 a check failed or (--compare) the meshes differ,
2 the control plane cannot be reached or the command is wrong.";

/// `meshlens check` flags.
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Check this mesh directory without a control plane: validation (file:line) and the audits that
    /// need no traffic. With --compare: the mesh compared.
    #[arg(long, value_name = "DIR")]
    pre: Option<PathBuf>,
    /// List every difference in services, profiles, routes, timeouts, retry budgets and splits between
    /// this mesh and another (a mesh directory, or a control plane's URL); exit 1 when they differ.
    #[arg(long, value_name = "DIR_OR_URL")]
    compare: Option<String>,
    /// The API token of the --compare control plane.
    #[arg(long, value_name = "FILE", requires = "compare")]
    compare_token_file: Option<PathBuf>,
    /// The window live traffic is judged over.
    #[arg(short = 't', long = "time-window", default_value = "1m")]
    time_window: String,
    /// table or json.
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    control: ControlArg,
}

pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    if let Some(other) = &args.compare {
        return compare(&args, other);
    }
    let (report, code) = match &args.pre {
        Some(dir) => {
            let report = meshlens_control::check::pre(dir);
            let code = if report.worst() == CheckStatus::Failure { FAILED } else { PASSED };
            (report, code)
        }
        None => live(&args)?,
    };
    let text = if args.output == Format::Json { output::json(&report)? } else { render(&report) };
    print!("{text}");
    Ok(ExitCode::from(code))
}

/// The control plane's report, behind a `control-plane` section of the CLI's own.
fn live(args: &CheckArgs) -> anyhow::Result<(CheckReport, u8)> {
    let url = args.control.url();
    let path = format!("/api/v1/check?{}", client::query(&[("window", &args.time_window)]));
    let mut checks = Vec::new();
    let mut report = match client::get_json::<CheckReport>(&url, &path) {
        Ok(r) => r,
        Err(e) if e.downcast_ref::<ApiError>().is_some() => return Err(e),
        Err(e) => {
            checks.push(
                Check::failure(
                    format!("the control plane is reachable at {url}"),
                    "start one (meshlens up -f DIR, meshlens demo) or point at it: --control URL",
                )
                .with_detail(vec![format!("{e:#}")]),
            );
            let report =
                CheckReport { sections: vec![Section { name: "control-plane".into(), checks }], ..Default::default() };
            return Ok((report, UNREACHABLE));
        }
    };
    checks.push(Check::ok(format!("the control plane is reachable at {url}")));
    let cli = env!("CARGO_PKG_VERSION");
    match report.version.as_deref() {
        Some(v) if v == cli => checks.push(Check::ok(format!("the control plane's version {v} is the CLI's"))),
        v => checks.push(Check::warning(
            format!("the control plane's version {} differs from the CLI's {cli}", v.unwrap_or("unknown")),
            "run the same meshlens release for both",
        )),
    }
    report.sections.insert(0, Section { name: "control-plane".into(), checks });
    let code = if report.worst() == CheckStatus::Failure { FAILED } else { PASSED };
    Ok((report, code))
}

/// Linkerd's layout: a header per section, a line per check, its detail and hint indented, then the result.
pub fn render(report: &CheckReport) -> String {
    let mut out = String::new();
    for s in &report.sections {
        let _ = writeln!(out, "{}\n{}", s.name, "-".repeat(s.name.chars().count()));
        for c in &s.checks {
            let _ = writeln!(out, "{} {}", c.status.mark(), c.description);
            for d in &c.detail {
                let _ = writeln!(out, "    {d}");
            }
            if let Some(h) = c.hint.as_deref().filter(|_| c.status != CheckStatus::Ok) {
                let _ = writeln!(out, "    hint: {h}");
            }
        }
        out.push('\n');
    }
    let failed = report.worst() == CheckStatus::Failure;
    let _ = writeln!(out, "Status check results are {}", if failed { "×" } else { "√" });
    out
}

/// A mesh's configuration as drift compares it: a directory, or a control plane's resources.
pub(crate) fn view(what: &str, token: Option<&str>) -> anyhow::Result<MeshView> {
    if what.starts_with("http://") || what.starts_with("https://") {
        let base = what.trim_end_matches('/');
        let res: Resources = client::get_json_as(base, "/api/v1/resources", token)?;
        return Ok(MeshView::from_resources(&res));
    }
    let config = meshlens_control::load(Path::new(what))
        .map_err(|e| anyhow::anyhow!("{what} is not a valid mesh directory:\n{e}"))?;
    Ok(MeshView::from_config(&config))
}

fn compare(args: &CheckArgs, other: &str) -> anyhow::Result<ExitCode> {
    let token = match &args.compare_token_file {
        Some(f) => Some(crate::runtime::secrets::read_secret(f)?),
        None => None,
    };
    let (this_name, this) = match &args.pre {
        Some(dir) => (dir.display().to_string(), view(&dir.display().to_string(), None)?),
        None => {
            let url = args.control.url();
            let res: Resources = client::get_json(&url, "/api/v1/resources")?;
            (url, MeshView::from_resources(&res))
        }
    };
    let report = DriftReport {
        this: this_name,
        other: other.to_string(),
        differences: drift::compare(&this, &view(other, token.as_deref())?),
    };
    let text = if args.output == Format::Json { output::json(&report)? } else { render_drift(&report) };
    print!("{text}");
    Ok(ExitCode::from(if report.differences.is_empty() { PASSED } else { FAILED }))
}

/// One line per difference: `~ subject: this → other`, `- subject: this` (only here), `+ subject: other`.
pub fn render_drift(report: &DriftReport) -> String {
    let mut out = String::new();
    let n = report.differences.len();
    let _ = writeln!(
        out,
        "{} (-) against {} (+): {}",
        report.this,
        report.other,
        match n {
            0 => "no differences".to_string(),
            1 => "1 difference".to_string(),
            n => format!("{n} differences"),
        }
    );
    for d in &report.differences {
        let value = match (&d.this, &d.other) {
            (Some(a), Some(b)) => format!("{a} → {b}"),
            (Some(a), None) => a.clone(),
            (None, Some(b)) => b.clone(),
            (None, None) => String::new(),
        };
        let _ = writeln!(out, "{} {:<8} {}: {value}", d.change.mark(), d.kind, d.subject);
    }
    out
}

#[cfg(test)]
mod tests {
    use meshlens_api::check::{Change, Difference};

    use super::*;

    #[test]
    fn sections_print_like_linkerd_check() {
        let report = CheckReport {
            version: None,
            window_s: None,
            sections: vec![Section {
                name: "audits".into(),
                checks: vec![
                    Check::ok("every TrafficSplit's weights add up (1 splits)"),
                    Check::failure(
                        "ts/checkout -n prod: the weights add up to 110%, not 100%",
                        "make them add up to 100",
                    )
                    .with_detail(vec!["declared at checkout.split.yaml:1".into()]),
                ],
            }],
        };
        assert_eq!(
            render(&report),
            "audits\n------\n√ every TrafficSplit's weights add up (1 splits)\n× ts/checkout -n prod: the weights add up \
             to 110%, not 100%\n    declared at checkout.split.yaml:1\n    hint: make them add up to 100\n\nStatus check \
             results are ×\n"
        );
    }

    #[test]
    fn drift_reads_as_a_diff() {
        let d = |change, this: Option<&str>, other: Option<&str>| Difference {
            kind: "timeout".into(),
            subject: "route sp/prod/users GET /".into(),
            change,
            this: this.map(Into::into),
            other: other.map(Into::into),
        };
        let report = DriftReport {
            this: "a".into(),
            other: "b".into(),
            differences: vec![d(Change::Changed, Some("2s"), Some("5s")), d(Change::Added, None, Some("1s"))],
        };
        assert_eq!(
            render_drift(&report),
            "a (-) against b (+): 2 differences\n~ timeout  route sp/prod/users GET /: 2s → 5s\n+ timeout  route \
             sp/prod/users GET /: 1s\n"
        );
    }
}
