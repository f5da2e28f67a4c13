//! `meshlens logs`: the recent WARN/ERROR events of a resource's proxies, or of the control plane, as the
//! control plane relays them (`/api/v1/logs`): a table, or JSON; `-f` follows new events as they come.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, anyhow};
use clap::{Args, ValueEnum};
use http_body_util::BodyExt;
use meshlens_api::logs::{LogEvent, RelayedLogs, Unreachable};

use super::client::{self, ControlArg};
use super::output;

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// deploy/NAME, po/NAME, svc/NAME or ns/NAME (or TYPE NAME); `control` for the control plane's own events.
    #[arg(required = true, num_args = 1..=2, value_name = "RESOURCE")]
    resource: Vec<String>,
    /// The namespace of the resource.
    #[arg(short = 'n', long, default_value = "default")]
    namespace: String,
    /// The least severe events to show: warn (WARN and ERROR) or error (ERROR only).
    #[arg(long, value_enum, default_value = "warn")]
    level: Level,
    /// Only events of this recent period (e.g. 10m, 1h).
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    /// Keep printing new events as they are logged (Ctrl-C stops).
    #[arg(short = 'f', long)]
    follow: bool,
    /// Output format: table, or json (with -f: one event per line).
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: LogsFormat,
    #[command(flatten)]
    control: ControlArg,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Level {
    Warn,
    Error,
}

/// `table` or `json`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogsFormat {
    Table,
    Json,
}

/// The table's columns; the fields of an event follow its message.
pub const HEADER: [&str; 5] = ["TIME", "LEVEL", "POD", "TARGET", "MESSAGE"];

pub fn run(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let resource = client::resource(&args.resource)
        .ok_or_else(|| anyhow!("expected one resource: TYPE/NAME, TYPE NAME or control (e.g. deploy/web)"))?;
    let level = if args.level == Level::Error { "error" } else { "warn" };
    let mut pairs = vec![("resource", resource.as_str()), ("namespace", &args.namespace), ("level", level)];
    if let Some(since) = &args.since {
        pairs.push(("since", since));
    }
    if args.follow {
        pairs.push(("follow", "true"));
    }
    let q = format!("/api/v1/logs?{}", client::query(&pairs));
    let base = args.control.url();
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let uri: hyper::Uri =
            format!("{base}{q}").parse().map_err(|e| anyhow!("invalid control plane URL {base}: {e}"))?;
        let resp = client::request(&base, uri).await?;
        let status = resp.status();
        if status.is_client_error() {
            // The question was wrong (no such resource, bad level or duration): say so, exit 1.
            let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            eprintln!("meshlens: {}", client::api_error(status, &body));
            return Ok(ExitCode::from(1));
        }
        if !status.is_success() {
            let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            return Err(client::api_error(status, &body));
        }
        if args.follow {
            return follow(resp.into_body(), args.output).await;
        }
        let body = resp.into_body().collect().await.map_err(|e| client::unreachable(&base, &e))?.to_bytes();
        let logs: RelayedLogs = serde_json::from_slice(&body).context("unexpected answer from the control plane")?;
        if args.output == LogsFormat::Json {
            print!("{}", output::json(&logs)?);
            return Ok(ExitCode::SUCCESS);
        }
        for u in &logs.unreachable {
            eprintln!("{}", unreachable(u));
        }
        if logs.events.is_empty() {
            let which = if args.level == Level::Error { "ERROR" } else { "WARN or ERROR" };
            eprintln!("No {which} events from {resource}.");
        } else {
            print!("{}", render_table(&logs.events));
        }
        if logs.dropped > 0 {
            eprintln!("({} older events were dropped: each process keeps its most recent ones)", logs.dropped);
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Prints each line of the NDJSON stream as it comes, until the control plane ends it or stdout closes.
async fn follow(body: hyper::body::Incoming, format: LogsFormat) -> anyhow::Result<ExitCode> {
    let mut stdout = std::io::stdout();
    // TIME and LEVEL have a fixed width (`2026-12-02T21:37:46.123Z`, `ERROR`); the others widen as needed.
    let mut widths: Vec<usize> = HEADER.iter().map(|h| h.len()).collect();
    (widths[0], widths[1]) = (24, 5);
    if format == LogsFormat::Table {
        writeln!(stdout, "{}", row(&mut widths, HEADER.iter().map(|h| h.to_string()).collect()))?;
    }
    let mut lines = client::NdjsonLines::new(body);
    while let Some(line) = lines.next().await {
        let line = line.map_err(|e| anyhow!("logs: {e}"))?;
        let text = String::from_utf8_lossy(&line);
        let out = if let Ok(u) = serde_json::from_str::<Unreachable>(&text) {
            eprintln!("{}", unreachable(&u));
            continue;
        } else if format == LogsFormat::Json {
            text.into_owned()
        } else {
            let event: LogEvent = serde_json::from_str(&text)
                .with_context(|| format!("the control plane sent a line that is no log event: {text}"))?;
            row(&mut widths, cells(&event))
        };
        // A closed pipe (`| head`) ends quietly.
        if writeln!(stdout, "{out}").and_then(|_| stdout.flush()).is_err() {
            return Ok(ExitCode::SUCCESS);
        }
    }
    eprintln!("the log stream ended");
    Ok(ExitCode::SUCCESS)
}

/// `pod (namespace/deployment): its events could not be read: why`.
fn unreachable(u: &Unreachable) -> String {
    let s = &u.source;
    format!("meshlens: {} ({}/{}): its events could not be read: {}", s.pod, s.namespace, s.deployment, u.error)
}

/// One line of a table whose columns widen as longer values come (for a stream).
fn row(widths: &mut [usize], cells: Vec<String>) -> String {
    let mut line = String::new();
    for (i, c) in cells.iter().enumerate() {
        widths[i] = widths[i].max(c.chars().count());
        if i > 0 {
            line.push_str("   ");
        }
        line.push_str(c);
        if i + 1 < cells.len() {
            line.push_str(&" ".repeat(widths[i] - c.chars().count()));
        }
    }
    line
}

/// The events as a table (every column left-aligned).
pub fn render_table(events: &[LogEvent]) -> String {
    let rows: Vec<Vec<String>> = events.iter().map(cells).collect();
    output::table(&HEADER, &rows, HEADER.len())
}

/// TIME, LEVEL, POD, TARGET, then the message followed by `key=value` for every field.
fn cells(e: &LogEvent) -> Vec<String> {
    let mut message = e.message.clone();
    for (k, v) in &e.fields {
        let plain = !v.is_empty() && !v.contains(|c: char| c.is_whitespace() || c == '"' || c == '=');
        message.push_str(&if plain { format!(" {k}={v}") } else { format!(" {k}={v:?}") });
    }
    let pod = e.source.as_ref().map_or("-", |s| s.pod.as_str());
    vec![e.timestamp.clone(), e.level.clone(), pod.to_string(), e.target.clone(), message]
}
