//! `meshlens edges`: which workloads (or instances) talked to which, over HTTP or TCP, in the window
//! (reference/linkerd.md §1.6; Linkerd shows only connections open right now), unmeshed peers included:
//! an unmeshed destination by the authority it was called by, unmeshed clients as `(unmeshed)`, with `-`
//! for their namespace and the reason in SECURED, and a destination no service has (its requests refused
//! by the caller's proxy, e.g. `no_route`) as `NAME (unknown)`. `-o wide` adds CANCELLED.

use std::process::ExitCode;

use clap::Args;
use meshlens_api::stats::{EdgeRow, StatQuery};

use super::client::{self, ControlArg, NamespaceArgs};
use super::output::{self, Format};

/// Show the edges between resources: sources, destinations and whether the traffic is secured.
#[derive(Args, Debug)]
pub struct EdgesArgs {
    /// deploy or po, or deploy/NAME or po/NAME for the edges from or to one resource.
    #[arg(value_name = "RESOURCE")]
    resource: String,
    #[command(flatten)]
    pub(crate) scope: NamespaceArgs,
    /// The window in which traffic counts.
    #[arg(short = 't', long = "time-window", default_value = "1m")]
    time_window: String,
    /// The same window, this much earlier (e.g. `1h`: a baseline to compare with).
    #[arg(long, value_name = "DURATION")]
    offset: Option<String>,
    #[arg(short = 'o', long, value_enum, default_value = "table")]
    output: Format,
    #[command(flatten)]
    control: ControlArg,
}

pub fn run(args: EdgesArgs) -> anyhow::Result<ExitCode> {
    let query = StatQuery {
        resource: args.resource.clone(),
        namespace: Some(args.scope.namespace.clone()),
        window: Some(args.time_window.clone()),
        offset: args.offset.clone(),
        all_namespaces: args.scope.all_namespaces.then_some(true),
        ..StatQuery::default()
    };
    let base = args.control.url();
    let rows: Vec<EdgeRow> = match client::get_stats(&base, "/api/v1/edges", &query)? {
        Ok(rows) => rows,
        Err(code) => return Ok(code),
    };
    print!("{}", render(&rows, args.output)?);
    if args.output != Format::Json {
        if let Some(note) = output::coverage_note(rows.iter().map(|r| &r.coverage), &args.time_window) {
            print!("{note}");
        }
        if rows.is_empty() {
            eprintln!("{}", client::nothing_found(&base, "edges", &args.scope.namespace, args.scope.all_namespaces));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `disabled` → `Disabled`, `not_provided_by_remote` → `Not Provided By Remote`, none → `√`.
fn secured(reason: &str) -> String {
    if reason.is_empty() {
        return "√".into();
    }
    reason
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next().map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How an unmeshed source is shown (its requests carry no identity; one row per destination).
const UNMESHED: &str = "(unmeshed)";

fn or_dash(v: &str) -> String {
    if v.is_empty() { "-".into() } else { v.to_string() }
}

fn id(v: &str) -> String {
    if v.is_empty() { "-".into() } else { v.split('.').take(2).collect::<Vec<_>>().join(".") }
}

pub fn render(rows: &[EdgeRow], format: Format) -> anyhow::Result<String> {
    if format == Format::Json {
        return output::json(&rows);
    }
    if rows.is_empty() {
        return Ok(String::new());
    }
    let wide = format == Format::Wide;
    let mut header = vec!["SRC", "DST", "SRC_NS", "DST_NS"];
    if wide {
        header.extend(["CLIENT_ID", "SERVER_ID", "CANCELLED"]);
    }
    header.push("SECURED");
    let lines: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let src = if r.src_meshed { r.src.clone() } else { UNMESHED.to_string() };
            let dst = if r.dst_unknown { format!("{} (unknown)", r.dst) } else { r.dst.clone() };
            let mut line = vec![src, dst, or_dash(&r.src_namespace), or_dash(&r.dst_namespace)];
            if wide {
                line.extend([id(&r.client_id), id(&r.server_id), output::count(r.cancelled)]);
            }
            line.push(secured(&r.no_tls_reason));
            line
        })
        .collect();
    Ok(output::table(&header, &lines, header.len()))
}
