//! `meshlens dashboard`: a one-time login link for the control plane's web dashboard, opened in a browser
//! when there is one.

use std::process::{ExitCode, Stdio};

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

use super::client::{self, ControlArg};

#[derive(Args, Debug)]
pub struct DashboardArgs {
    #[command(flatten)]
    pub control: ControlArg,
    /// Only print the link; do not start a browser.
    #[arg(long)]
    pub no_open: bool,
}

#[derive(Deserialize)]
struct LoginCode {
    code: String,
    expires_in_s: u64,
}

pub fn run(args: DashboardArgs) -> anyhow::Result<ExitCode> {
    let base = args.control.url();
    let login: LoginCode = client::post_json(&base, "/api/v1/dashboard/login-code")
        .context("cannot get a dashboard login code (it needs the API token)")?;
    let url = format!("{base}/login?code={}", login.code);
    println!("{url}");
    eprintln!("the link logs one browser in; it works once, within {} s", login.expires_in_s);
    if !args.no_open && !open(&url) {
        eprintln!("no browser found: open the link above (set BROWSER to choose one)");
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts `$BROWSER URL`, else `xdg-open URL` when there is a display; whether one started. Never fails.
fn open(url: &str) -> bool {
    let browser = std::env::var("BROWSER").ok().filter(|b| !b.trim().is_empty());
    let display = ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    let program = match browser {
        Some(b) => b,
        None if display => "xdg-open".to_string(),
        None => return false,
    };
    std::process::Command::new(program)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .is_ok()
}
